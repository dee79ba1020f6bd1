"""Run a pipeline: export it into the working directory, then hand it to a CWL engine.

The engine does the scheduling, staging and container work; this module only keeps its log,
puts the products and per-stage logs where the pipeline file says, and on failure names the
stages that failed with the end of their logs.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from .build import read_pins
from .containers import ENGINES as CONTAINER_ENGINES
from .containers import engine_environment
from .cwl import SEPARATOR, Pin, write_export
from .engines import ENGINES, Engine, RunSettings
from .errors import UserError
from .pipeline import Pipeline
from .provenance import CRATE, FOLDER, record, write_crate, write_record

LOG_TAIL_LINES = 20
POLL_SECONDS = 0.5   # how often the engine log is read for progress
# Where, inside runtime.output, the engine writes: products are renamed into place only once the
# whole run has succeeded, so runtime.output never holds a file cut short or a mix of two runs.
INCOMING = ".incoming"


def run_pipeline(pipeline: Pipeline, engine_name: Optional[str] = None, container: str = "none",
                 extra: tuple[str, ...] = (), say: Callable[[str], None] = print,
                 options: Optional[dict[str, Any]] = None, crate: bool = False) -> int:
    """Export and run `pipeline`; return the engine's exit status.

    `options` are the command line's runtime settings (`batch-system`, `retries`, `partition`,
    `time`, `sbatch-args`, `restart`, `resume`), which win over the pipeline file's runtime section;
    the engine is `engine_name`, else runtime.engine, else cwltool. Products land in the pipeline's
    output directory, each stage's stdout and stderr in `<output>/logs/<stage>.out|.err`, the
    engine's own log in `<working>/<engine>.log` and the progress lines in `<working>/progress.log`.
    The run record goes to `<output>/provenance/` (`<working>/provenance/` after a failure), with
    a Workflow Run RO-Crate in its `crate/` when `crate` is set.
    """
    chosen = {**pipeline.run_options, **{k: v for k, v in (options or {}).items() if v is not None}}
    engine = ENGINES[engine_name or chosen.get("engine", "cwltool")]
    incoming = pipeline.output / INCOMING
    research_object = pipeline.working / "cwlprov"
    settings = RunSettings(working=pipeline.working, output=incoming, container=container,
                           extra=tuple(extra), provenance=research_object if crate else None,
                           **{key.replace("-", "_"): value for key, value in chosen.items() if key != "engine"})
    cwl_path = settings.working / f"{pipeline.name}.cwl"
    job_path = settings.working / f"{pipeline.name}.job.yml"
    pins = image_pins(pipeline, container)
    write_export(pipeline, cwl_path, job_path, pins=pins)
    engine.prepare(pipeline, settings, cwl_path, job_path)
    if not (settings.restart or settings.resume):
        for leftover in [*engine.scratch(settings), *engine.reusable(settings)]:
            shutil.rmtree(leftover, ignore_errors=True)
    # What a killed run left half-done; the engine refuses a research object folder that exists.
    for leftover in (incoming, research_object):
        shutil.rmtree(leftover, ignore_errors=True)
    for folder in engine.scratch(settings):   # cwltool makes its research object's temporary folder there
        folder.mkdir(parents=True, exist_ok=True)
    command = engine.command(cwl_path, job_path, settings)
    log_path = settings.working / f"{engine.name}.log"
    logs = pipeline.output / "logs"
    with open(settings.working / "progress.log", "w", encoding="utf-8") as progress_log:
        def report(line: str) -> None:
            say(line)
            progress_log.write(line + "\n")
            progress_log.flush()

        report(f"descpipe: running {len(pipeline.stages)} stages of {pipeline.name} with {engine.name} "
               f"(container: {container}); engine log: {log_path}; stage logs will be in {logs}")
        if settings.resume:
            report(f"descpipe: resuming: {engine.resuming(settings)}")
        started = time.monotonic()
        run = {"engine": engine.name, "container": container, "resume": settings.resume,
               "command": command, "started": _now()}
        events: dict[str, dict[str, str]] = {}
        result = _run_and_follow(engine, command, log_path, report,
                                 engine_environment(container, settings.working), events)
        elapsed = time.monotonic() - started
        run.update(finished=_now(), exit_status=result.returncode,
                   status="success" if result.returncode == 0 else "failed")
        copies = [cwl_path, job_path, pipeline.file]
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        exits = engine.exit_statuses(log_text)
        if result.returncode == 0:
            products = _collect_outputs(json.loads(result.stdout), incoming, pipeline.output)
            shutil.rmtree(incoming, ignore_errors=True)
            for leftover in engine.scratch(settings):
                shutil.rmtree(leftover, ignore_errors=True)
            folder = pipeline.output / FOLDER
            if crate:
                run["crate"] = CRATE
            record_path = write_record(folder, record(pipeline, run, events, exits, pins, products), copies)
            if crate:
                write_crate(research_object, folder / CRATE)
            report(f"descpipe: {pipeline.name} finished in {elapsed:.1f} s; products in {pipeline.output}, "
                   f"stage logs in {logs}, run record in {record_path}")
            return 0
        # The products of an earlier run stay as they were; finished stages' outputs stay in the
        # engine's cache (or job store) for --resume.
        shutil.rmtree(incoming, ignore_errors=True)
        record_path = write_record(pipeline.working / FOLDER, record(pipeline, run, events, exits, pins, {}), copies)
        report(f"descpipe: {pipeline.name} failed after {elapsed:.1f} s "
               f"({engine.name} exit status {result.returncode}); nothing was put in {pipeline.output}; "
               f"run record in {record_path}")
        failed = engine.failed_stages(log_text)
        for stage in failed:
            stage_log = engine.stage_log(stage, settings)
            report(f"descpipe: stage {stage!r} failed; the end of its log ({stage_log or 'none was kept'}):")
            if stage_log:
                _say_tail(stage_log.read_text(encoding="utf-8", errors="replace"), report)
        if not failed:
            report("descpipe: the end of the engine log:")
            _say_tail(log_text, report)
        return result.returncode


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _run_and_follow(engine: Engine, command: list[str], log_path: Path, report: Callable[[str], None],
                    env: Optional[dict[str, str]], events: dict[str, dict[str, str]]) -> subprocess.CompletedProcess:
    """Run the engine with its log in `log_path`, reporting stages as the log says they start and end,
    and keeping the time of each stage's events in `events` (stage -> event -> time)."""
    started = time.monotonic()
    stage_started: dict[str, float] = {}

    def follow(line: str) -> None:
        event = engine.progress(line)
        if event is None:
            return
        stage, what = event
        events.setdefault(stage, {})[what] = _now()
        now = time.monotonic()
        if what == "started":
            stage_started[stage] = now
        took = f" after {now - stage_started[stage]:.1f} s" if what != "started" and stage in stage_started else ""
        report(f"descpipe: [{engine.name} {now - started:6.1f} s] stage {stage} {what}{took}")

    with open(log_path, "w", encoding="utf-8") as log, open(log_path, encoding="utf-8", errors="replace") as reader, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=log, text=True, env=env)
        partial = ""
        while True:
            finished = process.poll() is not None
            # Only whole lines: the engine may be half-way through writing one.
            *lines, partial = (partial + reader.read()).split("\n")
            for line in lines:
                follow(line)
            if finished:
                break
            # Wakes as soon as the engine exits, rather than sleeping out the interval.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=POLL_SECONDS)
        stdout.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, stdout.read(), None)


def image_pins(pipeline: Pipeline, container: str) -> Optional[dict[str, Pin]]:
    """The image ids a run in `container` must use, checked to exist; None with no container.

    Singularity runs convert the images Docker built (see `descpipe build --singularity`).
    """
    if container == "none":
        return None
    engine_name = "docker" if container == "singularity" else container
    engine = CONTAINER_ENGINES[engine_name]
    engine.check_running()
    pins = read_pins(pipeline, engine_name) or {}
    build = f"run `descpipe build {pipeline.file} --engine {engine_name}`"
    for stage in pipeline.stages:
        if stage.name not in pins:
            raise UserError(f"stage {stage.name!r} has no image built with {engine_name}: {build}")
        if engine.image_id(pins[stage.name].id) is None:
            raise UserError(f"stage {stage.name!r}: image {stage.image} ({pins[stage.name].id[:19]}) is no longer "
                            f"in {engine_name}: {build}")
    return pins


def _say_tail(text: str, say: Callable[[str], None]) -> None:
    for line in text.splitlines()[-LOG_TAIL_LINES:]:
        say(f"    {line}")


def _collect_outputs(outputs: dict, incoming: Path, output: Path) -> dict[Path, Optional[str]]:
    """Rename the engine's outputs from `incoming` into `output` (stage stdout and stderr into its
    logs/ folder); return their new paths, each with the checksum the engine gave it (if any).
    Renames within one folder tree: a reader sees each file whole or not at all."""
    moved = {}
    for key, value in outputs.items():
        is_log = key.endswith((f"{SEPARATOR}stdout", f"{SEPARATOR}stderr"))
        for file in _files(value):
            source = Path(file["path"])
            target = (output / "logs" if is_log else output) / source.relative_to(incoming.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
            moved[target] = file.get("checksum")
    return moved


def _files(value: Any) -> list[dict]:
    """The CWL File objects in an output value (a File, null, or arrays of them)."""
    if isinstance(value, list):
        return [file for item in value for file in _files(item)]
    return [value] if isinstance(value, dict) and value.get("class") == "File" else []
