"""Benchmark: how export scales with the number of stages, against `cwltool --validate`.

Generates pipelines of 10, 100 and 1,000 stages (chains of ten stages, each chain fanning out
of an earlier one), exports each with `descpipe export` and validates the result with
`cwltool --validate`, and writes the times, their ratio and export's peak memory to
benchmarks/export_scaling.md. Targets: 1,000 stages export in <= 1 s and in <= 0.25x the time
cwltool takes to validate the result. Usage: python3 benchmarks/export_scaling.py
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import measured_on, write_report

REPO = Path(__file__).resolve().parent.parent
SIZES = (10, 100, 1000)
REPEAT = 3
# cwltool's validation grows much faster than linearly (about 20 s at 100 stages): stop waiting
# after this long; the figure is then a lower bound, so export / validate an upper bound.
VALIDATE_CAP = 300.0

STAGE = '''import descpipe


class Stage(descpipe.Stage):
    """Stage {index} of a generated pipeline."""

    inputs = {{"{source}": "txt"}}
    outputs = {{"t{index:04d}": "txt"}}
    parameters = {{"k": {index}}}

    def run(self):
        pass
'''


def generate(root: Path, stages: int) -> Path:
    """Chains of ten stages; chain c starts from the head of chain c-1 (fan-out), chain 0 from `seed`."""
    names = []
    for index in range(stages):
        name = f"s{index:04d}"
        names.append(name)
        folder = root / "images" / name
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text("ARG BASE_IMAGE=descpipe/base:latest\nFROM ${BASE_IMAGE}\n")
        source = "seed" if index == 0 else f"t{index - 1:04d}" if index % 10 else f"t{index - 10:04d}"
        (folder / "run.py").write_text(STAGE.format(index=index, source=source))
    (root / "seed.txt").write_text("1\n")
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(f"pipeline: {{images: [images], stages: [{', '.join(names)}]}}\n"
                        "runtime: {inputs: {seed: seed.txt}}\n")
    return pipeline


def timed(command: list[str], cwd: Path, cap: float | None = None) -> float:
    """Wall time of `command`; `cap` when it is still running after `cap` seconds (it is stopped)."""
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return float(cap)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - started


def main() -> None:
    rows = []
    cwltool = shutil.which("cwltool") or "cwltool"
    with tempfile.TemporaryDirectory(prefix="descpipe-scaling-") as scratch:
        for stages in SIZES:
            root = Path(scratch) / str(stages)
            pipeline = generate(root, stages)
            export = [sys.executable, "-m", "descpipe", "export", str(pipeline), "-o", str(root / "wf.cwl")]
            seconds = statistics.median(timed(export, root) for _ in range(REPEAT))
            # cwltool's validation is the slow reference (minutes at 1,000 stages): once is enough.
            validate = timed([cwltool, "--validate", str(root / "wf.cwl")], root, VALIDATE_CAP)
            # ru_maxrss of children only grows: measure export's peak in a fresh interpreter.
            peak = subprocess.run([sys.executable, "-c", f"import resource, runpy, sys; sys.argv = {['descpipe', *export[3:]]!r}\n"
                                   "try:\n runpy.run_module('descpipe', run_name='__main__')\n"
                                   "except SystemExit: pass\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                                  cwd=root, capture_output=True, text=True).stdout.split()[-1]
            rows.append((stages, seconds, validate, seconds / validate, int(peak) / 1024,
                         (root / "wf.cwl").stat().st_size / 1e6))
            print(f"{stages:>5} stages: export {seconds:.2f} s, cwltool --validate {validate:.2f} s, "
                  f"ratio {seconds / validate:.3f}, peak {int(peak) / 1024:.0f} MiB", flush=True)
    last = rows[-1]
    lines = [
        "# Export scaling",
        "",
        measured_on("python3 benchmarks/export_scaling.py") + ".",
        "",
        "Generated pipelines of chains of ten stages fanning out of each other. Times are wall times of "
        f"the whole command (Python start-up included), medians of {REPEAT} runs; `cwltool --validate` on "
        "its output (once: it takes minutes at 1,000 stages) runs right after, in the same benchmark run. Peak "
        "memory is the maximum resident set of a `descpipe export` run.",
        "",
        "| stages | `descpipe export` (s) | `cwltool --validate` (s) | export / validate | export peak memory (MiB) | wf.cwl (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {n:,} | {e:.2f} | {'> ' if v >= VALIDATE_CAP else ''}{v:.2f} | **{'< ' if v >= VALIDATE_CAP else ''}{r:.3f}** "
          f"| {m:.0f} | {size:.1f} |" for n, e, v, r, m, size in rows],
        "",
        f"A `>` marks a validation stopped after {VALIDATE_CAP:.0f} s: the ratio is then an upper bound.",
        "",
        f"Targets at 1,000 stages: export <= 1 s: {'met' if last[1] <= 1 else 'NOT met'} ({last[1]:.2f} s); "
        f"export <= 0.25x validate: {'met' if last[3] <= 0.25 else 'NOT met'} ({last[3]:.3f}).",
        "",
    ]
    write_report("export_scaling.md", lines)


if __name__ == "__main__":
    main()
