"""Run a pipeline: export it into the working directory, then hand it to a CWL engine.

The engine does the scheduling, staging and container work; this module only keeps its log,
puts the products and per-stage logs where the pipeline file says, and on failure names the
stages that failed with the end of their logs.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from .build import read_pins
from .containers import ENGINES as CONTAINER_ENGINES
from .containers import engine_environment
from .cwl import SEPARATOR, Pin, write_export
from .engines import ENGINES, RunSettings
from .errors import UserError
from .pipeline import Pipeline

LOG_TAIL_LINES = 20


def run_pipeline(pipeline: Pipeline, engine_name: str = "cwltool", container: str = "none",
                 extra: tuple[str, ...] = (), say: Callable[[str], None] = print) -> int:
    """Export and run `pipeline`; return the engine's exit status.

    Products land in the pipeline's output directory, each stage's stdout and stderr in
    `<output>/logs/<stage>.out|.err`, and the engine's own log in `<working>/<engine>.log`.
    """
    engine = ENGINES[engine_name]
    settings = RunSettings(working=pipeline.working, output=pipeline.output, container=container,
                           extra=tuple(extra))
    cwl_path = settings.working / f"{pipeline.name}.cwl"
    job_path = settings.working / f"{pipeline.name}.job.yml"
    pins = image_pins(pipeline, container)
    for leftover in engine.scratch(settings):
        shutil.rmtree(leftover, ignore_errors=True)
    write_export(pipeline, cwl_path, job_path, pins=pins)
    command = engine.command(cwl_path, job_path, settings)
    log_path = settings.working / f"{engine.name}.log"
    say(f"descpipe: running {len(pipeline.stages)} stages of {pipeline.name} with {engine.name} "
        f"(container: {container}); engine log: {log_path}")
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                env=engine_environment(container, settings.working))
    elapsed = time.monotonic() - started
    if result.returncode == 0:
        logs = settings.output / "logs"
        _collect_logs(json.loads(result.stdout), logs)
        for leftover in engine.scratch(settings):
            shutil.rmtree(leftover, ignore_errors=True)
        say(f"descpipe: {pipeline.name} finished in {elapsed:.1f} s; products in {settings.output}, "
            f"stage logs in {logs}")
        return 0
    say(f"descpipe: {pipeline.name} failed after {elapsed:.1f} s "
        f"({engine.name} exit status {result.returncode})")
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    failed = engine.failed_stages(log_text)
    for stage in failed:
        stage_log = engine.stage_log(stage, settings)
        say(f"descpipe: stage {stage!r} failed; the end of its log ({stage_log or 'none was kept'}):")
        if stage_log:
            _say_tail(stage_log.read_text(encoding="utf-8", errors="replace"), say)
    if not failed:
        say("descpipe: the end of the engine log:")
        _say_tail(log_text, say)
    return result.returncode


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


def _collect_logs(outputs: dict, logs_dir: Path) -> None:
    """Move the per-stage stdout/stderr outputs into `logs_dir`."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    for key, value in outputs.items():
        if key.endswith((f"{SEPARATOR}stdout", f"{SEPARATOR}stderr")) and value:
            source = Path(value["path"])
            source.replace(logs_dir / source.name)
