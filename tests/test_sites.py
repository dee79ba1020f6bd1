"""Sites: named run settings (`descpipe run --site NAME` or `runtime.site`), shipped and the user's,
between the pipeline file's settings and the command line's."""
from __future__ import annotations

import json

import pytest

from conftest import descpipe
from test_toil import newest_slurm_job, slurm, slurm_jobs, stage_jobs  # noqa: F401 - slurm is a fixture

FAN = "pipelines/fan.yaml"
SITE_FILE = """\
sites:
  our-cluster:
    doc: the group's cluster
    engine: toil
    batch-system: slurm
    partition: debug
    time: "0:07:00"
    retries: 0
"""


@pytest.mark.slurm
def test_a_project_site_drives_toil_on_slurm_and_is_listed(slurm, toy):
    (toy / "descpipe-sites.yaml").write_text(SITE_FILE)
    listed = descpipe("sites", cwd=toy)
    assert listed.returncode == 0, listed.stderr
    assert "our-cluster: the group's cluster\n  from descpipe-sites.yaml\n  engine: toil\n" in listed.stdout
    assert "nersc-perlmutter:" in listed.stdout and "local:" in listed.stdout

    newer_than = newest_slurm_job()
    result = descpipe("run", FAN, "--site", "our-cluster", cwd=toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "with toil (container: none)" in result.stdout
    jobs = stage_jobs(slurm_jobs(newer_than, submitted_from=toy))
    assert set(jobs) == {"split", "sum_evens", "sum_odds", "combine"}, "each stage a SLURM job"
    for [job] in jobs.values():
        assert (job["Partition"], job["TimeLimit"]) == ("debug", "00:07:00")
    settings = json.loads((toy / "pipelines/output/provenance/run-record.json").read_text())["settings"]
    assert settings["retries"] == {"value": 0, "from": "sites.our-cluster.retries (descpipe-sites.yaml:8)"}
    assert settings["site"] == {"value": "our-cluster", "from": "--site"}


def test_pipeline_file_then_site_then_command_line(toy):
    (toy / "descpipe-sites.yaml").write_text(SITE_FILE)
    edit = (toy / FAN).read_text().replace("runtime:\n", "runtime:\n  site: our-cluster\n  retries: 3\n")
    (toy / FAN).write_text(edit)
    # The site's retries (line 8 of the sites file) win over the file's; the command line's engine
    # over the site's, and then the site's Toil settings no longer fit: one line, naming where from.
    result = descpipe("run", FAN, "--engine", "cwltool", cwd=toy)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "descpipe: error: descpipe-sites.yaml:8: retries, batch-system, partition, time are Toil settings: "
        "run with --engine toil (or set runtime.engine: toil)"]


@pytest.mark.parametrize("sites_file, args, says", [
    (None, ("--site", "nowhere"), "descpipe: error: unknown site 'nowhere' (known: local, slurm, nersc-perlmutter, "
                                  "cc-in2p3; add your own in descpipe-sites.yaml or "),
    ("sites:\n  x:\n    retries: -2\n", ("--site", "x"),
     "descpipe: error: descpipe-sites.yaml:3: sites.x.retries must be a whole number of retries (0 or more), got -2"),
    ("sites:\n  x:\n    partitoin: debug\n", ("--site", "x"),
     "descpipe: error: descpipe-sites.yaml:3: site 'x': unknown setting 'partitoin' (known: doc, engine, "),
    ("- not a mapping\n", ("--site", "x"), "descpipe: error: descpipe-sites.yaml:1: a sites file is a mapping"),
])
def test_a_wrong_site_is_one_line(toy, sites_file, args, says):
    if sites_file:
        (toy / "descpipe-sites.yaml").write_text(sites_file)
    result = descpipe("run", FAN, *args, cwd=toy)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(says), line
    assert not (toy / "pipelines/work").exists()


def test_a_user_site_file_is_read_and_the_projects_wins(toy, tmp_path):
    config = tmp_path / "config"
    (config / "descpipe").mkdir(parents=True)
    (config / "descpipe/sites.yaml").write_text("sites:\n  mine: {doc: the user's, engine: toil}\n"
                                                "  ours: {doc: the user's ours, engine: toil}\n")
    (toy / "descpipe-sites.yaml").write_text("sites:\n  ours: {doc: the project's ours, engine: cwltool}\n")
    listed = descpipe("sites", cwd=toy, env={"XDG_CONFIG_HOME": str(config)})
    assert "mine: the user's\n" in listed.stdout
    assert "ours: the project's ours\n  from descpipe-sites.yaml\n  engine: cwltool" in listed.stdout
