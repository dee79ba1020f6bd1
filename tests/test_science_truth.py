"""The example pipeline recovers the signal the mocks inject, and catalogs tampered with are caught.

The mock stage writes its truth (`mock-truth.yaml`): each tomographic bin's expected edges,
lensing efficiency and stacked n(z), and the closed-form xi+/xi- of its Gaussian random shear
field, all computed from the stated n(z), photo-z and field model, not from the catalogs. These
tests compare the example pipeline's products with it.

Errors on xi+/-: the measured ERR (TreeCorr's varxip/varxim: shape noise of the pairs actually
counted, exact for that term) on the diagonal, plus the Gaussian cosmic-variance and
signal x shape-noise covariance of the known power spectrum on the patch's area
(`mocks.gaussian_covariance`), which correlates angular bins and bin pairs. The field is Gaussian,
so this is its whole covariance up to the patch's edges, which matter little at the separations
used (1 to 7 field scales, 1-20 arcmin, on a 140 deg^2 patch). Over 20 realizations the chi^2/dof
of the example's 180 points averaged 1.0 (see the report of issue 5).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fitsio
import numpy as np
import pytest
from ruamel.yaml import YAML
from scipy import integrate, special, stats

from conftest import REPO
from test_science_stages import run_ok

sys.path.insert(0, str(REPO / "images" / "mock_catalogs"))
import mocks  # noqa: E402  (the generator's own model, for the covariance and the formula check)

pytestmark = pytest.mark.engine

CONFIG = REPO / "pipelines" / "config"
# Separations compared, in units of the field's scale s: where the signal is (xi- peaks at 2.8 s).
THETA_MAX_SCALES = 7.0
# A chi^2 this improbable (or worse) fails: the bound on chi^2/dof is its quantile for the dof.
FALSE_ALARM = 1e-4


def read_truth(path: Path) -> dict:
    """The mock stage's truth file."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def chi2_bound(dof: int) -> float:
    """The chi^2/dof that a correct measurement exceeds with probability FALSE_ALARM."""
    return stats.chi2.isf(FALSE_ALARM, dof) / dof


def xi_comparison(xi_path: Path, truth: dict, pairs: list[tuple[int, int]] | None = None,
                  spectra: tuple[str, ...] = ("xip", "xim")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(measured, expected, covariance) of the chosen spectra and bin pairs (1-based), 1-20 arcmin."""
    p, tomography = truth["parameters"], truth["tomography"]
    nbin = tomography["binning"]["nbin"]
    all_pairs = [(b1, b2) for b1 in range(1, nbin + 1) for b2 in range(b1, nbin + 1)]
    amplitude = {(pair["bin1"], pair["bin2"]): pair["amplitude"] for pair in truth["xi"]["pairs"]}
    tables = {extname: fitsio.read(xi_path, ext=extname) for extname in ("xip", "xim")}
    keep = tables["xip"]["ANG"][(tables["xip"]["BIN1"] == 1) & (tables["xip"]["BIN2"] == 1)] \
        < THETA_MAX_SCALES * p["shear_scale_arcmin"]
    formula = {"xip": mocks.xi_plus, "xim": mocks.xi_minus}
    values, errors, expected, theta = [], [], [], []
    for extname in ("xip", "xim"):
        for b1, b2 in all_pairs:
            rows = tables[extname][(tables[extname]["BIN1"] == b1) & (tables[extname]["BIN2"] == b2)][keep]
            values.append(rows["VALUE"])
            errors.append(rows["ERR"])
            expected.append(amplitude[b1, b2] * formula[extname](rows["ANG"], truth["model"]["sigma2"],
                                                                 p["shear_scale_arcmin"]))
            theta.append(rows["ANG"])
    values, errors = np.concatenate(values), np.concatenate(errors)
    density = np.full(nbin, p["n_galaxies"] * tomography["binned_fraction"] / nbin / (p["area_deg2"] * 3600))
    covariance = np.diag(errors**2) + mocks.gaussian_covariance(
        np.mean(theta, axis=0), [(b1 - 1, b2 - 1) for b1, b2 in all_pairs], np.array(tomography["efficiency"]),
        density, p["sigma_e"], p["area_deg2"], truth["model"]["sigma2"], p["shear_scale_arcmin"])
    chosen = np.concatenate([
        np.full(keep.sum(), extname in spectra and (pairs is None or pair in pairs))
        for extname in ("xip", "xim") for pair in all_pairs])
    return values[chosen], np.concatenate(expected)[chosen], covariance[np.ix_(chosen, chosen)]


def chi2_per_dof(measured: np.ndarray, expected: np.ndarray, covariance: np.ndarray) -> float:
    """chi^2 / dof of measured against expected (no parameter fitted: dof = number of points)."""
    residual = measured - expected
    return float(residual @ np.linalg.solve(covariance, residual)) / len(residual)


def fitted_amplitude(measured: np.ndarray, expected: np.ndarray, covariance: np.ndarray) -> tuple[float, float]:
    """The best-fitting multiple of `expected` (1 when the signal is right) and its error."""
    weighted = np.linalg.solve(covariance, expected)
    information = expected @ weighted
    return float(measured @ weighted / information), float(information**-0.5)


AMPLITUDE_SIGMAS = 4.0   # a fitted amplitude further than this many errors from 1 fails


def xi_chi2(xi_path: Path, truth: dict, **choice) -> tuple[float, float]:
    """(chi^2/dof, its bound) of a correlation-functions file against the truth."""
    measured, expected, covariance = xi_comparison(xi_path, truth, **choice)
    return chi2_per_dof(measured, expected, covariance), chi2_bound(len(measured))


def nz_pulls(n_of_z_path: Path, photoz_path: Path, tomographic_path: Path, truth: dict, b: int) -> np.ndarray:
    """Mean and mean square of z of bin b's stacked n(z) minus the model's, in standard errors.

    The model's stack is computed for the edges the tomography stage chose (whether those are
    right is the binning check's business). The standard errors are those of a mean over the bin's
    galaxies, from the spread of their own PDFs' moments. Moments rather than a chi^2 over the grid:
    neighbouring grid points share every galaxy, so their errors are strongly correlated.
    """
    nz = fitsio.read(n_of_z_path)
    bins, header = fitsio.read(tomographic_path, columns=["BIN"], header=True)
    edges = np.array([header[f"ZEDGE{i}"] for i in range(int(header["NBIN"]) + 1)])
    columns = [f"PDF_{i}" for i in range(len(nz))]
    pdfs = fitsio.read(photoz_path, columns=columns, rows=np.flatnonzero(bins["BIN"] == b))
    pdfs = np.stack([pdfs[c] for c in columns], axis=1).astype(np.float64)
    p = truth["parameters"]
    expected = mocks.expected_bins(edges, p["nz"], p["zmax"], p["sigma_z"])["n_stacked"][b - 1]
    powers = np.stack([nz["z_mid"], nz["z_mid"] ** 2])   # the moments: <z>, <z^2>
    per_galaxy = pdfs @ powers.T
    errors = per_galaxy.std(axis=0) / np.sqrt(len(pdfs))
    return (powers @ nz[f"BIN_{b}"] - powers @ expected) / errors


NZ_PULL_BOUND = 4.0


# --- The closed forms the truth relies on ------------------------------------------------------

@pytest.mark.parametrize("theta", [0.5, 2.0, 4.0, 6.0, 9.0, 15.0])
def test_xi_formulas_are_the_hankel_transforms_of_the_power_spectrum(theta):
    sigma2, scale = 0.02, 3.0
    for order, formula in ((0, mocks.xi_plus), (4, mocks.xi_minus)):
        numeric, _ = integrate.quad(lambda k: mocks.power_spectrum(k, sigma2, scale) * special.jv(order, k * theta)
                                    * k / (2 * np.pi), 0, 20 / scale, limit=400)
        assert formula(theta, sigma2, scale) == pytest.approx(numeric, rel=1e-8, abs=1e-14), (order, theta)
    assert mocks.xi_plus(0.0, sigma2, scale) == sigma2


def test_expected_edges_split_the_model_z_mean_distribution_evenly():
    """The truth's edges and stacks come from the model; a large mock drawn from it agrees."""
    edges, fraction = mocks.expected_edges(0.2, 1.2, 3, 2.0, 0.05)
    efficiency = mocks.expected_bins(edges, 100, 2.0, 0.05)["efficiency"]
    rng = np.random.default_rng(3)
    z = mocks.true_redshifts(rng, 2_000_000, 2.0)
    z_mean = z + rng.normal(0.0, 0.05 * (1 + z))
    assert np.mean((z_mean > 0.2) & (z_mean < 1.2)) == pytest.approx(fraction, abs=1e-3)
    inside = z_mean[(z_mean > 0.2) & (z_mean < 1.2)]
    assert np.quantile(inside, [1 / 3, 2 / 3]) == pytest.approx(edges[1:3], abs=2e-3)
    for b in range(3):
        in_bin = (z_mean > edges[b]) & (z_mean < edges[b + 1])
        assert np.mean(mocks.lensing_efficiency(z[in_bin])) == pytest.approx(efficiency[b], abs=1e-3)


# --- The example pipeline against the truth ----------------------------------------------------

@pytest.fixture(scope="module")
def demo(examples) -> dict[str, Path]:
    """The example run's products and truth."""
    output = examples / "output/des-sv-mock"
    return {name: output / f"{name}.fits" for name in
            ("shear-catalog", "photoz-catalog", "tomographic-catalog", "n_of_z", "correlation-functions")} \
        | {"truth": output / "mock-truth.yaml"}


def test_truth_is_written_beside_the_catalogs(demo):
    truth = read_truth(demo["truth"])
    assert truth["parameters"]["area_deg2"] == 140.0 and truth["parameters"]["n_galaxies"] == 100000
    assert truth["tomography"]["binning"] == {"bin_column": "Z_MEAN", "zmin": 0.2, "zmax": 1.2, "nbin": 3}
    assert [(pair["bin1"], pair["bin2"]) for pair in truth["xi"]["pairs"]] == \
        [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    theta = np.array(truth["xi"]["theta_arcmin"])
    assert np.allclose(truth["xi"]["xi_plus"], mocks.xi_plus(theta, truth["model"]["sigma2"], 3.0))
    assert len(truth["n_of_z"]["z_mid"]) == len(truth["n_of_z"]["stacked_BIN_1"]) == 100
    # Higher bins see more lensing.
    assert truth["tomography"]["efficiency"] == sorted(truth["tomography"]["efficiency"])


@pytest.mark.parametrize("pair", [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)])
@pytest.mark.parametrize("spectrum", ["xip", "xim"])
def test_every_bin_pair_recovers_the_injected_xi(demo, pair, spectrum):
    measured, expected, covariance = xi_comparison(demo["correlation-functions"], read_truth(demo["truth"]),
                                                   pairs=[pair], spectra=(spectrum,))
    chi2, bound = chi2_per_dof(measured, expected, covariance), chi2_bound(len(measured))
    assert chi2 < bound, f"{spectrum} of bins {pair}: chi^2/dof {chi2:.2f} > {bound:.2f}"
    amplitude, error = fitted_amplitude(measured, expected, covariance)
    assert abs(amplitude - 1) < AMPLITUDE_SIGMAS * error, f"{spectrum} of bins {pair}: amplitude {amplitude:.3f} ± {error:.3f}"


def test_all_xi_together_recover_the_injected_amplitude(demo):
    truth = read_truth(demo["truth"])
    measured, expected, covariance = xi_comparison(demo["correlation-functions"], truth)
    chi2, bound = chi2_per_dof(measured, expected, covariance), chi2_bound(len(measured))
    assert len(measured) == 180 and chi2 < bound, f"chi^2/dof {chi2:.2f} > {bound:.2f}"
    amplitude, error = fitted_amplitude(measured, expected, covariance)
    assert error < 0.05, "the signal is measured to better than 5%"
    assert abs(amplitude - 1) < AMPLITUDE_SIGMAS * error, f"amplitude {amplitude:.3f} ± {error:.3f}"


@pytest.mark.parametrize("b", [1, 2, 3])
def test_each_bins_n_of_z_matches_the_expected_stack(demo, b):
    pulls = nz_pulls(demo["n_of_z"], demo["photoz-catalog"], demo["tomographic-catalog"], read_truth(demo["truth"]), b)
    assert np.all(np.abs(pulls) < NZ_PULL_BOUND), f"bin {b}: <z>, <z^2> off by {pulls} standard errors"


def binning_problems(tomographic_path: Path, photoz_path: Path, truth: dict) -> list[str]:
    """What is wrong with a binning against the truth: unequal bins, edges or a binned share off."""
    bins, header = fitsio.read(tomographic_path, columns=["BIN"], header=True)
    bins = bins["BIN"]
    z_mean = fitsio.read(photoz_path, columns=["Z_MEAN"])["Z_MEAN"]
    nbin = truth["tomography"]["binning"]["nbin"]
    problems = []
    counts = np.array([np.sum(bins == b) for b in range(1, nbin + 1)])
    if np.ptp(counts) > 1:   # W is 1 for every galaxy: equal weight is equal number
        problems.append(f"bins hold {counts.tolist()} galaxies")
    fraction, expected = counts.sum() / len(bins), truth["tomography"]["binned_fraction"]
    if abs(fraction - expected) > 4 * np.sqrt(expected * (1 - expected) / len(bins)):
        problems.append(f"{fraction:.4f} of the galaxies are binned, the model says {expected:.4f}")
    edges = np.array([header[f"ZEDGE{i}"] for i in range(nbin + 1)])
    # A quantile of ~10^5 values is known to ~1e-3 in z here; 5e-3 is a generous 5 sigma.
    if np.max(np.abs(edges - truth["tomography"]["edges"])) > 5e-3:
        problems.append(f"edges {np.round(edges, 4).tolist()}, the model says "
                        f"{np.round(truth['tomography']['edges'], 4).tolist()}")
    for b in range(1, nbin):
        if z_mean[bins == b].max() > z_mean[bins == b + 1].min():
            problems.append(f"bins {b} and {b + 1} overlap in Z_MEAN")
    return problems


def test_tomographic_bins_hold_equal_weight_at_the_expected_edges(demo):
    assert binning_problems(demo["tomographic-catalog"], demo["photoz-catalog"], read_truth(demo["truth"])) == []


# --- Tampered catalogs fail the same checks ----------------------------------------------------

def measure_xi(workdir: Path, shear: Path, tomographic: Path) -> Path:
    """Run the treecorr stage; return its correlation-functions file."""
    output = workdir / "xi.fits"
    run_ok("treecorr", workdir, "--shear-catalog", shear, "--tomographic-catalog", tomographic,
           "--config", CONFIG / "treecorr.yaml", "--correlation-functions", output, "--cores", 2)
    return output


def tampered_shear(demo: dict[str, Path], workdir: Path, change) -> Path:
    """A copy of the example's shear catalog with `change` applied to its table."""
    table = fitsio.read(demo["shear-catalog"])
    change(table)
    path = workdir / "shear.fits"
    fitsio.write(path, table, clobber=True)
    return path


def shuffled_bins(demo: dict[str, Path], workdir: Path) -> Path:
    """The example's tomographic catalog with its BIN column shuffled (same counts, same header)."""
    table, header = fitsio.read(demo["tomographic-catalog"], header=True)
    np.random.default_rng(5).shuffle(table["BIN"])
    path = workdir / "tomographic.fits"
    fitsio.write(path, table, header={key: header[key] for key in header if key.startswith(("NBIN", "ZEDGE"))})
    return path


def negate_e2(table: np.ndarray) -> None:
    table["E_2"] *= -1


def zero_e2(table: np.ndarray) -> None:
    table["E_2"] = 0.0


@pytest.mark.parametrize("change", [negate_e2, zero_e2], ids=["E_2 negated", "E_2 zeroed"])
def test_xi_check_rejects_a_tampered_e2_column(demo, tmp_path, change):
    xi = measure_xi(tmp_path, tampered_shear(demo, tmp_path, change), demo["tomographic-catalog"])
    chi2, bound = xi_chi2(xi, read_truth(demo["truth"]))
    assert chi2 > bound, f"chi^2/dof {chi2:.2f} passes the bound {bound:.2f}"


def test_xi_check_rejects_a_changed_signal_amplitude(demo, tmp_path):
    """The same seed with a weaker field (0.07 instead of 0.1): same galaxies, same noise, half the xi."""
    truth = read_truth(demo["truth"])
    parameters = truth["parameters"]
    shear = tmp_path / "shear.fits"
    run_ok("mock_catalogs", tmp_path, "--shear-catalog", shear, "--photoz-catalog", tmp_path / "photoz.fits",
           "--mock-truth", tmp_path / "truth.yaml", "--binning", CONFIG / "tomography.yaml",
           *(f"--{name}={parameters[name]}" for name in ("n_galaxies", "seed", "area_deg2", "nz")),
           "--shear_amplitude=0.07")
    chi2, bound = xi_chi2(measure_xi(tmp_path, shear, demo["tomographic-catalog"]), truth)
    assert chi2 > bound, f"chi^2/dof {chi2:.2f} passes the bound {bound:.2f}"


def test_xi_and_n_of_z_checks_reject_a_shuffled_bin_column(demo, tmp_path):
    truth = read_truth(demo["truth"])
    tomographic = shuffled_bins(demo, tmp_path)
    xi = measure_xi(tmp_path, demo["shear-catalog"], tomographic)
    chi2, bound = xi_chi2(xi, truth)
    assert chi2 > bound, f"xi: chi^2/dof {chi2:.2f} passes the bound {bound:.2f}"
    # Every bin now holds the whole sample's mix of redshifts: the pairs' amplitudes are all wrong
    # (the lowest bin's xi too high, the highest's too low), each by more than the bound.
    pulls = {}
    for pair in ((1, 1), (3, 3)):
        amplitude, error = fitted_amplitude(*xi_comparison(xi, truth, pairs=[pair]))
        pulls[pair] = (amplitude - 1) / error
    assert pulls[1, 1] > AMPLITUDE_SIGMAS and pulls[3, 3] < -AMPLITUDE_SIGMAS, pulls
    n_of_z = tmp_path / "n_of_z.fits"
    run_ok("pz_stack", tmp_path, "--photoz-catalog", demo["photoz-catalog"], "--tomographic-catalog", tomographic,
           "--n_of_z", n_of_z)
    for b in (1, 2, 3):
        assert np.any(np.abs(nz_pulls(n_of_z, demo["photoz-catalog"], tomographic, truth, b)) > NZ_PULL_BOUND), b
    assert any("overlap" in problem for problem in binning_problems(tomographic, demo["photoz-catalog"], truth))


def test_binning_check_rejects_bins_made_with_other_edges(demo, tmp_path):
    """Equal-number bins, but over 0.3 < Z_MEAN < 1.2 instead of the configured 0.2 < Z_MEAN < 1.2."""
    config = tmp_path / "tomography.yaml"
    config.write_text((CONFIG / "tomography.yaml").read_text().replace("zmin: 0.2", "zmin: 0.3"))
    tomographic = tmp_path / "tomographic.fits"
    run_ok("tomography", tmp_path, "--photoz-catalog", demo["photoz-catalog"], "--config", config,
           "--tomographic-catalog", tomographic)
    problems = binning_problems(tomographic, demo["photoz-catalog"], read_truth(demo["truth"]))
    assert any("binned" in problem for problem in problems) and any("edges" in problem for problem in problems)


def test_plot_script_draws_measured_against_expected_as_png(examples, tmp_path):
    from matplotlib import image

    png = tmp_path / "truth.png"
    result = subprocess.run([sys.executable, str(REPO / "pipelines" / "plot_truth.py"),
                             str(examples / "output/des-sv-mock"), "-o", str(png)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(png)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 1000
    assert pixels.std() > 0.05, "the picture is not blank"
