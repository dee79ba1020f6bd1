"""Benchmark: what running every stage in a Docker container costs, against no container.

Runs the example pipeline (pipelines/des-sv-mock.yaml) at 10^5 and 10^6 galaxies with
`descpipe run --container none` and `--container docker`, alternating the two so that both see
the same machine load, and writes the wall times and their ratio to benchmarks/containers.md.
Needs the Docker engine (bash scripts/containers.sh). Usage: python3 benchmarks/containers.py [--repeat N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import measured_on, write_report

REPO = Path(__file__).resolve().parent.parent
MOCK = "pipelines/des-sv-mock.yaml"
SIZES = (100_000, 1_000_000)
TARGET = 1.25   # Docker / no container at 10^6 galaxies


def descpipe(root: Path, *args: str) -> float:
    """Run descpipe in `root`; return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "descpipe", *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"descpipe {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started


def checkout(scratch: Path, galaxies: int) -> Path:
    root = scratch / f"n{galaxies}"
    for folder in ("images", "pipelines"):
        shutil.copytree(REPO / folder, root / folder)
    pipeline = root / MOCK
    pipeline.write_text(pipeline.read_text().replace("n_galaxies: 100000", f"n_galaxies: {galaxies}"))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind per size (default 2)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="descpipe-bench-") as scratch:
        for galaxies in SIZES:
            root = checkout(Path(scratch), galaxies)
            descpipe(root, "build", MOCK)
            times: dict[str, list[float]] = {"none": [], "docker": []}
            for _ in range(args.repeat):
                for container in times:
                    times[container].append(descpipe(root, "run", MOCK, "--container", container))
            none, docker = statistics.median(times["none"]), statistics.median(times["docker"])
            rows.append((galaxies, none, docker, docker / none, (docker - none) / 4))
            print(f"{galaxies:>9,} galaxies: no container {none:.1f} s, docker {docker:.1f} s, "
                  f"ratio {docker / none:.3f}", flush=True)
    ratio_at_target = rows[-1][3]
    lines = [
        "# Container overhead",
        "",
        measured_on(f"python3 benchmarks/containers.py --repeat {args.repeat}") + ".",
        "",
        "The example pipeline (4 stages: mock catalogs, tomography, pz_stack, treecorr) run with "
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
