"""Run a pipeline: export it into the working directory, then hand it to a CWL engine.

The engine does the scheduling, staging and container work; this module only keeps its log,
puts the products and per-stage logs where the pipeline file says, and on failure names the
stages that failed with the end of their logs.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cwl import write_export
from .cwltool_engine import Cwltool
from .engine import Engine, Failure, JobEvent, RunPaths
from .folders import RECORD, RECORD_FOLDER, STAGING, check_targets, claim_working, replace_products
from .images import engine_environment, run_pins
from .naming import (
    LOG_STREAMS,
    is_log_output,
    log_file_stem,
    output_file_name,
    parse_step,
    part_of_log_file,
    stage_steps,
)
from .pipeline import Pipeline
from .processes import Interrupted, Signals, become_subreaper, engine_preexec, stop_descendants, stop_session
from .provenance import CRATE, record, stage_runs, write_crate, write_run_record
from .run_config import RunConfig
from .run_lock import RunLock, run_lock
from .snapshots import Read, forget, take_snapshot
from .toil_engine import Toil

ENGINE_CLASSES: dict[str, type[Engine]] = {"cwltool": Cwltool, "toil": Toil}
LOG_TAIL_LINES = 20
POLL_SECONDS = 0.5   # how often the engine log is read for progress
# Where, inside runtime.output, the engine writes, and the record waits: products replace the last
# run's only once the whole run has succeeded, so runtime.output never holds a file cut short or a
# mix of two runs (see folders.replace_products).
INCOMING, INCOMING_RECORD = STAGING[:2]


def run_pipeline(pipeline: Pipeline, config: RunConfig, say: Callable[[str], None] = print) -> int:
    """Export and run `pipeline` as `config` says; return the engine's exit status.

    Products land in the pipeline's output directory, each stage's stdout and stderr in
    `<output>/logs/<stage>.out|.err`, the engine's own log in `<working>/<engine>.log` and the
    progress lines in `<working>/progress.log`. The run record goes to `<output>/provenance/`
    (`<working>/provenance/` after a failure), with a Workflow Run RO-Crate in its `crate/` when
    `config.provenance` is set.

    Only one run at a time uses a working directory. SIGINT, SIGTERM or SIGHUP stop the engine and
    every stage; the run then returns 128 + the signal's number, with nothing put in the output
    directory and the engine's cache (or job store) kept for --resume.
    """
    started = time.monotonic()
    signals = Signals()
    locked = False
    with signals:
        try:
            claim_working(pipeline)   # before the lock file goes into it
            # First: a run refused here must not have cleaned the other run's folders.
            with run_lock(pipeline.working, pipeline.file) as lock:
                locked = True
                if lock.stale:
                    _take_over(lock, pipeline.working, say)
                try:
                    return _run_pipeline(pipeline, config, say, signals, lock)
                except Interrupted as interrupted:
                    shutil.rmtree(pipeline.output / INCOMING, ignore_errors=True)
                    signum = interrupted.signum
        except Interrupted as interrupted:   # before the lock was ours: nothing of this run to tidy
            signum = interrupted.signum
    line = (f"descpipe: {pipeline.name} stopped by {signal.Signals(signum).name} after "
            f"{time.monotonic() - started:.1f} s; the engine and every stage were stopped; nothing was put in "
            f"{pipeline.output}; `descpipe run --resume` reuses what finished")
    say(line)
    if not locked:   # the working folder may be another run's
        return 128 + signum
    with contextlib.suppress(OSError), open(pipeline.working / "progress.log", "a", encoding="utf-8") as log:
        log.write(line + "\n")
    return 128 + signum


def _take_over(lock: RunLock, working: Path, say: Callable[[str], None]) -> None:
    """Say whose lock this run takes over, and stop what that run's engine left running in `working`."""
    engine = (lock.stale or {}).get("engine")
    session, start = (engine.get("session"), engine.get("start")) if isinstance(engine, dict) else (None, None)
    stopped = stop_session(session, start if isinstance(start, int) else None) if isinstance(session, int) else 0
    say(f"descpipe: taking over the lock in {working} that a killed run left ({lock.describe_stale()})"
        + (f"; stopped the {stopped} processes its engine left running" if stopped else ""))


def _run_pipeline(pipeline: Pipeline, config: RunConfig, say: Callable[[str], None], signals: Signals,
                  lock: RunLock) -> int:
    incoming = pipeline.output / INCOMING
    paths = RunPaths(workflow=pipeline.working / f"{pipeline.name}.cwl",
                     job=pipeline.working / f"{pipeline.name}.job.yml",
                     working=pipeline.working, output=incoming, research_object=pipeline.working / "cwlprov")
    steps = frozenset(step for stage in pipeline.stages for step in stage_steps(stage.name, stage.split))
    engine = ENGINE_CLASSES[config.engine](config, paths, steps)
    command = engine.command()   # first: it refuses engine options that descpipe sets itself
    check_targets(pipeline, _known_targets(pipeline))
    pins = run_pins(pipeline, config.container)
    # With no container, the stages get descpipe's copies of the user's files (see snapshots.py).
    snapshot = take_snapshot(pipeline, copy=config.container == "none")
    write_export(snapshot.pipeline, paths.workflow, paths.job, pins=pins)
    engine.check(pipeline)
    if not (config.restart or config.resume):
        for leftover in [*engine.scratch(), *engine.reusable()]:
            shutil.rmtree(leftover, ignore_errors=True)
    # What a killed run left half-done; the engine refuses a research object folder that exists.
    for leftover in (incoming, pipeline.output / INCOMING_RECORD, paths.research_object):
        shutil.rmtree(leftover, ignore_errors=True)
    for folder in engine.scratch():   # cwltool makes its research object's temporary folder there
        folder.mkdir(parents=True, exist_ok=True)
    log_path = pipeline.working / f"{engine.name}.log"
    logs = pipeline.output / "logs"
    with open(pipeline.working / "progress.log", "w", encoding="utf-8") as progress_log:
        def report(line: str) -> None:
            say(line)
            progress_log.write(line + "\n")
            progress_log.flush()

        report(f"descpipe: running {len(pipeline.stages)} stages of {pipeline.name} with {engine.name} "
               f"(container: {config.container}); engine log: {log_path}; stage logs will be in {logs}")
        if config.resume:
            report(f"descpipe: resuming: {engine.resuming()}")
        started = time.monotonic()
        run: dict[str, Any] = {"engine": engine.name, "container": config.container, "resume": config.resume,
                               "settings": {key: {"value": value, "from": config.origins[key]}
                                            for key, value in config.given.items()},
                               "command": command, "started": _now()}
        events: list[JobEvent] = []
        result = _run_and_follow(engine, command, log_path, report,
                                 engine_environment(config.container, pipeline.working), events, lock)
        elapsed = time.monotonic() - started
        changed = snapshot.changed()
        if changed:
            # Made from content other than what was checked and recorded: neither products nor
            # cache entries to keep.
            forget(changed)
            for leftover in engine.reusable():
                shutil.rmtree(leftover, ignore_errors=True)
        products = _products(result.stdout, incoming) if result.returncode == 0 else {}
        status = result.returncode or (1 if changed or products is None else 0)
        succeeded = status == 0
        run.update(finished=_now(), exit_status=status, status="success" if succeeded else "failed")
        copies = [paths.workflow, paths.job, pipeline.file]
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        failures = [] if succeeded else engine.failures(log_text)
        stages = stage_runs(pipeline, events, failures, succeeded)
        if succeeded:
            signals.check()   # a signal now still leaves runtime.output as it was
            # Once products start moving, a signal waits: the run ends complete, not half-moved.
            with signals.held():
                assert products is not None   # a run without them did not succeed
                staged_record = pipeline.output / INCOMING_RECORD
                if config.provenance:
                    run["crate"] = CRATE
                write_run_record(staged_record, record(pipeline, run, stages, pins, products, snapshot.checksums()),
                                 copies)
                if config.provenance:
                    write_crate(paths.research_object, staged_record / CRATE)
                try:
                    replace_products(pipeline, {**{target: source for target, (source, _) in products.items()},
                                                RECORD_FOLDER: staged_record})
                finally:
                    for leftover in (incoming, staged_record):
                        shutil.rmtree(leftover, ignore_errors=True)
                for leftover in engine.scratch():
                    shutil.rmtree(leftover, ignore_errors=True)
                record_path = pipeline.output / RECORD_FOLDER / RECORD
                report(f"descpipe: {pipeline.name} finished in {elapsed:.1f} s; products in {pipeline.output}, "
                       f"stage logs in {logs}, run record in {record_path}")
            return 0
        # The products of an earlier run stay as they were; finished stages' outputs stay in the
        # engine's cache (or job store) for --resume.
        shutil.rmtree(incoming, ignore_errors=True)
        record_path = write_run_record(pipeline.working / RECORD_FOLDER,
                                       record(pipeline, run, stages, pins, {}, snapshot.checksums()), copies)
        report(f"descpipe: {pipeline.name} failed after {elapsed:.1f} s "
               f"({engine.name} exit status {result.returncode}); nothing was put in {pipeline.output}; "
               f"run record in {record_path}")
        for read in changed:
            report(_changed(read, snapshot.copied))
        if products is None:
            report(f"descpipe: {engine.name} exited 0 but did not report the outputs descpipe asked it for in "
                   f"{incoming} (an engine option after -- may have changed what it prints or where it writes)")
        for failure in failures:
            report(f"descpipe: {_describe(failure)} failed; the end of its log ({failure.log or 'none was kept'}):")
            if failure.log:
                _say_tail(failure.log.read_text(encoding="utf-8", errors="replace"), report)
        if not failures and not changed and products is not None:
            report("descpipe: the end of the engine log:")
            _say_tail(log_text, report)
        return status


def _changed(read: Read, copied: bool) -> str:
    """What to say of a file that changed during the run."""
    if not copied:
        return (f"descpipe: {read.what} ({read.original}) changed while the run read it: the run failed and the "
                "engine's cache was emptied; run again once it no longer changes")
    who = f"stage {read.readers[0]!r}" if len(read.readers) == 1 else f"one of stages {', '.join(read.readers)}"
    return (f"descpipe: {who} changed {read.what}, in descpipe's copy {read.given}: your file {read.original} is "
            "unchanged; the run failed, and the engine's cache was emptied")


def _describe(failure: Failure) -> str:
    """`stage 'combine'`, or `stage 'treecorr' (part 2, 1-2)` for one part of a split stage."""
    stage = parse_step(failure.step).stage
    if failure.part is None:
        return f"stage {stage!r}"
    name = part_of_log_file(stage, Path(failure.stderr_name).stem) if failure.stderr_name else None
    return f"stage {stage!r} (part {failure.part}" + (f", {name})" if name else ")")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _run_and_follow(engine: Engine, command: list[str], log_path: Path, report: Callable[[str], None],
                    env: dict[str, str] | None, events: list[JobEvent], lock: RunLock
                    ) -> subprocess.CompletedProcess[str]:
    """Run the engine with its log in `log_path`, reporting jobs as the log says they start and end,
    and keeping each job event, with its time, in `events`; the engine's session is recorded in `lock`."""
    started = time.monotonic()
    job_started: dict[tuple[str, int | None], float] = {}

    def follow(line: str) -> None:
        event = engine.read_event(line)
        if event is None:
            return
        events.append(event if event.time else replace(event, time=_now()))
        now = time.monotonic()
        job = (event.step, event.part)
        if event.event == "started":
            job_started[job] = now
        took = f" after {now - job_started[job]:.1f} s" if event.event != "started" and job in job_started else ""
        report(f"descpipe: [{engine.name} {now - started:6.1f} s] stage {_job_label(event)} {event.event}{took}")

    with open(log_path, "w", encoding="utf-8") as log, open(log_path, encoding="utf-8", errors="replace") as reader, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        become_subreaper()
        process = None
        try:
            # Its own session: a signal or a hangup for descpipe's terminal reaches descpipe only,
            # which then stops the engine's whole group (stop_descendants). preexec_fn is safe:
            # descpipe starts no threads.
            process = subprocess.Popen(command, stdout=stdout, stderr=log, text=True, env=env,
                                       start_new_session=True, preexec_fn=engine_preexec)  # noqa: PLW1509
            lock.engine_started(process.pid)
            partial = ""
            while True:
                finished = process.poll() is not None
                # Only whole lines: the engine may be half-way through writing one.
                *lines, partial = (partial + reader.read()).split("\n")
                for line in lines:
                    follow(line)
                if finished:
                    break
                # Wakes as soon as the engine exits, rather than sleeping out the interval (and
                # a signal's Interrupted ends the wait at once).
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=POLL_SECONDS)
        finally:
            # On every way out: nothing the engine started outlives the run (a stage's forked
            # child, or everything, after a signal).
            stop_descendants(process.pid if process else None)
            if process:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=1)
        stdout.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, stdout.read(), None)


def _job_label(event: JobEvent) -> str:
    """`tomography`, or `treecorr plan` / `treecorr part 3` / `treecorr gather` for a split stage's jobs."""
    step = parse_step(event.step)
    return " ".join([step.stage, *([step.mode] if step.mode else []),
                     *([str(event.part)] if event.part is not None else [])])


def _say_tail(text: str, say: Callable[[str], None]) -> None:
    for line in text.splitlines()[-LOG_TAIL_LINES:]:
        say(f"    {line}")


def _products(printed: str, incoming: Path) -> dict[str, tuple[Path, str | None]] | None:
    """Where each output the engine printed goes in runtime.output (stage stdout and stderr into its
    logs/ folder), by path relative to it: the file in `incoming`, and the checksum the engine gave
    it. None when the engine did not print its outputs as asked, or wrote them elsewhere (an engine
    option after `--` can make it do either)."""
    try:
        outputs = json.loads(printed)
        products: dict[str, tuple[Path, str | None]] = {}
        for key, value in outputs.items():
            for file in _files(value):
                source = Path(file["path"])
                name = str(source.relative_to(incoming.resolve()))
                if not source.is_file():
                    return None
                products[f"logs/{name}" if is_log_output(key) else name] = (source, file.get("checksum"))
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    return products


def _known_targets(pipeline: Pipeline) -> list[str]:
    """The products and logs a run will put in runtime.output, as far as they are known before it
    runs (a split stage's parts are named by its plan)."""
    return [*(output_file_name(tag, stage.spec.outputs[tag]) for stage in pipeline.stages
              for tag in stage.spec.outputs if tag in pipeline.final),
            *(f"logs/{log_file_stem(stage.name, 'gather' if stage.split else None)}.{ending}"
              for stage in pipeline.stages for ending in LOG_STREAMS.values())]


def _files(value: Any) -> list[dict[str, Any]]:
    """The CWL File objects in an output value (a File, null, or arrays of them)."""
    if isinstance(value, list):
        return [file for item in value for file in _files(item)]
    return [value] if isinstance(value, dict) and value.get("class") == "File" else []
