"""What descpipe promises whatever the stages, the user or the machine do: nothing a user owns is
changed, a run that fails never looks like one that succeeded (issue 12's principles 1, 2, 3, 6, 7).

Each row is a case a user could hit; each asserts the exit status, the one line that says what
happened, and that every file the user owns is byte-identical afterwards."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import descpipe

FAN = "pipelines/fan.yaml"
# descpipe's own folders in the toy checkout (runtime.working and runtime.output of fan.yaml).
OWNED = ("pipelines/work", "pipelines/output")


def user_files(root: Path) -> dict[str, str]:
    """The checksum of every file the user owns in the toy checkout: all but descpipe's folders."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not any(path.is_relative_to(root / folder) for folder in OWNED)
            and "__pycache__" not in path.parts}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def combine_run(body: str) -> Callable[[Path], None]:
    """An edit that makes the toy `combine` stage's run() begin with `body`."""
    return lambda root: edit(root / "stages/combine/run.py", "    def run(self):\n",
                             f"    def run(self):\n        import os, sys\n        {body}\n")


# --- 7. Outputs are checked whatever the stage does -------------------------------------------

STAGE_ENDINGS = [
    ("sys.exit(0) before writing", combine_run("sys.exit(0)"), "output 'total'", "file does not exist"),
    ("os._exit(0) before writing", combine_run("os._exit(0)"), "output 'total'", "file does not exist"),
    ("os._exit(0) after writing bad JSON",
     combine_run("open(self.get_output_path('total'), 'w').write('{'); os._exit(0)"), "output 'total'", "JSON"),
    ("killed by a signal", combine_run("os.kill(os.getpid(), 9)"), "combine: killed by signal 9 (SIGKILL)", ""),
]


@pytest.mark.engine
@pytest.mark.parametrize("case, make, says, detail", STAGE_ENDINGS, ids=[c[0] for c in STAGE_ENDINGS])
def test_a_stage_that_ends_early_fails_whatever_way_it_ends(toy, case, make, says, detail):
    make(toy)
    before = user_files(toy)
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stage 'combine' failed; the end of its log" in result.stdout
    [line] = [line for line in result.stdout.splitlines() if says in line]
    assert detail in line
    assert not (toy / "pipelines/output/total.json").exists()
    assert user_files(toy) == before


def test_a_run_py_that_calls_os_exit_as_it_is_read_does_not_end_descpipe(toy):
    edit(toy / "stages/combine/run.py", "import descpipe\n", "import descpipe, os\nos._exit(0)\n")
    result = descpipe("validate", FAN, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "descpipe: error: stages/combine/run.py:2: importing failed: SystemExit: 0; guard the entry point with "
        "`if __name__ == '__main__': Stage.main()`"]


# --- 1. descpipe writes only what it owns: settings refused before anything runs ---------------

def pipeline_edit(old: str, new: str) -> Callable[[Path], None]:
    return lambda root: edit(root / FAN, old, new)


def input_named(name: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / "pipelines" / name).write_text((root / "pipelines/numbers.txt").read_text())
        edit(root / FAN, "numbers: numbers.txt", f"numbers: {json.dumps(name)}")
    return make


FOLDER_SETTINGS = [
    ("basename is a path", pipeline_edit('basename: fan', 'basename: ../../x'), f"{FAN}:7",
     "pipeline.basename must be a name (letters, digits, '_' and '-', starting with a letter), got '../../x'"),
    ("basename holds a newline", pipeline_edit('basename: fan', 'basename: "fan\\nrm -rf ~"'), f"{FAN}:7",
     "pipeline.basename must be a name"),
    ("an input's name holds a tab", input_named("num\tbers.txt"), f"{FAN}:13",
     "input 'numbers': the path 'pipelines/num\\tbers.txt' holds a control character"),
    ("working is the pipeline's folder", pipeline_edit("working: work", "working: ."), f"{FAN}:10",
     "runtime.working (pipelines) holds the pipeline file (pipelines/fan.yaml), which a run could replace or "
     "delete: give runtime.working a folder of its own, such as working"),
    ("output holds an input", pipeline_edit("output: output", "output: ."), f"{FAN}:11",
     "runtime.output (pipelines) holds the pipeline file"),
    ("output is working", pipeline_edit("output: output", "output: work"), f"{FAN}:11",
     "runtime.working (pipelines/work) and runtime.output (pipelines/work) must be apart"),
    ("output inside working", pipeline_edit("output: output", "output: work/products"), f"{FAN}:11",
     "runtime.working (pipelines/work) and runtime.output (pipelines/work/products) must be apart, neither "
     "inside the other: give each its own folder, such as work and output"),
    ("working inside a stage's folder", pipeline_edit("working: work", "working: ../stages/split/work"), f"{FAN}:10",
     "runtime.working (stages/split/work) holds stage 'split''s folder"),
]


@pytest.mark.parametrize("case, make, where, says", FOLDER_SETTINGS, ids=[c[0] for c in FOLDER_SETTINGS])
def test_dangerous_settings_are_refused_before_anything_runs(toy, case, make, where, says):
    make(toy)
    before = user_files(toy)
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"descpipe: error: {where}: {says}"), line
    assert user_files(toy) == before
    assert not (toy / "pipelines/work").exists() and not (toy / "pipelines/output").exists()


def write(relative: str, text: str = "the user's own\n") -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return make


RUN_TARGETS = [
    ("a user's file named like a product", write("pipelines/output/total.json"), 2,
     "runtime.output already holds pipelines/output/total.json, which descpipe did not make: move it away, "
     "or give runtime.output another folder"),
    ("a user's folder named like the record's", write("pipelines/output/provenance/notes.txt"), 2,
     "runtime.output already holds pipelines/output/provenance, which descpipe did not make"),
    ("a user's file in the working folder", write("pipelines/work/notes.txt"), 2,
     "runtime.working pipelines/work holds files descpipe did not make (notes.txt), which a run could replace "
     "or delete: give runtime.working a new or empty folder"),
    ("a user's unrelated file in the output folder", write("pipelines/output/notes.txt"), 0, "finished in"),
]


@pytest.mark.engine
@pytest.mark.parametrize("case, make, status, says", RUN_TARGETS, ids=[c[0] for c in RUN_TARGETS])
def test_a_run_never_replaces_or_deletes_a_users_file(toy, case, make, status, says):
    make(toy)
    before = {**user_files(toy), **{str(p.relative_to(toy)): p.read_text() for p in toy.rglob("notes.txt")}}
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == status, result.stdout + result.stderr
    assert says in (result.stderr if status else result.stdout)
    if status:
        assert result.stderr.startswith(f"descpipe: error: {FAN}: ") and len(result.stderr.splitlines()) == 1
    after = {**user_files(toy), **{str(p.relative_to(toy)): p.read_text() for p in toy.rglob("notes.txt")}}
    assert {name: after.get(name) for name in before} == before


@pytest.mark.parametrize("args, says", [
    (("export", FAN, "-o", FAN), f"will not write {FAN}: it is the pipeline file; give another file name"),
    (("export", FAN, "-o", "wf.cwl", "--job", "pipelines/numbers.txt"),
     "will not write pipelines/numbers.txt: it is input 'numbers'; give another file name"),
    (("export", FAN, "-o", "wf.cwl", "--job", "wf.cwl"), "wf.cwl and wf.cwl are the same file"),
    (("export", FAN, "-o", "stages/split/wf.cwl"), "will not write stages/split/wf.cwl: it is inside stage 'split'"),
    (("local", FAN, FAN), f"will not write {FAN}: it is the pipeline file"),
    (("local", FAN, "pipelines/sum.yaml"), "it is config file 'config' of stage 'sum_evens'"),
])
def test_commands_never_write_over_the_users_files(toy, args, says):
    before = user_files(toy)
    result = descpipe(*args, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"descpipe: error: {says}"] or says in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert user_files(toy) == before


# --- 6. Products replace the last run's all or nothing ---------------------------------------

@pytest.mark.engine
def test_a_product_the_new_run_no_longer_makes_does_not_stay_looking_current(toy):
    assert descpipe("run", FAN, cwd=toy).returncode == 0
    output = toy / "pipelines/output"
    assert (output / "odd-numbers.txt").is_file()
    edit(toy / FAN, "  output: output\n", "  output: output\n  final: [total]\n")
    result = descpipe("run", FAN, "--resume", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in output.iterdir()) == ["logs", "provenance", "total.json"]
    recorded = json.loads((output / "provenance/run-record.json").read_text())["outputs"]
    assert sorted(name for name in recorded if not name.startswith("logs/")) == ["total.json"]


def test_a_rename_that_fails_half_way_puts_the_last_runs_products_back(tmp_path, monkeypatch):
    import os

    from descpipe import folders

    output = tmp_path / "output"
    (output / "provenance").mkdir(parents=True)
    (output / "provenance/run-record.json").write_text(json.dumps({"outputs": {"a.txt": {}, "b.txt": {}}}))
    for name in ("a.txt", "b.txt"):
        (output / name).write_text(f"old {name}\n")
    staged = {}
    for name in ("a.txt", "b.txt", "provenance"):
        staged[name] = tmp_path / "new" / name
        staged[name].parent.mkdir(exist_ok=True)
    staged["a.txt"].write_text("new a.txt\n")
    staged["b.txt"].write_text("new b.txt\n")
    staged["provenance"].mkdir()
    (staged["provenance"] / "run-record.json").write_text("{}")
    before = {str(p.relative_to(output)): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    real_rename = os.rename

    def rename(source, target):
        if Path(source) == staged["b.txt"]:
            raise OSError(28, "No space left on device", str(target))
        real_rename(source, target)

    monkeypatch.setattr(folders.os, "rename", rename)

    class Owner:
        file = tmp_path / "p.yaml"

    Owner.output = output
    with pytest.raises(folders.UserError, match="the last run's products are as they were"):
        folders.replace_products(Owner, staged)
    after = {str(p.relative_to(output)): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    assert after == before


# --- 2 and 3. Stages cannot change their inputs or code; what runs is what was recorded -----------

TAMPER = ("        import os\n"
          "        open(self.get_input_path('numbers'), 'a').write('1000\\n')\n"
          "        open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'note.txt'), 'w').write('x')\n")


@pytest.mark.engine
@pytest.mark.parametrize("container", ["none", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_stage_that_writes_to_its_input_and_code_changes_neither(toy, container):
    if container == "docker":
        assert descpipe("build", FAN, cwd=toy).returncode == 0
    edit(toy / "stages/split/run.py", "    def run(self):\n", "    def run(self):\n" + TAMPER)
    before = user_files(toy)
    result = descpipe("run", FAN, "--container", container, cwd=toy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert user_files(toy) == before, "the user's input and the stage's folder are as they were"
    assert not (toy / "stages/split/note.txt").exists()
    assert not (toy / "pipelines/output/total.json").exists()
    if container == "none":   # the stage wrote to descpipe's copies, and the run says so
        assert "descpipe: stage 'split' changed input 'numbers', in descpipe's copy " in result.stdout
        assert "your file pipelines/numbers.txt is unchanged; the run failed" in result.stdout
    else:                     # the container mounts them read-only: the stage itself fails
        assert "stage 'split' failed; the end of its log" in result.stdout
        assert "Read-only file system" in result.stdout
    # Without the tampering, the next run gives the right products from the user's files.
    edit(toy / "stages/split/run.py", TAMPER, "")
    again = descpipe("run", FAN, "--container", container, "--resume", cwd=toy)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == {"twos": 136, "ones": 48, "total": 184}


@pytest.mark.engine
def test_an_input_changed_during_a_run_is_not_reused_by_resume(toy):
    import subprocess
    import sys
    import time

    from conftest import REPO

    edit(toy / FAN, "sum_odds:\n  cores: 2\n", "sum_odds:\n  cores: 2\n  parameters: {sleep: 4}\n")
    numbers = toy / "pipelines/numbers.txt"
    original = numbers.read_bytes()
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    runner = subprocess.Popen([sys.executable, "-m", "descpipe", "run", FAN], cwd=toy, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    progress = toy / "pipelines/work/progress.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (progress.exists() and "stage sum_odds started" in progress.read_text()):
        time.sleep(0.1)
    numbers.write_text("2\n4\n")   # the user edits the input while the run is under way
    output, _ = runner.communicate(timeout=120)
    assert runner.returncode == 0, output
    record = json.loads((toy / "pipelines/output/provenance/run-record.json").read_text())
    assert record["inputs"]["numbers"]["checksum"] == "sha1$" + hashlib.sha1(original).hexdigest(), \
        "the record names the content the stages read"
    assert json.loads((toy / "pipelines/output/total.json").read_text())["total"] == 184

    resumed = descpipe("run", FAN, "--resume", cwd=toy)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "stage split started" in resumed.stdout, "the changed input's readers run again"
    # 2 and 4, scaled by 3, plus sum.yaml's offset 100; no odd numbers.
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == {"twos": 118, "ones": 0, "total": 118}


# --- 8. The engine pass-through: options after `--` -------------------------------------------

ENGINE_OPTIONS = [
    (("--outdir", "/tmp/descpipe-elsewhere"), 2,
     "descpipe: error: --outdir is an option descpipe gives cwltool itself: remove it from the engine options after --"),
    (("--cachedir=/tmp/descpipe-elsewhere",), 2, "descpipe: error: --cachedir is an option descpipe gives cwltool"),
    (("--print-deps",), 1, "descpipe: cwltool exited 0 but did not report the outputs descpipe asked it for"),
    (("--validate",), 1, "descpipe: cwltool exited 0 but did not report the outputs descpipe asked it for"),
]


@pytest.mark.engine
@pytest.mark.parametrize("options, status, says", ENGINE_OPTIONS, ids=[" ".join(c[0]) for c in ENGINE_OPTIONS])
def test_engine_options_cannot_make_a_run_lie_or_write_elsewhere(toy, options, status, says):
    before = user_files(toy)
    result = descpipe("run", FAN, "--", *options, cwd=toy)
    assert result.returncode == status, result.stdout + result.stderr
    assert says in (result.stderr if status == 2 else result.stdout)
    assert "Traceback" not in result.stderr
    assert not (toy / "pipelines/output/total.json").exists()
    assert not Path("/tmp/descpipe-elsewhere").exists()
    assert user_files(toy) == before


def test_whatever_the_engine_prints_its_outputs_are_read_or_refused(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from descpipe.runner import _products

    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                               lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                                   st.sampled_from(["class", "path", "location", "x.stdout", "File"]), inner,
                                   max_size=3), max_leaves=12)

    @settings(max_examples=300, derandomize=True, deadline=None)
    @given(st.one_of(st.text(max_size=40), json_values.map(json.dumps)))
    def read(printed):
        products = _products(printed, tmp_path)   # never an exception
        assert products is None or all(source.is_file() for source, _ in products.values())

    read()


@pytest.mark.parametrize("copy", [True, False], ids=["no container: copies", "container: the originals"])
def test_the_files_a_run_reads_are_checked_after_it(toy, copy):
    from descpipe.pipeline import load_pipeline
    from descpipe.snapshots import take_snapshot

    snapshot = take_snapshot(load_pipeline(toy / FAN), copy=copy)
    given = snapshot.pipeline.inputs["numbers"]
    assert (given != toy / FAN.replace("fan.yaml", "numbers.txt")) == copy
    assert snapshot.changed() == []
    (toy / "pipelines/numbers.txt").write_text("1\n")        # the user edits the original
    assert [read.what for read in snapshot.changed()] == ([] if copy else ["input 'numbers'"])
    if copy:
        given.write_text("1\n")                                # a stage writes to descpipe's copy
        assert [read.what for read in snapshot.changed()] == ["input 'numbers'"]
        again = take_snapshot(load_pipeline(toy / FAN), copy=True)
        assert again.pipeline.inputs["numbers"].read_text() == "1\n", "copied again from the changed original"
