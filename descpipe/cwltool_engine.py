"""cwltool, the CWL reference runner, as a descpipe engine: it runs every stage on this machine."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .engine import Engine, plain
from .naming import parse_step
from .pipeline import Pipeline

# A job is named after its step; the second and later jobs of a scattered step get `_2`, `_3`...
_JOB = r"\[job (?P<job>[^\]]+)\] "
_EXIT = re.compile(r"\[job ([^\]]+)\] exited with status: (\d+)")


class Cwltool(Engine):
    """The CWL reference runner, on this machine."""

    name = "cwltool"
    EVENT_PATTERNS = (("started", re.compile(_JOB + r"\S+\$ ")),   # the job's command line
                      ("reused", re.compile(_JOB + "Using cached output in ")),
                      ("finished", re.compile(_JOB + "completed success")),
                      ("failed", re.compile(_JOB + "completed permanentFail")))

    def check(self, pipeline: Pipeline) -> None:
        """Nothing to check: the run configuration has refused what cwltool does not do."""

    def command(self) -> list[str]:
        """The cwltool command line that runs the exported pipeline."""
        working = self.paths.working.resolve()
        # Not `python -m cwltool`: its __main__ drops the exit status, so a failed run would exit 0.
        # rdflib writes CWLProv's JSON-LD with orjson when it can import it, and orjson refuses the
        # float subclass that parameter defaults load as: every --provenance run of a stage with a
        # float parameter would fail. Without orjson, rdflib uses json.
        command = [sys.executable, "-c",
                   "import sys; sys.modules['orjson'] = None; from cwltool.main import run; sys.exit(run())",
                   "--outdir", str(self.paths.output.resolve()),
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
                   "--cachedir", str(self.cache().resolve())]
        if self.config.provenance:
            command += ["--provenance", str(self.paths.research_object.resolve())]
        return self.complete(command)

    def scratch(self) -> list[Path]:
        """The jobs' temporary folders."""
        return [self.paths.working / "tmp"]

    def cache(self) -> Path:
        """cwltool's job cache: each job's outputs under a hash of its command line, input files'
        checksums, code, image and requirements."""
        return self.paths.working / "cache"

    def reusable(self) -> list[Path]:
        """The job cache, which --resume reuses."""
        return [self.cache()]

    def resuming(self) -> str:
        """What --resume does with cwltool."""
        return (f"stages whose code, inputs, parameters, config and image are unchanged reuse their "
                f"outputs from {self.cache()}; the others, and everything downstream, run")

    def exit_statuses(self, log: str) -> dict[str, int]:
        """cwltool logs the exit status of jobs that exit with one other than 0."""
        return {job: int(status) for job, status in _EXIT.findall(plain(log))}

    def kept_log(self, step: str, part: int | None, stderr: Path | None) -> Path | None:
        """The stderr file in the job's folder of the cache, which cwltool keeps."""
        return stderr if stderr and stderr.is_file() else None

    def job(self, name: str) -> tuple[str, int | None]:
        """The step and part number of a cwltool job name: `treecorr.part_3` is the third job of step
        `treecorr.part`, and `treecorr.part` its first; a step named `x_2` is taken as itself."""
        if name in self.steps:
            return name, 1 if parse_step(name).mode == "part" else None
        step, _, number = name.rpartition("_")
        if step in self.steps and number.isdigit():
            return step, int(number)
        return name, None
