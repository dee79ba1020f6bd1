"""What every benchmark report shares: when, on which machine, by which command, and where it goes."""
from __future__ import annotations

import os
import platform
import shutil
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = "pipelines/des-sv-mock.yaml"   # the example pipeline, relative to a checkout


def measured_on(command: str) -> str:
    """`Measured <date> on <node> (<cpu>, <n> cores, <python>) by `<command>``."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor() or platform.machine())
    return (f"Measured {date.today().isoformat()} on {platform.node()} ({cpu}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}) by `{command}`")


def write_report(name: str, lines: list[str]) -> None:
    """Write `benchmarks/<name>` (markdown lines) beside the scripts, and say so."""
    (Path(__file__).resolve().parent / name).write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote benchmarks/{name}")


def example_stages() -> list[str]:
    """The example pipeline's stages in run order, so that reports say what was measured."""
    from descpipe.pipeline import load_pipeline

    return [stage.name for stage in load_pipeline(REPO / EXAMPLE).stages]


def example_checkout(root: Path, galaxies: int) -> Path:
    """A copy of the example's stages and pipelines in `root`, with `galaxies` mock galaxies;
    returns `root`, where `descpipe run EXAMPLE` runs it."""
    for folder in ("images", "pipelines"):
        shutil.copytree(REPO / folder, root / folder)
    pipeline = root / EXAMPLE
    text = pipeline.read_text()
    assert "n_galaxies: 100000" in text, "the example's n_galaxies moved"
    pipeline.write_text(text.replace("n_galaxies: 100000", f"n_galaxies: {galaxies}"))
    return root
