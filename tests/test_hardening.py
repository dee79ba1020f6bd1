"""What descpipe promises whatever the stages, the user or the machine do: nothing a user owns is
changed, a run that fails never looks like one that succeeded (issue 12's principles 1, 2, 3, 6, 7).

Each row is a case a user could hit; each asserts the exit status, the one line that says what
happened, and that every file the user owns is byte-identical afterwards."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import descpipe

FAN = "pipelines/fan.yaml"
# descpipe's own folders in the toy checkout (runtime.working and runtime.output of fan.yaml).
OWNED = ("pipelines/work", "pipelines/output")


def user_files(root: Path) -> dict[str, str]:
    """The checksum of every file the user owns in the toy checkout: all but descpipe's folders."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not any(path.is_relative_to(root / folder) for folder in OWNED)
            and "__pycache__" not in path.parts}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def combine_run(body: str) -> Callable[[Path], None]:
    """An edit that makes the toy `combine` stage's run() begin with `body`."""
    return lambda root: edit(root / "stages/combine/run.py", "    def run(self):\n",
                             f"    def run(self):\n        import os, sys\n        {body}\n")


# --- 7. Outputs are checked whatever the stage does -------------------------------------------

STAGE_ENDINGS = [
    ("sys.exit(0) before writing", combine_run("sys.exit(0)"), "output 'total'", "file does not exist"),
    ("os._exit(0) before writing", combine_run("os._exit(0)"), "output 'total'", "file does not exist"),
    ("os._exit(0) after writing bad JSON",
     combine_run("open(self.get_output_path('total'), 'w').write('{'); os._exit(0)"), "output 'total'", "JSON"),
    ("killed by a signal", combine_run("os.kill(os.getpid(), 9)"), "combine: killed by signal 9 (SIGKILL)", ""),
]


@pytest.mark.engine
@pytest.mark.parametrize("case, make, says, detail", STAGE_ENDINGS, ids=[c[0] for c in STAGE_ENDINGS])
def test_a_stage_that_ends_early_fails_whatever_way_it_ends(toy, case, make, says, detail):
    make(toy)
    before = user_files(toy)
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stage 'combine' failed; the end of its log" in result.stdout
    [line] = [line for line in result.stdout.splitlines() if says in line]
    assert detail in line
    assert not (toy / "pipelines/output/total.json").exists()
    assert user_files(toy) == before


def test_a_run_py_that_calls_os_exit_as_it_is_read_does_not_end_descpipe(toy):
    edit(toy / "stages/combine/run.py", "import descpipe\n", "import descpipe, os\nos._exit(0)\n")
    result = descpipe("validate", FAN, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "descpipe: error: stages/combine/run.py:2: importing failed: SystemExit: 0; guard the entry point with "
        "`if __name__ == '__main__': Stage.main()`"]
