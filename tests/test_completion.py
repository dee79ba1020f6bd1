"""Shell completion (argcomplete): options, sites and the pipeline's own stages and parameters."""
from __future__ import annotations

import pytest

from conftest import descpipe

FAN = "pipelines/fan.yaml"


def complete(line: str, cwd, tmp_path) -> list[str]:
    """What the shell would offer after typing `line` (argcomplete's protocol, as bash's hook drives it)."""
    out = tmp_path / "completions"
    result = descpipe(cwd=cwd, env={"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
                                    "COMP_TYPE": "9", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})
    assert result.returncode == 0, result.stderr
    return sorted(word.strip() for word in out.read_text().split("\x0b") if word.strip())


@pytest.mark.parametrize("line, expected", [
    ("descpipe run pipelines/fan.yaml --s", ["--sbatch-args", "--set", "--site"]),
    ("descpipe run pipelines/fan.yaml --site ", ["cc-in2p3", "local", "nersc-perlmutter", "slurm"]),
    ("descpipe run pipelines/fan.yaml --set sum_", ["sum_odds.sleep="]),
    ("descpipe run pipelines/fan.yaml --set com", ["combine.fail=", "combine.fail_once=", "combine.labels="]),
    ("descpipe run pipelines/fan.yaml --set runtime.re", ["runtime.restart=", "runtime.resume=", "runtime.retries="]),
    ("descpipe si", ["sites"]),
])
def test_completion_offers_options_sites_stages_and_parameters(toy, tmp_path, line, expected):
    assert complete(line, toy, tmp_path) == expected
