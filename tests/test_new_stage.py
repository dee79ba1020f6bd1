"""`descpipe new-stage` writes a stage that validates, exports, runs and passes its own test."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import cwltool, descpipe


@pytest.mark.engine
def test_new_stage_exports_runs_and_passes_its_own_test(tmp_path):
    created = descpipe("new-stage", "scale_up", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    stage = tmp_path / "images/scale_up"
    assert sorted(p.name for p in stage.iterdir()) == ["Dockerfile", "run.py", "test_run.py"]

    own_test = subprocess.run([sys.executable, "-m", "pytest", "-q", str(stage / "test_run.py")],
                              cwd=tmp_path, capture_output=True, text=True)
    assert own_test.returncode == 0, own_test.stdout

    (tmp_path / "numbers.txt").write_text("1 2 3\n")
    (tmp_path / "pipeline.yaml").write_text(
        "pipeline: {images: [images], stages: [scale_up]}\n"
        "runtime: {inputs: {scale_up-input: numbers.txt}}\n"
        "scale_up: {parameters: {factor: 10.0}}\n")
    assert descpipe("validate", "pipeline.yaml", cwd=tmp_path).returncode == 0
    assert descpipe("export", "pipeline.yaml", "-o", "wf.cwl", cwd=tmp_path).returncode == 0
    assert "Multiply a list of numbers by `factor`" in (tmp_path / "wf.cwl").read_text()
    assert cwltool("--validate", tmp_path / "wf.cwl").returncode == 0
    result = descpipe("run", "pipeline.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "output/scale_up-output.txt").read_text().split() == ["10.0", "20.0", "30.0"]


@pytest.mark.parametrize("name, says", [("bad.name", "invalid stage name 'bad.name'"),
                                        ("taken", "already exists")])
def test_new_stage_refuses_bad_names_and_existing_directories(tmp_path, name, says):
    (tmp_path / "images/taken").mkdir(parents=True)
    result = descpipe("new-stage", name, cwd=tmp_path)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
