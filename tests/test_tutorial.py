"""docs/tutorial.md works as written: its `sh` blocks, run in order in an empty folder."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

TUTORIAL = REPO / "docs/tutorial.md"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", markdown, flags=re.S | re.M)


@pytest.mark.engine
@pytest.mark.slurm
def test_the_tutorials_commands_run_as_written(tmp_path):
    blocks = shell_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 8 and any("--batch-system slurm" in block for block in blocks)
    # `descpipe` is this checkout's, whatever an installed console script points at.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "descpipe").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m descpipe "$@"\n')
    (bin_dir / "descpipe").chmod(0o755)
    scratch = tmp_path / "tutorial"
    scratch.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(["bash", "-c", script], cwd=scratch, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # What the tutorial says happened did: the resumed run with factor 3 ran the stage again ...
    assert (scratch / "output/scale_up-output.txt").read_text().split() == ["3.0", "6.0", "9.0"]
    record = json.loads((scratch / "output/provenance/run-record.json").read_text())
    assert record["stages"]["scale_up"]["status"] == "ran" and record["resume"]
    # ... and the summary and the crate were read.
    assert "scale_up: ran" in result.stdout and "ComputationalWorkflow" in result.stdout
