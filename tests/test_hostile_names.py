"""Paths with spaces, quotes, `$`, non-ASCII characters and leading dashes survive every generated
file: the export, the job file and the `descpipe local` script. Nothing is run by a shell that
could be injected into."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ruamel.yaml import YAML

from conftest import TESTS, cwltool, descpipe

HOSTILE = "-n $(touch INJECTED) `touch INJECTED2` 'q' \"dq\" ; ü ∑ $HOME"


@pytest.fixture
def hostile(tmp_path):
    """The toy pipeline in a folder, with an input file, whose names are as hostile as names get."""
    root = tmp_path / HOSTILE
    shutil.copytree(TESTS / "stages", root / "stages")
    shutil.copytree(TESTS / "pipelines", root / HOSTILE)
    pipeline = root / HOSTILE / "fan.yaml"
    (root / HOSTILE / "numbers.txt").rename(root / HOSTILE / f"{HOSTILE}.txt")
    text = pipeline.read_text().replace("numbers: numbers.txt", f"numbers: {json.dumps(HOSTILE + '.txt')}")
    pipeline.write_text(text.replace("../stages", "../stages"))
    return root, pipeline


def assert_not_injected(tmp_path):
    assert not list(tmp_path.rglob("INJECTED*")), "a name was run as a command"


@pytest.mark.engine
def test_export_and_cwltool_run_with_hostile_paths(hostile, tmp_path):
    root, pipeline = hostile
    out = root / HOSTILE / "export" / "wf.cwl"
    assert descpipe("export", pipeline, "-o", out).returncode == 0
    job = YAML(typ="safe", pure=True).load((out.parent / "job.yml").read_text())
    assert job["numbers"]["path"] == f"../{HOSTILE}.txt" and job["numbers"]["basename"] == "numbers.txt"
    result = cwltool("--no-container", "--outdir", tmp_path / "results", out, out.parent / "job.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "results/total.json").read_text())["total"] == 184
    assert_not_injected(tmp_path)


@pytest.mark.engine
def test_descpipe_run_with_hostile_paths(hostile, tmp_path):
    root, pipeline = hostile
    result = descpipe("run", pipeline, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((root / HOSTILE / "output/total.json").read_text())["total"] == 184
    assert_not_injected(tmp_path)


@pytest.mark.docker
def test_local_script_with_hostile_paths(hostile, tmp_path):
    root, pipeline = hostile
    assert descpipe("build", pipeline).returncode == 0
    script = root / HOSTILE / f"{HOSTILE}.sh"
    assert descpipe("local", pipeline, script).returncode == 0
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((root / HOSTILE / "output/total.json").read_text())["total"] == 184
    assert_not_injected(tmp_path)


def test_graph_with_hostile_paths(hostile):
    root, pipeline = hostile
    assert descpipe("graph", pipeline, "-o", root / f"{HOSTILE}.svg").returncode == 0
    assert (root / f"{HOSTILE}.svg").read_bytes().startswith(b"<?xml")
