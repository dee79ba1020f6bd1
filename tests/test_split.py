"""Stages that split their work (SplitStage): one job per part, gathered into the same outputs."""
from __future__ import annotations

import json
import re

import pytest
from ruamel.yaml import YAML

from conftest import assert_same_products, copy_checkout, cwltool, descpipe, processes

MOCK = "pipelines/des-sv-mock.yaml"
PAIRS = ["1-1", "1-2", "1-3", "2-2", "2-3", "3-3"]


def split_treecorr(root):
    pipeline = root / MOCK
    text = pipeline.read_text()
    assert "treecorr:\n" in text
    pipeline.write_text(text.replace("treecorr:\n", "treecorr:\n  split: true\n", 1))


@pytest.fixture
def split_checkout(tmp_path):
    root = copy_checkout(tmp_path, "images", "pipelines")
    split_treecorr(root)
    return root


def test_split_export_scatters_one_job_per_part_and_gathers(split_checkout):
    assert descpipe("export", MOCK, "-o", "wf.cwl", cwd=split_checkout).returncode == 0
    assert cwltool("--validate", split_checkout / "wf.cwl").returncode == 0
    document = YAML(typ="safe", pure=True).load((split_checkout / "wf.cwl").read_text())
    tools = processes(document)
    assert {"treecorr.plan", "treecorr.part", "treecorr.gather"} <= set(tools) and "treecorr" not in tools
    workflow = tools["main"]
    assert workflow["requirements"] == {"ScatterFeatureRequirement": {}}
    steps = workflow["steps"]
    assert steps["treecorr.part"]["scatter"] == "part"
    assert steps["treecorr.part"]["in"]["part"] == "treecorr.plan/parts"
    assert steps["treecorr.gather"]["in"]["correlation-functions-parts"] == "treecorr.part/correlation-functions"
    assert workflow["outputs"]["correlation-functions"]["outputSource"] == "treecorr.gather/correlation-functions"
    assert tools["treecorr.part"]["requirements"]["ResourceRequirement"] == {"coresMin": 2}
    assert tools["treecorr.gather"]["requirements"]["ResourceRequirement"] == {"coresMin": 1}


@pytest.mark.engine
def test_split_run_under_cwltool_gives_the_unsplit_results(split_checkout, examples):
    result = descpipe("run", MOCK, cwd=split_checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    output = split_checkout / "output/des-sv-mock"
    assert_same_products(output, examples / "output/des-sv-mock")
    assert sorted(p.stem for p in (output / "logs").glob("treecorr-*.out")) == [f"treecorr-{p}" for p in PAIRS]
    for pair in PAIRS:
        b1, b2 = pair.split("-")
        assert f"bins {b1},{b2}:" in (output / f"logs/treecorr-{pair}.out").read_text(), "one job per bin pair"
    assert_split_stage_ran(output)


def assert_split_stage_ran(output):
    """The run record says the split stage ran, with each part's status and times."""
    stage = json.loads((output / "provenance/run-record.json").read_text())["stages"]["treecorr"]
    assert stage["status"] == "ran" and stage["exit_status"] == 0
    assert [part["part"] for part in stage["parts"]] == list(range(1, len(PAIRS) + 1))
    for part in stage["parts"]:
        assert part["status"] == "ran" and part["exit_status"] == 0
        assert stage["started"] <= part["started"] <= part["finished"] <= stage["finished"]


@pytest.mark.engine
@pytest.mark.parametrize("engine", ["cwltool", "toil"])
def test_a_failed_part_is_named_with_the_end_of_its_log(toy, engine):
    pipeline = toy / "pipelines/chunks.yaml"
    pipeline.write_text(pipeline.read_text().replace("  split: true\n", "  split: true\n  parameters: {fail_part: lines-3-4}\n"))
    result = descpipe("run", "pipelines/chunks.yaml", "--engine", engine, *(["--retries", "0"] if engine == "toil" else []),
                      cwd=toy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "descpipe: stage 'chunk_sum' (part 2, lines-3-4) failed; the end of its log (" in result.stdout
    assert "    RuntimeError: chunk_sum was asked to fail on part lines-3-4" in result.stdout
    assert re.search(rf"^descpipe: \[{engine} +[\d.]+ s\] stage chunk_sum part 2 failed after [\d.]+ s$",
                     result.stdout, re.M), result.stdout
    stage = json.loads((toy / "pipelines/work/provenance/run-record.json").read_text())["stages"]["chunk_sum"]
    assert stage["status"] == "failed" and stage["exit_status"] == 1
    assert [(part["part"], part["status"], part["exit_status"]) for part in stage["parts"]] == [
        (1, "ran", 0), (2, "failed", 1)]


@pytest.mark.engine
def test_split_run_under_toil_runs_one_job_per_pair(split_checkout, examples):
    result = descpipe("run", MOCK, "--engine", "toil", "--batch-system", "single_machine", cwd=split_checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    output = split_checkout / "output/des-sv-mock"
    assert_same_products(output, examples / "output/des-sv-mock")
    assert sorted(p.stem for p in (output / "logs").glob("treecorr-*.out")) == [f"treecorr-{p}" for p in PAIRS]
    assert_split_stage_ran(output)


def test_split_needs_a_split_stage(toy):
    pipeline = toy / "pipelines/fan.yaml"
    pipeline.write_text(pipeline.read_text().replace("sum_odds:\n", "sum_odds:\n  split: true\n"))
    result = descpipe("validate", "pipelines/fan.yaml", cwd=toy)
    assert result.returncode == 2
    assert "fan.yaml:19: stage 'sum_odds' cannot be split: its Stage is not a descpipe.SplitStage" in result.stderr


def test_a_split_stage_must_implement_its_three_methods(split_checkout):
    run_py = split_checkout / "images/treecorr/run.py"
    run_py.write_text(run_py.read_text().replace("    def gather(self, partials):", "    def assemble(self, partials):"))
    result = descpipe("validate", MOCK, cwd=split_checkout)
    assert result.returncode == 2
    assert "a SplitStage must implement parts(), run_part() and gather(); this one lacks gather()" in result.stderr
