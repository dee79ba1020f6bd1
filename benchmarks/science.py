"""Benchmarks of the example's stages: engine overhead, I/O floor and streaming memory.

Writes benchmarks/science.md with three ratios, each against a reference measured in the same run:

1. Engine overhead: `descpipe run pipelines/des-sv-mock.yaml` (cwltool, no container) divided by
   the same five stages run directly, one after another, as `python3 images/<stage>/run.py
   --<tag> PATH ...` with no engine, at 10^5 and 10^6 galaxies (target <= 1.10 at 10^6).
2. I/O floor: the tomography and pz_stack stages' wall time divided by the time a fresh
   `python3` takes to read just the columns they need with fitsio (target <= 2), at 10^6 galaxies.
3. Memory: pz_stack's peak RSS on 4x the rows divided by its peak on 1x (target <= 1.2: it streams).

Every time is a whole process (interpreter start and imports included) on files that were just
read once, so the page cache holds them for both sides. Usage: python3 benchmarks/science.py [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import EXAMPLE, REPO, example_checkout, measured_on, write_report

CONFIG = REPO / "pipelines" / "config"
SIZES = (100_000, 1_000_000)
MEMORY_ROWS = (250_000, 1_000_000)   # 1x is 2.5 chunks of pz_stack's default 100,000 rows
TARGETS = {"engine": 1.10, "io": 2.0, "memory": 1.2}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def timed(*command: object, cwd: Path | None = None) -> float:
    """Wall time in seconds of a command that must succeed."""
    started = time.perf_counter()
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started


def stage(name: str, *args: object) -> list[object]:
    """The command line that runs one stage directly."""
    return [sys.executable, REPO / "images" / name / "run.py", *args]


def direct_chain(folder: Path, galaxies: int) -> list[list[object]]:
    """The example's stages as direct command lines writing into `folder`, in run order."""
    f = {tag: folder / f"{tag}.{suffix}" for tag, suffix in
         (("shear", "fits"), ("photoz", "fits"), ("truth", "yaml"), ("tomographic", "fits"), ("nz", "fits"),
          ("xi", "fits"), ("sacc", "fits"))}
    return [
        stage("mock_catalogs", "--shear-catalog", f["shear"], "--photoz-catalog", f["photoz"], "--mock-truth",
              f["truth"], "--binning", CONFIG / "tomography.yaml", f"--n_galaxies={galaxies}", "--seed=2017"),
        stage("tomography", "--photoz-catalog", f["photoz"], "--config", CONFIG / "tomography.yaml",
              "--tomographic-catalog", f["tomographic"]),
        stage("pz_stack", "--photoz-catalog", f["photoz"], "--tomographic-catalog", f["tomographic"], "--n_of_z", f["nz"]),
        stage("treecorr", "--shear-catalog", f["shear"], "--tomographic-catalog", f["tomographic"],
              "--config", CONFIG / "treecorr.yaml", "--correlation-functions", f["xi"], "--cores", 2),
        stage("sacc_file", "--n_of_z", f["nz"], "--correlation-functions", f["xi"], "--sacc-data", f["sacc"]),
    ]


def engine_overhead(scratch: Path, repeat: int) -> list[tuple[int, float, float, list[float]]]:
    """(galaxies, descpipe run s, direct s, engine / direct of each pair) per size.

    Each pair is one run of each kind back to back, in alternating order: this machine has slow
    spells of minutes, which a ratio of two runs a minute apart cancels and a ratio of medians
    over the whole benchmark does not. Times are medians; the ratio reported is the pairs' median.
    """
    rows = []
    for galaxies in SIZES:
        root = example_checkout(scratch / f"engine{galaxies}", galaxies)
        engine, direct = [], []
        for attempt in range(repeat):
            folder = root / f"direct{attempt}"
            folder.mkdir()
            kinds = [lambda: engine.append(timed(sys.executable, "-m", "descpipe", "run", EXAMPLE, cwd=root)),
                     lambda: direct.append(sum(timed(*command, cwd=folder)
                                               for command in direct_chain(folder, galaxies)))]
            for run in kinds if attempt % 2 == 0 else reversed(kinds):
                run()
            print(f"{galaxies:,} galaxies, pair {attempt + 1}: descpipe run {engine[-1]:.1f} s, "
                  f"direct {direct[-1]:.1f} s, ratio {engine[-1] / direct[-1]:.3f}", flush=True)
        rows.append((galaxies, statistics.median(engine), statistics.median(direct),
                     [e / d for e, d in zip(engine, direct)]))
    return rows


def read_columns(path: Path, columns: str) -> list[object]:
    """A fresh python3 that reads `columns` (a Python expression) of HDU 1 of `path` with fitsio."""
    return [sys.executable, "-c", f"import fitsio; fitsio.read({str(path)!r}, ext=1, columns={columns})"]


def io_floor(scratch: Path, repeat: int) -> list[tuple[str, float, float]]:
    """(stage, stage seconds, column-read seconds) at 10^6 galaxies, medians."""
    folder = scratch / "io"
    folder.mkdir()
    mock, tomography, pz_stack = direct_chain(folder, SIZES[-1])[:3]
    timed(*mock, cwd=folder)
    timed(*tomography, cwd=folder)   # makes the tomographic catalog, and warms the cache
    photoz, tomographic = folder / "photoz.fits", folder / "tomographic.fits"
    pdf_columns = "[f'PDF_{i}' for i in range(100)]"   # the mock stage's default nz
    cases = [("tomography", tomography, [read_columns(photoz, "['Z_MEAN']")]),
             ("pz_stack", pz_stack, [read_columns(photoz, pdf_columns), read_columns(tomographic, "['BIN']")])]
    rows = []
    for name, command, references in cases:
        ran, floor = [], []
        for _ in range(repeat):
            ran.append(timed(*command, cwd=folder))
            floor.append(sum(timed(*reference) for reference in references))
        rows.append((name, statistics.median(ran), statistics.median(floor)))
        print(f"I/O floor of {name}: {rows[-1][1]:.2f} s against {rows[-1][2]:.2f} s", flush=True)
    return rows


def peak_rss_mb(command: list[object], cwd: Path) -> float:
    """Peak resident memory (MB) of a command, from the kernel's record of its only child."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", probe, *map(str, command)], cwd=cwd, env=ENV,
                            capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024   # ru_maxrss is in kB on Linux


def memory(scratch: Path) -> list[tuple[int, float]]:
    """(rows, pz_stack peak RSS in MB) at 1x and 4x rows."""
    rows = []
    for n in MEMORY_ROWS:
        folder = scratch / f"memory{n}"
        folder.mkdir()
        mock, tomography, pz_stack = direct_chain(folder, n)[:3]
        timed(*mock, cwd=folder)
        timed(*tomography, cwd=folder)
        rows.append((n, peak_rss_mb(pz_stack, folder)))
        print(f"pz_stack on {n:,} rows: peak RSS {rows[-1][1]:.0f} MB", flush=True)
    return rows


def verdict(ratio: float, target: float) -> str:
    return f"{'met' if ratio <= target else 'NOT met'} ({ratio:.2f} against ≤ {target})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (default 3); medians are reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="descpipe-bench-") as scratch:
        engine = engine_overhead(Path(scratch), args.repeat)
        io = io_floor(Path(scratch), args.repeat)
        rss = memory(Path(scratch))
    memory_ratio = rss[1][1] / rss[0][1]
    lines = [
        "# Science stages: engine overhead, I/O floor, memory",
        "",
        measured_on(f"python3 benchmarks/science.py --repeat {args.repeat}") + f"; times are medians of {args.repeat} runs, "
        "each a whole process, on files already in the page cache.",
        "",
        "## 1. Engine overhead",
        "",
        "The example pipeline (mock catalogs on 140 deg², tomography, pz_stack, treecorr on 2 cores, "
        "sacc_file) with `descpipe run` (export, then cwltool with no container), against the same "
        "five stages run directly one after another (`python3 images/<stage>/run.py --<tag> PATH ...`). "
        "The runs come in pairs, one of each kind back to back in alternating order, and the ratio is "
        "the median of the pairs' ratios: this machine has slow spells lasting minutes, which slow "
        "both runs of a pair alike but would skew a ratio of medians taken over the whole benchmark.",
        "",
        "| galaxies | descpipe run (s) | direct (s) | engine / direct | each pair | engine cost (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {g:,} | {e:.1f} | {d:.1f} | **{statistics.median(r):.3f}** | "
          f"{', '.join(f'{x:.3f}' for x in r)} | {e - d:.1f} |" for g, e, d, r in engine],
        "",
        f"Target ≤ {TARGETS['engine']} at 10^6 galaxies: {verdict(statistics.median(engine[-1][3]), TARGETS['engine'])}. "
        "Most of the engine's cost is fixed: export, cwltool's start and its validation of the "
        "workflow (about 2 s), a job directory per stage. What grows with the catalogs is the SHA-1 "
        "cwltool computes of every output file (the run record and `--resume` use it; the photo-z "
        "catalog is 420 MB at 10^6 galaxies) and the copy of the products out of cwltool's cache "
        "into the output directory. Runs of the same command vary by a few seconds at 10^6 galaxies "
        "on this machine.",
        "",
        "## 2. I/O floor",
        "",
        f"Each stage at {SIZES[-1]:,} galaxies against a fresh `python3` that reads just the columns the "
        "stage needs with fitsio (tomography: Z_MEAN; pz_stack: the 100 PDF columns and BIN).",
        "",
        "| stage | stage (s) | reading its columns (s) | stage / read |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {name} | {ran:.2f} | {floor:.2f} | **{ran / floor:.2f}** |" for name, ran, floor in io],
        "",
        *[f"Target ≤ {TARGETS['io']} for {name}: {verdict(ran / floor, TARGETS['io'])}." for name, ran, floor in io],
        "",
        "## 3. Memory",
        "",
        "pz_stack's peak resident memory (the kernel's ru_maxrss of the stage's process) at 1x and 4x rows, "
        "default chunk_rows 100,000.",
        "",
        "| rows | peak RSS (MB) |",
        "| ---: | ---: |",
        *[f"| {n:,} | {mb:.0f} |" for n, mb in rss],
        "",
        f"4x / 1x = **{memory_ratio:.2f}**; target ≤ {TARGETS['memory']}: {verdict(memory_ratio, TARGETS['memory'])}.",
        "",
    ]
    write_report("science.md", lines)


if __name__ == "__main__":
    main()
