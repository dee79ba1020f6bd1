"""Run records: what a `descpipe run` ran, with which code and images, on which files.

Every run writes `provenance/run-record.json` with copies of the exported CWL, the job file and
the pipeline file: beside the products when the run succeeded, in the working directory when it
did not (the products beside a record are always the ones that run made). With `--provenance`
the engine's CWLProv research object becomes a Workflow Run RO-Crate in `provenance/crate/`.
`summary` turns a record into text for a person (`descpipe provenance DIR`).
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from . import __version__
from .engine import Failure, JobEvent
from .errors import UserError
from .files import write_files
from .folders import RECORD, RECORD_FOLDER
from .images import Pin
from .naming import parse_step, stage_input_id
from .pipeline import Pipeline
from .snapshots import checksum

CRATE = "crate"


def _file_entry(path: Path, known: str | None = None, now_at: Path | None = None) -> dict[str, Any]:
    """Path, checksum and size of a file; `known` is a checksum the engine already computed, `now_at`
    where the file is until it is moved to `path`."""
    here = now_at or path
    return {"path": str(path.resolve()), "checksum": known or checksum(here), "size": here.stat().st_size}


def _code(directory: Path, read: dict[Path, str]) -> dict[str, str]:
    """The checksum of every file in a stage's directory, by relative path: all of it reaches the
    engine (and cwltool's cache key), so all of it is recorded, as the stage read it (`read`)."""
    return {str(path.relative_to(directory)): read.get(path) or checksum(path)
            for path in sorted(directory.rglob("*")) if path.is_file() and "__pycache__" not in path.parts}


def stage_runs(pipeline: Pipeline, events: list[JobEvent], failures: list[Failure],
               succeeded: bool) -> dict[str, dict[str, Any]]:
    """What happened to each stage in this run, from the engine's job events: its status, exit
    status and times, and for a split stage each part's.

    A stage "ran" when any of its jobs ran (a resumed split stage may reuse its plan and some
    parts), is "reused" when the engine took all its outputs from an earlier run (cwltool says so;
    a restarted Toil run never starts the stages that had finished, so a stage of a successful run
    without events was finished before), "failed" when a job failed for good, else "not run".
    """
    jobs: dict[str, dict[tuple[str, int | None], list[JobEvent]]] = {stage.name: {} for stage in pipeline.stages}
    for event in events:
        owner = parse_step(event.step).stage
        if owner in jobs:
            jobs[owner].setdefault((event.step, event.part), []).append(event)
    runs: dict[str, dict[str, Any]] = {}
    for stage in pipeline.stages:
        statuses = {job: _job_status(happened) for job, happened in jobs[stage.name].items()}
        stage_failures = [failure for failure in failures if parse_step(failure.step).stage == stage.name]
        if stage_failures or "failed" in statuses.values():
            status = "failed"
        elif "ran" in statuses.values():
            status = "ran"
        elif (statuses and set(statuses.values()) == {"reused"}) or (succeeded and not statuses):
            status = "reused"
        else:
            status = "not run"
        runs[stage.name] = {
            "status": status,
            # A stage that ran exited 0; one that failed, as the engine logged.
            "exit_status": 0 if status == "ran" else stage_failures[0].exit_status if stage_failures else None,
            **_times([event for happened in jobs[stage.name].values() for event in happened]),
        }
        if stage.split:
            exits = {failure.part: failure.exit_status for failure in stage_failures if failure.part}
            runs[stage.name]["parts"] = [
                {"part": part, "status": statuses[(step, part)], **_times(happened),
                 "exit_status": exits.get(part, 0 if statuses[(step, part)] == "ran" else None)}
                for (step, part), happened in sorted(jobs[stage.name].items(), key=lambda job: job[0][1] or 0)
                if parse_step(step).mode == "part" and part is not None]
    return runs


def _job_status(events: list[JobEvent]) -> str:
    kinds = {event.event for event in events}
    for event, status in (("failed", "failed"), ("finished", "ran"), ("reused", "reused")):
        if event in kinds:
            return status
    return "not run"


def _times(events: list[JobEvent]) -> dict[str, str | None]:
    """When the first of `events` started and the last finished (or failed)."""
    started = [event.time for event in events if event.event == "started" and event.time]
    ended = [event.time for event in events if event.event in ("finished", "failed") and event.time]
    return {"started": min(started) if started else None, "finished": max(ended) if ended else None}


def record(pipeline: Pipeline, run: dict[str, Any], stages: dict[str, dict[str, Any]],
           pins: dict[str, Pin] | None, products: dict[str, tuple[Path, str | None]],
           read: dict[Path, str]) -> dict[str, Any]:
    """The run record: `run` (engine, container, times, status, command) plus what ran on what.

    `stages` says what happened to each stage (see `stage_runs`), `pins` the image ids the stages
    ran in (None with no container), `products` the files the run puts in the output directory
    (by path relative to it), each with where it is now and the checksum the engine computed while
    collecting it (None if it did not): hashing them again would cost a second read of every catalog;
    `read` the checksum of each input, config and code file as the stages read it, by original path.
    """
    entries = {}
    for stage in pipeline.stages:
        pin = (pins or {}).get(stage.name)
        entries[stage.name] = {
            **stages[stage.name],
            "image": stage.image if pin else None,
            "image_id": pin.id if pin else None,
            "image_digest": pin.digest if pin else None,
            "code": {"path": str(stage.spec.directory.resolve()), "files": _code(stage.spec.directory, read)},
            "parameters": {name: stage.parameter_values.get(name, parameter.default)
                           for name, parameter in stage.spec.parameters.items()},
            "parameters_from": {name: stage.parameter_origins.get(name) or
                                ("pipeline file" if name in stage.parameter_values else "default")
                                for name in stage.spec.parameters},
        }
    inputs = {tag: _file_entry(path, read.get(path)) for tag, path in pipeline.inputs.items()}
    for stage in pipeline.stages:
        inputs.update({stage_input_id(stage.name, tag): _file_entry(path, read.get(path))
                       for tag, path in stage.config_files.items()})
    output = pipeline.output.resolve()
    return {"descpipe": __version__, "pipeline": pipeline.name, **run,
            "pipeline_file": _file_entry(pipeline.file),
            "stages": entries, "inputs": inputs,
            "outputs": {name: _file_entry(output / name, known, now_at=source)
                        for name, (source, known) in sorted(products.items())}}


def write_run_record(folder: Path, entry: dict[str, Any], copies: list[Path]) -> Path:
    """Write `entry` as `folder/run-record.json` beside copies of `copies` (the exported CWL,
    job file and pipeline file), replacing an earlier record there; returns the record's path."""
    shutil.rmtree(folder, ignore_errors=True)
    entry = {**entry, "files": [path.name for path in copies]}
    write_files({folder / RECORD: json.dumps(entry, indent=2) + "\n",
                 **{folder / path.name: path.read_text(encoding="utf-8") for path in copies}})
    return folder / RECORD


def write_crate(research_object: Path, crate: Path) -> None:
    """Turn cwltool's CWLProv research object into a Workflow Run RO-Crate folder (runcrate)."""
    try:
        from runcrate.convert import ProvCrateBuilder
    except ImportError:
        raise UserError("--provenance needs the runcrate package: pip install --no-deps runcrate==0.6.2 "
                        "rocrate cwlprov bdbag (runcrate pins an older cwl-utils than cwltool needs, "
                        "hence --no-deps)") from None
    ProvCrateBuilder(research_object).build().write(crate)


def load_record(directory: Path) -> tuple[Path, dict[str, Any]]:
    """The record in `directory`: an output or working directory, its provenance/ folder, or the file."""
    for candidate in (directory / RECORD_FOLDER / RECORD, directory / RECORD, directory):
        if candidate.is_file():
            try:
                entry = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as e:
                why = "nested too deeply" if isinstance(e, RecursionError) else e
                raise UserError(f"not a descpipe run record ({why}): run `descpipe run` again to write one",
                                candidate) from None
            if not isinstance(entry, dict):
                raise UserError("not a descpipe run record (not a JSON object): run `descpipe run` again "
                                "to write one", candidate)
            return candidate, entry
    raise UserError(f"no run record in {directory}: give the output (or working) directory of a "
                    f"`descpipe run`, which holds {RECORD_FOLDER}/{RECORD}")


def summary(path: Path, entry: dict[str, Any]) -> str:
    """A run record as text for a person: what ran, with which code, on which inputs, making which files.

    A record that lacks a key or has a value of the wrong type (edited, cut short, or from another
    tool) raises a UserError naming what is wrong."""
    try:
        return _summary(path, entry)
    except KeyError as e:
        problem = f"it has no {e.args[0]!r} where one was expected"
    except (TypeError, AttributeError, ValueError, RecursionError) as e:
        problem = f"a value has the wrong type ({e})"
    raise UserError(f"not a complete descpipe run record: {problem}; run `descpipe run` again to write one",
                    path)


def _summary(path: Path, entry: dict[str, Any]) -> str:
    lines = [(f"{entry['pipeline']}: {entry['status']} (exit status {entry['exit_status']}), "
              f"{entry['started']} to {entry['finished']}"),
             (f"  run by descpipe {entry['descpipe']} with {entry['engine']}, container: {entry['container']}"
              + (", resuming an earlier run" if entry.get("resume") else "")),
             f"  pipeline file {entry['pipeline_file']['path']} ({entry['pipeline_file']['checksum']})",
             f"  record {path}; beside it: {', '.join(entry['files'])}",
             "stages (in run order):"]
    for name, stage in entry["stages"].items():
        code = stage["code"]
        others = len(code["files"]) - ("run.py" in code["files"])
        image = (f"image {stage['image']} ({stage['image_id']})" if stage["image_id"] else "no container")
        lines.append(f"  {name}: {stage['status']}"
                     + (f" (exit status {stage['exit_status']})" if stage["exit_status"] is not None else "")
                     + (f", {stage['started']} to {stage['finished']}" if stage["started"] else ""))
        if stage.get("parts"):
            counts = Counter(part["status"] for part in stage["parts"])
            lines.append(f"    {len(stage['parts'])} parts: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        lines.append(f"    code {code['path']}/run.py {code['files'].get('run.py', '(none)')}"
                     + (f" (+{others} more files)" if others else "") + f"; {image}")
        if stage["parameters"]:
            given = stage.get("parameters_from", {})
            lines.append("    parameters " + ", ".join(f"{key}={json.dumps(value)}"
                                                     + (" (--set)" if given.get(key) == "--set" else "")
                                                     for key, value in stage["parameters"].items()))
    for title, files in (("inputs", entry["inputs"]), ("outputs", entry["outputs"])):
        lines.append(f"{title}:" + ("" if files else " none"))
        lines += [f"  {name}: {file['path']} ({file['size']} bytes) {file['checksum']}"
                  for name, file in files.items()]
    if entry.get("crate"):
        lines.append(f"Workflow Run RO-Crate: {path.parent / entry['crate']}")
    return "\n".join(lines)
