"""`descpipe new-stage`: a working stage directory to start from (Dockerfile, run.py, a test)."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .files import write_files
from .stage_loader import NAME_PATTERN, NAME_RULE

DOCKERFILE = """\
# The image of the {name} stage: add what its run() imports, for example
# RUN pip install --no-cache-dir fitsio==1.4.2
ARG BASE_IMAGE=descpipe/base:latest
FROM ${{BASE_IMAGE}}
"""

RUN_PY = '''\
"""descpipe stage `{name}`."""
import descpipe


class Stage(descpipe.Stage):
    """Multiply a list of numbers by `factor`: the template `descpipe new-stage` writes.

    Replace this with what your stage does: this docstring becomes the `doc` of the stage's
    CWL tool. Reads whitespace-separated numbers from `{name}-input` and writes each one times
    `factor`, one per line, to `{name}-output`.
    """

    name = "{name}"
    inputs = {{"{name}-input": "txt"}}      # tag -> file type (fits, hdf5, yaml, txt, csv, json, png)
    outputs = {{"{name}-output": "txt"}}
    config = {{}}                           # tag -> the file name this stage expects, e.g. "config.yaml"
    parameters = {{"factor": 2.0}}          # name -> default (or a type, for a required parameter)
    resources = {{"cores": 1}}              # also memory_mb and minutes

    def run(self):
        # Import science libraries (numpy, fitsio, ...) here, not at the top of the file:
        # descpipe reads this class on machines that do not have them.
        factor = self.get_parameter("factor")
        with open(self.get_input_path("{name}-input")) as f:
            numbers = [float(word) for word in f.read().split()]
        with open(self.get_output_path("{name}-output"), "w") as f:
            f.writelines(f"{{number * factor}}\\n" for number in numbers)


if __name__ == "__main__":
    Stage.main()
'''

TEST_PY = '''\
"""Tests of the {name} stage, run as descpipe runs it: `python3 run.py --<tag> PATH ...`."""
import subprocess
import sys
from pathlib import Path

RUN_PY = Path(__file__).resolve().parent / "run.py"


def test_multiplies_every_number_by_factor(tmp_path):
    (tmp_path / "numbers.txt").write_text("1 2.5\\n-3\\n")
    subprocess.run([sys.executable, str(RUN_PY), "--{name}-input", "numbers.txt",
                    "--{name}-output", "scaled.txt", "--factor=2"], cwd=tmp_path, check=True)
    assert (tmp_path / "scaled.txt").read_text().split() == ["2.0", "5.0", "-6.0"]
'''


def new_stage(name: str, images: Path) -> list[Path]:
    """Write `images/<name>/` with a Dockerfile, a run.py and a test; return the files written."""
    if not NAME_PATTERN.match(name):
        raise UserError(f"invalid stage name {name!r}: use {NAME_RULE}")
    directory = images / name
    if directory.exists():
        raise UserError(f"{directory} already exists: choose another name or remove it")
    files = {directory / "Dockerfile": DOCKERFILE.format(name=name),
             directory / "run.py": RUN_PY.format(name=name),
             directory / "test_run.py": TEST_PY.format(name=name)}
    write_files(files)
    return list(files)
