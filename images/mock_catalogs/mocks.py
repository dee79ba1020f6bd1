"""Synthetic DES-SV-like shear and photo-z catalogs, as pure functions of parameters and an rng.

The model, kept deliberately simple so that a later signal model can replace `shear_signal`:

* positions: uniform in area on a square-ish patch centred on RA=70, DEC=-50 deg (DES SV SPT-E);
* true redshift: n(z) ∝ z^2 exp(-(z/0.5)^1.5), truncated to the PDF grid 0 < z < zmax;
* photo-z: Z_MEAN = z + N(0, sigma_z (1+z)); its PDF is a Gaussian of width sigma_z (1+Z_MEAN)
  centred on Z_MEAN, evaluated at the grid bin centres and normalised to sum to 1;
* shear: a sum of Gaussian-profile tangential patterns around random centres, scaled to an rms of
  `shear_amplitude` per component and by a lensing efficiency that grows with redshift, plus
  Gaussian shape noise sigma_e per component (weak-shear limit: e = g + noise).
"""
from __future__ import annotations

import fitsio
import numpy as np

PATCH_RA, PATCH_DEC = 70.0, -50.0   # degrees
Z0 = 0.5                            # n(z) scale
LENS_Z = 0.3                        # single lens plane of the efficiency (1 - z_lens/z)
PATTERN_SCALE_DEG = 0.5             # r0 of the tangential patterns (30 arcmin)
PATTERNS_PER_DEG2 = 1.0             # enough overlap that the field looks coherent, few enough to be fast
CHUNK_ROWS = 100_000                # photo-z rows per write: bounds the PDF memory to ~40 MB


def patch_bounds(area_deg2: float, margin_deg: float = 0.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """(RA range, DEC range) in degrees of a patch of `area_deg2` centred on the SPT-E field.

    The DEC range is sqrt(area) wide; the RA range is wide enough that the spherical area is exact.
    `margin_deg` widens both sides (RA by margin/cos(DEC)), e.g. to place pattern centres off the edge.
    """
    half = np.sqrt(area_deg2) / 2
    band = np.sin(np.radians(PATCH_DEC + half)) - np.sin(np.radians(PATCH_DEC - half))
    ra_width = np.degrees(np.radians(np.sqrt(area_deg2)) ** 2 / band)
    ra_width += 2 * margin_deg / np.cos(np.radians(PATCH_DEC))
    dec_range = (PATCH_DEC - half - margin_deg, PATCH_DEC + half + margin_deg)
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


def shear_signal(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, area_deg2: float) -> np.ndarray:
    """Complex shear g1 + i g2 with unit rms per component, for a source with efficiency 1.

    Each pattern has tangential shear ∝ x exp(-x), x = r^2 / (2 r0^2), around a centre drawn
    uniformly on the patch widened by 2 r0 (so that edges see as many patterns as the middle).
    Flat sky around each centre, with +x towards decreasing RA as TreeCorr expects on the sky.
    """
    margin = 2 * PATTERN_SCALE_DEG
    ra_range, dec_range = patch_bounds(area_deg2, margin)
    widened_area = (np.sqrt(area_deg2) + 2 * margin) ** 2
    n_patterns = max(1, round(PATTERNS_PER_DEG2 * widened_area))
    centres = uniform_on_sphere(rng, n_patterns, ra_range, dec_range)
    g = np.zeros(len(ra), complex)
    for ra_c, dec_c in zip(*centres):
        dx = (ra_c - ra) * np.cos(np.radians(dec_c))
        dy = dec - dec_c
        r2 = dx * dx + dy * dy
        x = r2 / (2 * PATTERN_SCALE_DEG**2)
        # Tangential shear gamma_t means g = -gamma_t exp(2i phi) = -gamma_t (dx + i dy)^2 / r^2.
        g -= np.exp(-x) * (dx + 1j * dy) ** 2 / (2 * PATTERN_SCALE_DEG**2)
    rms = np.sqrt(np.mean(np.abs(g) ** 2) / 2)
    return g / rms


def make_catalog(rng: np.random.Generator, n_galaxies: int, area_deg2: float, zmax: float,
                 sigma_z: float, sigma_e: float, shear_amplitude: float) -> dict[str, np.ndarray]:
    """Per-galaxy columns RA, DEC, Z_TRUE, Z_MEAN, E_1, E_2, W (float64, one row per galaxy).

    Every random number is drawn whatever `shear_amplitude` is, so two catalogs with the same rng
    seed differ only in E_1 and E_2 by the injected signal.
    """
    if n_galaxies < 1 or area_deg2 <= 0 or zmax <= 0 or sigma_z <= 0 or sigma_e < 0:
        raise ValueError("need n_galaxies >= 1, area_deg2 > 0, zmax > 0, sigma_z > 0 and sigma_e >= 0")
    ra, dec = uniform_on_sphere(rng, n_galaxies, *patch_bounds(area_deg2))
    z_true = true_redshifts(rng, n_galaxies, zmax)
    z_mean = z_true + rng.normal(0.0, sigma_z * (1 + z_true))
    signal = shear_signal(rng, ra, dec, area_deg2) * shear_amplitude * lensing_efficiency(z_true)
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
