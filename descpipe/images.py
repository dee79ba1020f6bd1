"""Stage images and the container runtimes that hold them: Docker and Podman command lines, the
records of what `descpipe build` (or push, or pull) made, the pins a run or an export uses, and
the file names Singularity looks for.

Docker and Podman take the same command lines for what descpipe needs (info, image inspect,
import, build, save), so one small class serves both; only how to start them differs. The ids of
the images built are recorded in `<runtime.working>/images.<runtime>.json`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .pipeline import Pipeline

# The container runtimes that build and hold images here (Singularity runs what Docker built).
BUILDERS = ("docker", "podman")


@dataclass(frozen=True)
class Pin:
    """The image a tool must run: the runtime's id for it, and its registry digest if pushed or pulled."""

    id: str
    digest: str | None = None

HOW_TO_START = {
    "docker": "start it, for example with `bash scripts/containers.sh` (dockerd with "
              "--iptables=false --bridge=none) or `systemctl start docker`",
    "podman": "install it (`apt-get install podman`); it needs no daemon",
}


@dataclass(frozen=True)
class ContainerRuntime:
    """A Docker-compatible command line: `docker` or `podman`."""

    name: str

    def check_running(self) -> None:
        """Raise a UserError saying how to start the engine if it does not answer."""
        if shutil.which(self.name) is None:
            raise UserError(f"{self.name} is not installed: {HOW_TO_START[self.name]}")
        result = subprocess.run([self.name, "info"], capture_output=True, text=True)
        if result.returncode:
            reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
            raise UserError(f"{self.name} is not running ({reason}): {HOW_TO_START[self.name]}")

    def image_id(self, reference: str) -> str | None:
        """The id of a local image (by name or id), or None when the engine has no such image."""
        result = subprocess.run([self.name, "image", "inspect", "--format", "{{.Id}}", reference],
                                capture_output=True, text=True)
        if result.returncode:
            return None
        return result.stdout.strip() or None

    def label(self, reference: str, key: str) -> str | None:
        """The value of label `key` on a local image, or None."""
        result = subprocess.run([self.name, "image", "inspect", "--format",
                                 f"{{{{index .Config.Labels \"{key}\"}}}}", reference],
                                capture_output=True, text=True)
        value = result.stdout.strip()
        return value if result.returncode == 0 and value not in ("", "<no value>") else None

    def build(self, context: Path, tag: str, build_args: dict[str, str], labels: dict[str, str],
              log: Path) -> subprocess.CompletedProcess[str]:
        """`build` with the host network (so RUN pip install reaches the package index)."""
        command = [self.name, "build", "--network", "host", "--tag", tag]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        with open(log, "w", encoding="utf-8") as out:
            return subprocess.run([*command, str(context)], stdout=out, stderr=subprocess.STDOUT, text=True)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `<engine> ARGS`, capturing what it prints."""
        return subprocess.run([self.name, *args], capture_output=True, text=True)

    def repo_digest(self, reference: str, repository: str) -> str | None:
        """The registry digest (`name@sha256:...`) of a local image in `repository`, once pushed or pulled."""
        result = self.run("image", "inspect", "--format", "{{json .RepoDigests}}", reference)
        digests = json.loads(result.stdout or "null") if result.returncode == 0 else None
        return next((d for d in digests or [] if d.split("@")[0] == repository), None)

    def import_tarball(self, tarball: Path, tag: str) -> None:
        """Import a root file system tarball as image `tag`."""
        subprocess.run([self.name, "import", str(tarball), tag], check=True, capture_output=True)


RUNTIMES = {name: ContainerRuntime(name) for name in BUILDERS}

ROOT_PODMAN_WRAPPER = """#!/bin/sh
# Written by descpipe. As root, podman refuses --userns=keep-id (it is for rootless podman),
# which cwltool passes to every `podman run`: drop that one option and pass on the rest.
for option in "$@"; do
    shift
    [ "$option" = "--userns=keep-id" ] || set -- "$@" "$option"
done
exec {podman} "$@"
"""


def engine_environment(container: str, working: Path) -> dict[str, str] | None:
    """The environment a CWL engine needs to run stages in `container`, or None for this process's own.

    Only root's Podman needs anything: a `podman` wrapper first on PATH (see ROOT_PODMAN_WRAPPER).
    """
    podman = shutil.which("podman")
    if container != "podman" or os.geteuid() != 0 or podman is None:
        return None
    wrapper = working.resolve() / "bin" / "podman"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(ROOT_PODMAN_WRAPPER.format(podman=podman), encoding="utf-8")
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{wrapper.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


# --- What was built: records and pins -------------------------------------------------------------

def record_path(pipeline: Pipeline, runtime: str) -> Path:
    """Where `descpipe build` records the image ids for container runtime `runtime`."""
    return pipeline.working / f"images.{runtime}.json"


def read_image_record(pipeline: Pipeline, runtime: str) -> dict[str, Any] | None:
    """What the last `descpipe build` (or `push`, or `pull`) recorded for `runtime`, or None."""
    path = record_path(pipeline, runtime)
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def image_record(pipeline: Pipeline, runtime: str) -> dict[str, Any]:
    """The image record of `runtime`; a UserError saying how to make one when there is none."""
    record = read_image_record(pipeline, runtime)
    if record is None:
        raise UserError(f"no images were built with {runtime} for {pipeline.file}: "
                        f"run `descpipe build {pipeline.file} --container {runtime}` first")
    return record


def write_image_record(pipeline: Pipeline, runtime: str, record: dict[str, Any]) -> None:
    """Replace the image record of `runtime` (see `read_image_record`)."""
    path = record_path(pipeline, runtime)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def pins(record: dict[str, Any]) -> dict[str, Pin]:
    """Stage -> the image an image record names."""
    return {stage: Pin(entry["id"], entry.get("digest")) for stage, entry in record["stages"].items()}


def read_pins(pipeline: Pipeline, runtime: str) -> dict[str, Pin] | None:
    """Stage -> the image recorded by the last build (or push, or pull) with `runtime`, or None."""
    record = read_image_record(pipeline, runtime)
    return None if record is None else pins(record)


def run_pins(pipeline: Pipeline, container: str) -> dict[str, Pin] | None:
    """The image ids a run in `container` must use, checked to exist; None with no container.

    Singularity runs convert the images Docker built (see `descpipe build --singularity`).
    """
    if container == "none":
        return None
    builder = "docker" if container == "singularity" else container
    runtime = RUNTIMES[builder]
    runtime.check_running()
    recorded = read_pins(pipeline, builder) or {}
    build = f"run `descpipe build {pipeline.file} --container {builder}`"
    for stage in pipeline.stages:
        if stage.name not in recorded:
            raise UserError(f"stage {stage.name!r} has no image built with {builder}: {build}")
        if runtime.image_id(recorded[stage.name].id) is None:
            raise UserError(f"stage {stage.name!r}: image {stage.image} ({recorded[stage.name].id[:19]}) is no "
                            f"longer in {builder}: {build}")
    return recorded


def repository(image: str) -> str:
    """`host:5000/owner/name` of `host:5000/owner/name:tag`."""
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def singularity_file_name(image: str) -> str:
    """The file name cwltool and Toil look for in `CWL_SINGULARITY_CACHE` for a DockerRequirement
    whose dockerImageId (or dockerPull) is `image` (cwl-utils' SingularityImagePuller naming)."""
    if ":" not in image:
        image += ":latest"
    return image.replace("_", "___").replace("/", "_s_") + ".sif"
