"""`descpipe local`: the prototype's launcher, a plain bash script that runs each stage with
`docker run`, one after another, with no CWL engine.

Each stage sees the prototype's fixed directories: its inputs mounted read-only at
`/opt/input/<tag>.<suffix>`, its config files at `/opt/config/<file name>`, and a fresh folder
at `/opt/output`. So stages written for the prototype run unchanged, and the script shows
plainly what runs where.
"""
from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path

from .images import Pin
from .pipeline import Pipeline

CODE_DIR = "/opt/desc/code"


def _mount(source: Path, target: str, readonly: bool = True) -> str:
    """One `--mount` value, CSV-quoted as Docker parses it, so commas and quotes in paths are safe."""
    fields = ["type=bind", f"source={source.resolve()}", f"target={target}"] + (["readonly"] if readonly else [])
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    return line.getvalue()


def local_script(pipeline: Pipeline, pins: dict[str, Pin] | None = None) -> str:
    """The bash script that runs `pipeline` stage by stage with `docker run`."""
    work = (pipeline.working / "local").resolve()
    output = pipeline.output.resolve()
    logs = output / "logs"
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# Runs the {pipeline.name} pipeline with docker, one stage after another.",
        f"# Written by `descpipe local` from {pipeline.file.resolve()}; write it again after editing that file.",
        "set -euo pipefail",
        "",
        "fail() {  # stage, log: say which stage failed and show the end of its log",
        '    echo "stage $1 failed; the end of $2:" >&2',
        '    tail -n 20 "$2" >&2',
        "    exit 1",
        "}",
        "",
        f"mkdir -p {q(str(logs))}",
    ]
    made: dict[str, Path] = {}
    for stage in pipeline.stages:
        spec = stage.spec
        folder = work / stage.name
        mounts = [_mount(spec.directory, CODE_DIR)]
        for tag, kind in spec.inputs.items():
            source = made.get(tag) or pipeline.inputs[tag]
            mounts.append(_mount(source, f"/opt/input/{tag}.{kind.suffix}"))
        for tag, path in stage.config_files.items():
            mounts.append(_mount(path, f"/opt/config/{spec.config[tag]}"))
        mounts.append(_mount(folder, "/opt/output", readonly=False))
        command = ["python3", f"{CODE_DIR}/run.py", "--cores", str(stage.resources["cores"])]
        command += [f"--{name}={spec.parameters[name].render(value)}"
                    for name, value in stage.parameter_values.items()]
        out, err = logs / f"{stage.name}.out", logs / f"{stage.name}.err"
        lines += [
            "",
            f"# --- {stage.name}",
            f"echo {q(f'descpipe local: running {stage.name}')}",
            f"rm -rf {q(str(folder))} && mkdir -p {q(str(folder))}",
            # As cwltool runs containers: no network, read-only root, the caller's user.
            (f"docker run --rm --network {'host' if spec.network else 'none'} --read-only --tmpfs /tmp "
            "--user \"$(id -u):$(id -g)\" "
            f"--env OMP_NUM_THREADS={stage.resources['cores']} \\"),
            *[f"    --mount {q(mount)} \\" for mount in mounts],
            f"    {q(pins[stage.name].id if pins else stage.image)} {' '.join(q(c) for c in command)} \\",
            f"    >{q(str(out))} 2>{q(str(err))} || fail {q(stage.name)} {q(str(err))}",
        ]
        for tag, kind in spec.outputs.items():
            made[tag] = folder / f"{tag}.{kind.suffix}"
    lines += ["", f"mkdir -p {q(str(output))}"]
    lines += [f"cp {q(str(made[tag]))} {q(str(output))}/" for tag in pipeline.final]
    lines += [f"echo {q(f'descpipe local: {pipeline.name} finished; products in {output}')}", ""]
    return "\n".join(lines)
