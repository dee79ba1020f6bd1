"""Stage images built offline, and the exported pipeline run in real Docker and Podman engines.

These tests need the engines that scripts/containers.sh installs and starts; when one does not
answer they fail, loudly, rather than skip.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import assert_same_products, copy_checkout, cwltool, descpipe, processes
from descpipe.images import engine_environment, singularity_file_name

MOCK = "pipelines/des-sv-mock.yaml"
FAN = "pipelines/fan.yaml"


def require(engine: str) -> None:
    if subprocess.run([engine, "info"], capture_output=True).returncode:
        pytest.fail(f"{engine} does not answer: run `bash scripts/containers.sh` (as root) first")


@pytest.fixture(scope="session")
def docker_built(examples) -> Path:
    require("docker")
    result = descpipe("build", MOCK, cwd=examples)
    assert result.returncode == 0, result.stdout + result.stderr
    return examples


def recorded_ids(root: Path, engine: str, working: str = "work/des-sv-mock") -> dict[str, str]:
    record = json.loads((root / working / f"images.{engine}.json").read_text())
    return {stage: entry["id"] for stage, entry in record["stages"].items()}


def export_pinned(root: Path, destination: Path, engine: str) -> Path:
    result = descpipe("export", MOCK, "-o", destination / "wf.cwl", "--pin", engine, cwd=root)
    assert result.returncode == 0, result.stderr
    document = YAML(typ="safe", pure=True).load((destination / "wf.cwl").read_text())
    pins = {tool["id"]: tool["hints"]["DockerRequirement"]["dockerImageId"]
            for tool in processes(document).values() if tool["class"] == "CommandLineTool"}
    assert pins == recorded_ids(root, engine), "each tool runs the image descpipe build made"
    return destination / "wf.cwl"


@pytest.mark.docker
def test_exported_pipeline_runs_in_docker_from_wf_and_job_alone(docker_built, tmp_path):
    wf = export_pinned(docker_built, tmp_path / "exported", "docker")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    result = cwltool("--outdir", "out", wf, wf.parent / "job.yml", cwd=run_dir)
    assert result.returncode == 0, result.stderr
    assert re.search(r"docker \\\n\s+run", result.stderr), "the stages really ran in docker"
    assert "--net=none" in result.stderr and "readonly" in result.stderr
    assert_same_products(run_dir / "out", docker_built / "output/des-sv-mock")


@pytest.mark.podman
def test_exported_pipeline_runs_in_podman(examples, tmp_path):
    require("podman")
    built = descpipe("build", MOCK, "--engine", "podman", cwd=examples)
    assert built.returncode == 0, built.stdout + built.stderr
    wf = export_pinned(examples, tmp_path / "exported", "podman")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    # As root (CI), Podman needs descpipe's wrapper that drops --userns=keep-id; rootless, nothing.
    env = engine_environment("podman", tmp_path) or os.environ
    result = subprocess.run(["cwltool", "--podman", "--outdir", "out", str(wf), str(wf.parent / "job.yml")],
                            cwd=run_dir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"podman \\\n\s+run", result.stderr), "the stages really ran in podman"
    assert_same_products(run_dir / "out", examples / "output/des-sv-mock")


@pytest.mark.docker
def test_descpipe_run_in_docker_names_its_products_like_the_plain_run(docker_built, tmp_path):
    root = copy_checkout(tmp_path, "images", "pipelines")
    assert descpipe("build", MOCK, cwd=root).returncode == 0
    result = descpipe("run", MOCK, "--container", "docker", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(container: docker)" in result.stdout
    assert_same_products(root / "output/des-sv-mock", docker_built / "output/des-sv-mock")
    log = (root / "output/des-sv-mock/logs/treecorr.out").read_text()
    assert log.count(" on 2 cores\n") == 6, "every bin pair ran on the 2 cores the container was given"
    # The run record names the exact image each stage ran in.
    record = json.loads((root / "output/des-sv-mock/provenance/run-record.json").read_text())
    assert {name: stage["image_id"] for name, stage in record["stages"].items()} == recorded_ids(root, "docker")


@pytest.mark.docker
def test_local_script_runs_the_example_in_docker(docker_built, tmp_path):
    root = copy_checkout(tmp_path, "images", "pipelines")
    assert descpipe("build", MOCK, cwd=root).returncode == 0
    script = tmp_path / "with space" / "run it.sh"
    written = descpipe("local", MOCK, script, cwd=root)
    assert written.returncode == 0, written.stderr
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert " -it " not in text and "--network none" in text
    for image_id in recorded_ids(root, "docker").values():
        assert image_id in text, "the script runs the pinned images"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_products(root / "output/des-sv-mock", docker_built / "output/des-sv-mock")


@pytest.mark.docker
def test_local_script_stops_at_a_failing_stage_and_shows_its_log(docker_built, toy):
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace("{labels: [twos, ones]}", "{labels: [twos, ones], fail: true}"))
    assert descpipe("build", FAN, cwd=toy).returncode == 0
    assert descpipe("local", FAN, "run.sh", cwd=toy).returncode == 0
    result = subprocess.run(["bash", "run.sh"], cwd=toy, capture_output=True, text=True)
    assert result.returncode == 1
    assert "stage combine failed" in result.stderr and "combine was asked to fail" in result.stderr
    assert not (toy / "pipelines/output/total.json").exists()


@pytest.mark.docker
def test_rebuild_skips_unchanged_images_and_changed_code_gets_a_new_pin(docker_built, toy):
    first = descpipe("build", FAN, cwd=toy)
    assert first.returncode == 0, first.stdout + first.stderr
    before = recorded_ids(toy, "docker", "pipelines/work")
    again = descpipe("build", FAN, cwd=toy)
    assert again.stdout.count("is up to date") == 5, again.stdout   # the base and four stages
    assert recorded_ids(toy, "docker", "pipelines/work") == before

    run_py = toy / "stages/sum_odds/run.py"
    run_py.write_text(run_py.read_text() + "# a change to the stage's code\n")
    rebuilt = descpipe("build", FAN, cwd=toy)
    assert "sum_odds: building" in rebuilt.stdout and rebuilt.stdout.count("is up to date") == 4
    after = recorded_ids(toy, "docker", "pipelines/work")
    assert after["sum_odds"] != before["sum_odds"]
    assert {k: v for k, v in after.items() if k != "sum_odds"} == \
        {k: v for k, v in before.items() if k != "sum_odds"}
    exported = descpipe("export", FAN, "-o", "out/wf.cwl", cwd=toy)
    assert f"dockerImageId: {after['sum_odds']}" in (toy / "out/wf.cwl").read_text()
    assert "images pinned to the ids in" in exported.stdout


@pytest.mark.docker
def test_failed_image_build_names_the_stage_and_shows_the_build_log(docker_built, toy):
    dockerfile = toy / "stages/sum_odds/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo 'no such package, sorry' && exit 3\n")
    result = descpipe("build", FAN, cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "building the image of stage 'sum_odds'" in result.stderr
    assert "no such package, sorry" in result.stderr, "the end of the build log is shown"


@pytest.mark.docker
def test_run_without_built_images_says_which_stage_and_how_to_build(docker_built, toy):
    result = descpipe("run", FAN, "--container", "docker", cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "stage 'split' has no image built with docker: run `descpipe build pipelines/fan.yaml" in result.stderr

    assert descpipe("build", FAN, cwd=toy).returncode == 0
    record = toy / "pipelines/work/images.docker.json"
    data = json.loads(record.read_text())
    data["stages"]["combine"]["id"] = "sha256:" + "0" * 64   # an image the engine no longer has
    record.write_text(json.dumps(data))
    result = descpipe("run", FAN, "--container", "docker", cwd=toy)
    assert result.returncode == 2
    assert "stage 'combine': image test/fan-combine:1.0 (sha256:000000000000) is no longer in docker" in result.stderr


@pytest.mark.docker
@pytest.mark.parametrize("command", [["build", FAN], ["run", FAN, "--container", "docker"]])
def test_no_docker_engine_says_how_to_start_one(docker_built, toy, command):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(["python3", "-m", "descpipe", *command], cwd=toy, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "docker is not running" in result.stderr and "bash scripts/containers.sh" in result.stderr


@pytest.mark.parametrize("image", ["sha256:0123abcd", "descpipe/des-sv-pz_stack:0.1", "python"])
def test_sif_names_are_the_ones_cwltool_looks_for(monkeypatch, tmp_path, image):
    from cwl_utils import image_puller

    monkeypatch.setattr(image_puller, "is_singularity_version_2_6", lambda: False)
    monkeypatch.setattr(image_puller, "is_singularity_version_3_or_newer", lambda: True)
    request = image if ":" in image else image + ":latest"   # as cwltool completes a bare name
    puller = image_puller.SingularityImagePuller(request, str(tmp_path), "singularity", False)
    assert singularity_file_name(image) == puller.find_destination_path().name


@pytest.mark.docker
def test_singularity_conversion_is_printed_when_apptainer_is_missing(docker_built, tmp_path):
    result = descpipe("build", MOCK, "--singularity", tmp_path / "sif", cwd=docker_built)
    assert result.returncode == 0, result.stderr
    assert "apptainer/singularity is not installed here" in result.stdout
    for stage, image_id in recorded_ids(docker_built, "docker").items():
        sif = tmp_path / "sif" / singularity_file_name(image_id)
        assert f"docker save --output {tmp_path / 'sif'}/{stage}.tar {image_id}" in result.stdout
        assert f"apptainer build --force {sif} docker-archive://{tmp_path / 'sif'}/{stage}.tar" in result.stdout


REGISTRY = "127.0.0.1:5000"


@pytest.fixture
def registry_toy(docker_built, toy) -> Path:
    """The toy pipeline with images named in the loopback registry that scripts/containers.sh starts."""
    import urllib.request

    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5)
    except OSError as e:
        pytest.fail(f"no registry answers at {REGISTRY} ({e}): run `bash scripts/containers.sh` first")
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace("  owner: test\n", f"  owner: {REGISTRY}/{toy.parent.name.lower()}\n"))
    assert descpipe("build", FAN, cwd=toy).returncode == 0
    return toy


@pytest.mark.docker
def test_push_records_digests_and_a_machine_without_the_images_pulls_exactly_them(registry_toy, tmp_path):
    toy = registry_toy
    pushed = descpipe("push", FAN, cwd=toy)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    record = json.loads((toy / "pipelines/work/images.docker.json").read_text())["stages"]
    assert all(entry["digest"].startswith(f"{entry['image'].rsplit(':', 1)[0]}@sha256:") for entry in record.values())
    assert descpipe("export", FAN, "-o", "out/wf.cwl", cwd=toy).returncode == 0
    exported = YAML(typ="safe", pure=True).load((toy / "out/wf.cwl").read_text())
    pins = {tool["id"]: tool["hints"]["DockerRequirement"] for tool in processes(exported).values() if "hints" in tool}
    assert pins == {stage: {"dockerPull": entry["digest"], "dockerImageId": entry["id"]}
                    for stage, entry in record.items()}

    # Forget the images locally, as on a new machine: cwltool pulls them by digest, ids unchanged.
    for entry in record.values():
        subprocess.run(["docker", "rmi", "--force", entry["id"]], check=True, capture_output=True)
    run = cwltool("--outdir", tmp_path / "out", toy / "out/wf.cwl", toy / "out/job.yml")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "out/total.json").read_text())["total"] == 184

    for entry in record.values():
        subprocess.run(["docker", "rmi", "--force", entry["id"]], check=True, capture_output=True)
    pulled = descpipe("pull", FAN, cwd=toy)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    again = json.loads((toy / "pipelines/work/images.docker.json").read_text())["stages"]
    assert {s: e["id"] for s, e in again.items()} == {s: e["id"] for s, e in record.items()}


@pytest.mark.docker
def test_push_to_an_unreachable_registry_names_the_stage(docker_built, toy):
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace("  owner: test\n", "  owner: 127.0.0.1:5999/nobody\n"))
    assert descpipe("build", FAN, cwd=toy).returncode == 0
    result = descpipe("push", FAN, cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "push of stage 'split''s image 127.0.0.1:5999/nobody/fan-split:1.0 failed" in result.stderr


@pytest.mark.docker
def test_base_image_from_the_pipeline_file_replaces_debootstrap(docker_built, toy):
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace(
        "  owner: test\n", "  owner: test\n  base_image: registry.invalid/python:3.11-slim\n"))
    result = descpipe("build", FAN, cwd=toy)
    assert result.returncode == 2
    assert "building the image of the base image (FROM registry.invalid/python:3.11-slim) failed" in result.stderr
    assert 'Get "https://registry.invalid/v2/"' in result.stderr, "the engine tried to fetch the named image"
