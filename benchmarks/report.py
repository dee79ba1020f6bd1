"""What every benchmark report shares: when, on which machine, by which command, and where it goes."""
from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path


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
