"""Running exported pipelines under the real cwltool, with no container."""
from __future__ import annotations

import json

import pytest

from conftest import cwltool, descpipe

pytestmark = pytest.mark.engine

FAN = "pipelines/fan.yaml"
# numbers.txt holds 1..7 and split's scale is 3: evens 6+12+18 plus sum.yaml's offset 100; odds 3+9+15+21.
EXPECTED_TOTAL = {"twos": 136, "ones": 48, "total": 184}


def test_descpipe_run_puts_products_and_logs_where_the_pipeline_says(toy):
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    output = toy / "pipelines/output"
    assert json.loads((output / "total.json").read_text()) == EXPECTED_TOTAL
    assert (output / "odd-numbers.txt").read_text().split() == ["3", "9", "15", "21"]
    # sum_odds asks for 2 cores in fan.yaml: the stage sees what the engine granted.
    assert (output / "logs/sum_odds.out").read_text() == "4 odd numbers on 2 cores, OMP_NUM_THREADS=2\n"
    assert sorted(p.name for p in (output / "logs").iterdir()) == sorted(
        f"{s}.{e}" for s in ("split", "sum_evens", "sum_odds", "combine") for e in ("out", "err"))
    working = toy / "pipelines/work"
    assert (working / "fan.cwl").is_file() and (working / "cwltool.log").is_file()
    assert (working / "fan.job.yml").is_file()
    assert not (working / "tmp").exists(), "the jobs' temporary folders of a successful run are cleaned up"
    # The export names EDAM's ontology in $schemas; a run neither needs nor tries the network for it.
    assert "Could not load extension schema" not in (working / "cwltool.log").read_text()
    assert "products in" in result.stdout


@pytest.mark.parametrize("split", [False, True], ids=["one-document", "one-file-per-tool"])
def test_plain_cwltool_runs_the_export_alone(toy, tmp_path, split):
    result = descpipe("export", FAN, "-o", "exported/wf.cwl", *(["--tool-files"] if split else []), cwd=toy)
    assert result.returncode == 0, result.stderr
    elsewhere = tmp_path / "run-here"
    elsewhere.mkdir()
    run = cwltool("--no-container", "--outdir", "results", toy / "exported/wf.cwl", toy / "exported/job.yml",
                  cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert json.loads((elsewhere / "results/total.json").read_text()) == EXPECTED_TOTAL
    reported = json.loads(run.stdout)
    assert reported["total"]["format"] == "http://edamontology.org/format_3464"


def test_job_file_values_override_parameters(toy, tmp_path):
    assert descpipe("export", FAN, "-o", "exported/wf.cwl", cwd=toy).returncode == 0
    job = toy / "exported/job.yml"
    job.write_text(job.read_text().replace("split.scale: 3", "split.scale: 1"))
    run = cwltool("--no-container", "--outdir", tmp_path / "results", toy / "exported/wf.cwl", job)
    assert run.returncode == 0, run.stderr
    # 2+4+6 plus the offset 100; 1+3+5+7.
    assert json.loads((tmp_path / "results/total.json").read_text()) == {"twos": 112, "ones": 16, "total": 128}


def test_failed_stage_is_named_with_the_end_of_its_log(toy):
    pipeline = toy / FAN
    pipeline.write_text(pipeline.read_text().replace("{labels: [twos, ones]}", "{labels: [twos, ones], fail: true}"))
    result = descpipe("run", FAN, cwd=toy)
    assert result.returncode == 1, "the engine's exit status is passed on"
    assert "stage 'combine' failed; the end of its log (" in result.stdout
    assert "RuntimeError: combine was asked to fail" in result.stdout
    assert "Traceback" not in result.stderr, "descpipe itself does not crash"
    assert not (toy / "pipelines/output/total.json").exists()
