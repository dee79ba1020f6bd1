"""What one job can get from a batch system (the largest node of a SLURM partition, or this
machine), and the check that no stage asks for more, before anything is submitted."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .pipeline import Pipeline
from .run_config import SINGLE_MACHINE, SLURM, BatchSystem, slurm_minutes


@dataclass(frozen=True)
class NodeCapacity:
    """The most one job can get: cores, memory and minutes (None: no limit) of the largest node."""

    where: str
    cores: int
    memory_mb: int
    minutes: float | None


def node_capacity(batch_system: BatchSystem, file: Path) -> NodeCapacity | None:
    """What one job can get from `batch_system`; None for batch systems descpipe cannot ask."""
    if batch_system.name == SINGLE_MACHINE:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        return NodeCapacity("this machine", os.cpu_count() or 1, memory_mb, None)
    if batch_system.name != SLURM:
        return None
    try:
        # One line per group of nodes: partition (default marked *), cores, memory (MB), time limit.
        result = subprocess.run(["sinfo", "--noheader", "--format", "%P %c %m %l"],
                                capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UserError("SLURM's sinfo is not on PATH: run the leader where SLURM's commands work "
                        "(a login node), or choose --batch-system single_machine", file) from None
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 1, "", "sinfo did not answer within 60 s")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise UserError(f"SLURM is not reachable (sinfo: {reason}): start it (scripts/slurm.sh sets up "
                        "one node here) or choose --batch-system single_machine", file)
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    default = next((row[0].rstrip("*") for row in rows if row[0].endswith("*")), None)
    chosen = batch_system.partition or default
    mine = [row for row in rows if row[0].rstrip("*") == chosen]
    if not mine:
        names = sorted({row[0].rstrip("*") for row in rows})
        raise UserError(f"SLURM has no partition {chosen!r} (partitions: {', '.join(names) or 'none'}): "
                        "set runtime.partition or --partition to one of them", file)
    unlimited = any(row[3] in ("infinite", "UNLIMITED") for row in mine)
    return NodeCapacity(f"a node of SLURM partition {chosen!r}",
                        max(int(row[1].rstrip("+")) for row in mine),
                        max(int(row[2].rstrip("+")) for row in mine),
                        None if unlimited else max(slurm_minutes(row[3]) for row in mine))


def check_resources(pipeline: Pipeline, capacity: NodeCapacity | None) -> None:
    """UserError naming the first stage that asks for more than one job can get."""
    if capacity is None:
        return
    for stage in pipeline.stages:
        cores = stage.resources["cores"] * stage.resources.get("processes", 1)
        asked = (("cores", cores, capacity.cores, "cores"),
                 ("memory_mb", stage.resources.get("memory_mb", 0), capacity.memory_mb, "MB of memory"),
                 ("minutes", stage.resources.get("minutes", 0), capacity.minutes, "minutes"))
        for key, wanted, most, unit in asked:
            if most is not None and wanted > most:
                # Name the key the pipeline file set (the prototype's openmp, or ppn for MPI
                # stages), else the stage's own run.py.
                written = {"cores": ("ppn", "nodes", "cores", "openmp") if "processes" in stage.resources
                           else ("cores", "openmp")}.get(key, (key,))
                key = next((k for k in written if k in stage.lines), written[0])
                line = stage.lines.get(key)
                raise UserError(f"stage {stage.name!r} asks for {wanted} {unit}, but {capacity.where} has "
                                f"at most {most:g}: lower '{key}'",
                                pipeline.file if line else stage.spec.directory / "run.py", line)
