"""Run a pipeline: export it into the working directory, then hand it to a CWL engine (cwltool).

The engine does the scheduling, staging and container work; this module only chooses its
options, keeps its log, puts the products and per-stage logs where the pipeline file says,
and on failure names the stage that failed with the end of its log.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .cwl import SEPARATOR, write_export
from .pipeline import Pipeline

CONTAINERS = ("none",)
LOG_TAIL_LINES = 20


def engine_command(pipeline: Pipeline, cwl_path: Path, job_path: Path, container: str,
                   extra: Sequence[str] = ()) -> list[str]:
    """The cwltool command line that runs the exported pipeline."""
    working = pipeline.working.resolve()
    # Not `python -m cwltool`: its __main__ drops the exit status, so a failed run would exit 0.
    command = [sys.executable, "-c", "import sys; from cwltool.main import run; sys.exit(run())",
               "--outdir", str(pipeline.output.resolve()),
               # Keep every job's directory under `working`, not /tmp, and keep them after a
               # failure, so the failed stage's log can be shown.
               "--tmpdir-prefix", str(working / "tmp") + "/",
               "--tmp-outdir-prefix", str(working / "jobs") + "/",
               "--leave-tmpdir"]
    if container == "none":
        command.append("--no-container")
    return [*command, *extra, str(cwl_path), str(job_path)]


def run_pipeline(pipeline: Pipeline, container: str = "none", extra: Sequence[str] = (),
                 say: Callable[[str], None] = print) -> int:
    """Export and run `pipeline`; return the engine's exit status.

    Products land in the pipeline's output directory, each stage's stdout and stderr in
    `<output>/logs/<stage>.out|.err`, and the engine's own log in `<working>/cwltool.log`.
    """
    working = pipeline.working.resolve()
    cwl_path, job_path = working / f"{pipeline.name}.cwl", working / f"{pipeline.name}.job.yml"
    for leftover in ("tmp", "jobs"):
        shutil.rmtree(working / leftover, ignore_errors=True)
    write_export(pipeline, cwl_path, job_path)
    log_path = working / "cwltool.log"
    command = engine_command(pipeline, cwl_path, job_path, container, extra)
    say(f"descpipe: running {len(pipeline.stages)} stages of {pipeline.name} with cwltool "
        f"(container: {container}); engine log: {log_path}")
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True)
    elapsed = time.monotonic() - started
    if result.returncode == 0:
        logs = pipeline.output / "logs"
        _collect_logs(json.loads(result.stdout), logs)
        for leftover in ("tmp", "jobs"):
            shutil.rmtree(working / leftover, ignore_errors=True)
        say(f"descpipe: {pipeline.name} finished in {elapsed:.1f} s; products in {pipeline.output}, "
            f"stage logs in {logs}")
        return 0
    say(f"descpipe: {pipeline.name} failed after {elapsed:.1f} s (cwltool exit status {result.returncode})")
    failed = _failed_stages(log_path)
    for stage in failed:
        say(f"descpipe: stage {stage!r} failed; the end of its log:")
        for line in _log_tail(working / "jobs", stage):
            say(f"    {line}")
    if not failed:
        say("descpipe: the end of the engine log:")
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]:
            say(f"    {line}")
    say(f"descpipe: job directories kept in {working / 'jobs'}")
    return result.returncode


def _collect_logs(outputs: dict, logs_dir: Path) -> None:
    """Move the per-stage stdout/stderr outputs into `logs_dir`."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    for key, value in outputs.items():
        if key.endswith((f"{SEPARATOR}stdout", f"{SEPARATOR}stderr")) and value:
            source = Path(value["path"])
            source.replace(logs_dir / source.name)


def _failed_stages(log_path: Path) -> list[str]:
    failed = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        # cwltool reports each tool run as "[job <step>] completed permanentFail".
        if "] completed permanentFail" in line and "[job " in line:
            stage = line.split("[job ", 1)[1].split("]", 1)[0]
            # A second attempt of a step is called "<step>_2".
            if stage not in failed:
                failed.append(stage)
    return failed


def _log_tail(jobs_dir: Path, stage: str) -> list[str]:
    candidates: list[Path] = []
    for stream in ("err", "out"):
        candidates.extend(jobs_dir.glob(f"*/{stage}.{stream}"))
    lines: list[str] = []
    for path in sorted(candidates, key=lambda p: (p.suffix != ".err", -p.stat().st_mtime))[:1]:
        lines = [f"({path})", *path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]]
    return lines or [f"(no log of {stage} was found in {jobs_dir})"]

