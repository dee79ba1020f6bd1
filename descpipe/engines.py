"""CWL engines descpipe can hand an exported pipeline to, each a small adapter.

An engine turns (exported CWL, job file, run settings) into a command line, and reads its own
log back to say which stages failed and where their logs are. Containers and batch systems
are options of the engine's command, chosen by `RunSettings`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import UserError

if TYPE_CHECKING:
    from .pipeline import Pipeline

# Container runtime -> the cwltool (and Toil) option that selects it; Docker is their default.
CONTAINER_OPTIONS = {"none": ["--no-container"], "docker": [], "podman": ["--podman"],
                     "singularity": ["--singularity"]}
CONTAINERS = tuple(CONTAINER_OPTIONS)


@dataclass(frozen=True)
class RunSettings:
    """How to run: the engine, the container runtime and the folders of this run."""

    working: Path                 # exported files, engine log, job directories
    output: Path                  # where the engine writes the products (the runner moves them into place)
    container: str = "none"
    extra: tuple[str, ...] = field(default_factory=tuple)   # engine options passed as they are
    # Toil's settings (the pipeline file's runtime section or the command line); None: Toil's default.
    batch_system: Optional[str] = None
    retries: Optional[int] = None
    partition: Optional[str] = None
    time: Optional[str] = None
    sbatch_args: Optional[str] = None
    restart: bool = False
    resume: bool = False          # reuse what an earlier run of this pipeline finished
    provenance: Optional[Path] = None   # where the engine writes its CWLProv research object

    def toil_settings(self) -> dict[str, object]:
        """The Toil-only settings that are set, by their pipeline-file name."""
        values = {"batch-system": self.batch_system, "retries": self.retries, "partition": self.partition,
                  "time": self.time, "sbatch-args": self.sbatch_args, "restart": self.restart or None}
        return {name: value for name, value in values.items() if value is not None}


class Engine:
    """What every engine adapter shares: reading progress from its log."""

    name = ""
    # (event, pattern): a log line matching `pattern` means that stage group(1) had `event`.
    PROGRESS: tuple[tuple[str, str], ...] = ()
    # A log line saying that a stage (group "stage") exited with a status (group "status");
    # engines log only failures.
    EXIT = r"(?!)"

    def progress(self, line: str) -> Optional[tuple[str, str]]:
        """(stage, "started" | "reused" | "finished" | "failed") when a log line reports one, else None."""
        for event, pattern in self.PROGRESS:
            match = re.search(pattern, line)
            if match:
                return match.group(1), event
        return None

    def reusable(self, settings: RunSettings) -> list[Path]:
        """Folders of earlier runs that --resume reuses; a run without --resume starts without them."""
        return []

    def exit_statuses(self, log: str) -> dict[str, int]:
        """The exit status of each stage that failed, by the engine log (the last, after retries)."""
        return {match["stage"]: int(match["status"]) for match in re.finditer(self.EXIT, log)}


class Cwltool(Engine):
    """The CWL reference runner, on this machine."""

    name = "cwltool"
    PROGRESS = (("started", r"\[step ([^\]]+)\] start$"),
                ("reused", r"\[job ([^\]]+?)(?:_\d+)?\] Using cached output in "),
                ("finished", r"\[step ([^\]]+)\] completed success"),
                ("failed", r"\[step ([^\]]+)\] completed permanentFail"))
    EXIT = r"\[job (?P<stage>[^\]]+?)(?:_\d+)?\] exited with status: (?P<status>\d+)"

    def prepare(self, pipeline: "Pipeline", settings: RunSettings, cwl_path: Path, job_path: Path) -> None:
        """Refuse settings that only Toil understands, rather than ignore them."""
        toil_only = settings.toil_settings()
        if toil_only:
            names = ", ".join(toil_only)
            raise UserError(f"{names} {'is a Toil setting' if len(toil_only) == 1 else 'are Toil settings'}: "
                            "run with --engine toil (or set runtime.engine: toil)", pipeline.file)

    def command(self, cwl_path: Path, job_path: Path, settings: RunSettings) -> list[str]:
        """The cwltool command line that runs the exported pipeline."""
        working = settings.working.resolve()
        # Not `python -m cwltool`: its __main__ drops the exit status, so a failed run would exit 0.
        # rdflib writes CWLProv's JSON-LD with orjson when it can import it, and orjson refuses the
        # float subclass that parameter defaults load as: every --provenance run of a stage with a
        # float parameter would fail. Without orjson, rdflib uses json.
        command = [sys.executable, "-c",
                   "import sys; sys.modules['orjson'] = None; from cwltool.main import run; sys.exit(run())",
                   "--outdir", str(settings.output.resolve()),
                   # Keep every job's directory under `working`, not /tmp, and keep them after a
                   # failure, so the failed stage's log can be shown. (Each stage writes its
                   # outputs and logs in its folder of the job cache below.)
                   "--tmpdir-prefix", str(working / "tmp") + "/",
                   "--leave-tmpdir",
                   # Formats are exact EDAM IRIs, which cwltool checks without the ontology: do not
                   # fetch and parse EDAM (several MB of OWL) on every run, nor hang where nodes
                   # have no network.
                   "--skip-schemas",
                   # MPI stages use cwltool's MPIRequirement extension.
                   "--enable-ext",
                   # Every run fills the cache, so that a killed or failed run can be resumed;
                   # a run without --resume starts with an empty one (see `reusable`).
                   "--cachedir", str(self.cache(settings).resolve())]
        if settings.provenance:
            command += ["--provenance", str(settings.provenance.resolve())]
        command += container_options(settings.container)
        return [*command, *settings.extra, str(cwl_path), str(job_path)]

    def scratch(self, settings: RunSettings) -> list[Path]:
        """Folders of one run that a successful run no longer needs."""
        return [settings.working / "tmp"]

    @staticmethod
    def cache(settings: RunSettings) -> Path:
        """cwltool's job cache: each stage's outputs under a hash of its command line, input
        files' checksums, code, image and requirements."""
        return settings.working / "cache"

    def reusable(self, settings: RunSettings) -> list[Path]:
        """The job cache, which --resume reuses."""
        return [self.cache(settings)]

    def resuming(self, settings: RunSettings) -> str:
        """What --resume does with this engine, for the person running it."""
        return (f"stages whose code, inputs, parameters, config and image are unchanged reuse their "
                f"outputs from {self.cache(settings)}; the others, and everything downstream, run")

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
            found = sorted(self.cache(settings).glob(f"*/{stage}.{stream}"), key=lambda p: p.stat().st_mtime)
            if found:
                return found[-1]
        return None


# Toil names the job of workflow step <stage> `main.<stage>.<tool id>`; stage names hold no dot.
TOIL_JOB = r"'CWLJob' main\.([^.\s']+)\."


class Toil(Engine):
    """Toil's CWL runner, on this machine (`single_machine`) or through a batch system such as SLURM.

    Toil schedules each stage as its own batch job sized by the stage's resources, keeps its state
    in a job store under the working directory so that `--restart` resumes a failed run, and
    retries failed jobs.
    """

    name = "toil"
    PROGRESS = (("started", r"Issued job " + TOIL_JOB),
                ("finished", r"CWL step complete: main\.([^.\s']+)\."),
                ("failed", r"Job failed with exit value \d+: " + TOIL_JOB))
    EXIT = r"Job failed with exit value (?P<status>\d+): 'CWLJob' main\.(?P<stage>[^.\s']+)\."

    @staticmethod
    def job_store(settings: RunSettings) -> Path:
        """Where Toil keeps the state of a run, so that a failed run can be restarted."""
        return settings.working / "toil-jobstore"

    def restarting(self, settings: RunSettings) -> bool:
        """Whether this run restarts Toil's job store: --restart, or --resume where a run left one."""
        return settings.restart or (settings.resume and self.job_store(settings).exists())

    def resuming(self, settings: RunSettings) -> str:
        """What --resume does with this engine, for the person running it."""
        if self.restarting(settings):
            return (f"Toil restarts the unfinished run in {self.job_store(settings)}: stages that finished "
                    "are not run again")
        return (f"there is no Toil job store at {self.job_store(settings)} (the last run finished, or none "
                "ran), so every stage runs: Toil keeps no outputs between finished runs")

    def prepare(self, pipeline: "Pipeline", settings: RunSettings, cwl_path: Path, job_path: Path) -> None:
        """Check the batch system, the job store and the stages' resources before Toil starts.

        Each problem is one UserError: an unknown batch system, SLURM not answering, a job store
        that belongs to another pipeline (or to an earlier version of this one), and a stage
        asking for more than one node of the batch system has.
        """
        if settings.provenance:
            # Toil's workers write CWLProv too, and fail on float parameters (see Cwltool.command).
            raise UserError("--provenance needs cwltool: run with --engine cwltool (every run, Toil's too, "
                            "writes its run record)", pipeline.file)
        batch_system = settings.batch_system or "single_machine"
        check_batch_system(batch_system, pipeline.file)
        self._check_job_store(pipeline, settings, cwl_path, job_path)
        _check_resources(pipeline, _node_capacity(batch_system, settings.partition, pipeline.file))

    def _check_job_store(self, pipeline: "Pipeline", settings: RunSettings, cwl_path: Path,
                         job_path: Path) -> None:
        job_store = self.job_store(settings)
        # Which pipeline (and which export of it) the job store belongs to, written beside it
        # because Toil creates the job store folder itself.
        owner_file = job_store.with_name(job_store.name + ".owner")
        digest = hashlib.sha256(cwl_path.read_bytes() + job_path.read_bytes()).hexdigest()
        owner = {"pipeline": str(pipeline.file.resolve()), "export": digest}
        if job_store.exists():
            try:
                recorded = json.loads(owner_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                recorded = {"pipeline": "an unknown pipeline"}
            if recorded.get("pipeline") != owner["pipeline"]:
                raise UserError(f"the Toil job store {job_store} was left by a run of {recorded.get('pipeline')}: "
                                "give this pipeline its own runtime.working, or delete that folder", pipeline.file)
            if not self.restarting(settings):
                raise UserError(f"the Toil job store {job_store} holds an unfinished run of this pipeline: "
                                "add --restart (or --resume) to finish it, or delete that folder to start again", pipeline.file)
            if recorded.get("export") != owner["export"]:
                raise UserError(f"the Toil job store {job_store} holds a run of an earlier version of this "
                                "pipeline, which --restart would finish as it was: delete that folder to "
                                "start again", pipeline.file)
        elif settings.restart:
            raise UserError(f"nothing to restart: there is no Toil job store at {job_store}; "
                            "run without --restart", pipeline.file)
        else:
            job_store.parent.mkdir(parents=True, exist_ok=True)
            owner_file.write_text(json.dumps(owner) + "\n", encoding="utf-8")

    def command(self, cwl_path: Path, job_path: Path, settings: RunSettings) -> list[str]:
        """The toil-cwl-runner command line that runs the exported pipeline."""
        working = settings.working.resolve()
        command = [sys.executable, "-c", "import sys; from toil.cwl.cwltoil import main; sys.exit(main())",
                   "--jobStore", str(self.job_store(settings).resolve()),
                   "--batchSystem", settings.batch_system or "single_machine",
                   "--outdir", str(settings.output.resolve()),
                   # Logs of failed jobs (the stage's stderr among them), for the failure report.
                   "--writeLogs", str(working / "toil-logs"),
                   # The batch system's own job logs, under the run (on a shared file system)
                   # rather than in the leader's /tmp.
                   "--batchLogsDir", str(working / "toil-batch"),
                   "--enable-ext",
                   # Images come from `descpipe build` or the site's cache; nothing is pulled offline.
                   "--no-prepull"]
        if self.restarting(settings):
            command.append("--restart")
        for option, value in (("--retryCount", settings.retries), ("--slurmPartition", settings.partition),
                              ("--slurmTime", settings.time), ("--slurmArgs", settings.sbatch_args)):
            if value is not None:
                command += [option, str(value)]
        command += container_options(settings.container)
        return [*command, *settings.extra, str(cwl_path), str(job_path)]

    def scratch(self, settings: RunSettings) -> list[Path]:
        """Folders of one run that a successful run no longer needs (Toil removes its job store)."""
        return [settings.working / "toil-logs", settings.working / "toil-batch"]

    def failed_stages(self, log: str) -> list[str]:
        """Stages whose jobs failed for good (after their retries), in the order they failed."""
        failed: list[str] = []
        for match in re.finditer(r"Job " + TOIL_JOB + r"\S* \S+ v\d+ is completely failed", log):
            if match.group(1) not in failed:
                failed.append(match.group(1))
        return failed

    def stage_log(self, stage: str, settings: RunSettings) -> Optional[Path]:
        """The stderr (else stdout, else Toil's worker log) of the newest failed run of `stage`."""
        logs = settings.working / "toil-logs"
        for pattern in (f"main.{stage}.*.stderr_*.log", f"main.{stage}.*.stdout_*.log",
                        f"failed_CWLJob_main.{stage}.*.log"):
            found = sorted(logs.glob(pattern), key=lambda p: p.stat().st_mtime)
            if found:
                return found[-1]
        return None


def batch_systems() -> list[str]:
    """The batch systems this Toil supports."""
    from toil.batchSystems.registry import get_batch_systems

    return list(get_batch_systems())


def check_batch_system(name: str, file: Optional[Path] = None, line: Optional[int] = None) -> None:
    """UserError unless Toil knows the batch system `name`."""
    known = batch_systems()
    if name not in known:
        raise UserError(f"unknown batch system {name!r} (Toil knows: {', '.join(known)})", file, line)


def check_slurm_time(value: str, file: Optional[Path] = None, line: Optional[int] = None) -> None:
    """UserError unless `value` is a time limit SLURM reads, such as "2:00:00" or "1-12:00:00"."""
    from toil.batchSystems.slurm import parse_slurm_time

    try:
        parse_slurm_time(value)
    except ValueError:
        raise UserError(f"time limit {value!r} is not one SLURM reads: write [DAYS-]HOURS:MINUTES:SECONDS, "
                        "such as 2:00:00", file, line) from None


@dataclass(frozen=True)
class NodeCapacity:
    """The most one job can get: cores, memory and minutes (None: no limit) of the largest node."""

    where: str
    cores: int
    memory_mb: int
    minutes: Optional[float]


def _node_capacity(batch_system: str, partition: Optional[str], file: Path) -> Optional[NodeCapacity]:
    """What one job can get from `batch_system`; None for batch systems descpipe cannot ask."""
    if batch_system == "single_machine":
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        return NodeCapacity("this machine", os.cpu_count() or 1, memory_mb, None)
    if batch_system != "slurm":
        return None
    from toil.batchSystems.slurm import parse_slurm_time

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
    chosen = partition or default
    mine = [row for row in rows if row[0].rstrip("*") == chosen]
    if not mine:
        names = sorted({row[0].rstrip("*") for row in rows})
        raise UserError(f"SLURM has no partition {chosen!r} (partitions: {', '.join(names) or 'none'}): "
                        "set runtime.partition or --partition to one of them", file)
    limits = [None if row[3] in ("infinite", "UNLIMITED") else parse_slurm_time(row[3]) / 60 for row in mine]
    return NodeCapacity(f"a node of SLURM partition {chosen!r}",
                        max(int(row[1].rstrip("+")) for row in mine),
                        max(int(row[2].rstrip("+")) for row in mine),
                        None if None in limits else max(limits))


def _check_resources(pipeline: "Pipeline", capacity: Optional[NodeCapacity]) -> None:
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


ENGINES = {"cwltool": Cwltool(), "toil": Toil()}


def container_options(container: str) -> list[str]:
    """The engine options that select a container runtime."""
    if container not in CONTAINER_OPTIONS:
        raise UserError(f"unknown container runtime {container!r} (known: {', '.join(CONTAINERS)})")
    return CONTAINER_OPTIONS[container]
