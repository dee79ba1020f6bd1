"""The shipped examples: the mock DES SV pipeline end to end, the prototype's own pipeline file,
and the exports in cwl/ kept in sync."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cwl_utils.parser import load_document_by_uri

from conftest import EXAMPLE_PRODUCTS, REPO, TESTS, assert_same_fits, cwltool, descpipe

pytestmark = pytest.mark.engine

fitsio = pytest.importorskip("fitsio", reason="the example's science libraries come with scripts/setup.sh")


def test_mock_pipeline_leaves_its_products_and_logs_where_the_readme_says(examples):
    output = examples / "output/des-sv-mock"
    assert sorted(p.name for p in output.glob("*.fits")) == sorted([*EXAMPLE_PRODUCTS, "sacc-data.fits"])
    assert (output / "mock-truth.yaml").is_file()
    for stage in ("mock_catalogs", "tomography", "pz_stack", "treecorr", "sacc_file"):
        assert (output / "logs" / f"{stage}.out").is_file()
    assert "3 bins of equal number in Z_MEAN" in (output / "logs/tomography.out").read_text()
    assert (examples / "work/des-sv-mock/des-sv-mock.cwl").is_file() is False  # named after basename
    assert (examples / "work/des-sv-mock/des-sv.cwl").is_file()


def test_mock_pipeline_products_fit_together(examples):
    output = examples / "output/des-sv-mock"
    shear = fitsio.read(output / "shear-catalog.fits", columns=["E_1"])
    bins, header = fitsio.read(output / "tomographic-catalog.fits", header=True)
    assert len(bins) == len(shear) == 100000 and header["NBIN"] == 3
    counts = [np.sum(bins["BIN"] == b) for b in (1, 2, 3)]
    assert max(counts) - min(counts) <= 1
    nz = fitsio.read(output / "n_of_z.fits")
    assert {"z_low", "z_mid", "z_high", "BIN_1", "BIN_2", "BIN_3"} <= set(nz.dtype.names)
    means = [np.sum(nz["z_mid"] * nz[f"BIN_{b}"]) / np.sum(nz[f"BIN_{b}"]) for b in (1, 2, 3)]
    assert means == sorted(means), "higher bins have higher mean redshift"
    with fitsio.FITS(output / "correlation-functions.fits") as fits:
        xip = fits["xip"].read()
        n_ang = fits["xip"].read_header()["N_ANG"]
    assert len(xip) == 6 * n_ang
    assert sorted({(int(a), int(b)) for a, b in zip(xip["BIN1"], xip["BIN2"])}) == \
        [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]


def test_des_sv_pipeline_in_the_prototype_layout_reproduces_the_mock_run(examples):
    result = descpipe("run", "pipelines/des-sv.yaml", cwd=examples)
    assert result.returncode == 0, result.stdout + result.stderr
    for product in ("tomographic-catalog.fits", "n_of_z.fits", "correlation-functions.fits"):
        assert_same_fits(examples / "output/des-sv" / product, examples / "output/des-sv-mock" / product)
    # sacc orders the tag columns of its tables as a set does, which differs between runs: compare contents.
    sacc = pytest.importorskip("sacc")
    ours, reference = (sacc.Sacc.load_fits(str(examples / "output" / run / "sacc-data.fits"))
                       for run in ("des-sv", "des-sv-mock"))
    assert sorted(ours.tracers) == sorted(reference.tracers)
    assert [(d.data_type, d.tracers) for d in ours.data] == [(d.data_type, d.tracers) for d in reference.data]
    np.testing.assert_allclose([d.get_tag("theta") for d in ours.data], [d.get_tag("theta") for d in reference.data],
                               rtol=1e-10)
    np.testing.assert_allclose(ours.mean, reference.mean, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(ours.covariance.dense, reference.covariance.dense, rtol=1e-10, atol=1e-15)


def test_the_prototypes_own_pipeline_file_validates_exports_and_runs(examples, tmp_path):
    """tests/prototype/pipeline.yaml is the prototype's test/pipeline.yaml for its three stages."""
    shutil.copy(TESTS / "prototype/pipeline.yaml", tmp_path / "pipeline.yaml")
    shutil.copytree(examples / "images", tmp_path / "images")
    (tmp_path / "test/inputs").mkdir(parents=True)
    (tmp_path / "test/config").mkdir()
    mock = examples / "output/des-sv-mock"
    shutil.copy(mock / "shear-catalog.fits", tmp_path / "test/inputs/des-sv-ngmix-pipetest.fits")
    shutil.copy(mock / "photoz-catalog.fits", tmp_path / "test/inputs/des-sv-annz-pipetest.fits")
    for name in ("tomo-config.yaml", "treecorr-config.yaml"):
        shutil.copy(TESTS / "prototype" / name, tmp_path / "test/config" / name)

    assert descpipe("validate", "pipeline.yaml", cwd=tmp_path).returncode == 0
    exported = descpipe("export", "pipeline.yaml", "-o", "cwl/wf.cwl", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    tool = (tmp_path / "cwl/wf.cwl").read_text()
    assert "dockerPull: joezuntz/desc-pipe-treecorr:1.0" in tool
    assert "timelimit: 300" in tool and "coresMin: 8" in tool
    result = descpipe("run", "pipeline.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with fitsio.FITS(tmp_path / "test/output/correlation-functions.fits") as fits:
        assert fits["xip"].read_header()["N_ANG"] == 58, "the prototype's binning: 58 bins from 1 to 300 arcmin"


@pytest.mark.parametrize("name", ["des-sv-mock", "des-sv"])
def test_cwl_folder_holds_the_current_exports(examples, name):
    fresh = examples / "cwl"
    result = descpipe("export", f"pipelines/{name}.yaml", "-o", fresh / f"{name}.cwl",
                      "--job", fresh / f"{name}.job.yml", "--pin", "none", cwd=examples)
    assert result.returncode == 0, result.stderr
    for file in (f"{name}.cwl", f"{name}.job.yml"):
        assert (REPO / "cwl" / file).read_text() == (fresh / file).read_text(), (
            f"cwl/{file} is out of date: python3 -m descpipe export pipelines/{name}.yaml "
            f"-o cwl/{name}.cwl --job cwl/{name}.job.yml --pin none")


@pytest.mark.parametrize("name", ["des-sv-mock", "des-sv"])
def test_cwl_folder_exports_are_valid(name):
    result = cwltool("--validate", REPO / "cwl" / f"{name}.cwl")
    assert result.returncode == 0, result.stderr
    workflow = load_document_by_uri(str(REPO / "cwl" / f"{name}.cwl"))
    assert workflow.class_ == "Workflow"


def test_export_needs_none_of_the_science_libraries(tmp_path):
    """descpipe imports run.py only to read metadata: a machine without numpy, fitsio or TreeCorr exports."""
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    for module in ("numpy", "fitsio", "treecorr", "astropy", "scipy", "sacc"):
        (blocker / f"{module}.py").write_text(f"raise ImportError('{module} is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proof = subprocess.run([sys.executable, "-c", "import numpy"], env=env, capture_output=True, text=True)
    assert "numpy is not installed here" in proof.stderr
    result = subprocess.run([sys.executable, "-m", "descpipe", "export", "pipelines/des-sv-mock.yaml",
                             "-o", str(tmp_path / "wf.cwl")], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "wf.cwl").read_text().count("class: CommandLineTool") == 5
