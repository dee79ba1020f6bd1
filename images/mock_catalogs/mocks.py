"""Synthetic DES-SV-like shear and photo-z catalogs with a known signal, and that signal's truth.

The model (every number a parameter of `make_catalog` or a constant below):

* positions: uniform in area on a patch centred on RA=70, DEC=-50 deg (DES SV SPT-E);
* true redshift: n(z) ∝ z^2 exp(-(z/0.5)^1.5), truncated to the PDF grid 0 < z < zmax;
* photo-z: Z_MEAN = z + N(0, sigma_z (1+z)); its PDF is a Gaussian of width sigma_z (1+Z_MEAN)
  centred on Z_MEAN, evaluated at the grid bin centres and normalised to sum to 1;
* shear: one Gaussian random shear field gamma(theta) (pure E mode, flat sky) scaled per galaxy by
  a lensing efficiency A(z) = 1 - LENS_Z/z behind a single lens plane, plus Gaussian shape noise
  sigma_e per component (weak-shear limit: e = A(z) gamma + noise).

The field's convergence power spectrum is P(k) = 2 pi s^6 sigma^2 k^4 exp(-k^2 s^2) (s the field's
scale, sigma^2 = <|gamma|^2>), whose Hankel transforms are closed-form (a Laguerre polynomial and
a Gaussian; verified numerically by the tests): with x = theta^2 / (4 s^2),

    xi+(theta) = sigma^2 exp(-x) (1 - 2x + x^2/2),    xi-(theta) = sigma^2 exp(-x) x^2 / 2,

the same shapes as the Gaussian-profile lenses of TreeCorr's own tests. Bins i, j of the source
galaxies then have xi±_ij = <A>_i <A>_j xi±, with <A>_i the mean efficiency of bin i's galaxies.

Sign conventions are TreeCorr's on the sky: g1 > 0 stretches along the east-west line, g2 > 0
along the north-west/south-east diagonal, i.e. the shear is measured in a frame whose x axis
points west (towards decreasing RA) and whose y axis points north (increasing DEC). With that
frame xi- comes out as above; the opposite frame (x east) would mirror the field and TreeCorr
would measure xi- ≈ 0 (the tests check this).
"""
from __future__ import annotations

import fitsio
import numpy as np
from scipy import fft, ndimage, special

PATCH_RA, PATCH_DEC = 70.0, -50.0   # degrees
Z0 = 0.5                            # n(z) scale
LENS_Z = 0.2                        # single lens plane of the efficiency (1 - z_lens/z)
PIXELS_PER_SCALE = 8                # grid spacing s/8, fine enough for cubic-spline interpolation
MARGIN_SCALES = 10                  # grid margin beyond the patch: xi+(10 s) ~ 4e-9 sigma^2
CHUNK_ROWS = 100_000                # photo-z rows per write: bounds the PDF memory to ~40 MB
FINE_Z = 4000                       # integration points in redshift for the truth


def patch_bounds(area_deg2: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """(RA range, DEC range) in degrees of a patch of `area_deg2` centred on the SPT-E field.

    The DEC range is sqrt(area) wide; the RA range is wide enough that the spherical area is exact.
    """
    half = np.sqrt(area_deg2) / 2
    band = np.sin(np.radians(PATCH_DEC + half)) - np.sin(np.radians(PATCH_DEC - half))
    ra_width = np.degrees(np.radians(np.sqrt(area_deg2)) ** 2 / band)
    dec_range = (PATCH_DEC - half, PATCH_DEC + half)
    if dec_range[0] <= -90 or dec_range[1] >= 90 or ra_width >= 360:
        raise ValueError(f"area_deg2={area_deg2} does not fit in one patch around DEC={PATCH_DEC} deg")
    return (PATCH_RA - ra_width / 2, PATCH_RA + ra_width / 2), dec_range


def uniform_on_sphere(rng: np.random.Generator, n: int, ra_range: tuple[float, float],
                      dec_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """`n` points uniform in area between the given RA and DEC limits (degrees)."""
    ra = rng.uniform(*ra_range, n)
    sin_dec = rng.uniform(*np.sin(np.radians(dec_range)), n)
    return ra, np.degrees(np.arcsin(sin_dec))


def true_redshifts(rng: np.random.Generator, n: int, zmax: float) -> np.ndarray:
    """`n` draws of n(z) ∝ z^2 exp(-(z/Z0)^1.5) truncated to 0 < z < zmax.

    With u = (z/Z0)^1.5 this n(z) is a Gamma(2) distribution in u; draws above zmax are redrawn.
    """
    z = Z0 * rng.gamma(2.0, size=n) ** (2 / 3)
    while (redraw := z >= zmax).any():
        z[redraw] = Z0 * rng.gamma(2.0, size=redraw.sum()) ** (2 / 3)
    return z


def lensing_efficiency(z: np.ndarray) -> np.ndarray:
    """A cheap stand-in for D_ls/D_s: (1 - z_lens/z) behind a lens plane at LENS_Z, 0 in front of it."""
    return 1.0 - LENS_Z / np.maximum(z, LENS_Z)


def xi_plus(theta_arcmin: np.ndarray, sigma2: float, scale_arcmin: float) -> np.ndarray:
    """xi+ of the field at separations `theta_arcmin`: sigma^2 exp(-x) (1 - 2x + x^2/2), x = theta^2/4s^2."""
    x = np.asarray(theta_arcmin) ** 2 / (4 * scale_arcmin**2)
    return sigma2 * np.exp(-x) * (1 - 2 * x + x**2 / 2)


def xi_minus(theta_arcmin: np.ndarray, sigma2: float, scale_arcmin: float) -> np.ndarray:
    """xi- of the field at separations `theta_arcmin`: sigma^2 exp(-x) x^2 / 2, x = theta^2/4s^2."""
    x = np.asarray(theta_arcmin) ** 2 / (4 * scale_arcmin**2)
    return sigma2 * np.exp(-x) * x**2 / 2


def power_spectrum(k: np.ndarray, sigma2: float, scale_arcmin: float) -> np.ndarray:
    """Convergence (= E-mode shear) power P(k) = 2 pi s^6 sigma^2 k^4 exp(-k^2 s^2), k in 1/arcmin.

    Normalised so that xi+(0) = (1/2pi) ∫ P(k) k dk = sigma^2.
    """
    return 2 * np.pi * scale_arcmin**6 * sigma2 * k**4 * np.exp(-(k * scale_arcmin) ** 2)


def gaussian_covariance(theta_arcmin: np.ndarray, pairs: list[tuple[int, int]], efficiency: np.ndarray,
                        density_per_arcmin2: np.ndarray, sigma_e: float, area_deg2: float, sigma2: float,
                        scale_arcmin: float) -> np.ndarray:
    """Cosmic-variance and signal x shape-noise covariance of (xi+, xi-) measured on the patch.

    The data vector is xi+ of every pair (b1, b2) in `pairs` (0-based bins) at every separation
    in `theta_arcmin`, then xi- likewise. For a Gaussian field the covariance of the estimators on
    an area A is (Joachimi, Schneider & Eifler 2008, with k in 1/arcmin)

        Cov(xi_ij(t1), xi_kl(t2)) = 1/(2 pi A) ∫ k dk J(k t1) J(k t2) [C_ik C_jl + C_il C_jk],

    C_ij = <A>_i <A>_j P(k) + delta_ij sigma_e^2 / n_i, with J = J0 for xi+ and J4 for xi-. The
    noise x noise part of that product is left out: TreeCorr's varxip/varxim give it exactly
    for the pairs actually counted (the ERR column), so the caller adds ERR^2 on the diagonal.
    Ignored, as small here: the patch's edges (exact for separations much smaller than the patch)
    and the spread of the efficiency within a bin.
    """
    k = np.linspace(0.0, 8.0 / scale_arcmin, 4000)
    power = power_spectrum(k, sigma2, scale_arcmin)
    weight = k * (k[1] - k[0]) / (2 * np.pi * area_deg2 * 3600.0)
    kernels = [special.jv(order, np.outer(theta_arcmin, k)) * np.sqrt(weight) for order in (0, 4)]
    n_theta, n_pairs = len(theta_arcmin), len(pairs)

    def noise(i: int, j: int) -> float:
        return sigma_e**2 / density_per_arcmin2[i] if i == j else 0.0

    def spectrum(i: int, j: int) -> np.ndarray:
        return efficiency[i] * efficiency[j] * power + noise(i, j)

    covariance = np.zeros((2 * n_pairs * n_theta,) * 2)
    for p, (i, j) in enumerate(pairs):
        for q, (m, n) in enumerate(pairs):
            product = (spectrum(i, m) * spectrum(j, n) + spectrum(i, n) * spectrum(j, m)
                       - noise(i, m) * noise(j, n) - noise(i, n) * noise(j, m))
            for a, kernel_a in enumerate(kernels):
                for b, kernel_b in enumerate(kernels):
                    rows = slice((a * n_pairs + p) * n_theta, (a * n_pairs + p + 1) * n_theta)
                    columns = slice((b * n_pairs + q) * n_theta, (b * n_pairs + q + 1) * n_theta)
                    covariance[rows, columns] = (kernel_a * product) @ kernel_b.T
    return covariance


def tangent_plane(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stereographic projection about the patch centre: (x west, y north) in arcmin.

    Stereographic is conformal, so a flat-sky field drawn on this plane has the same two-point
    functions on the sphere up to the scale factor 2/(1 + cos c) ≈ 1 + c^2/4 (1.003 at c = 6 deg).
    """
    ra, dec = np.radians(ra - PATCH_RA), np.radians(dec)
    dec0 = np.radians(PATCH_DEC)
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra)
    k = 2 / (1 + cos_c) * np.degrees(1) * 60
    return -k * np.cos(dec) * np.sin(ra), k * (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra))


def shear_field(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, sigma2: float,
                scale_arcmin: float) -> np.ndarray:
    """Complex shear g1 + i g2 in TreeCorr's sky frame of a Gaussian random field with P(k) above.

    The field is drawn on a periodic grid (spacing s/8) covering the projected patch plus 10 s on
    every side, so the periodic images do not correlate with the patch; gamma~(k) = kappa~(k)
    (k1 + i k2)^2 / k^2 is the E-mode shear of a real convergence. It is interpolated to the
    galaxies with cubic splines and rotated from the plane's axes to each galaxy's local
    (west, north) frame, which differ by the angle the projected meridian makes with the plane's y.
    """
    x, y = tangent_plane(ra, dec)
    pixel = scale_arcmin / PIXELS_PER_SCALE
    margin = MARGIN_SCALES * scale_arcmin
    origin = np.array([x.min() - margin, y.min() - margin])
    shape = [fft.next_fast_len(int(np.ceil((hi - lo + 2 * margin) / pixel)) + 1)
             for lo, hi in ((x.min(), x.max()), (y.min(), y.max()))]
    k1 = 2 * np.pi * fft.fftfreq(shape[0], d=pixel)[:, np.newaxis]
    k2 = 2 * np.pi * fft.fftfreq(shape[1], d=pixel)[np.newaxis, :]
    k_squared = k1**2 + k2**2
    k_squared[0, 0] = 1.0   # the mean mode: P(0) = 0 makes it vanish anyway
    # White noise of unit variance per pixel times sqrt(P)/pixel has power P(k) on the grid.
    amplitude = np.sqrt(power_spectrum(np.sqrt(k_squared), sigma2, scale_arcmin)) / pixel
    kappa = fft.fft2(rng.standard_normal(shape)) * amplitude
    gamma = fft.ifft2(kappa * (k1 + 1j * k2) ** 2 / k_squared)
    where = np.stack([(x - origin[0]) / pixel, (y - origin[1]) / pixel])
    g = (ndimage.map_coordinates(gamma.real, where, order=3, mode="grid-wrap")
         + 1j * ndimage.map_coordinates(gamma.imag, where, order=3, mode="grid-wrap"))
    # The local north at each galaxy, seen on the plane: a step of 1 arcsec in DEC.
    x_north, y_north = tangent_plane(ra, dec + 1 / 3600)
    rotation = np.arctan2(-(x_north - x), y_north - y)   # angle from the plane's y to local north
    return g * np.exp(-2j * rotation)


def make_catalog(rng: np.random.Generator, n_galaxies: int, area_deg2: float, zmax: float,
                 sigma_z: float, sigma_e: float, shear_amplitude: float,
                 shear_scale_arcmin: float) -> dict[str, np.ndarray]:
    """Per-galaxy columns RA, DEC, Z_TRUE, Z_MEAN, E_1, E_2, W (float64, one row per galaxy).

    `shear_amplitude` is the rms of each shear component for efficiency 1 (so xi+(0) is twice
    its square). Every random number is drawn whatever `shear_amplitude` is, so two catalogs with
    the same rng seed differ only in E_1 and E_2 by the injected signal.
    """
    if n_galaxies < 1 or area_deg2 <= 0 or zmax <= 0 or sigma_z <= 0 or sigma_e < 0 or shear_scale_arcmin <= 0:
        raise ValueError("need n_galaxies >= 1, area_deg2 > 0, zmax > 0, sigma_z > 0, sigma_e >= 0 "
                         "and shear_scale_arcmin > 0")
    ra, dec = uniform_on_sphere(rng, n_galaxies, *patch_bounds(area_deg2))
    z_true = true_redshifts(rng, n_galaxies, zmax)
    z_mean = z_true + rng.normal(0.0, sigma_z * (1 + z_true))
    gamma = shear_field(rng, ra, dec, 2 * shear_amplitude**2, shear_scale_arcmin)
    signal = gamma * lensing_efficiency(z_true)
    e1 = signal.real + rng.normal(0.0, sigma_e, n_galaxies)
    e2 = signal.imag + rng.normal(0.0, sigma_e, n_galaxies)
    return {"RA": ra, "DEC": dec, "Z_TRUE": z_true, "Z_MEAN": z_mean,
            "E_1": e1, "E_2": e2, "W": np.ones(n_galaxies)}


def pdf_grid(nz: int, zmax: float) -> np.ndarray:
    """The nz + 1 edges of the photo-z PDF grid, from 0 to zmax."""
    if nz < 1:
        raise ValueError(f"nz={nz}: the PDF grid needs at least one bin")
    return np.linspace(0.0, zmax, nz + 1)


def photoz_pdfs(z_mean: np.ndarray, z_mid: np.ndarray, sigma_z: float) -> np.ndarray:
    """Gaussian photo-z PDFs (len(z_mean) x len(z_mid), float32), each summing to 1 over the grid."""
    # In place on one float64 array: this runs on CHUNK_ROWS x nz values at a time.
    log_pdf = (z_mid[np.newaxis, :] - z_mean[:, np.newaxis]) / (sigma_z * (1 + z_mean[:, np.newaxis]))
    log_pdf *= log_pdf
    log_pdf *= -0.5
    # Subtracting each row's maximum keeps a PDF far narrower than the grid spacing from
    # underflowing to all zeros (it then puts everything in the nearest bin).
    log_pdf -= log_pdf.max(axis=1, keepdims=True)
    pdf = np.exp(log_pdf, out=log_pdf)
    pdf /= pdf.sum(axis=1, keepdims=True)
    return pdf.astype(np.float32)


def _model_redshifts(zmax: float, sigma_z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine grid of true z on 0..zmax, its normalised n(z) weights, and the photo-z error there."""
    z = (np.arange(FINE_Z) + 0.5) * zmax / FINE_Z
    n_z = z**2 * np.exp(-((z / Z0) ** 1.5))
    return z, n_z / n_z.sum(), sigma_z * (1 + z)


def _z_mean_density(z_mean: np.ndarray, zmax: float, sigma_z: float) -> np.ndarray:
    """The model's probability density of Z_MEAN at `z_mean`: n(z) convolved with the photo-z error."""
    z, n_z, width = _model_redshifts(zmax, sigma_z)
    return n_z @ (np.exp(-0.5 * ((z_mean[np.newaxis, :] - z[:, np.newaxis]) / width[:, np.newaxis]) ** 2)
                  / (np.sqrt(2 * np.pi) * width[:, np.newaxis]))


def expected_edges(zmin: float, zmax_bins: float, nbin: int, zmax: float, sigma_z: float) -> tuple[np.ndarray, float]:
    """Equal-number bin edges in Z_MEAN that the model implies, and the share of galaxies binned.

    The edges are zmin, the quantiles i/nbin of the model's Z_MEAN distribution between zmin and
    zmax_bins, and zmax_bins: what the tomography stage finds on an infinite catalog.
    """
    z_mean = np.linspace(zmin, zmax_bins, FINE_Z + 1)
    density = _z_mean_density(z_mean, zmax, sigma_z)
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(z_mean))])
    edges = np.interp(np.arange(nbin + 1) / nbin * cumulative[-1], cumulative, z_mean)
    edges[0], edges[-1] = zmin, zmax_bins
    return edges, float(cumulative[-1])


def expected_bins(edges: np.ndarray, nz: int, zmax: float, sigma_z: float) -> dict[str, np.ndarray]:
    """What the model predicts for the galaxies with edges[i] < Z_MEAN < edges[i+1], bin by bin.

    Returns `efficiency` (<A>_i, the mean lensing efficiency of each bin's galaxies) and, on the
    PDF grid (`z_mid`, nz values), `n_true` (nbin x nz: each bin's distribution of true z, summing
    to 1) and `n_stacked` (nbin x nz: each bin's mean photo-z PDF, which is what stacking
    estimates; broader than n_true, as each PDF adds its own width to the scatter of Z_MEAN).
    """
    z, n_z, width = _model_redshifts(zmax, sigma_z)
    grid = pdf_grid(nz, zmax)
    z_mid = (grid[:-1] + grid[1:]) / 2
    nbin = len(edges) - 1
    n_true, n_stacked, efficiency = np.zeros((nbin, nz)), np.zeros((nbin, nz)), np.zeros(nbin)
    for b in range(nbin):
        # P(Z_MEAN in bin | z) for each true z, then the bin's true-z distribution.
        in_bin = n_z * (special.ndtr((edges[b + 1] - z) / width) - special.ndtr((edges[b] - z) / width))
        efficiency[b] = np.sum(lensing_efficiency(z) * in_bin) / in_bin.sum()
        n_true[b] = np.histogram(z, grid, weights=in_bin)[0] / in_bin.sum()
        z_mean = np.linspace(edges[b], edges[b + 1], FINE_Z + 1)
        pdfs = photoz_pdfs(z_mean, z_mid, sigma_z).astype(np.float64)
        n_stacked[b] = np.trapezoid(_z_mean_density(z_mean, zmax, sigma_z)[:, np.newaxis] * pdfs, z_mean, axis=0)
        n_stacked[b] /= n_stacked[b].sum()
    return {"efficiency": efficiency, "z_mid": z_mid, "n_true": n_true, "n_stacked": n_stacked}


def write_catalogs(catalog: dict[str, np.ndarray], shear_path: str, photoz_path: str,
                   nz: int, zmax: float, sigma_z: float) -> None:
    """Write the row-aligned shear and photo-z FITS catalogs (tables in HDU 1).

    The photo-z table (Z_MEAN, Z_TRUE, PDF_0..PDF_<nz-1>, header NZ, ZMIN, ZMAX) is written in
    chunks of CHUNK_ROWS rows, so its PDFs never sit in memory all at once.
    """
    shear = np.empty(len(catalog["RA"]), [(c, "f8") for c in ("RA", "DEC", "E_1", "E_2", "W")])
    for column in shear.dtype.names:
        shear[column] = catalog[column]
    fitsio.write(shear_path, shear, extname="shear", units=["deg", "deg", "", "", ""], clobber=True)

    edges = pdf_grid(nz, zmax)
    z_mid = (edges[:-1] + edges[1:]) / 2
    pdf_columns = [f"PDF_{i}" for i in range(nz)]
    dtype = [("Z_MEAN", "f8"), ("Z_TRUE", "f8")] + [(c, "f4") for c in pdf_columns]
    header = [{"name": "NZ", "value": nz, "comment": "number of PDF grid bins"},
              {"name": "ZMIN", "value": 0.0, "comment": "lower edge of the PDF grid"},
              {"name": "ZMAX", "value": zmax, "comment": "upper edge of the PDF grid"},
              {"name": "SIGMA_Z", "value": sigma_z, "comment": "photo-z scatter per (1+z)"}]
    with fitsio.FITS(photoz_path, "rw", clobber=True) as fits:
        for start in range(0, len(shear), CHUNK_ROWS):
            z_mean = catalog["Z_MEAN"][start:start + CHUNK_ROWS]
            rows = np.empty(len(z_mean), dtype)
            rows["Z_MEAN"] = z_mean
            rows["Z_TRUE"] = catalog["Z_TRUE"][start:start + CHUNK_ROWS]
            pdf = photoz_pdfs(z_mean, z_mid, sigma_z)
            for i, column in enumerate(pdf_columns):
                rows[column] = pdf[:, i]
            if start == 0:
                fits.write(rows, extname="photoz", header=header)
            else:
                fits[-1].append(rows)
