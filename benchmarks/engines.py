"""Time the engines against each other in one run and write benchmarks/engines.md.

1. The example pipeline (pipelines/des-sv-mock.yaml): wall time of `descpipe run` with Toil on
   SLURM and with Toil on single_machine, each divided by the cwltool run's.
2. Per-stage overhead: a chain of 20 trivial stages (each copies a small text file) and a chain
   of 1, with each engine; overhead per stage = (time of 20 - time of 1) / 19, which leaves out
   what a run costs once (start-up, export, the leader's shutdown).

Needs SLURM up (scripts/slurm.sh) and the example's science libraries (scripts/setup.sh).
Usage: python3 benchmarks/engines.py   (about 5 minutes on 2 cores)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from report import EXAMPLE, example_checkout, example_stages, measured_on, write_report

CHAIN = 20
EXAMPLE_GALAXIES = 100_000   # the example's own size
# (label, descpipe run options): the engines compared, cwltool first as the reference.
ENGINES = (("cwltool", ()),
           ("Toil, single_machine", ("--engine", "toil", "--batch-system", "single_machine")),
           ("Toil, SLURM", ("--engine", "toil", "--batch-system", "slurm")))

STAGE = '''import descpipe


class Stage(descpipe.Stage):
    """Copy the text it is given: a stage that costs nothing but its engine's overhead."""

    name = "{name}"
    inputs = {{"{source}": "txt"}}
    outputs = {{"{target}": "txt"}}

    def run(self):
        open(self.get_output_path("{target}"), "w").write(open(self.get_input_path("{source}")).read())


if __name__ == "__main__":
    Stage.main()
'''


def timed_run(pipeline: Path, options: tuple[str, ...]) -> float:
    """Wall time of one `descpipe run`, from a clean working directory; fails loudly."""
    for folder in ("work", "output"):
        shutil.rmtree(pipeline.parent / folder, ignore_errors=True)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "descpipe", "run", pipeline.name, *options],
                            cwd=pipeline.parent, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"benchmark run failed: descpipe run {pipeline} {' '.join(options)}\n{result.stdout}{result.stderr}")
    return elapsed


def chain_pipeline(root: Path, length: int) -> Path:
    """A pipeline of `length` stages in a line, each copying the previous one's file."""
    stages = root / "stages"
    for index in range(1, length + 1):
        stage = stages / f"step{index:02d}"
        stage.mkdir(parents=True, exist_ok=True)
        (stage / "Dockerfile").write_text("ARG BASE_IMAGE=descpipe/base:latest\nFROM ${BASE_IMAGE}\n")
        (stage / "run.py").write_text(STAGE.format(name=stage.name, source=f"x{index - 1:02d}", target=f"x{index:02d}"))
    pipeline = root / f"chain{length}" / "chain.yaml"
    pipeline.parent.mkdir()
    (pipeline.parent / "x00.txt").write_text("hello\n")
    names = ", ".join(f"step{index:02d}" for index in range(1, length + 1))
    pipeline.write_text(f"pipeline:\n  images: [../stages]\n  stages: [{names}]\n"
                        "runtime:\n  working: work\n  output: output\n  inputs:\n    x00: x00.txt\n")
    return pipeline


def versions() -> str:
    """The engines' versions, which the figures depend on most."""
    slurm = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"Toil {version('toil')}, cwltool {version('cwltool')}, {slurm} "
            "(one node on loopback, scripts/slurm.sh)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="descpipe-bench-") as scratch:
        root = example_checkout(Path(scratch), EXAMPLE_GALAXIES)
        example = root / EXAMPLE
        chains = {length: chain_pipeline(root, length) for length in (1, CHAIN)}
        example_times, overheads = {}, {}
        for label, options in ENGINES:
            print(f"timing {label} ...", flush=True)
            example_times[label] = timed_run(example, options)
            times = {length: timed_run(pipeline, options) for length, pipeline in chains.items()}
            overheads[label] = (times[CHAIN] - times[1]) / (CHAIN - 1), times
    reference = example_times["cwltool"]
    lines = [
        "# Engine benchmark",
        "",
        measured_on("python3 benchmarks/engines.py") + f", with {versions()}. All figures are from one "
        "run of it: one run per engine and case, on a machine that may be doing other work, so read "
        "them as rough ratios.",
        "",
        f"## The example pipeline ({EXAMPLE}, {len(example_stages())} stages, no container)",
        "",
        "| engine | wall time (s) | divided by cwltool's |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {seconds:.1f} | {seconds / reference:.2f} |" for label, seconds in example_times.items()],
        "",
        f"## Per-stage overhead: a chain of {CHAIN} trivial stages",
        "",
        f"Each stage copies a 6-byte file, so its time is the engine's overhead. Overhead per stage = "
        f"(time of the {CHAIN}-stage chain - time of a 1-stage chain) / {CHAIN - 1}.",
        "",
        f"| engine | 1 stage (s) | {CHAIN} stages (s) | overhead per stage (s) | divided by cwltool's |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {label} | {times[1]:.1f} | {times[CHAIN]:.1f} | {per_stage:.2f} | "
          f"{per_stage / overheads['cwltool'][0]:.1f} |" for label, (per_stage, times) in overheads.items()],
        "",
    ]
    print("\n".join(lines))
    write_report("engines.md", lines)


if __name__ == "__main__":
    main()
