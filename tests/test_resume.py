"""Resuming runs with cwltool's job cache: what reruns after a change, after a kill, after a failure.

Which stages ran is read from the run record (its per-stage status comes from cwltool's log,
which says "Using cached output" for a reused stage) and checked against that log.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_checkout, descpipe

pytestmark = pytest.mark.engine

FAN = "pipelines/fan.yaml"
STAGES = ("split", "sum_evens", "sum_odds", "combine")
EXPECTED_TOTAL = {"twos": 136, "ones": 48, "total": 184}   # as in test_run_toy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def run(root: Path, *args: str) -> dict[str, str]:
    """Run the toy pipeline; return each stage's status in this run's record."""
    result = descpipe("run", FAN, *args, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return statuses(root / "pipelines/output")


def statuses(folder: Path) -> dict[str, str]:
    return {name: stage["status"] for name, stage in stages(folder).items()}


def stages(folder: Path) -> dict[str, dict]:
    """The stages in the run record of the run whose output (or working) folder is `folder`."""
    return json.loads((folder / "provenance/run-record.json").read_text())["stages"]


def reused_in_log(root: Path) -> set[str]:
    """The stages cwltool's own log says it took from its cache."""
    log = (root / "pipelines/work/cwltool.log").read_text()
    return set(re.findall(r"\[job (\w+)\] Using cached output", log))


def ran(stages: dict[str, str]) -> set[str]:
    assert set(stages.values()) <= {"ran", "reused"}, stages
    return {name for name, status in stages.items() if status == "ran"}


def test_a_change_reruns_exactly_that_stage_and_what_follows_it(toy):
    assert ran(run(toy)) == set(STAGES)
    assert ran(run(toy, "--resume")) == set(), "nothing changed: every stage is reused"
    assert reused_in_log(toy) == set(STAGES)

    # A parameter of sum_odds: sum_odds and combine (which reads its output) run again.
    edit(toy / FAN, "sum_odds:\n  cores: 2", "sum_odds:\n  cores: 2\n  parameters: {sleep: 0.01}")
    assert ran(run(toy, "--resume")) == {"sum_odds", "combine"}
    assert reused_in_log(toy) == {"split", "sum_evens"}

    # sum_evens' config file: sum_evens and combine, with the new offset in the product.
    edit(toy / "pipelines/sum.yaml", "100", "200")
    assert ran(run(toy, "--resume")) == {"sum_evens", "combine"}
    assert json.loads((toy / "pipelines/output/total.json").read_text())["total"] == 284

    # The stage's code: a comment in run.py is enough, since cwltool hashes every file of the
    # stage's directory (the tool's `code` input).
    edit(toy / "stages/split/run.py", "import descpipe", "import descpipe  # edited")
    assert ran(run(toy, "--resume")) == set(STAGES)
    edit(toy / "stages/combine/run.py", "import descpipe", "import descpipe  # edited")
    assert ran(run(toy, "--resume")) == {"combine"}

    # runtime.resume in the pipeline file does what --resume does; without either, all run.
    assert ran(run(toy)) == set(STAGES)
    edit(toy / FAN, "runtime:\n", "runtime:\n  resume: true\n")
    assert ran(run(toy)) == set()


def test_runtime_resume_must_be_a_boolean(toy):
    edit(toy / FAN, "runtime:\n", "runtime:\n  resume: yes please\n")
    result = descpipe("validate", FAN, cwd=toy)
    assert result.returncode == 2
    assert result.stderr == "descpipe: error: pipelines/fan.yaml:10: runtime.resume must be true or false, " \
                            "got 'yes please'\n"


def products(output: Path) -> dict[str, bytes]:
    """Every file a run left in an output folder but its run record, by relative path."""
    return {str(path.relative_to(output)): path.read_bytes() for path in sorted(output.rglob("*"))
            if path.is_file() and "provenance" not in path.parts}


SLOW = "sum_odds:\n  cores: 2\n  parameters: {sleep: 6}"


def test_a_killed_run_resumes_to_the_same_products_without_rerunning_finished_stages(tmp_path):
    reference = copy_checkout(tmp_path / "reference", "tests/stages", "tests/pipelines") / "tests"
    edit(reference / FAN, "sum_odds:\n  cores: 2", SLOW)
    run(reference)

    toy = copy_checkout(tmp_path / "killed", "tests/stages", "tests/pipelines") / "tests"
    edit(toy / FAN, "sum_odds:\n  cores: 2", SLOW)
    runner = subprocess.Popen([sys.executable, "-m", "descpipe", "run", FAN], cwd=toy, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill the runner, cwltool and the stage once sum_odds has written the first half of its output
    # and the runner has reported it started (so its progress log tells what had finished before).
    progress = toy / "pipelines/work/progress.log"
    half_written = None
    deadline = time.monotonic() + 120
    while half_written is None and time.monotonic() < deadline and runner.poll() is None:
        if progress.exists() and "stage sum_odds started" in progress.read_text():
            half_written = next((p for p in (toy / "pipelines/work/cache").glob("*/odd-sum.txt")
                                 if p.read_text() == "4"), None)
        time.sleep(0.1)
    assert half_written is not None, "sum_odds never started writing its output"
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    finished_before = set(re.findall(r"stage (\w+) finished", progress.read_text()))
    assert "split" in finished_before and "sum_odds" not in finished_before

    # The kill left a truncated file in the cache, and nothing under a final name in the output.
    assert half_written.read_text() == "4"
    output = toy / "pipelines/output"
    assert products(output) == {} and not (output / "provenance").exists()

    resumed = run(toy, "--resume")
    assert {name for name, status in resumed.items() if status == "reused"} == finished_before
    assert ran(resumed) == set(STAGES) - finished_before
    assert products(output) == products(reference / "pipelines/output")
    assert json.loads((output / "total.json").read_text()) == EXPECTED_TOTAL


def test_a_failed_run_leaves_the_products_of_the_last_good_run_untouched(toy):
    run(toy)
    output = toy / "pipelines/output"
    before = products(output)
    # New values in every stage's outputs, and combine fails: the stages before it succeed.
    edit(toy / FAN, "parameters: {scale: 3}", "parameters: {scale: 5}")
    edit(toy / FAN, "{labels: [twos, ones]}", "{labels: [twos, ones], fail: true}")
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 1
    assert f"nothing was put in {Path('pipelines/output')}" in result.stdout
    assert products(output) == before, "no product of the failed run reached the output folder"
    assert json.loads((output / "total.json").read_text()) == EXPECTED_TOTAL
    assert not (output / ".incoming").exists()
    # The failed run's record is in the working folder; the output's still describes its products.
    assert statuses(toy / "pipelines/work") == {"split": "ran", "sum_evens": "ran", "sum_odds": "ran",
                                                 "combine": "failed"}
    assert stages(toy / "pipelines/work")["combine"]["exit_status"] == 1
    assert set(statuses(output).values()) == {"ran"}

    # Fixed, and resumed: only the failed stage runs, with the new values.
    edit(toy / FAN, "{labels: [twos, ones], fail: true}", "{labels: [twos, ones]}")
    assert ran(run(toy, "--resume")) == {"combine"}
    assert json.loads((output / "total.json").read_text())["ones"] == 80   # 5 * (1+3+5+7)


def test_with_toil_resume_restarts_a_failed_run_and_otherwise_runs_everything(toy):
    toil = ("--engine", "toil", "--batch-system", "single_machine", "--retries", "0")
    marker = toy / "combine-failed-once"
    edit(toy / FAN, "{labels: [twos, ones]}", f"{{labels: [twos, ones], fail_once: {marker}}}")
    assert descpipe("run", FAN, *toil, cwd=toy).returncode == 1
    failed = stages(toy / "pipelines/work")["combine"]
    assert failed["status"] == "failed" and failed["exit_status"] == 1

    result = descpipe("run", FAN, *toil, "--resume", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "descpipe: resuming: Toil restarts the unfinished run in pipelines/work/toil-jobstore" in result.stdout
    assert statuses(toy / "pipelines/output") == {"split": "reused", "sum_evens": "reused", "sum_odds": "reused",
                                                   "combine": "ran"}
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL

    # A finished Toil run leaves no job store, and Toil keeps no outputs: every stage runs again.
    result = descpipe("run", FAN, *toil, "--resume", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "so every stage runs" in result.stdout
    assert ran(statuses(toy / "pipelines/output")) == set(STAGES)


def test_provenance_with_toil_is_refused_before_anything_runs(toy):
    result = descpipe("run", FAN, "--engine", "toil", "--provenance", cwd=toy)
    assert result.returncode == 2
    assert result.stderr == ("descpipe: error: --provenance needs cwltool: run with --engine "
                             "cwltool (every run, Toil's too, writes its run record)\n")
    assert not (toy / "pipelines/work/toil-jobstore").exists()
