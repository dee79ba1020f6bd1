"""Run records and Workflow Run RO-Crates: what `descpipe run` records, checked against the files."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import descpipe

pytestmark = pytest.mark.engine

FAN = "pipelines/fan.yaml"
STAGES = ("split", "sum_evens", "sum_odds", "combine")


def digest(path: Path, algorithm: str = "sha1") -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def checksum(path: Path) -> str:
    """A file's checksum as CWL engines write it."""
    return "sha1$" + digest(path)


@pytest.fixture
def recorded(toy) -> Path:
    """The toy pipeline run with --provenance; returns its output folder."""
    result = descpipe("run", FAN, "--provenance", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run record in pipelines/output/provenance/run-record.json" in result.stdout
    return toy / "pipelines/output"


def test_run_record_says_what_ran_on_what_with_checksums_of_the_files(recorded, toy):
    folder = recorded / "provenance"
    record = json.loads((folder / "run-record.json").read_text())
    assert record["status"] == "success" and record["exit_status"] == 0
    assert record["engine"] == "cwltool" and record["container"] == "none"
    assert record["descpipe"] == descpipe("--version").stdout.split()[1]
    assert record["started"] <= record["finished"]
    # The exact documents the engine ran, and the pipeline file, beside the record.
    for name, original in (("fan.cwl", "pipelines/work/fan.cwl"), ("fan.job.yml", "pipelines/work/fan.job.yml"),
                           ("fan.yaml", FAN)):
        assert (folder / name).read_bytes() == (toy / original).read_bytes()
    assert list(record["stages"]) == list(STAGES)
    for name, stage in record["stages"].items():
        assert stage["status"] == "ran" and stage["exit_status"] == 0 and stage["started"] <= stage["finished"]
        assert stage["code"]["files"]["run.py"] == checksum(toy / "stages" / name / "run.py")
        assert stage["image_id"] is None, "no container: no image ran"
    assert record["stages"]["split"]["parameters"] == {"scale": 3}
    assert record["inputs"]["numbers"]["checksum"] == checksum(toy / "pipelines/numbers.txt")
    assert record["inputs"]["sum_evens.config"]["checksum"] == checksum(toy / "pipelines/sum.yaml")
    assert record["pipeline_file"]["checksum"] == checksum(toy / FAN)
    on_disk = sorted(str(p.relative_to(recorded)) for p in recorded.rglob("*")
                     if p.is_file() and "provenance" not in p.parts)
    assert sorted(record["outputs"]) == on_disk
    for name, entry in record["outputs"].items():
        assert entry["checksum"] == checksum(recorded / name) and entry["size"] == (recorded / name).stat().st_size


def test_provenance_gives_a_workflow_run_crate_matching_the_outputs(recorded):
    from rocrate.rocrate import ROCrate

    folder = recorded / "provenance/crate"
    crate = ROCrate(folder)
    assert {"https://w3id.org/ro/wfrun/workflow/0.1", "https://w3id.org/ro/wfrun/provenance/0.1"} <= {
        profile.id for profile in crate.root_dataset["conformsTo"]}
    workflow = crate.mainEntity
    assert "ComputationalWorkflow" in workflow.type
    actions = [e for e in crate.get_entities() if e.type == "CreateAction"]
    # One action for the workflow run and one for each stage, each naming what it ran: the
    # stage's tool, inline in its step of the workflow.
    instruments = sorted(action["instrument"].id for action in actions)
    assert instruments == sorted([workflow.id, *(f"{workflow.id}#main/{stage}/run/{stage}" for stage in STAGES)])
    # Every file a stage made is in the crate under its sha1, and that is the output file's sha1.
    products = {path.name: path for path in recorded.rglob("*") if path.is_file() and "provenance" not in path.parts}
    checked = set()
    for action in actions:
        for result in action.get("result", []):
            name = result.get("alternateName")
            if name in products:
                assert result["sha1"] == digest(products[name]) == digest(folder / result.id), name
                checked.add(name)
    # The crate names files by content: the empty stage logs are one entity, under one of their names.
    assert checked - {name for name, path in products.items() if not path.stat().st_size} == {
        "even-numbers.txt", "odd-numbers.txt", "even-sum.txt", "odd-sum.txt", "total.json", "sum_odds.out"}


def test_descpipe_provenance_summarises_a_run_for_a_person(recorded, toy):
    result = descpipe("provenance", "pipelines/output", cwd=toy)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("fan: success (exit status 0), ")
    for stage in STAGES:
        run_py = checksum(toy / "stages" / stage / "run.py")
        assert f"  {stage}: ran (exit status 0), " in text and f"{stage}/run.py {run_py}" in text
    assert f"numbers: {toy / 'pipelines/numbers.txt'} (14 bytes) {checksum(toy / 'pipelines/numbers.txt')}" in text
    assert f"total.json: {recorded / 'total.json'} (39 bytes) {checksum(recorded / 'total.json')}" in text
    assert "Workflow Run RO-Crate: pipelines/output/provenance/crate" in text


def test_descpipe_provenance_of_a_folder_without_a_record(tmp_path):
    result = descpipe("provenance", tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"descpipe: error: no run record in {tmp_path}: give the output (or working) "
                             "directory of a `descpipe run`, which holds provenance/run-record.json\n")
