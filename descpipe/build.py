"""Build the stage images, offline: a Debian root file system, a base image, one image per stage.

No image registry is needed. The root file system comes from debootstrap (Debian bookworm,
minbase) and is imported into the container runtime once; the base image adds Python, numpy, ruamel.yaml
and descpipe's stage contract; each stage's Dockerfile builds `FROM` the base and adds what the
stage needs. An image is rebuilt only when its build context (or the base under it) changed:
each carries a label with the hash of what it was built from. The ids of the images built are
recorded (see images.py), and export and run use them to pin each stage's image.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import UserError
from .folders import claim_working
from .images import (
    RUNTIMES,
    ContainerRuntime,
    image_record,
    pins,
    read_image_record,
    repository,
    singularity_file_name,
    write_image_record,
)
from .pipeline import Pipeline

ROOTFS_IMAGE = "descpipe/bookworm-minbase:latest"
BASE_IMAGE = f"descpipe/base:{__version__}"
CONTEXT_LABEL = "org.descpipe.context"
LOG_TAIL_LINES = 20

# The stage contract inside every image. A virtual environment, because Debian's Python refuses
# pip installs into the system (PEP 668); descpipe's stage-side modules need only the standard
# library and ruamel.yaml, so the package is copied, not installed with its engine dependencies.
BASE_DOCKERFILE = """\
# descpipe base image: Python 3 with numpy, ruamel.yaml and descpipe's stage contract.
ARG ROOTFS
FROM ${ROOTFS}
# The build host's certificate authorities, so that pip here (and in every stage image built on
# this one) trusts what the host trusts, a site's TLS-inspecting proxy included.
COPY build-host-ca.crt /etc/ssl/certs/descpipe-build-host-ca.crt
ENV PIP_CERT=/etc/ssl/certs/descpipe-build-host-ca.crt
RUN python3 -m venv /opt/descpipe \\
 && /opt/descpipe/bin/pip install --no-cache-dir numpy==2.4.6 ruamel.yaml==0.19.1
ENV PATH=/opt/descpipe/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONPATH=/opt/descpipe-lib \\
    PYTHONDONTWRITEBYTECODE=1
COPY descpipe /opt/descpipe-lib/descpipe
"""

# The modules stages import (see stage.py): only these go into the images, so that a change
# elsewhere in descpipe does not rebuild every image.
STAGE_CONTRACT = ("__init__.py", "stage.py", "split.py", "filetypes.py")

# Where the host's trusted certificates are, in the order pip and OpenSSL look for them.
CA_BUNDLE_SOURCES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class BuiltImage:
    """A stage image as built: its name, the runtime's id for it, and whether this build made it."""

    stage: str
    image: str
    id: str
    rebuilt: bool


def build_images(pipeline: Pipeline, runtime_name: str, say: Callable[[str], None] = print) -> list[BuiltImage]:
    """Build (or reuse) the base and every stage image of `pipeline`; record their ids."""
    runtime = RUNTIMES[runtime_name]
    runtime.check_running()
    claim_working(pipeline)
    logs = pipeline.working / "build"
    logs.mkdir(parents=True, exist_ok=True)
    rootfs = pipeline.base_image or _rootfs_image(runtime, say)
    with tempfile.TemporaryDirectory(prefix="descpipe-base-") as context:
        package = Path(__file__).resolve().parent
        (Path(context) / "descpipe").mkdir()
        for module in STAGE_CONTRACT:
            shutil.copy(package / module, Path(context) / "descpipe" / module)
        (Path(context) / "Dockerfile").write_text(BASE_DOCKERFILE, encoding="utf-8")
        shutil.copy(_host_ca_bundle(), Path(context) / "build-host-ca.crt")
        base_id = _build(runtime, "base", Path(context), BASE_IMAGE, {"ROOTFS": rootfs}, logs, say,
                         f"the base image (FROM {rootfs})").id
    built = [_build(runtime, stage.name, stage.spec.directory, stage.image, {"BASE_IMAGE": base_id}, logs, say,
                    f"stage {stage.name!r} ({stage.spec.directory / 'Dockerfile'})")
             for stage in pipeline.stages]
    write_image_record(pipeline, runtime.name, {
        "runtime": runtime.name, "base": base_id,
        "stages": {image.stage: {"image": image.image, "id": image.id} for image in built}})
    return built


def push_images(pipeline: Pipeline, runtime_name: str, say: Callable[[str], None] = print) -> None:
    """Push each stage's built image under its name (the registry is the name's first part, as in
    `127.0.0.1:5000/owner/basename-stage:version`) and record the digest the registry gave it."""
    runtime = RUNTIMES[runtime_name]
    runtime.check_running()
    record = image_record(pipeline, runtime_name)
    for stage in pipeline.stages:
        entry = record["stages"][stage.name]
        # The name may have been retagged since the build: push exactly the recorded image.
        runtime.run("tag", entry["id"], stage.image)
        say(f"descpipe: {stage.name}: pushing {stage.image} ...")
        _registry_step(runtime, stage.name, "push", stage.image)
        entry["digest"] = runtime.repo_digest(stage.image, repository(stage.image))
    write_image_record(pipeline, runtime_name, record)


def pull_images(pipeline: Pipeline, runtime_name: str, say: Callable[[str], None] = print) -> None:
    """Pull each stage's image (by digest when one was recorded) and record the ids for pinning."""
    runtime = RUNTIMES[runtime_name]
    runtime.check_running()
    record = read_image_record(pipeline, runtime_name) or {"runtime": runtime_name, "stages": {}}
    for stage in pipeline.stages:
        reference = record["stages"].get(stage.name, {}).get("digest") or stage.image
        say(f"descpipe: {stage.name}: pulling {reference} ...")
        _registry_step(runtime, stage.name, "pull", reference)
        record["stages"][stage.name] = {"image": stage.image, "id": runtime.image_id(reference) or "",
                                        "digest": runtime.repo_digest(reference, repository(stage.image))}
    write_image_record(pipeline, runtime_name, record)


def _registry_step(runtime: ContainerRuntime, stage: str, verb: str, reference: str) -> None:
    result = runtime.run(verb, reference)
    if result.returncode:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise UserError(f"{verb} of stage {stage!r}'s image {reference} failed: {reason}")


def context_hash(directory: Path, build_args: dict[str, str]) -> str:
    """A hash of everything a build depends on: the files of its context and its build arguments."""
    digest = hashlib.sha256(json.dumps(build_args, sort_keys=True).encode())
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _build(runtime: ContainerRuntime, stage: str, context: Path, tag: str, build_args: dict[str, str],
           logs: Path, say: Callable[[str], None], description: str) -> BuiltImage:
    wanted = context_hash(context, build_args)
    if runtime.label(tag, CONTEXT_LABEL) == wanted:
        say(f"descpipe: {stage}: {tag} is up to date")
        return BuiltImage(stage, tag, runtime.image_id(tag) or "", rebuilt=False)
    say(f"descpipe: {stage}: building {tag} with {runtime.name} ...")
    started = time.monotonic()
    log = logs / f"{stage}.log"
    result = runtime.build(context, tag, build_args, {CONTEXT_LABEL: wanted}, log)
    if result.returncode:
        tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        raise UserError(f"building the image of {description} failed; the end of its build log ({log}):\n{tail}")
    image_id = runtime.image_id(tag) or ""
    say(f"descpipe: {stage}: built {tag} ({image_id[:19]}) in {time.monotonic() - started:.0f} s")
    return BuiltImage(stage, tag, image_id, rebuilt=True)


def _host_ca_bundle() -> Path:
    for variable in CA_BUNDLE_SOURCES:
        if os.environ.get(variable) and Path(os.environ[variable]).is_file():
            return Path(os.environ[variable])
    if SYSTEM_CA_BUNDLE.is_file():
        return SYSTEM_CA_BUNDLE
    raise UserError(f"no certificate bundle found for pip inside the images: set PIP_CERT or "
                    f"install ca-certificates ({SYSTEM_CA_BUNDLE})")


def _rootfs_image(runtime: ContainerRuntime, say: Callable[[str], None]) -> str:
    """The Debian root file system image, bootstrapped and imported on first use."""
    # By id, so that a re-imported root file system rebuilds the base on top of it.
    existing = runtime.image_id(ROOTFS_IMAGE)
    if existing:
        return existing
    tarball = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "descpipe" / "bookworm-minbase.tar"
    if not tarball.is_file():
        _debootstrap(tarball, say)
    say(f"descpipe: importing {tarball} into {runtime.name} as {ROOTFS_IMAGE}")
    runtime.import_tarball(tarball, ROOTFS_IMAGE)
    return runtime.image_id(ROOTFS_IMAGE) or ROOTFS_IMAGE


def _debootstrap(tarball: Path, say: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise UserError("the base image's root file system is made with debootstrap, as root: run "
                        "`bash scripts/containers.sh` and `descpipe build` as root once, or set "
                        "pipeline.base_image to an image your runtime can pull (such as python:3.11-slim)")
    say("descpipe: bootstrapping a Debian bookworm root file system (about a minute, once) ...")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="descpipe-rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        result = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip",
                                 "bookworm", str(rootfs), "http://deb.debian.org/debian"],
                                capture_output=True, text=True)
        if result.returncode:
            raise UserError(f"debootstrap failed: {(result.stdout + result.stderr).strip().splitlines()[-1]}")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.replace(tarball)


def singularity_images(pipeline: Pipeline, directory: Path, runtime_name: str,
                       say: Callable[[str], None] = print) -> None:
    """Make the SIF files in `directory`, or, with no apptainer/singularity here, print how."""
    commands = singularity_commands(pipeline, directory.resolve(), runtime_name)
    if not (shutil.which("apptainer") or shutil.which("singularity")):
        say(f"apptainer/singularity is not installed here; on a machine with it and {runtime_name}, "
            "these commands make the SIF files:")
        say(f"mkdir -p {shlex.quote(str(directory.resolve()))}")
        for command in commands:
            say(shlex.join(command))
        return
    directory.mkdir(parents=True, exist_ok=True)
    for command in commands:
        if subprocess.run(command).returncode:
            raise UserError(f"making SIF files failed at: {shlex.join(command)}")
    say(f"SIF files in {directory}: run with CWL_SINGULARITY_CACHE={directory.resolve()} "
        f"descpipe run {pipeline.file} --container singularity")


def singularity_commands(pipeline: Pipeline, directory: Path, runtime_name: str) -> list[list[str]]:
    """The commands that turn each built stage image into a SIF file in `directory`, named so that
    `CWL_SINGULARITY_CACHE=directory cwltool --singularity` finds it for the pinned export."""
    recorded = pins(image_record(pipeline, runtime_name))
    apptainer = shutil.which("apptainer") or shutil.which("singularity") or "apptainer"
    commands: list[list[str]] = []
    for stage in pipeline.stages:
        archive = directory / f"{stage.name}.tar"
        image_id = recorded[stage.name].id
        commands += [[runtime_name, "save", "--output", str(archive), image_id],
                     [apptainer, "build", "--force", str(directory / singularity_file_name(image_id)),
                      f"docker-archive://{archive}"],
                     ["rm", "-f", str(archive)]]
    return commands
