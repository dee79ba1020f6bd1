"""The engines' log readers, on saved logs of real runs (tests/engine_logs/, see its README): which
jobs started, finished, were reused, retried or failed, and what the run record makes of them.

Milliseconds each, so a cwltool or Toil release that rewords a log line shows here at once.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import TESTS
from descpipe.cwltool_engine import Cwltool
from descpipe.engine import Engine, JobEvent, RunPaths
from descpipe.naming import stage_steps
from descpipe.pipeline import load_pipeline
from descpipe.provenance import stage_runs
from descpipe.run_config import RunConfig
from descpipe.toil_engine import Toil

LOGS = TESTS / "engine_logs"
# The pipeline the logs were made with: `split` then `chunk_sum`, split into two parts.
PIPELINE = load_pipeline(TESTS / "pipelines/chunks.yaml")
STEPS = frozenset(step for stage in PIPELINE.stages for step in stage_steps(stage.name, stage.split))
ALL_RAN = {"split", "chunk_sum.plan", "chunk_sum.gather", ("chunk_sum.part", 1), ("chunk_sum.part", 2)}


def engine(kind: type[Engine], working: Path) -> Engine:
    paths = RunPaths(working / "wf.cwl", working / "job.yml", working, working / "out", working / "ro")
    return kind(RunConfig(engine=kind.name), paths, STEPS)


def events(reader: Engine, log: str) -> list[JobEvent]:
    text = (LOGS / log).read_text()
    return [event for line in text.splitlines() if (event := reader.read_event(line))]


def jobs(found: list[JobEvent], kind: str) -> set[object]:
    """The jobs that had event `kind`: a step id, or (step, part) for a part."""
    return {(e.step, e.part) if e.part else e.step for e in found if e.event == kind}


@pytest.fixture(params=[Cwltool, Toil], ids=["cwltool", "toil"])
def reader(request, tmp_path) -> Engine:
    return engine(request.param, tmp_path)


def test_a_split_run_each_job_starts_and_finishes_and_the_stage_ran(reader):
    found = events(reader, f"{reader.name}-split-success.log")
    assert jobs(found, "started") == ALL_RAN and jobs(found, "finished") == ALL_RAN
    assert jobs(found, "failed") == set() and jobs(found, "reused") == set()
    runs = stage_runs(PIPELINE, found, [], succeeded=True)
    assert runs["split"]["status"] == "ran" and runs["split"]["exit_status"] == 0
    chunks = runs["chunk_sum"]
    assert chunks["status"] == "ran", "a split stage's jobs are its own: it ran, it was not reused"
    assert [(p["part"], p["status"], p["exit_status"]) for p in chunks["parts"]] == [(1, "ran", 0), (2, "ran", 0)]
    if reader.name == "toil":   # cwltool's log has no times: the runner stamps each event as it reads it
        for part in chunks["parts"]:
            assert chunks["started"] <= part["started"] <= part["finished"] <= chunks["finished"]
    assert reader.failures((LOGS / f"{reader.name}-split-success.log").read_text()) == []


def test_toil_events_carry_the_time_toil_logged():
    found = events(engine(Toil, Path("/nonexistent")), "toil-split-success.log")
    assert found[0] == JobEvent("split", "started", None, "2026-12-02T17:51:14+00:00")


def test_a_failed_part_is_named_with_its_exit_status_and_log(reader, tmp_path):
    if reader.name == "toil":   # Toil's --writeLogs folder as that run left it
        shutil.copytree(LOGS / "toil-logs", tmp_path / "toil-logs")
    text = (LOGS / f"{reader.name}-split-part-failed.log").read_text()
    [failure] = reader.failures(text)
    assert (failure.step, failure.part, failure.exit_status) == ("chunk_sum.part", 2, 1)
    assert failure.stderr_name == "chunk_sum-lines-3-4.err", "the part's name, from the export's log file name"
    if reader.name == "toil":
        assert failure.log == tmp_path / "toil-logs/main.1.chunk_sum.part.stderr_000.log"
        assert "chunk_sum was asked to fail on part lines-3-4" in failure.log.read_text()
    found = events(reader, f"{reader.name}-split-part-failed.log")
    assert jobs(found, "failed") == {("chunk_sum.part", 2)}
    runs = stage_runs(PIPELINE, found, [failure], succeeded=False)
    assert runs["chunk_sum"]["status"] == "failed" and runs["chunk_sum"]["exit_status"] == 1
    assert [(p["part"], p["status"], p["exit_status"]) for p in runs["chunk_sum"]["parts"]] == [
        (1, "ran", 0), (2, "failed", 1)]
    # cwltool's run was a --resume of the successful one: split came from its cache.
    assert runs["split"]["status"] == ("reused" if reader.name == "cwltool" else "ran")


def test_cwltool_reuses_every_job_of_an_unchanged_pipeline(tmp_path):
    found = events(engine(Cwltool, tmp_path), "cwltool-split-reused.log")
    assert jobs(found, "reused") == ALL_RAN and jobs(found, "started") == set()
    runs = stage_runs(PIPELINE, found, [], succeeded=True)
    assert {name: run["status"] for name, run in runs.items()} == {"split": "reused", "chunk_sum": "reused"}


def test_cwltool_resumed_after_a_failed_part_runs_that_part_again(tmp_path):
    """cwltool does not retry a job within a run: a --resume after the failure is its retry."""
    reader = engine(Cwltool, tmp_path)
    assert [f.part for f in reader.failures((LOGS / "cwltool-split-part-failed-once.log").read_text())] == [2]
    found = events(reader, "cwltool-split-resumed-after-failure.log")
    assert jobs(found, "reused") == {"split", "chunk_sum.plan", ("chunk_sum.part", 1)}
    assert jobs(found, "started") == jobs(found, "finished") == {("chunk_sum.part", 2), "chunk_sum.gather"}
    runs = stage_runs(PIPELINE, found, [], succeeded=True)
    assert runs["split"]["status"] == "reused" and runs["chunk_sum"]["status"] == "ran"
    assert [(p["part"], p["status"]) for p in runs["chunk_sum"]["parts"]] == [(1, "reused"), (2, "ran")]


def test_toil_retries_a_failed_part_and_the_stage_ran(tmp_path):
    reader = engine(Toil, tmp_path)
    found = events(reader, "toil-split-part-retried.log")
    assert jobs(found, "retrying") == {("chunk_sum.part", 2)} and jobs(found, "failed") == set()
    part_two = [e.event for e in found if e.part == 2]
    assert part_two == ["started", "retrying", "started", "finished"]
    runs = stage_runs(PIPELINE, found, [], succeeded=True)
    assert runs["chunk_sum"]["status"] == "ran"
    assert [(p["part"], p["status"]) for p in runs["chunk_sum"]["parts"]] == [(1, "ran"), (2, "ran")]
    assert reader.failures((LOGS / "toil-split-part-retried.log").read_text()) == []


def test_toil_restarted_runs_only_what_had_not_finished(tmp_path):
    found = events(engine(Toil, tmp_path), "toil-split-restarted.log")
    assert jobs(found, "started") == {("chunk_sum.part", 2), "chunk_sum.gather"}
    runs = stage_runs(PIPELINE, found, [], succeeded=True)
    # Toil never starts what finished before the restart: no events, in a successful run.
    assert runs["split"]["status"] == "reused" and runs["chunk_sum"]["status"] == "ran"


@pytest.mark.parametrize("name, job", [("split", ("split", None)), ("chunk_sum.part", ("chunk_sum.part", 1)),
                                       ("chunk_sum.part_2", ("chunk_sum.part", 2))])
def test_cwltool_job_names(tmp_path, name, job):
    assert engine(Cwltool, tmp_path).job(name) == job


def test_a_cwltool_step_whose_name_ends_like_a_repeat_is_itself(tmp_path):
    reader = Cwltool(RunConfig(), engine(Cwltool, tmp_path).paths, frozenset({"stage", "stage_2"}))
    assert reader.job("stage_2") == ("stage_2", None) and reader.job("stage_3") == ("stage", 3)


@pytest.mark.parametrize("name, job", [("main.split.split", ("split", None)),
                                       ("main.chunk_sum.plan.chunk_sum.plan", ("chunk_sum.plan", None)),
                                       ("main.0.chunk_sum.part", ("chunk_sum.part", 1)),
                                       ("1.chunk_sum.part", ("chunk_sum.part", 2))])
def test_toil_job_names(tmp_path, name, job):
    assert engine(Toil, tmp_path).job(name) == job
