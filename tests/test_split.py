"""Stages that split their work (SplitStage): one job per part, gathered into the same outputs."""
from __future__ import annotations

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


@pytest.mark.engine
def test_split_run_under_toil_runs_one_job_per_pair(split_checkout, examples):
    result = descpipe("run", MOCK, "--engine", "toil", "--batch-system", "single_machine", cwd=split_checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    output = split_checkout / "output/des-sv-mock"
    assert_same_products(output, examples / "output/des-sv-mock")
    assert sorted(p.stem for p in (output / "logs").glob("treecorr-*.out")) == [f"treecorr-{p}" for p in PAIRS]


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
