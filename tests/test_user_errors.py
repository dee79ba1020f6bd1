"""Every user mistake gives one clear line naming the file and line, exit status 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import descpipe

FAN = "pipelines/fan.yaml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def pipeline_edit(old, new):
    return lambda root: edit(root / FAN, old, new)


def stage_edit(stage, old, new):
    return lambda root: edit(root / "stages" / stage / "run.py", old, new)


def remove(relative):
    return lambda root: (root / relative).unlink()


# (mistake, how to make it, where the message must point, what it must say)
CASES = [
    ("malformed YAML", pipeline_edit("  owner: test", "  owner: [test"), f"{FAN}:7", "malformed YAML"),
    ("unknown key", pipeline_edit("  owner: test", "  ownr: test"), f"{FAN}:6", "unknown key 'ownr' in 'pipeline'"),
    ("unknown top-level key", pipeline_edit("split:\n", "splitt:\n"), f"{FAN}:16", "unknown key 'splitt'"),
    ("unknown stage", pipeline_edit("sum_odds, combine]", "sum_odds, combine, plot]"), f"{FAN}:5",
     "unknown stage 'plot'"),
    ("stage without run.py", remove("stages/sum_odds/run.py"), f"{FAN}:5", "has no run.py"),
    ("stage without Dockerfile", remove("stages/sum_odds/Dockerfile"), f"{FAN}:5", "has no Dockerfile"),
    ("run.py without Stage class", stage_edit("sum_odds", "class Stage(", "class Step("),
     "stages/sum_odds/run.py", "defines no `class Stage(descpipe.Stage)`"),
    ("Stage not a descpipe.Stage", stage_edit("sum_odds", "class Stage(descpipe.Stage)", "class Stage(object)"),
     "stages/sum_odds/run.py:4", "defines no `class Stage(descpipe.Stage)`"),
    ("science import at the top of run.py", stage_edit("sum_odds", "import descpipe\n", "import descpipe\nimport treecorr_not_here\n"),
     "stages/sum_odds/run.py:2", "import science libraries inside run()"),
    ("syntax error in run.py", stage_edit("sum_odds", "def run(self):", "def run(self)"),
     "stages/sum_odds/run.py:16", "syntax error"),
    ("unknown file type", stage_edit("sum_odds", '{"odd-sum": "txt"}', '{"odd-sum": "text/plain"}'),
     "stages/sum_odds/run.py:4", "unknown file type 'text/plain'"),
    ("invalid tag", stage_edit("sum_odds", '{"odd-sum": "txt"}', '{"odd.sum": "txt"}'),
     "stages/sum_odds/run.py:4", "invalid name 'odd.sum'"),
    ("reserved tag", stage_edit("sum_odds", '{"odd-sum": "txt"}', '{"code": "txt"}'),
     "stages/sum_odds/run.py:4", "'code' in Stage.outputs is reserved"),
    ("two stages make one tag", stage_edit("sum_odds", '{"odd-sum": "txt"}', '{"even-sum": "txt"}'),
     f"{FAN}:5", "stages 'sum_evens' and 'sum_odds' both make 'even-sum'"),
    ("cycle", stage_edit("split", 'inputs = {"numbers": "txt"}', 'inputs = {"numbers": "txt", "total": "json"}'),
     f"{FAN}:5", "cycle"),
    ("needed tag nobody makes", pipeline_edit("    numbers: numbers.txt\n", ""), f"{FAN}:12",
     "no stage makes 'numbers' and runtime.inputs does not give it"),
    ("input that a stage makes", pipeline_edit("    numbers: numbers.txt\n", "    numbers: numbers.txt\n    odd-sum: numbers.txt\n"),
     f"{FAN}:14", "runtime.inputs gives 'odd-sum', which stage 'sum_odds' makes"),
    ("types disagree", stage_edit("sum_odds", '{"odd-numbers": "txt"}', '{"odd-numbers": "csv"}'),
     f"{FAN}:5", "reads 'odd-numbers' as csv, but stage 'split' makes it as txt"),
    ("missing input file", pipeline_edit("numbers: numbers.txt", "numbers: numbrs.txt"), f"{FAN}:13",
     "input 'numbers': "),
    ("input of the wrong type", lambda root: (root / "pipelines/numbers.txt").write_bytes(b"\x00\x00"),
     f"{FAN}:13", "not a text file"),
    ("missing config file", pipeline_edit("{config: sum.yaml}", "{config: summ.yaml}"), f"{FAN}:15",
     "config file 'config' of stage 'sum_evens'"),
    ("config not given", pipeline_edit("  config:\n    sum_evens: {config: sum.yaml}\n", ""), FAN,
     "stage 'sum_evens' needs config file 'config'"),
    ("unknown parameter", pipeline_edit("{scale: 3}", "{scael: 3}"), f"{FAN}:17", "has no parameter 'scael'"),
    ("parameter of the wrong type", pipeline_edit("{scale: 3}", "{scale: three}"), f"{FAN}:17",
     "parameter 'scale' of stage 'split': 'three' is not a int"),
    ("depends-on contradicting the data flow", pipeline_edit("split:\n", "split:\n  depends-on: [combine]\n"),
     f"{FAN}:17", "contradicts the data flow"),
    ("depends-on missing a producer", pipeline_edit("combine:\n", "combine:\n  depends-on: [sum_odds]\n"),
     f"{FAN}:21", "reads files made by 'sum_evens', but its depends-on omits it"),
    ("depends-on unknown stage", pipeline_edit("combine:\n", "combine:\n  depends-on: [sum_evens, sum_odds, plot]\n"),
     f"{FAN}:21", "depends on 'plot', which is not in pipeline.stages"),
    ("bad resource", pipeline_edit("split:\n", "split:\n  openmp: 0\n"), f"{FAN}:17",
     "'openmp' of stage 'split' must be a positive whole number"),
    ("missing pipeline file", remove(FAN), FAN, "cannot read the pipeline file"),
    ("unknown engine", pipeline_edit("runtime:\n", "runtime:\n  engine: nextflow\n"), f"{FAN}:10",
     "unknown engine 'nextflow' in runtime.engine (known: cwltool, toil)"),
    ("unknown batch system", pipeline_edit("runtime:\n", "runtime:\n  batch-system: slurn\n"), f"{FAN}:10",
     "unknown batch system 'slurn' (Toil knows: "),
    ("negative retries", pipeline_edit("runtime:\n", "runtime:\n  retries: -1\n"), f"{FAN}:10",
     "runtime.retries must be a whole number of retries (0 or more), got -1"),
    ("time that SLURM cannot read", pipeline_edit("runtime:\n", "runtime:\n  time: soon\n"), f"{FAN}:10",
     "time limit 'soon' is not one SLURM reads"),
]


@pytest.mark.parametrize("mistake, make, where, says", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "export"])
def test_user_mistake_is_one_clear_line(toy, command, mistake, make, where, says):
    make(toy)
    args = [command, FAN] + (["-o", "out/wf.cwl"] if command == "export" else [])
    result = descpipe(*args, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"descpipe: error: {where}"), message
    assert says in message, message
    assert not (toy / "out").exists(), "a failed export must not write anything"


def test_the_unchanged_fixture_is_valid(toy):
    """The cases above fail because of their one change, not because the fixture is broken."""
    result = descpipe("validate", FAN, cwd=toy)
    assert result.returncode == 0, result.stderr
    assert "split: reads numbers; makes even-numbers, odd-numbers" in result.stdout


def test_export_to_a_folder_or_an_unwritable_place_is_a_clear_error(toy):
    (toy / "out").mkdir()
    result = descpipe("export", FAN, "-o", "out", cwd=toy)
    assert result.returncode == 2 and "it is a folder" in result.stderr and "Traceback" not in result.stderr
    (toy / "blocker").write_text("a file where a folder should be\n")
    result = descpipe("export", FAN, "-o", "blocker/wf.cwl", cwd=toy)
    assert result.returncode == 2 and "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert list(toy.glob("**/*.partial")) == []
