"""Running exported pipelines with Toil: on the one-node SLURM cluster that scripts/slurm.sh starts,
and on Toil's single_machine batch system. SLURM jobs are read back with `scontrol show job`
(the cluster keeps finished jobs for 10 minutes; accounting is off)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, assert_same_products, descpipe

FAN = "pipelines/fan.yaml"
FAN_STAGES = ("split", "sum_evens", "sum_odds", "combine")
# As in test_run_toy: the toy pipeline's products for numbers 1..7.
EXPECTED_TOTAL = {"twos": 136, "ones": 48, "total": 184}

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def slurm() -> None:
    """Fail (not skip) every SLURM test when the cluster is not up: CI must have started it."""
    try:
        state = subprocess.run(["sinfo", "--noheader", "--format", "%T"], capture_output=True, text=True,
                               timeout=60)
    except FileNotFoundError:
        pytest.fail("SLURM is not installed: run scripts/slurm.sh (as root)")
    if state.returncode != 0 or not {"idle", "mixed", "allocated"} & set(state.stdout.split()):
        pytest.fail(f"SLURM is not up (sinfo: {state.stdout.strip() or state.stderr.strip()}): run scripts/slurm.sh")


def slurm_jobs(newer_than: int = 0, submitted_from: Path | None = None) -> list[dict[str, str]]:
    """Every job SLURM still knows with an id above `newer_than`, as `scontrol show job` fields;
    with `submitted_from`, only those whose leader ran there (others may share the cluster)."""
    listing = subprocess.run(["scontrol", "--oneliner", "show", "job"], capture_output=True, text=True, check=True)
    jobs = [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in listing.stdout.splitlines() if "JobId=" in line]
    return [job for job in jobs if int(job["JobId"]) > newer_than
            and (submitted_from is None or job.get("WorkDir") == str(submitted_from))]


def newest_slurm_job() -> int:
    return max((int(job["JobId"]) for job in slurm_jobs()), default=0)


def stage_jobs(jobs: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """SLURM jobs by the stage they ran: Toil names them `toil_job_<n>_main.<stage>.<tool>`."""
    by_stage: dict[str, list[dict[str, str]]] = {}
    for job in jobs:
        match = re.fullmatch(r"toil_job_\d+_main\.([^.]+)\..*", job["JobName"])
        if match:
            by_stage.setdefault(match.group(1), []).append(job)
    return by_stage


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def fail_first_attempt(root: Path) -> Path:
    """Make combine fail on its first attempt only; returns the marker its first attempt leaves."""
    marker = root / "combine-failed-once"
    edit(root / FAN, "{labels: [twos, ones]}", f"{{labels: [twos, ones], fail_once: {marker}}}")
    return marker


# --- 1. The example pipeline on SLURM, through descpipe and through plain toil-cwl-runner --------

EXAMPLE_STAGES = ("mock_catalogs", "tomography", "pz_stack", "treecorr", "sacc_file")


@pytest.mark.slurm
def test_example_runs_on_slurm_one_job_per_stage_with_the_cwltool_products(slurm, examples, tmp_path):
    root = tmp_path / "checkout"
    for folder in ("images", "pipelines"):
        shutil.copytree(REPO / folder, root / folder)
    before = newest_slurm_job()
    result = descpipe("run", "pipelines/des-sv-mock.yaml", "--engine", "toil", "--batch-system", "slurm", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    output = root / "output/des-sv-mock"
    assert_same_products(output, examples / "output/des-sv-mock")
    jobs = stage_jobs(slurm_jobs(before, root))
    assert sorted(jobs) == sorted(EXAMPLE_STAGES) and all(len(j) == 1 for j in jobs.values()), jobs
    assert all(job["JobState"] == "COMPLETED" for [job] in jobs.values())
    # The example's treecorr stage asks for 2 cores (cores: 2 in the pipeline file).
    assert jobs["treecorr"][0]["NumCPUs"] == "2"
    for stage in EXAMPLE_STAGES:
        assert (output / "logs" / f"{stage}.out").is_file() and (output / "logs" / f"{stage}.err").is_file()
    assert "3 bins of equal number in Z_MEAN" in (output / "logs/tomography.out").read_text()
    assert not (root / "work/des-sv-mock/toil-jobstore").exists(), "Toil removes the job store of a finished run"


@pytest.mark.slurm
def test_plain_toil_cwl_runner_runs_the_exported_example_on_slurm(slurm, examples, tmp_path):
    """The exports in cwl/ need no descpipe: Toil's own command runs them through SLURM."""
    before = newest_slurm_job()
    run = subprocess.run([sys.executable, "-c", "import sys; from toil.cwl.cwltoil import main; sys.exit(main())",
                          "--batchSystem", "slurm", "--jobStore", str(tmp_path / "jobstore"), "--no-container",
                          "--outdir", str(tmp_path / "out"),
                          str(REPO / "cwl/des-sv-mock.cwl"), str(REPO / "cwl/des-sv-mock.job.yml")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_products(tmp_path / "out", examples / "output/des-sv-mock")
    assert sorted(stage_jobs(slurm_jobs(before, tmp_path))) == sorted(EXAMPLE_STAGES)


# --- 2 and 3. Retries, resources and MPI on SLURM --------------------------------------------

@pytest.fixture(scope="module")
def fan_on_slurm(slurm, tmp_path_factory):
    """The toy pipeline on SLURM with sizes on sum_odds and combine failing its first attempt."""
    root = tmp_path_factory.mktemp("fan-slurm")
    shutil.copytree(REPO / "tests/stages", root / "stages")
    shutil.copytree(REPO / "tests/pipelines", root / "pipelines")
    fail_first_attempt(root)
    edit(root / FAN, "sum_odds:\n  cores: 2\n", "sum_odds:\n  cores: 2\n  memory_mb: 300\n  minutes: 5\n")
    before = newest_slurm_job()
    result = descpipe("run", FAN, "--engine", "toil", "--batch-system", "slurm", "--retries", "1", cwd=root)
    return root, result, stage_jobs(slurm_jobs(before, root))


@pytest.mark.slurm
def test_a_stage_failing_its_first_attempt_is_retried(fan_on_slurm):
    root, result, jobs = fan_on_slurm
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((root / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL
    assert [job["JobState"] for job in jobs["combine"]] == ["FAILED", "COMPLETED"], "two SLURM jobs: the retry"
    assert all(len(jobs[stage]) == 1 for stage in ("split", "sum_evens", "sum_odds"))
    # The failed first attempt is reported as a retry, not as the stage failing.
    assert "stage combine retrying" in result.stdout and "stage combine failed" not in result.stdout
    assert "stage combine finished" in result.stdout
    record = json.loads((root / "pipelines/output/provenance/run-record.json").read_text())
    assert record["stages"]["combine"]["status"] == "ran" and record["stages"]["combine"]["exit_status"] == 0


@pytest.mark.slurm
def test_stage_resources_are_what_slurm_allocated(fan_on_slurm):
    root, result, jobs = fan_on_slurm
    assert result.returncode == 0, result.stdout + result.stderr
    [sum_odds] = jobs["sum_odds"]
    assert (sum_odds["NumCPUs"], sum_odds["MinMemoryNode"], sum_odds["TimeLimit"]) == ("2", "300M", "00:05:00")
    [split] = jobs["split"]
    assert split["NumCPUs"] == "1"
    # ...and the stage used what it was given.
    assert (root / "pipelines/output/logs/sum_odds.out").read_text() == \
        "4 odd numbers on 2 cores, OMP_NUM_THREADS=2\n"


@pytest.mark.slurm
def test_progress_and_logs_of_a_toil_run(fan_on_slurm):
    root, result, _ = fan_on_slurm
    logs = root / "pipelines/output/logs"
    assert f"stage logs will be in {Path('pipelines/output/logs')}" in result.stdout
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"{s}.{e}" for s in FAN_STAGES for e in ("out", "err"))
    progress = (root / "pipelines/work/progress.log").read_text()
    for stage in FAN_STAGES:
        assert re.search(rf"^descpipe: \[toil +[\d.]+ s\] stage {stage} started$", progress, re.M), progress
        assert re.search(rf"^descpipe: \[toil +[\d.]+ s\] stage {stage} finished after [\d.]+ s$", progress, re.M)
    assert progress.strip() == result.stdout.strip(), "the terminal shows the same lines as the log"


@pytest.mark.slurm
def test_mpi_stage_runs_on_two_ranks_in_one_two_core_slurm_job(slurm, toy):
    before = newest_slurm_job()
    result = descpipe("run", "pipelines/mpi.yaml", "--engine", "toil", "--batch-system", "slurm", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((toy / "pipelines/output-mpi/mpi-sum.json").read_text()) == {"ranks": 2, "sum": 16}
    ranks = (toy / "pipelines/output-mpi/logs/mpi_sum.out").read_text().splitlines()
    assert sorted(ranks) == ["rank 0 of 2, OMP_NUM_THREADS=1", "rank 1 of 2, OMP_NUM_THREADS=1"]
    [job] = stage_jobs(slurm_jobs(before, toy))["mpi_sum"]
    assert job["NumCPUs"] == "2"


def test_mpi_stage_runs_on_two_ranks_under_cwltool(toy):
    result = descpipe("run", "pipelines/mpi.yaml", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((toy / "pipelines/output-mpi/mpi-sum.json").read_text()) == {"ranks": 2, "sum": 16}


# --- 2 and 4. A failed run, its job store, and --restart (single_machine) ---------------------

@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """The toy pipeline on Toil's single_machine with no retries, combine failing its first attempt."""
    root = tmp_path_factory.mktemp("fan-restart")
    shutil.copytree(REPO / "tests/stages", root / "stages")
    shutil.copytree(REPO / "tests/pipelines", root / "pipelines")
    fail_first_attempt(root)
    result = descpipe("run", FAN, "--engine", "toil", "--batch-system", "single_machine", "--retries", "0", cwd=root)
    return root, result


def test_with_retries_off_the_run_fails_naming_the_stage_and_its_log(failed_run):
    root, result = failed_run
    assert result.returncode == 1, "Toil's exit status is passed on"
    assert "stage 'combine' failed; the end of its log (" in result.stdout
    assert "RuntimeError: combine was asked to fail on its first attempt" in result.stdout
    assert "Traceback" not in result.stderr
    assert not (root / "pipelines/output/total.json").exists()
    assert (root / "pipelines/work/toil-jobstore").is_dir(), "the job store is kept for --restart"


def test_a_job_store_left_by_another_pipeline_is_refused(failed_run):
    root, _ = failed_run
    other = root / "pipelines/other.yaml"
    other.write_text((root / FAN).read_text().replace("basename: fan", "basename: other"))
    result = descpipe("run", "pipelines/other.yaml", "--engine", "toil", cwd=root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"descpipe: error: pipelines/other.yaml: the Toil job store pipelines/work/toil-jobstore was left by a "
        f"run of {(root / FAN).resolve()}: give this pipeline its own runtime.working, or delete that folder"]


def test_running_again_without_restart_is_refused(failed_run):
    root, _ = failed_run
    result = descpipe("run", FAN, "--engine", "toil", cwd=root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "holds an unfinished run of this pipeline: add --restart (or --resume) to finish it" in result.stderr


def test_restart_finishes_the_run_without_rerunning_finished_stages(failed_run):
    root, _ = failed_run
    result = descpipe("run", FAN, "--engine", "toil", "--restart", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((root / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL
    # Toil's log of the restarted run issues a job for combine only.
    issued = re.findall(r"Issued job 'CWLJob' main\.([^.]+)\.", (root / "pipelines/work/toil.log").read_text())
    assert issued == ["combine"]
    assert re.findall(r"stage (\S+) started", result.stdout) == ["combine"]
    logs = root / "pipelines/output/logs"
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"{s}.{e}" for s in FAN_STAGES for e in ("out", "err"))
    assert not (root / "pipelines/work/toil-jobstore").exists()


def test_restart_with_nothing_to_restart_is_a_clear_error(toy):
    result = descpipe("run", FAN, "--engine", "toil", "--restart", cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing to restart: there is no Toil job store at pipelines/work/toil-jobstore" in result.stderr


# --- 4. Bad input: each one clear line, exit status 2, before any stage runs -----------------

def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("descpipe: error: ")
    return line


def test_slurm_not_reachable(toy):
    # A slurm.conf naming a port where no controller listens: SLURM's own commands cannot reach it.
    dead = toy / "dead-slurm.conf"
    dead.write_text("ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\nAuthType=auth/munge\n"
                    "NodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES\n")
    line = one_line_error(descpipe("run", FAN, "--engine", "toil", "--batch-system", "slurm", cwd=toy,
                                   env={"SLURM_CONF": str(dead)}))
    assert line.startswith(f"descpipe: error: {FAN}: SLURM is not reachable (sinfo: ")
    assert "start it (scripts/slurm.sh sets up one node here) or choose --batch-system single_machine" in line


@pytest.mark.parametrize("option, value, says", [
    ("--batch-system", "slurn", "unknown batch system 'slurn' (Toil knows: aws_batch, single_machine, "),
    ("--time", "soon", "time limit 'soon' is not one SLURM reads: write [DAYS-]HOURS:MINUTES:SECONDS"),
])
def test_unknown_batch_system_or_time_on_the_command_line(toy, option, value, says):
    line = one_line_error(descpipe("run", FAN, "--engine", "toil", option, value, cwd=toy))
    assert line.startswith(f"descpipe: error: {says}")


@pytest.mark.slurm
def test_a_stage_asking_for_more_cores_than_a_slurm_node_has(slurm, toy):
    edit(toy / FAN, "sum_odds:\n  cores: 2\n", "sum_odds:\n  cores: 64\n")
    line = one_line_error(descpipe("run", FAN, "--engine", "toil", "--batch-system", "slurm", cwd=toy))
    assert line.startswith(f"descpipe: error: {FAN}:19: stage 'sum_odds' asks for 64 cores, but a node of "
                           "SLURM partition 'debug' has at most ")
    assert line.endswith(": lower 'cores'")


def test_a_stage_asking_for_more_memory_than_this_machine_has(toy):
    edit(toy / FAN, "sum_odds:\n  cores: 2\n", "sum_odds:\n  cores: 2\n  memory_mb: 99000000\n")
    line = one_line_error(descpipe("run", FAN, "--engine", "toil", cwd=toy))
    assert line.startswith(f"descpipe: error: {FAN}:20: stage 'sum_odds' asks for 99000000 MB of memory, "
                           "but this machine has at most ")


@pytest.mark.slurm
def test_an_unknown_slurm_partition(slurm, toy):
    line = one_line_error(descpipe("run", FAN, "--engine", "toil", "--batch-system", "slurm",
                                   "--partition", "gpu", cwd=toy))
    assert "SLURM has no partition 'gpu' (partitions: debug)" in line


def test_toil_settings_with_cwltool_are_refused(toy):
    edit(toy / FAN, "runtime:\n", "runtime:\n  batch-system: slurm\n")
    line = one_line_error(descpipe("run", FAN, cwd=toy))
    assert line == (f"descpipe: error: {FAN}:10: batch-system is a Toil setting: run with --engine toil "
                    "(or set runtime.engine: toil)")


def test_runtime_section_chooses_toil_and_its_batch_system(toy):
    """runtime.engine and runtime.batch-system alone make `descpipe run` use Toil on single_machine."""
    edit(toy / FAN, "runtime:\n", "runtime:\n  engine: toil\n  batch-system: single_machine\n  retries: 0\n")
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "with toil (container: none)" in result.stdout
    assert json.loads((toy / "pipelines/output/total.json").read_text()) == EXPECTED_TOTAL
    assert (toy / "pipelines/work/toil.log").is_file()
