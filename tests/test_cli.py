"""The command line as a user meets it: version, help, drawing."""
from __future__ import annotations

import pytest

import descpipe as package
from conftest import descpipe

FAN = "pipelines/fan.yaml"


def test_version():
    result = descpipe("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"descpipe {package.__version__}"


@pytest.mark.parametrize("command", ["export", "validate", "graph", "run", "build", "local"])
def test_every_command_has_help(command):
    result = descpipe(command, "--help")
    assert result.returncode == 0
    assert "pipeline" in result.stdout and "usage: descpipe " + command in result.stdout


def test_no_command_is_a_usage_error():
    result = descpipe()
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_graph_dot_shows_stages_and_the_files_between_them(toy):
    result = descpipe("graph", FAN, "-o", "dag.dot", cwd=toy)
    assert result.returncode == 0, result.stderr
    dot = (toy / "dag.dot").read_text()
    assert dot.startswith('digraph "fan" {')
    assert '"stage:split" -> "file:even-numbers";' in dot
    assert '"file:even-numbers" -> "stage:sum_evens";' in dot
    assert '"file:numbers" [label="numbers\\n(txt)", shape=note' in dot
    assert '"file:total" [label="total\\n(json)", shape=ellipse, peripheries=2];' in dot


@pytest.mark.parametrize("kind, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_graph_renders_svg_and_png(toy, kind, magic):
    result = descpipe("graph", FAN, "-o", f"pictures/dag.{kind}", cwd=toy)
    assert result.returncode == 0, result.stderr
    assert (toy / f"pictures/dag.{kind}").read_bytes().startswith(magic)


def test_graph_to_an_unknown_format_is_a_clear_error(toy):
    result = descpipe("graph", FAN, "-o", "dag.pdf", cwd=toy)
    assert result.returncode == 2
    assert "must end in .dot, .svg or .png" in result.stderr


def test_validate_json_gives_the_checked_pipeline_as_data(toy):
    import json

    result = descpipe("validate", "pipelines/fan.yaml", "--json", cwd=toy)
    assert result.returncode == 0, result.stderr
    checked = json.loads(result.stdout)
    assert [stage["name"] for stage in checked["stages"]] == ["split", "sum_evens", "sum_odds", "combine"]
    combine = checked["stages"][3]
    assert combine["reads"] == ["even-sum", "odd-sum"] and combine["makes"] == ["total"]
    assert combine["parameters"]["labels"] == ["twos", "ones"]
    assert checked["stages"][2]["resources"]["cores"] == 2
    assert checked["inputs"] == {"numbers": "pipelines/numbers.txt"}
