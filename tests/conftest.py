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
    """Run the descpipe command line as a user would, capturing its output (`env`: variables to add).

    The descpipe of this checkout, whichever one pip installed: runs from elsewhere (`cwd`) would
    otherwise import the installed one."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "descpipe", *map(str, args)], cwd=cwd or REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": path, **(env or {})})


def cwltool(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real cwltool command (its console script, which passes on the exit status)."""
    return subprocess.run([shutil.which("cwltool") or "cwltool", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


def processes(document: dict) -> dict[str, dict]:
    """The processes of an exported document by id: the workflow (`main`) and the tools inline in its steps."""
    return {document["id"]: document, **{step["run"]["id"]: step["run"] for step in document["steps"].values()}}


def copy_checkout(root: Path, *folders: str) -> Path:
    """Copy folders of the checkout into `root`, so runs write their outputs there, not here."""
    for folder in folders:
        shutil.copytree(REPO / folder, root / folder)
    return root


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> Path:
    """A copy of images/ and pipelines/ in which the README's example command has run."""
    root = copy_checkout(tmp_path_factory.mktemp("checkout"), "images", "pipelines")
    result = descpipe("run", "pipelines/des-sv-mock.yaml", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def assert_same_fits(ours: Path, reference: Path) -> None:
    """Every table of two FITS files holds the same values: integers equal, floats equal but for
    the last bits (TreeCorr's threads add pairs in whichever order they finish)."""
    import fitsio
    import numpy as np

    with fitsio.FITS(ours) as mine, fitsio.FITS(reference) as theirs:
        assert len(mine) == len(theirs), ours
        for hdu in range(1, len(theirs)):
            a, b = mine[hdu].read(), theirs[hdu].read()
            assert a.dtype.names == b.dtype.names, (ours, hdu)
            for column in b.dtype.names:
                if b[column].dtype.kind == "f":
                    np.testing.assert_allclose(a[column], b[column], rtol=1e-10, atol=1e-15,
                                               err_msg=f"{ours}[{hdu}].{column}")
                else:
                    assert np.array_equal(a[column], b[column]), f"{ours}[{hdu}].{column}"


EXAMPLE_PRODUCTS = ("shear-catalog.fits", "photoz-catalog.fits", "tomographic-catalog.fits", "n_of_z.fits",
                    "correlation-functions.fits")


def assert_same_products(ours: Path, reference: Path, names: tuple[str, ...] = EXAMPLE_PRODUCTS) -> None:
    """The example's products in two output folders hold the same values (see assert_same_fits)."""
    for name in names:
        assert_same_fits(ours / name, reference / name)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy stages and pipelines (fan-out, fan-in, dashed tags) in a scratch folder."""
    return copy_checkout(tmp_path, "tests/stages", "tests/pipelines") / "tests"
