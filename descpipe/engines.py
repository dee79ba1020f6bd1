"""CWL engines descpipe can hand an exported pipeline to, each a small adapter.

An engine turns (exported CWL, job file, run settings) into a command line, and reads its own
log back to say which stages failed and where their logs are. Containers and batch systems
are options of the engine's command, chosen by `RunSettings`.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import UserError

# Container runtime -> the cwltool (and Toil) option that selects it; Docker is their default.
CONTAINER_OPTIONS = {"none": ["--no-container"], "docker": [], "podman": ["--podman"],
                     "singularity": ["--singularity"]}
CONTAINERS = tuple(CONTAINER_OPTIONS)


@dataclass(frozen=True)
class RunSettings:
    """How to run: the engine, the container runtime and the folders of this run."""

    working: Path                 # exported files, engine log, job directories
    output: Path                  # products
    container: str = "none"
    extra: tuple[str, ...] = field(default_factory=tuple)   # engine options passed as they are


class Cwltool:
    """The CWL reference runner, on this machine."""

    name = "cwltool"

    def command(self, cwl_path: Path, job_path: Path, settings: RunSettings) -> list[str]:
        """The cwltool command line that runs the exported pipeline."""
        working = settings.working.resolve()
        # Not `python -m cwltool`: its __main__ drops the exit status, so a failed run would exit 0.
        command = [sys.executable, "-c", "import sys; from cwltool.main import run; sys.exit(run())",
                   "--outdir", str(settings.output.resolve()),
                   # Keep every job's directory under `working`, not /tmp, and keep them after a
                   # failure, so the failed stage's log can be shown.
                   "--tmpdir-prefix", str(working / "tmp") + "/",
                   "--tmp-outdir-prefix", str(working / "jobs") + "/",
                   "--leave-tmpdir"]
        command += container_options(settings.container)
        return [*command, *settings.extra, str(cwl_path), str(job_path)]

    def scratch(self, settings: RunSettings) -> list[Path]:
        """Folders of one run that a successful run no longer needs."""
        return [settings.working / "tmp", settings.working / "jobs"]

    def failed_stages(self, log: str) -> list[str]:
        """Stages the engine log reports as failed, in the order they failed."""
        failed: list[str] = []
        # cwltool reports each tool run as "[job <step>] completed permanentFail"; a second
        # run of the same step is called "<step>_2".
        for match in re.finditer(r"\[job ([^\]]+?)(?:_\d+)?\] completed permanentFail", log):
            if match.group(1) not in failed:
                failed.append(match.group(1))
        return failed

    def stage_log(self, stage: str, settings: RunSettings) -> Optional[Path]:
        """The stderr (else stdout) file of the newest run of `stage`, if the engine kept one."""
        for stream in ("err", "out"):
            found = sorted((settings.working / "jobs").glob(f"*/{stage}.{stream}"),
                           key=lambda p: p.stat().st_mtime)
            if found:
                return found[-1]
        return None


ENGINES = {"cwltool": Cwltool()}


def container_options(container: str) -> list[str]:
    """The engine options that select a container runtime."""
    if container not in CONTAINER_OPTIONS:
        raise UserError(f"unknown container runtime {container!r} (known: {', '.join(CONTAINERS)})")
    return CONTAINER_OPTIONS[container]
