"""Benchmark: the correlation stage split over bin pairs against the whole stage, and TreeCorr's
time against its number of threads.

On a copy of the example at 5x10^5 galaxies: the treecorr stage run whole with 2 cores; split
(one job per bin pair) with 2 cores per part, one part at a time; and split with 1 core per
part, two parts at once (`cwltool --parallel`). Then the stage run directly with 1 and 2
threads. Writes benchmarks/correlations.md. Usage: python3 benchmarks/correlations.py
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import EXAMPLE, example_checkout, measured_on, write_report

GALAXIES = 500_000


def checkout(scratch: Path, name: str, treecorr_section: str) -> Path:
    root = example_checkout(scratch / name, GALAXIES)
    pipeline = root / EXAMPLE
    text = pipeline.read_text()
    text, count = re.subn(r"treecorr:\n(  .*\n)*", "treecorr:\n" + treecorr_section, text)
    assert count == 1, "the example's treecorr section moved"
    pipeline.write_text(text)
    return root


def stage_seconds(root: Path, *engine_options: str) -> float:
    """Run the example; return the time from the first treecorr step's start to the last one's end."""
    result = subprocess.run([sys.executable, "-m", "descpipe", "run", EXAMPLE, "--", *engine_options],
                            cwd=root, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"run failed in {root}:\n{result.stdout}{result.stderr}")
    times = [float(t) for t in re.findall(r"\[cwltool +([\d.]+) s\] stage treecorr", result.stdout)]
    return max(times) - min(times)


def direct_seconds(root: Path, cores: int) -> float:
    output = root / "output/des-sv-mock"
    command = [sys.executable, str(root / "images/treecorr/run.py"),
               "--shear-catalog", str(output / "shear-catalog.fits"),
               "--tomographic-catalog", str(output / "tomographic-catalog.fits"),
               "--config", str(root / "pipelines/config/treecorr.yaml"),
               "--correlation-functions", str(root / f"direct-{cores}.fits"), "--cores", str(cores)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="descpipe-corr-") as scratch:
        whole = checkout(Path(scratch), "whole", "  cores: 2\n")
        split2 = checkout(Path(scratch), "split2", "  cores: 2\n  split: true\n")
        split1 = checkout(Path(scratch), "split1", "  cores: 1\n  split: true\n")
        figures = {
            "whole stage, 2 threads": stage_seconds(whole),
            "split, 2 threads per part, one part at a time": stage_seconds(split2),
            "split, 1 thread per part, two parts at once": stage_seconds(split1, "--parallel"),
        }
        threads = {cores: direct_seconds(whole, cores) for cores in (1, 2)}
    reference = figures["whole stage, 2 threads"]
    for name, seconds in figures.items():
        print(f"{name}: {seconds:.1f} s ({seconds / reference:.2f}x)")
    lines = [
        "# Correlations: split over bin pairs, and threads",
        "",
        measured_on("python3 benchmarks/correlations.py") + ", on the example at "
        f"{GALAXIES:,} galaxies (3 tomographic bins, 6 bin pairs).",
        "",
        "The treecorr stage's time within `descpipe run` (cwltool, no container), from its first step's start "
        "to its last step's end, so the split runs include their plan and gather steps:",
        "",
        "| treecorr stage | seconds | / whole stage |",
        "| --- | ---: | ---: |",
        *[f"| {name} | {seconds:.1f} | **{seconds / reference:.2f}** |" for name, seconds in figures.items()],
        "",
        "TreeCorr's time against threads, the stage run directly (no engine), all six pairs:",
        "",
        "| threads | seconds | speed-up |",
        "| ---: | ---: | ---: |",
        *[f"| {cores} | {seconds:.1f} | {threads[1] / seconds:.2f} |" for cores, seconds in threads.items()],
        "",
        "On one 2-core machine splitting cannot be faster than TreeCorr's own threads: what it buys is "
        "spreading the pairs over the nodes of a cluster (Toil on SLURM), one job per pair.",
        "",
    ]
    write_report("correlations.md", lines)


if __name__ == "__main__":
    main()
