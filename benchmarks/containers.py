"""Benchmark: what running every stage in a Docker container costs, against no container.

Runs the example pipeline (pipelines/des-sv-mock.yaml) at 10^5 and 10^6 galaxies with
`descpipe run --container none` and `--container docker`, alternating the two so that both see
the same machine load, and writes the wall times and their ratio to benchmarks/containers.md.
Needs the Docker engine (bash scripts/containers.sh). Usage: python3 benchmarks/containers.py [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import EXAMPLE, example_checkout, example_stages, measured_on, write_report

SIZES = (100_000, 1_000_000)
TARGET = 1.25   # Docker / no container at 10^6 galaxies


def descpipe(root: Path, *args: str) -> float:
    """Run descpipe in `root`; return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "descpipe", *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"descpipe {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind per size (default 2)")
    args = parser.parse_args()
    rows = []
    stages = example_stages()
    with tempfile.TemporaryDirectory(prefix="descpipe-bench-") as scratch:
        for galaxies in SIZES:
            root = example_checkout(Path(scratch) / f"n{galaxies}", galaxies)
            descpipe(root, "build", EXAMPLE)
            times: dict[str, list[float]] = {"none": [], "docker": []}
            for _ in range(args.repeat):
                for container in times:
                    times[container].append(descpipe(root, "run", EXAMPLE, "--container", container))
            none, docker = statistics.median(times["none"]), statistics.median(times["docker"])
            rows.append((galaxies, none, docker, docker / none, (docker - none) / len(stages)))
            print(f"{galaxies:>9,} galaxies: no container {none:.1f} s, docker {docker:.1f} s, "
                  f"ratio {docker / none:.3f}", flush=True)
    ratio_at_target = rows[-1][3]
    lines = [
        "# Container overhead",
        "",
        measured_on(f"python3 benchmarks/containers.py --repeat {args.repeat}") + ".",
        "",
        f"The example pipeline ({len(stages)} stages: {', '.join(stages)}) run with "
        "`descpipe run` (cwltool) with no container and in Docker, alternately, on the same machine "
        f"in the same run; each figure is the median of {args.repeat} runs.",
        "",
        "| galaxies | no container (s) | Docker (s) | Docker / no container | extra per stage (s) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *[f"| {g:,} | {n:.1f} | {d:.1f} | **{r:.3f}** | {p:.2f} |" for g, n, d, r, p in rows],
        "",
        f"Target: Docker / no container ≤ {TARGET} at 10^6 galaxies: "
        f"{'met' if ratio_at_target <= TARGET else 'NOT met'} ({ratio_at_target:.3f}).",
        "",
    ]
    write_report("containers.md", lines)


if __name__ == "__main__":
    main()
