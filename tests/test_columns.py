"""Stages may name the FITS columns they read: a catalog without them stops before any science."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import descpipe

fitsio = pytest.importorskip("fitsio", reason="the science extra installs it")
np = pytest.importorskip("numpy")

RUN_PY = '''\
import descpipe


class Stage(descpipe.Stage):
    """Count the galaxies of a shear catalog."""

    inputs = {"shear-catalog": "fits"}
    outputs = {"count": "txt"}
    columns = {"shear-catalog": ["RA", "DEC", "E_*"]}

    def run(self):
        import fitsio

        n = fitsio.read_header(self.get_input_path("shear-catalog"), ext=1)["NAXIS2"]
        open(self.get_output_path("count"), "w").write(f"{n}\\n")


if __name__ == "__main__":
    Stage.main()
'''


@pytest.fixture
def counting(tmp_path):
    stage = tmp_path / "images/count"
    stage.mkdir(parents=True)
    (stage / "Dockerfile").write_text("ARG BASE_IMAGE=descpipe/base:latest\nFROM ${BASE_IMAGE}\n")
    (stage / "run.py").write_text(RUN_PY)
    (tmp_path / "pipeline.yaml").write_text("pipeline: {images: [images], stages: [count]}\n"
                                            "runtime:\n  inputs:\n    shear-catalog: cat.fits\n")
    return tmp_path


def write_catalog(path, names):
    fitsio.write(path, np.zeros(10, dtype=[(name, "f8") for name in names]), clobber=True)


def test_catalog_with_the_columns_validates(counting):
    write_catalog(counting / "cat.fits", ["RA", "DEC", "E_1", "E_2"])
    assert descpipe("validate", "pipeline.yaml", cwd=counting).returncode == 0


def test_missing_columns_are_a_pipeline_error_naming_them(counting):
    write_catalog(counting / "cat.fits", ["RA", "DEC", "G1"])
    result = descpipe("validate", "pipeline.yaml", cwd=counting)
    assert result.returncode == 2
    assert "pipeline.yaml:4: input 'shear-catalog': cat.fits has no column E_* in HDU 1, which stage 'count' reads" \
        in result.stderr


def test_missing_columns_stop_the_stage_before_run(counting):
    write_catalog(counting / "cat.fits", ["RA", "E_1"])
    result = subprocess.run([sys.executable, "images/count/run.py", "--shear-catalog", "cat.fits", "--count", "n.txt"],
                            cwd=counting, capture_output=True, text=True)
    assert result.returncode == 1
    assert "input 'shear-catalog' (cat.fits): no column DEC in HDU 1" in result.stderr
    assert not (counting / "n.txt").exists()


def test_columns_on_a_non_fits_input_is_a_stage_error(counting):
    run_py = counting / "images/count/run.py"
    run_py.write_text(run_py.read_text().replace('columns = {"shear-catalog"', 'columns = {"count"'))
    write_catalog(counting / "cat.fits", ["RA", "DEC", "E_1"])
    result = descpipe("validate", "pipeline.yaml", cwd=counting)
    assert result.returncode == 2
    assert "Stage.columns names 'count', which is not a FITS input of this stage" in result.stderr
