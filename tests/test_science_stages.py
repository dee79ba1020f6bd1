"""The four science stages run as scripts, chained on small mock catalogs.

Each stage runs as the CWL tool will run it: `python3 images/<stage>/run.py --<tag> PATH ...` in a
fresh working directory. The assertions are the properties a scientist relies on downstream; that the pipeline recovers the
injected signal itself is tests/test_science_truth.py's subject.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fitsio
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "pipelines" / "config"
N_GALAXIES = 20000
NZ = 100
# Angular scales (arcmin) where the injected field (scale 3 arcmin) correlates.
SMALL_SCALES = 20.0


def run_stage(stage: str, workdir: Path, *args: object) -> subprocess.CompletedProcess:
    """Run images/<stage>/run.py with `args` in `workdir`, capturing its output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, str(REPO / "images" / stage / "run.py"), *map(str, args)],
                          cwd=workdir, env=env, capture_output=True, text=True)


def run_ok(stage: str, workdir: Path, *args: object) -> None:
    """Run a stage that must succeed, showing its output if it does not."""
    result = run_stage(stage, workdir, *args)
    assert result.returncode == 0, f"{stage} failed:\n{result.stdout}\n{result.stderr}"


def measure_xi(workdir: Path, shear: Path, tomographic: Path, name: str) -> Path:
    """Run the treecorr stage on 2 cores and return the correlation-functions file."""
    output = workdir / f"{name}.fits"
    run_ok("treecorr", workdir, "--shear-catalog", shear, "--tomographic-catalog", tomographic,
           "--config", CONFIG / "treecorr.yaml", "--correlation-functions", output, "--cores", 2)
    return output


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Mock catalogs with and without signal, their tomography, n(z) and correlation functions."""
    workdir = tmp_path_factory.mktemp("science")
    files = {name: workdir / f"{name}.fits" for name in
             ("shear", "photoz", "shear_no_signal", "photoz_no_signal", "tomographic", "n_of_z")}
    common = [f"--n_galaxies={N_GALAXIES}", f"--nz={NZ}", "--seed=7", "--binning", CONFIG / "tomography.yaml",
              "--mock-truth", workdir / "truth.yaml"]
    run_ok("mock_catalogs", workdir, "--shear-catalog", files["shear"], "--photoz-catalog", files["photoz"], *common)
    run_ok("mock_catalogs", workdir, "--shear-catalog", files["shear_no_signal"],
           "--photoz-catalog", files["photoz_no_signal"], *common, "--shear_amplitude=0.0")
    run_ok("tomography", workdir, "--photoz-catalog", files["photoz"], "--config", CONFIG / "tomography.yaml",
           "--tomographic-catalog", files["tomographic"])
    # A chunk size that does not divide the catalog checks the streaming, including the last chunk.
    run_ok("pz_stack", workdir, "--photoz-catalog", files["photoz"], "--tomographic-catalog", files["tomographic"],
           "--n_of_z", files["n_of_z"], "--chunk_rows=7001")

    # Without signal only the shapes change (checked below), so the same bins apply.
    for name, shear in (("xi", "shear"), ("xi_no_signal", "shear_no_signal")):
        files[name] = measure_xi(workdir, files[shear], files["tomographic"], name)
    return files


def auto_xip(path: Path, b: int) -> np.ndarray:
    """Rows of xi+ for the auto-correlation of bin `b`, in angular order."""
    xip = fitsio.read(path, ext="xip")
    return xip[(xip["BIN1"] == b) & (xip["BIN2"] == b)]


def test_mock_catalogs_are_row_aligned_with_the_prototype_columns(chain):
    shear, photoz = fitsio.read(chain["shear"], ext=1), fitsio.read(chain["photoz"], ext=1)
    header = fitsio.read_header(chain["photoz"], ext=1)
    assert set(shear.dtype.names) == {"RA", "DEC", "E_1", "E_2", "W"}
    assert set(photoz.dtype.names) == {"Z_MEAN", "Z_TRUE", *(f"PDF_{i}" for i in range(NZ))}
    assert len(shear) == len(photoz) == N_GALAXIES
    assert (header["NZ"], header["ZMIN"], header["ZMAX"]) == (NZ, 0.0, 2.0)
    assert photoz["PDF_0"].dtype.type is np.float32 and shear["E_2"].dtype.type is np.float64
    assert np.all(shear["W"] > 0)

    # A patch the size of DES SV SPT-E (140 deg^2) around RA 70, DEC -50, uniform in area.
    assert 60 < shear["RA"].min() < shear["RA"].max() < 80 and -56 < shear["DEC"].min() < shear["DEC"].max() < -44
    area = (np.radians(np.ptp(shear["RA"])) * np.ptp(np.sin(np.radians(shear["DEC"])))) * (180 / np.pi) ** 2
    assert area == pytest.approx(140.0, rel=0.02)

    # Photo-z error model: Z_MEAN scatters around Z_TRUE by sigma_z (1+z); each PDF sums to 1 and
    # peaks at the grid bin holding Z_MEAN (rows are aligned: the error model holds row by row).
    assert np.all((photoz["Z_TRUE"] > 0) & (photoz["Z_TRUE"] < 2.0))
    scatter = (photoz["Z_MEAN"] - photoz["Z_TRUE"]) / (1 + photoz["Z_TRUE"])
    assert np.std(scatter) == pytest.approx(0.05, rel=0.05)
    pdfs = np.stack([photoz[f"PDF_{i}"] for i in range(NZ)], axis=1)
    assert np.allclose(pdfs.sum(axis=1), 1.0, atol=1e-5)
    inside = (photoz["Z_MEAN"] > 0) & (photoz["Z_MEAN"] < 2.0)
    assert np.all(np.argmax(pdfs[inside], axis=1) == np.floor(photoz["Z_MEAN"][inside] / 0.02))

    # Shape noise of 0.25 per component dominates the shapes.
    assert np.std(shear["E_1"]) == pytest.approx(0.25, rel=0.05)


def test_shear_amplitude_changes_only_the_shapes(chain):
    for kind, changed in (("shear", {"E_1", "E_2"}), ("photoz", set())):
        signal, no_signal = fitsio.read(chain[kind], ext=1), fitsio.read(chain[f"{kind}_no_signal"], ext=1)
        for column in signal.dtype.names:
            assert np.array_equal(signal[column], no_signal[column]) != (column in changed), column


def test_tomography_makes_equal_number_bins_covering_zmin_to_zmax(chain):
    z = fitsio.read(chain["photoz"], ext=1, columns=["Z_MEAN"])["Z_MEAN"]
    tomographic, header = fitsio.read(chain["tomographic"], ext=1, header=True)
    bins = tomographic["BIN"]
    assert tomographic.dtype.names == ("BIN",) and bins.dtype.type is np.int32
    assert len(bins) == N_GALAXIES and header["NBIN"] == 3

    inside = (z > 0.2) & (z < 1.2)
    assert np.array_equal(bins == -1, ~inside)
    counts = [np.sum(bins == b) for b in (1, 2, 3)]
    assert sum(counts) == inside.sum() and max(counts) - min(counts) <= 1
    # Bins are ordered slices of Z_MEAN, and together they reach both ends of zmin..zmax.
    for b in (1, 2):
        assert z[bins == b].max() < z[bins == b + 1].min()
    assert z[bins == 1].min() < 0.21 and z[bins == 3].max() > 1.19


def test_n_of_z_of_each_bin_peaks_inside_the_bin(chain):
    n_of_z, header = fitsio.read(chain["n_of_z"], ext=1, header=True)
    assert list(n_of_z.dtype.names) == ["z_low", "z_mid", "z_high", "BIN_1", "BIN_2", "BIN_3"]
    assert all(n_of_z[c].dtype.type is np.float64 for c in n_of_z.dtype.names)
    assert (header["NZ"], header["NBIN"], header["ZMIN"], header["ZMAX"]) == (NZ, 3, 0.0, 2.0)
    assert header["DZ"] == pytest.approx(0.02)
    edges = np.linspace(0.0, 2.0, NZ + 1)
    assert np.allclose(n_of_z["z_low"], edges[:-1]) and np.allclose(n_of_z["z_high"], edges[1:])
    assert np.allclose(n_of_z["z_mid"], (edges[:-1] + edges[1:]) / 2)

    photoz = fitsio.read(chain["photoz"], ext=1)
    bins = fitsio.read(chain["tomographic"], ext=1)["BIN"]
    pdfs = np.stack([photoz[f"PDF_{i}"] for i in range(NZ)], axis=1).astype(np.float64)
    for b in (1, 2, 3):
        in_bin = bins == b
        # The mean PDF of the bin, the same streamed in chunks as read at once.
        assert np.allclose(n_of_z[f"BIN_{b}"], pdfs[in_bin].mean(axis=0), rtol=1e-9, atol=1e-12)
        peak = n_of_z["z_mid"][np.argmax(n_of_z[f"BIN_{b}"])]
        assert photoz["Z_MEAN"][in_bin].min() <= peak <= photoz["Z_MEAN"][in_bin].max()


def test_correlation_functions_are_twopoint_tables_of_every_bin_pair(chain):
    with fitsio.FITS(chain["xi"]) as fits:
        assert [hdu.get_extname() for hdu in fits] == ["", "xip", "xim"]
        assert fits[0].read_header()["NAXIS"] == 0
        for extname, quantity in (("xip", "G+R"), ("xim", "G-R")):
            header, table = fits[extname].read_header(), fits[extname].read()
            assert header["2PTDATA"] is True and header["EXTNAME"] == extname
            assert header["QUANT1"] == header["QUANT2"] == quantity
            assert header["KERNEL_1"] == header["KERNEL_2"] == "source" and header["WINDOWS"] == "SAMPLE"
            assert header["N_ZBIN_1"] == header["N_ZBIN_2"] == 3
            assert header["TUNIT5"] == "arcmin"
            n_ang = header["N_ANG"]
            assert 20 <= n_ang <= 30 and len(table) == 6 * n_ang
            assert {c: table[c].dtype.kind for c in table.dtype.names} == {
                "BIN1": "i", "BIN2": "i", "ANGBIN": "i", "VALUE": "f", "ANG": "f", "ERR": "f", "NPAIRS": "f"}
            pairs = {(b1, b2) for b1, b2 in zip(table["BIN1"], table["BIN2"])}
            assert pairs == {(b1, b2) for b1 in (1, 2, 3) for b2 in (1, 2, 3) if b1 <= b2}
            for b1, b2 in pairs:
                rows = table[(table["BIN1"] == b1) & (table["BIN2"] == b2)]
                assert list(rows["ANGBIN"]) == list(range(n_ang))
                assert np.all(np.diff(rows["ANG"]) > 0) and 1.0 < rows["ANG"][0] and rows["ANG"][-1] < 300.0
                assert np.all(rows["NPAIRS"] > 0) and np.all(rows["ERR"] > 0)


def weighted_mean(rows: np.ndarray) -> tuple[float, float]:
    """Inverse-variance weighted mean of VALUE and its error, from ERR."""
    weights = rows["ERR"] ** -2
    return float(np.sum(weights * rows["VALUE"]) / weights.sum()), float(weights.sum() ** -0.5)


def test_xip_is_consistent_with_zero_without_signal(chain):
    rows = auto_xip(chain["xi_no_signal"], 3)
    assert np.all(np.abs(rows["VALUE"]) < 4 * rows["ERR"])
    mean, error = weighted_mean(rows[rows["ANG"] < SMALL_SCALES])
    assert abs(mean) < 3 * error


def test_a_text_file_as_photoz_catalog_fails_naming_the_tag(tmp_path):
    text = tmp_path / "photoz.fits"
    text.write_text("Z_MEAN PDF_0\n0.5 1.0\n")
    result = run_stage("tomography", tmp_path, "--photoz-catalog", text, "--config", CONFIG / "tomography.yaml",
                       "--tomographic-catalog", tmp_path / "out.fits")
    assert result.returncode != 0
    assert "photoz-catalog" in result.stderr and "not a FITS file" in result.stderr
    assert not (tmp_path / "out.fits").exists()


def test_a_missing_input_fails_naming_the_tag(chain, tmp_path):
    result = run_stage("pz_stack", tmp_path, "--photoz-catalog", chain["photoz"],
                       "--tomographic-catalog", tmp_path / "absent.fits", "--n_of_z", tmp_path / "n_of_z.fits")
    assert result.returncode != 0
    assert "tomographic-catalog" in result.stderr and "does not exist" in result.stderr


def test_catalogs_of_different_lengths_are_refused(chain, tmp_path):
    short = tmp_path / "short.fits"
    fitsio.write(short, fitsio.read(chain["tomographic"], ext=1)[:100], header={"NBIN": 3})
    for stage, other in (("pz_stack", ["--photoz-catalog", chain["photoz"], "--n_of_z", tmp_path / "nz.fits"]),
                         ("treecorr", ["--shear-catalog", chain["shear"], "--config", CONFIG / "treecorr.yaml",
                                       "--correlation-functions", tmp_path / "xi.fits"])):
        result = run_stage(stage, tmp_path, "--tomographic-catalog", short, *other)
        assert result.returncode != 0 and "same order" in result.stderr, stage
