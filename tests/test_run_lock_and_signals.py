"""One run per working folder, and signals that end the whole run: the real command line on the toy
pipeline, with the process table (/proc) checked for anything the run left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_checkout, descpipe

pytestmark = pytest.mark.engine

FAN = "pipelines/fan.yaml"
FORKS = "pipelines/forks.yaml"
EXPECTED_TOTAL = {"twos": 136, "ones": 48, "total": 184}   # as in test_run_toy


def slow(root: Path, seconds: float) -> Path:
    """Make sum_odds sleep `seconds` half-way through writing its output; return `root`."""
    fan = root / FAN
    text = fan.read_text()
    assert "sum_odds:\n  cores: 2" in text
    fan.write_text(text.replace("sum_odds:\n  cores: 2", f"sum_odds:\n  cores: 2\n  parameters: {{sleep: {seconds}}}"))
    return root


def start(root: Path, pipeline: str = FAN, *args: str) -> subprocess.Popen[str]:
    """`descpipe run` in the background, as a batch system or supervisor starts it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "descpipe", "run", pipeline, *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, runner: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert runner.poll() is None, f"descpipe ended before {what}: {runner.communicate()}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def progress_says(root: Path, text: str, working: str = "work") -> bool:
    log = root / "pipelines" / working / "progress.log"
    return log.exists() and text in log.read_text()


def mid_stage(root: Path) -> bool:
    """sum_odds has written the first half of its output and is sleeping."""
    return progress_says(root, "stage sum_odds started") and any(
        p.read_text() == "4" for p in (root / "pipelines/work/cache").glob("*/odd-sum.txt"))


def start_time(pid: int) -> str | None:
    """A process's start time (with its pid, it names one process), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return None if fields[0] in "ZX" else fields[19]


def below(pid: int) -> dict[int, str]:
    """The live descendants of `pid`, each with its start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rfind(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if (started := start_time(child)) is not None:
                found[child] = started
                todo.append(child)
    return found


def mentioning(root: Path) -> dict[int, str]:
    """Live processes whose command line names a path under `root` (engine, stages: this test's alone)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(root) in command and start_time(int(entry.name)) is not None:
                found[int(entry.name)] = command
    return found


def alive(processes: dict[int, str]) -> dict[int, str]:
    """Those of `processes` (pid: start time) still running."""
    return {pid: started for pid, started in processes.items() if start_time(pid) == started}


def kill_leftovers(root: Path, *known: dict[int, str]) -> None:
    """After a test, whatever happened: SIGKILL this test's processes, so none outlives it."""
    for processes in known:
        for pid in alive(processes):
            os.kill(pid, signal.SIGKILL)
    for pid in mentioning(root):
        os.kill(pid, signal.SIGKILL)


def products(output: Path) -> dict[str, bytes]:
    """Every file in an output folder but its run record, by relative path."""
    return {str(path.relative_to(output)): path.read_bytes() for path in sorted(output.rglob("*"))
            if path.is_file() and "provenance" not in path.parts}


def files(folder: Path) -> dict[str, int]:
    """Every file and folder under `folder` with its modification time."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


def test_a_second_run_is_refused_naming_the_first_and_changes_nothing_of_it(toy):
    first = start(slow(toy, 5))
    try:
        wait_for(lambda: mid_stage(toy), "sum_odds was half-way", first)
        working = toy / "pipelines/work"
        before = {name: stamp for name, stamp in files(working).items()
                  if name.startswith(("cache", "tmp", "fan.")) and not name.endswith(".log")}
        record = json.loads((working / ".descpipe.lock").read_text())

        second = descpipe("run", FAN, cwd=toy)
        assert second.returncode == 2 and second.stdout == ""
        assert second.stderr == (f"descpipe: error: {FAN}: another descpipe run (pid {first.pid}, started "
                                 f"{record['started']}) is using the working folder pipelines/work: wait for it "
                                 "to end, or give this pipeline its own runtime.working\n")
        # Nor does a run of another pipeline sharing the working folder, nor --resume, get in.
        assert descpipe("run", FAN, "--resume", cwd=toy).returncode == 2
        assert {name: stamp for name, stamp in files(working).items() if name in before} == before, \
            "the refused run changed nothing of the first's export, cache or job folders"

        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
        assert json.loads((toy / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL
        assert (working / ".descpipe.lock").read_text() == "", "released when the run ended"
        assert descpipe("run", FAN, "--resume", cwd=toy).returncode == 0, "and the next run may start"
    finally:
        first.kill()
        kill_leftovers(toy)


def test_a_run_killed_with_sigkill_leaves_a_stale_lock_that_the_next_run_takes_over(toy):
    first = start(slow(toy, 30))
    engine: dict[int, str] = {}
    try:
        wait_for(lambda: mid_stage(toy), "sum_odds was half-way", first)
        engine = below(first.pid)   # cwltool and the stage
        assert len(engine) >= 2, engine
        first.send_signal(signal.SIGKILL)   # descpipe alone: no handler runs, the kernel drops its flock
        first.wait()

        fan = toy / FAN
        fan.write_text(fan.read_text().replace("{sleep: 30}", "{sleep: 0}"))
        again = descpipe("run", FAN, cwd=toy)
        assert again.returncode == 0, again.stdout + again.stderr
        takeover = again.stdout.splitlines()[0]
        assert takeover.startswith(f"descpipe: taking over the lock in pipelines/work that a killed run left "
                                   f"(pid {first.pid}, started ")
        assert "; that pid is gone" in takeover
        assert json.loads((toy / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL
        assert alive(engine) == {}, "the killed run's engine and stage were stopped, not left running"
    finally:
        first.kill()
        kill_leftovers(toy, engine)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The products of an uninterrupted run of the slow toy pipeline."""
    root = slow(copy_checkout(tmp_path_factory.mktemp("reference"), "tests/stages", "tests/pipelines") / "tests", 3)
    result = descpipe("run", FAN, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return products(root / "pipelines/output")


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_mid_stage_stops_everything_and_resume_then_matches_an_uninterrupted_run(toy, reference, number):
    runner = start(slow(toy, 3))
    engine: dict[int, str] = {}
    try:
        wait_for(lambda: mid_stage(toy), "sum_odds was half-way", runner)
        engine = below(runner.pid)
        assert len(engine) >= 2, engine
        sent = time.monotonic()
        runner.send_signal(number)
        out, err = runner.communicate(timeout=30)
        took = time.monotonic() - sent
        print(f"{number.name}: descpipe exited {took:.2f} s after the signal")
        assert runner.returncode == 128 + number, out + err
        assert took < 10
        assert out.splitlines()[-1].startswith(f"descpipe: fan stopped by {number.name} after ")
        assert alive(engine) == {} and mentioning(toy) == {}, "no engine or stage process is left"
        output = toy / "pipelines/output"
        assert not output.exists() or not any(output.iterdir()), "nothing was written into runtime.output"

        resumed = descpipe("run", FAN, "--resume", cwd=toy)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        record = json.loads((output / "provenance/run-record.json").read_text())["stages"]
        assert record["split"]["status"] == "reused" and record["sum_odds"]["status"] == "ran"
        assert products(output) == reference
    finally:
        runner.kill()
        kill_leftovers(toy, engine)


def test_with_toil_sigterm_stops_the_leader_and_its_workers_and_resume_restarts(toy, reference):
    toil = ("--engine", "toil", "--batch-system", "single_machine")
    runner = start(slow(toy, 3), FAN, *toil)
    engine: dict[int, str] = {}
    try:
        wait_for(lambda: progress_says(toy, "stage sum_odds started"), "Toil issued sum_odds", runner, seconds=120)
        time.sleep(1.5)   # its worker starts the stage
        engine = below(runner.pid)   # the leader, its workers and the stage
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=30)
        assert runner.returncode == 128 + signal.SIGTERM, out + err
        assert alive(engine) == {} and mentioning(toy) == {}, "no Toil or stage process is left"
        assert (toy / "pipelines/work/toil-jobstore").is_dir(), "the job store is kept for --resume"
        output = toy / "pipelines/output"
        assert not output.exists() or not any(output.iterdir())

        resumed = descpipe("run", FAN, *toil, "--resume", cwd=toy)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Toil restarts the unfinished run" in resumed.stdout
        ours = products(output)
        assert {name: data for name, data in ours.items() if not name.startswith("logs/")} == \
               {name: data for name, data in reference.items() if not name.startswith("logs/")}
    finally:
        runner.kill()
        kill_leftovers(toy, engine)


def forks(root: Path, sleep: float) -> Path:
    """Point forks.yaml's forker at a pids file and a sleep; return the pids file."""
    pids = root / "forked.pids"
    pipeline = root / FORKS
    pipeline.write_text(pipeline.read_text().replace("{pids: PIDS, sleep: 0}", f"{{pids: {pids}, sleep: {sleep}}}"))
    return pids


def forked(pids: Path) -> dict[int, str]:
    found = {int(pid): start_time(int(pid)) for pid in pids.read_text().split()}
    return {pid: started for pid, started in found.items() if started is not None}


def test_sigterm_stops_the_children_a_stage_forked_even_those_that_left_its_session(toy):
    pids = forks(toy, 30)
    runner = start(toy, FORKS)
    children: dict[int, str] = {}
    try:
        wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2
                 and progress_says(toy, "stage forker started", "work-forks"), "forker forked", runner)
        children = forked(pids)
        assert len(children) == 2, children
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=30)
        assert runner.returncode == 128 + signal.SIGTERM, out + err
        assert alive(children) == {} and mentioning(toy) == {}
    finally:
        runner.kill()
        kill_leftovers(toy, children)


def test_a_run_that_succeeds_stops_the_children_a_stage_left_running(toy):
    pids = forks(toy, 0)
    children: dict[int, str] = {}
    try:
        result = descpipe("run", FORKS, cwd=toy)
        children = forked(pids)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (toy / "pipelines/output-forks/count.txt").read_text() == "7\n"
        assert len(pids.read_text().split()) == 2 and children == {}, "no forked child outlives the run"
        assert mentioning(toy) == {}
    finally:
        kill_leftovers(toy, children)
