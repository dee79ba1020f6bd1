"""The stage contract: how a stage finds its files and parameters, old style and new."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import descpipe
from descpipe.stage import parameter_from_declaration

from conftest import TESTS


class Prototype(descpipe.Stage):
    """A stage written for the 2017 prototype: paths by tag only."""

    name = "photoz"
    inputs = {"photoz-catalog": "fits"}
    outputs = {"tomographic-catalog": "fits"}
    config = {"config": "config.yaml"}

    def run(self):
        pass


def test_prototype_fixed_directories_resolve_from_environment(monkeypatch):
    monkeypatch.setenv("DESC_INPUT", "/data/in")
    monkeypatch.setenv("DESC_OUTPUT", "/data/out")
    monkeypatch.setenv("DESC_CONFIG", "/data/cfg")
    stage = Prototype()
    assert stage.get_input_path("photoz-catalog") == "/data/in/photoz-catalog.fits"
    assert stage.get_output_path("tomographic-catalog") == "/data/out/tomographic-catalog.fits"
    assert stage.get_config_path("config") == "/data/cfg/config.yaml"


def test_prototype_default_directories_are_the_images_mount_points(monkeypatch):
    for variable in ("DESC_INPUT", "DESC_OUTPUT", "DESC_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    stage = Prototype()
    assert stage.get_input_path("photoz-catalog") == "/opt/input/photoz-catalog.fits"
    assert stage.get_config_path("config") == "/opt/config/config.yaml"


def test_command_line_paths_win_over_fixed_directories():
    stage = Prototype({"photoz-catalog": "/x/p.fits", "config": "c.yml"})
    assert stage.get_input_path("photoz-catalog") == "/x/p.fits"
    assert stage.get_config_path("config") == "c.yml"


def test_unknown_tag_names_the_declared_ones():
    with pytest.raises(KeyError, match="photoz-catalog"):
        Prototype().get_input_path("shear-catalog")


@pytest.mark.parametrize("declared, cwl_type, default, required", [
    (3, "int", 3, False),
    (0.2, "float", 0.2, False),
    ("Z_MEAN", "string", "Z_MEAN", False),
    (True, "boolean", True, False),
    ([0.2, 1], {"type": "array", "items": "float"}, [0.2, 1.0], False),
    (int, "int", None, True),
    ([str], {"type": "array", "items": "string"}, None, True),
])
def test_parameter_declarations(declared, cwl_type, default, required):
    parameter = parameter_from_declaration("p", declared)
    assert (parameter.cwl_type, parameter.default, parameter.required) == (cwl_type, default, required)


@pytest.mark.parametrize("declared", [None, [], [1, "a"], {"a": 1}])
def test_bad_parameter_declarations_are_refused(declared):
    with pytest.raises(ValueError, match="parameter 'p'"):
        parameter_from_declaration("p", declared)


def run_split(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TESTS / "stages/split/run.py"), *args],
                          cwd=tmp_path, capture_output=True, text=True)


def test_stage_runs_from_its_command_line(tmp_path):
    (tmp_path / "n.txt").write_text("1 2 3 4\n")
    result = run_split(tmp_path, "--numbers", "n.txt", "--even-numbers", "e.txt",
                       "--odd-numbers", "o.txt", "--scale=5")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "e.txt").read_text().split() == ["10", "20"]
    assert (tmp_path / "o.txt").read_text().split() == ["5", "15"]


def test_wrong_input_type_stops_before_run_naming_tag_and_path(tmp_path):
    (tmp_path / "n.txt").write_bytes(b"\x00\x01binary")
    result = run_split(tmp_path, "--numbers", "n.txt", "--even-numbers", "e.txt", "--odd-numbers", "o.txt")
    assert result.returncode != 0
    assert "input 'numbers' (n.txt): not a text file" in result.stderr
    assert not (tmp_path / "e.txt").exists()


def test_bad_parameter_value_is_a_usage_error(tmp_path):
    (tmp_path / "n.txt").write_text("1\n")
    result = run_split(tmp_path, "--numbers", "n.txt", "--scale=two")
    assert result.returncode == 2
    assert "--scale: 'two' is not a int" in result.stderr


def test_missing_output_is_reported_after_run(tmp_path):
    script = tmp_path / "lazy.py"
    script.write_text(
        "import descpipe\n"
        "class Stage(descpipe.Stage):\n"
        "    outputs = {'result': 'json'}\n"
        "    def run(self):\n"
        "        open(self.get_output_path('result'), 'w').write('{not json')\n"
        "Stage.main()\n")
    result = subprocess.run([sys.executable, str(script), "--result", "r.json"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "output 'result' (r.json): not valid JSON" in result.stderr


def test_cores_set_omp_num_threads_before_run(tmp_path):
    script = tmp_path / "threads.py"
    script.write_text(
        "import os, json, descpipe\n"
        "class Stage(descpipe.Stage):\n"
        "    outputs = {'result': 'json'}\n"
        "    def run(self):\n"
        "        json.dump([os.environ['OMP_NUM_THREADS'], self.cores], open(self.get_output_path('result'), 'w'))\n"
        "Stage.main()\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    subprocess.run([sys.executable, str(script), "--result", "r.json", "--cores", "3"], cwd=tmp_path,
                   check=True, env=env)
    assert json.loads((tmp_path / "r.json").read_text()) == ["3", 3]
