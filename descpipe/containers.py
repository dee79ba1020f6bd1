"""The container engines descpipe builds images with and checks before a run: Docker and Podman.

Both take the same command lines for what descpipe needs (info, image inspect, import, build,
save), so one small class serves both; only how to start them differs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import UserError

HOW_TO_START = {
    "docker": "start it, for example with `bash scripts/containers.sh` (dockerd with "
              "--iptables=false --bridge=none) or `systemctl start docker`",
    "podman": "install it (`apt-get install podman`); it needs no daemon",
}


@dataclass(frozen=True)
class ContainerEngine:
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

    def image_id(self, reference: str) -> Optional[str]:
        """The id of a local image (by name or id), or None when the engine has no such image."""
        result = subprocess.run([self.name, "image", "inspect", "--format", "{{.Id}}", reference],
                                capture_output=True, text=True)
        if result.returncode:
            return None
        return result.stdout.strip() or None

    def label(self, reference: str, key: str) -> Optional[str]:
        """The value of label `key` on a local image, or None."""
        result = subprocess.run([self.name, "image", "inspect", "--format",
                                 f"{{{{index .Config.Labels \"{key}\"}}}}", reference],
                                capture_output=True, text=True)
        value = result.stdout.strip()
        return value if result.returncode == 0 and value not in ("", "<no value>") else None

    def build(self, context: Path, tag: str, build_args: dict[str, str], labels: dict[str, str],
              log: Path) -> subprocess.CompletedProcess:
        """`build` with the host network (so RUN pip install reaches the package index)."""
        command = [self.name, "build", "--network", "host", "--tag", tag]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        with open(log, "w", encoding="utf-8") as out:
            return subprocess.run([*command, str(context)], stdout=out, stderr=subprocess.STDOUT)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run `<engine> ARGS`, capturing what it prints."""
        return subprocess.run([self.name, *args], capture_output=True, text=True)

    def repo_digest(self, reference: str, repository: str) -> Optional[str]:
        """The registry digest (`name@sha256:...`) of a local image in `repository`, once pushed or pulled."""
        result = self.run("image", "inspect", "--format", "{{json .RepoDigests}}", reference)
        digests = json.loads(result.stdout or "null") if result.returncode == 0 else None
        return next((d for d in digests or [] if d.split("@")[0] == repository), None)

    def import_tarball(self, tarball: Path, tag: str) -> None:
        """Import a root file system tarball as image `tag`."""
        subprocess.run([self.name, "import", str(tarball), tag], check=True, capture_output=True)


ENGINES = {name: ContainerEngine(name) for name in ("docker", "podman")}

ROOT_PODMAN_WRAPPER = """#!/bin/sh
# Written by descpipe. As root, podman refuses --userns=keep-id (it is for rootless podman),
# which cwltool passes to every `podman run`: drop that one option and pass on the rest.
for option in "$@"; do
    shift
    [ "$option" = "--userns=keep-id" ] || set -- "$@" "$option"
done
exec {podman} "$@"
"""


def engine_environment(container: str, working: Path) -> Optional[dict[str, str]]:
    """The environment a CWL engine needs for `container`, or None for this process's own.

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
