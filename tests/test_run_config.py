"""The typed run configuration: each setting checked where it is given, the layers merged (pipeline
file < command line), and combinations that cannot work refused in one line before anything runs."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, descpipe
from descpipe.errors import UserError
from descpipe.run_config import COMMAND_LINE, Origin, read_settings, run_config, slurm_minutes

FAN = "pipelines/fan.yaml"
FILE = Origin(Path("p.yaml"), 7)


def file_layer(**values):
    return read_settings({key.replace("_", "-"): value for key, value in values.items()}, lambda key: FILE)


def command_line(**values):
    return read_settings({key.replace("_", "-"): value for key, value in values.items()}, lambda key: COMMAND_LINE)


def refusal(*layers) -> str:
    with pytest.raises(UserError) as error:
        run_config(*layers)
    return str(error.value)


def test_the_command_line_wins_over_the_file_and_each_value_says_where_it_came_from():
    config = run_config(file_layer(engine="toil", retries=3, batch_system="slurm"), command_line(retries=0))
    assert (config.engine, config.retries, config.batch_system.name) == ("toil", 0, "slurm")
    assert config.origins == {"engine": "runtime.engine (p.yaml:7)", "retries": "--retries",
                              "batch-system": "runtime.batch-system (p.yaml:7)"}
    assert run_config().engine == "cwltool" and run_config().container == "none"


def test_every_engine_a_configuration_can_name_has_an_adapter():
    from descpipe.run_config import ENGINES
    from descpipe.runner import ENGINE_CLASSES

    assert tuple(ENGINE_CLASSES) == ENGINES
    assert all(ENGINE_CLASSES[name].name == name for name in ENGINES)


@pytest.mark.parametrize("layers, says", [
    ((file_layer(batch_system="slurm"),),
     "p.yaml:7: batch-system is a Toil setting: run with --engine toil (or set runtime.engine: toil)"),
    ((command_line(retries=2, restart=True),),
     "--retries, --restart are Toil settings: run with --engine toil (or set runtime.engine: toil)"),
    ((file_layer(engine="toil"), command_line(provenance=True)),
     "--provenance needs cwltool: run with --engine cwltool (every run, Toil's too, writes its run record)"),
    ((command_line(engine="toil", partition="debug"),),
     "--partition is a SLURM setting, but Toil's batch system is single_machine: run with --batch-system slurm "
     "(or set runtime.batch-system: slurm)"),
    # The command line's engine overrides the file's, and the file's Toil settings no longer fit.
    ((file_layer(engine="toil", time="1:00:00", batch_system="slurm"), command_line(engine="cwltool")),
     "p.yaml:7: time, batch-system are Toil settings: run with --engine toil (or set runtime.engine: toil)"),
])
def test_impossible_combinations_are_refused_naming_where_each_came_from(layers, says):
    assert refusal(*layers) == says


@pytest.mark.parametrize("values, says", [
    ({"retries": -1}, "p.yaml:7: runtime.retries must be a whole number of retries (0 or more), got -1"),
    ({"resume": "yes"}, "p.yaml:7: runtime.resume must be true or false, got 'yes'"),
    ({"container": "lxc"}, "p.yaml:7: unknown container runtime 'lxc' in runtime.container (known: none, docker, "
                           "podman, singularity)"),
    ({"time": 90}, 'p.yaml:7: runtime.time must be a string, got 90 (quote it: time: "2:00:00")'),
])
def test_a_wrong_value_is_refused_where_it_was_given(values, says):
    with pytest.raises(UserError) as error:
        read_settings(values, lambda key: FILE)
    assert str(error.value) == says


@pytest.mark.parametrize("text", ["30", "30:15", "2:00:00", "1-12", "1-12:30", "1-12:30:15", "0:05:00", "100"])
def test_slurm_time_limits_read_as_toil_reads_them(text):
    from toil.batchSystems.slurm import parse_slurm_time

    assert slurm_minutes(text) == parse_slurm_time(text) / 60


@pytest.mark.parametrize("text", ["soon", "", "1:2:3:4", "-5", "1-", "5:-3"])
def test_slurm_time_limits_that_sbatch_would_refuse(text):
    with pytest.raises(ValueError, match="is not one SLURM reads"):
        slurm_minutes(text)


def test_a_toil_setting_for_cwltool_is_refused_before_anything_is_exported(toy):
    result = descpipe("run", FAN, "--retries", "2", cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "descpipe: error: --retries is a Toil setting: run with --engine toil (or set runtime.engine: toil)"]
    assert not (toy / "pipelines/work").exists(), "nothing exported, nothing run"


def test_loading_a_pipeline_that_names_slurm_does_not_import_toil(toy):
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace("runtime:\n", "runtime:\n  engine: toil\n  batch-system: slurm\n"))
    probe = ("import sys; from descpipe.pipeline import load_pipeline; load_pipeline(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('toil', 'cwltool')))")
    result = subprocess.run([sys.executable, "-c", probe, str(pipeline)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- The package's layers: data flows one way ----------------------------------------------------

# Each module may import only modules before it: file -> checked model -> CWL data -> writer -> engine.
LAYERS = ["errors", "files", "yaml_writer", "graph", "filetypes", "stage", "split", "stage_loader", "naming",
          "run_config", "sites", "pipeline", "overrides", "folders", "snapshots", "images", "cwl", "draw", "local_script", "scaffold", "build",
          "batch_systems", "engine", "cwltool_engine", "toil_engine", "provenance", "run_lock", "processes", "runner",
          "cli", "__init__", "__main__"]


def imports(path: Path) -> set[str]:
    """The descpipe modules a module imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("descpipe."):
            found.add(node.module.split(".")[1])
    return found - {"__version__"}


def test_every_module_is_placed_and_imports_only_the_modules_below_it():
    modules = sorted(path.stem for path in (REPO / "descpipe").glob("*.py"))
    assert sorted(LAYERS) == modules, "place each new module in LAYERS"
    for index, name in enumerate(LAYERS):
        above = imports(REPO / "descpipe" / f"{name}.py") - set(LAYERS[:index]) - {"descpipe"}
        assert not above, f"descpipe/{name}.py imports {above}, which come after it"
