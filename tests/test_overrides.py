"""`descpipe run --set`: one run's values, checked as the pipeline file's are, recorded with where
each came from, and rerunning exactly the stages they change."""
from __future__ import annotations

import json

import pytest

from conftest import descpipe

FAN = "pipelines/fan.yaml"


def record(toy) -> dict:
    return json.loads((toy / "pipelines/output/provenance/run-record.json").read_text())


@pytest.mark.engine
def test_a_parameter_set_for_one_run_changes_that_stage_and_reruns_only_what_it_feeds(toy):
    assert descpipe("run", FAN, cwd=toy).returncode == 0
    result = descpipe("run", FAN, "--resume", "--set", "combine.labels=[evens, odds]", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == {"evens": 136, "odds": 48, "total": 184}
    stages = record(toy)["stages"]
    assert {name: stage["status"] for name, stage in stages.items()} == {
        "split": "reused", "sum_evens": "reused", "sum_odds": "reused", "combine": "ran"}
    assert stages["combine"]["parameters"]["labels"] == ["evens", "odds"]
    assert stages["combine"]["parameters_from"] == {"fail": "default", "fail_once": "default", "labels": "--set"}
    assert stages["split"]["parameters_from"] == {"scale": "pipeline file"}
    assert '--set' in descpipe("provenance", toy / "pipelines/output").stdout

    # Upstream: every stage downstream of split runs again; the pipeline file itself is unchanged.
    result = descpipe("run", FAN, "--resume", "--set", "global.scale=1", "--set", "runtime.retries=0",
                      "--engine", "toil", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == {"twos": 112, "ones": 16, "total": 128}
    assert record(toy)["settings"]["retries"] == {"value": 0, "from": "--set runtime.retries"}
    assert "scale: 3" in (toy / FAN).read_text()


OVERRIDES = [
    ("split.scale=big", "--set split.scale=big: parameter 'scale' of stage 'split': 'big' is not a int"),
    ("plot.x=1", "--set plot.x=1: no stage 'plot' in this pipeline (stages: split, sum_evens, sum_odds, combine; "
                 "or global.PARAM, runtime.KEY)"),
    ("split.sclae=2", "--set split.sclae=2: stage 'split' has no parameter 'sclae' (its parameters: scale)"),
    ("global.nothing=1", "--set global.nothing=1: no stage has a parameter 'nothing'"),
    ("runtime.bogus=1", "--set runtime.bogus=1: no run setting 'bogus' (known: site, engine, container, "),
    ("runtime.retries=-1", "--set runtime.retries must be a whole number of retries (0 or more), got -1"),
    ("runtime.retries=2", "--set runtime.retries is a Toil setting: run with --engine toil"),
    ("scale=2", "--set 'scale=2': write STAGE.PARAM=VALUE, global.PARAM=VALUE or runtime.KEY=VALUE"),
    ("combine.labels=[a, b", "--set combine.labels=[a, b: '[a, b' is not a value"),
]


@pytest.mark.parametrize("given, says", OVERRIDES, ids=[c[0] for c in OVERRIDES])
def test_a_wrong_override_is_one_line_and_runs_nothing(toy, given, says):
    result = descpipe("run", FAN, "--set", given, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"descpipe: error: {says}"), line
    assert not (toy / "pipelines/output").exists()
