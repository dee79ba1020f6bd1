"""Toil's CWL runner as a descpipe engine: on this machine (`single_machine`) or through a batch
system such as SLURM, each stage's job sized by the stage's resources."""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from .batch_systems import check_resources, node_capacity
from .engine import Engine, plain
from .errors import UserError
from .naming import SEPARATOR, WORKFLOW_ID
from .pipeline import Pipeline

# How Toil's leader names the job of a CWL step: `'CWLJob' main.<step>.<tool id>`, or
# `'CWLJob' main.<index>.<tool id>` for the index-th (from 0) job of a scattered step.
_JOB = rf"'CWLJob' (?P<job>{re.escape(WORKFLOW_ID + SEPARATOR)}\S+)"
_TIME = r"^\[(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4})\] "
_EXIT = re.compile(r"Job failed with exit value (\d+): 'CWLJob' (\S+)")


class Toil(Engine):
    """Toil's CWL runner. It schedules each stage as its own batch job, keeps its state in a job
    store under the working directory so that `--restart` resumes a failed run, and retries
    failed jobs."""

    name = "toil"
    EVENT_PATTERNS = (("started", re.compile(_TIME + ".*Issued job " + _JOB)),
                      ("finished", re.compile(_TIME + rf".*CWL step complete: (?P<job>{re.escape(WORKFLOW_ID + SEPARATOR)}\S+)")),
                      # A failed attempt that Toil will try again (its remaining tries are more than 0).
                      ("retrying", re.compile(_TIME + ".*reducing the remaining try count of job " + _JOB + ".* to [1-9]")),
                      ("failed", re.compile(_TIME + ".*Job " + _JOB + r" \S+ v\d+ is completely failed")))

    def job_store(self) -> Path:
        """Where Toil keeps the state of a run, so that a failed run can be restarted."""
        return self.paths.working / "toil-jobstore"

    def restarting(self) -> bool:
        """Whether this run restarts Toil's job store: --restart, or --resume where a run left one."""
        return self.config.restart or (self.config.resume and self.job_store().exists())

    def resuming(self) -> str:
        """What --resume does with Toil."""
        if self.restarting():
            return (f"Toil restarts the unfinished run in {self.job_store()}: stages that finished "
                    "are not run again")
        return (f"there is no Toil job store at {self.job_store()} (the last run finished, or none "
                "ran), so every stage runs: Toil keeps no outputs between finished runs")

    def check(self, pipeline: Pipeline) -> None:
        """The job store, and the stages' resources against what one job of the batch system can get.

        Each problem is one UserError: SLURM not answering, a job store that belongs to another
        pipeline (or to an earlier version of this one), a stage asking for more than a node has.
        """
        self._check_job_store(pipeline)
        check_resources(pipeline, node_capacity(self.config.batch_system, pipeline.file))

    def _check_job_store(self, pipeline: Pipeline) -> None:
        job_store = self.job_store()
        # Which pipeline (and which export of it) the job store belongs to, written beside it
        # because Toil creates the job store folder itself.
        owner_file = job_store.with_name(job_store.name + ".owner")
        digest = hashlib.sha256(self.paths.workflow.read_bytes() + self.paths.job.read_bytes()).hexdigest()
        owner = {"pipeline": str(pipeline.file.resolve()), "export": digest}
        if job_store.exists():
            try:
                recorded = json.loads(owner_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                recorded = {"pipeline": "an unknown pipeline"}
            if recorded.get("pipeline") != owner["pipeline"]:
                raise UserError(f"the Toil job store {job_store} was left by a run of {recorded.get('pipeline')}: "
                                "give this pipeline its own runtime.working, or delete that folder", pipeline.file)
            if not self.restarting():
                raise UserError(f"the Toil job store {job_store} holds an unfinished run of this pipeline: "
                                "add --restart (or --resume) to finish it, or delete that folder to start again",
                                pipeline.file)
            if recorded.get("export") != owner["export"]:
                raise UserError(f"the Toil job store {job_store} holds a run of an earlier version of this "
                                "pipeline, which --restart would finish as it was: delete that folder to "
                                "start again", pipeline.file)
        elif self.config.restart:
            raise UserError(f"nothing to restart: there is no Toil job store at {job_store}; "
                            "run without --restart", pipeline.file)
        else:
            job_store.parent.mkdir(parents=True, exist_ok=True)
            owner_file.write_text(json.dumps(owner) + "\n", encoding="utf-8")

    def command(self) -> list[str]:
        """The toil-cwl-runner command line that runs the exported pipeline."""
        working = self.paths.working.resolve()
        batch = self.config.batch_system
        command = [sys.executable, "-c", "import sys; from toil.cwl.cwltoil import main; sys.exit(main())",
                   "--jobStore", str(self.job_store().resolve()),
                   "--batchSystem", batch.name,
                   "--outdir", str(self.paths.output.resolve()),
                   # Logs of failed jobs (the stage's stderr among them), for the failure report.
                   "--writeLogs", str(working / "toil-logs"),
                   # The batch system's own job logs, under the run (on a shared file system)
                   # rather than in the leader's /tmp.
                   "--batchLogsDir", str(working / "toil-batch"),
                   "--enable-ext",
                   # Images come from `descpipe build` or the site's cache; nothing is pulled offline.
                   "--no-prepull"]
        if self.restarting():
            command.append("--restart")
        for option, value in (("--retryCount", self.config.retries), ("--slurmPartition", batch.partition),
                              ("--slurmTime", batch.time), ("--slurmArgs", batch.sbatch_args)):
            if value is not None:
                command += [option, str(value)]
        return self.complete(command)

    def scratch(self) -> list[Path]:
        """Folders of one run that a successful run no longer needs (Toil removes its job store)."""
        return [self.paths.working / "toil-logs", self.paths.working / "toil-batch"]

    def event_time(self, logged: str | None) -> str | None:
        """Toil's `2026-12-02T17:51:14+0000` as ISO 8601's `2026-12-02T17:51:14+00:00`."""
        return f"{logged[:-2]}:{logged[-2:]}" if logged else None

    def job(self, name: str) -> tuple[str, int | None]:
        """The step and part of `main.<name>`: `main.3.treecorr.part` is the fourth job of step
        `treecorr.part`; `main.split.split` is step `split` (descpipe names each tool as its step)."""
        name = name.removeprefix(WORKFLOW_ID + SEPARATOR)
        index, _, tool = name.partition(SEPARATOR)
        if index.isdigit():
            return tool, int(index) + 1
        half = (len(name) - 1) // 2
        if name[half:half + 1] == SEPARATOR and name[:half] == name[half + 1:]:
            return name[:half], None
        return name, None

    def exit_statuses(self, log: str) -> dict[str, int]:
        """Toil logs each failed attempt's exit status; the last one counts."""
        return {job: int(status) for status, job in _EXIT.findall(plain(log))}

    def kept_log(self, step: str, part: int | None, stderr: Path | None) -> Path | None:
        """The newest stderr (else stdout, else worker log) Toil's --writeLogs kept of the job."""
        logs = self.paths.working / "toil-logs"
        name = SEPARATOR.join([WORKFLOW_ID, str(part - 1) if part else step, step])
        for pattern in (f"{name}.stderr_*.log", f"{name}.stdout_*.log", f"failed_CWLJob_{name}_*.log"):
            found = sorted(logs.glob(pattern), key=lambda p: p.stat().st_mtime)
            if found:
                return found[-1]
        return None
