"""Shared test helpers: run the real `descpipe` command and copy fixtures out of the checkout."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def descpipe(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the descpipe command line as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", "descpipe", *map(str, args)],
                          cwd=cwd or REPO, capture_output=True, text=True)


def cwltool(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real cwltool command (its console script, which passes on the exit status)."""
    return subprocess.run([shutil.which("cwltool") or "cwltool", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy stages and pipelines (fan-out, fan-in, dashed tags) in a scratch folder."""
    shutil.copytree(TESTS / "stages", tmp_path / "stages")
    shutil.copytree(TESTS / "pipelines", tmp_path / "pipelines")
    return tmp_path
