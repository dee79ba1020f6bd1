"""What every CWL engine adapter does for `descpipe run`, declared once (cwltool_engine.py and
toil_engine.py implement it), and the events its log reader reports.

An engine turns an exported pipeline and a RunConfig into a command line, says which folders a
run leaves, and reads its own log back: which jobs started, finished, were reused, retried or
failed, and where a failed job's log is. A job is one run of a workflow step's tool; the parts of
a split stage are jobs of one step, numbered from 1 in the order the engine made them.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import UserError
from .pipeline import Pipeline
from .run_config import RunConfig

EVENT_KINDS = ("started", "reused", "retrying", "finished", "failed")

# The engine option that selects each container runtime, the same for cwltool and Toil (Docker
# is their default).
CONTAINER_OPTIONS = {"none": ["--no-container"], "docker": [], "podman": ["--podman"],
                     "singularity": ["--singularity"]}

# Terminal colours, which cwltool writes into its log even when it is a file.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# cwltool logs each job's command as `[job NAME] DIR$ COMMAND ... 2> STDERR` over several lines;
# Toil's workers run cwltool, so Toil's log of a failed job holds the same lines.
_JOB_COMMAND = re.compile(r"\[job (?P<job>[^\]]+)\] \S+\$ (?:(?!\[job ).)*? 2> (?P<stderr>\S+)$",
                          re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class RunPaths:
    """The files of one run that the engine reads and writes."""

    workflow: Path          # the exported CWL
    job: Path               # its job file
    working: Path           # runtime.working: the engine's log, caches, job store
    output: Path            # where the engine writes the products (the runner then moves them into place)
    research_object: Path   # where the engine writes its CWLProv research object, with provenance on


@dataclass(frozen=True)
class JobEvent:
    """Something the engine's log says happened to one job of a workflow step."""

    step: str                  # the step's id (naming.step_id)
    event: str                 # one of EVENT_KINDS
    part: int | None = None    # for a scattered step (a split stage's parts), which job: 1, 2, ...
    time: str | None = None    # when, where the engine's log says (ISO 8601); else when it was read


@dataclass(frozen=True)
class Failure:
    """A job that failed for good, with what its engine says of it."""

    step: str
    part: int | None
    exit_status: int | None
    log: Path | None           # the job's stderr (or the engine's log of the job), where one was kept
    stderr_name: str | None    # the name the export gave its stderr file (`<stage>-<part>.err` for a part)


class Engine(ABC):
    """A CWL engine, set up for one run: `config` says how, `paths` where, `steps` are the
    workflow's step ids (see naming.py)."""

    name: ClassVar[str]

    def __init__(self, config: RunConfig, paths: RunPaths, steps: frozenset[str]) -> None:
        self.config = config
        self.paths = paths
        self.steps = steps

    @abstractmethod
    def check(self, pipeline: Pipeline) -> None:
        """Refuse, with one UserError, what would make the engine fail before any stage runs."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the exported pipeline."""

    @abstractmethod
    def scratch(self) -> list[Path]:
        """Folders of one run that a successful run no longer needs."""

    def reusable(self) -> list[Path]:
        """Folders of earlier runs that --resume reuses; a run without --resume starts without them."""
        return []

    @abstractmethod
    def resuming(self) -> str:
        """What --resume does with this engine, for the person running it."""

    # (event, pattern): a line of the engine's log matching `pattern` reports `event` of the job
    # named by the pattern's group `job`, at the time in its group `time` if it has one.
    EVENT_PATTERNS: ClassVar[tuple[tuple[str, re.Pattern[str]], ...]]

    def read_event(self, line: str) -> JobEvent | None:
        """The job event a line of the engine's log reports, if it reports one."""
        line = plain(line)
        for event, pattern in self.EVENT_PATTERNS:
            match = pattern.search(line)
            if match:
                step, part = self.job(match["job"])
                return JobEvent(step, event, part, self.event_time(match.groupdict().get("time")))
        return None

    def event_time(self, logged: str | None) -> str | None:
        """An event's time in ISO 8601, from the time its log line gives (None: it gives none)."""
        return logged

    @abstractmethod
    def job(self, name: str) -> tuple[str, int | None]:
        """The step and part number of the job its engine's log names `name`."""

    @abstractmethod
    def exit_statuses(self, log: str) -> dict[str, int]:
        """The last exit status the log gives each job that exited with one, by the log's name for it."""

    @abstractmethod
    def kept_log(self, step: str, part: int | None, stderr: Path | None) -> Path | None:
        """The log of a failed job that the engine kept; `stderr` is where the job's command wrote it."""

    def failures(self, log: str) -> list[Failure]:
        """The jobs the engine's whole log reports as failed for good, in the order they failed."""
        log = plain(log)
        exits = {self.job(name): status for name, status in self.exit_statuses(log).items()}
        stderr = {self.job(name): path for name, path in job_stderr_files(log).items()}
        failed = dict.fromkeys((event.step, event.part) for event in map(self.read_event, log.splitlines())
                               if event and event.event == "failed")
        return [Failure(step, part, exits.get((step, part)), self.kept_log(step, part, stderr.get((step, part))),
                        stderr[(step, part)].name if (step, part) in stderr else None)
                for step, part in failed]

    def complete(self, own: list[str]) -> list[str]:
        """The whole command: the engine's own part, the container runtime's options, the user's
        options (after `--` on descpipe's command line), the workflow and its job file.

        A user's option that descpipe sets itself is refused (one UserError): the engine would then
        write where descpipe does not look, or keep what descpipe removes.
        """
        own_names = {token.split("=", 1)[0] for token in own if token.startswith("--")}
        for option in self.config.engine_options:
            if option.split("=", 1)[0] in own_names:
                raise UserError(f"{option.split('=', 1)[0]} is an option descpipe gives {self.name} itself: remove "
                                "it from the engine options after --")
        return [*own, *CONTAINER_OPTIONS[self.config.container], *self.config.engine_options,
                str(self.paths.workflow), str(self.paths.job)]


def plain(text: str) -> str:
    """Log text without terminal colours."""
    return _COLOUR.sub("", text)


def job_stderr_files(log: str) -> dict[str, Path]:
    """The stderr file of each job whose command the log shows, by the name the log gives the job."""
    return {match["job"]: Path(match["stderr"]) for match in _JOB_COMMAND.finditer(plain(log))}
