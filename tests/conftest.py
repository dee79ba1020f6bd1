"""Shared test helpers: run the real `descpipe` command and copy fixtures out of the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def descpipe(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the descpipe command line as a user would, capturing its output (`env`: variables to add)."""
    return subprocess.run([sys.executable, "-m", "descpipe", *map(str, args)],
                          cwd=cwd or REPO, capture_output=True, text=True, env={**os.environ, **(env or {})})


def cwltool(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real cwltool command (its console script, which passes on the exit status)."""
    return subprocess.run([shutil.which("cwltool") or "cwltool", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> Path:
    """A copy of images/ and pipelines/ in which the README's example command has run (cwltool)."""
    root = tmp_path_factory.mktemp("checkout")
    for folder in ("images", "pipelines"):
        shutil.copytree(REPO / folder, root / folder)
    result = descpipe("run", "pipelines/des-sv-mock.yaml", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy stages and pipelines (fan-out, fan-in, dashed tags) in a scratch folder."""
    shutil.copytree(TESTS / "stages", tmp_path / "stages")
    shutil.copytree(TESTS / "pipelines", tmp_path / "pipelines")
    return tmp_path
