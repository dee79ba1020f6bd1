"""descpipe stage `mock_catalogs`: synthetic DES-SV-like catalogs with a known shear signal."""
import sys
from pathlib import Path

import descpipe

THETA_GRID = (0.5, 300.0, 200)   # arcmin: the fine log grid the truth's curves are evaluated on


class Stage(descpipe.Stage):
    """Write synthetic shear and photo-z catalogs carrying a signal known in closed form, and that truth.

    Galaxies are uniform in area on a `area_deg2` patch near RA=70, DEC=-50 deg (DES SV SPT-E is
    about 140 deg^2), with true redshifts from n(z) ∝ z^2 exp(-(z/0.5)^1.5) on 0 < z < zmax.
    Photo-z: Z_MEAN is the true z plus a Gaussian error sigma_z (1+z); PDF_0..PDF_<nz-1> is a
    Gaussian of width sigma_z (1+Z_MEAN) around Z_MEAN on `nz` bins from 0 to zmax (header NZ,
    ZMIN, ZMAX), summing to 1. Shapes: E_1 + i E_2 = A(z) gamma + shape noise (sigma_e per
    component), where gamma is a Gaussian random E-mode shear field of rms `shear_amplitude` per
    component whose xi+ and xi- are closed-form (scale `shear_scale_arcmin`; see mocks.py), and
    A(z) = 1 - 0.2/z a single-lens-plane lensing efficiency. Weights W are 1. Signs follow
    TreeCorr on the sky: g1 along east-west, g2 along the north-west diagonal.
    The `binning` config is the tomography stage's (bin_column Z_MEAN, zmin, zmax, nbin): the truth
    is computed for that binning. Outputs: `shear-catalog` (RA, DEC in degrees, E_1, E_2, W) and
    `photoz-catalog` (Z_MEAN, Z_TRUE, PDFs), FITS tables in HDU 1 with the same rows in the same
    order; `mock-truth`, YAML: the parameters, each bin's expected edges, efficiency, true and
    stacked n(z), and xi+/xi- of the field on a fine angular grid with each bin pair's amplitude.
    """

    name = "mock_catalogs"
    inputs = {}
    outputs = {"shear-catalog": "fits", "photoz-catalog": "fits", "mock-truth": "yaml"}
    config = {"binning": "tomography.yaml"}
    parameters = {
        "n_galaxies": 100000,
        "seed": 1,
        "area_deg2": 140.0,
        "nz": 100,
        "zmax": 2.0,
        "sigma_z": 0.05,
        "sigma_e": 0.25,
        # Deliberately strong (cosmic shear is nearer 0.01): 10^5 galaxies then measure its
        # amplitude to about 3%, so that a broken pipeline cannot pass for a noisy one.
        "shear_amplitude": 0.1,
        "shear_scale_arcmin": 3.0,
    }

    def run(self):
        import numpy as np
        from ruamel.yaml import YAML
        from ruamel.yaml.comments import CommentedSeq

        import mocks

        p = {name: self.get_parameter(name) for name in self.parameters}
        binning = YAML(typ="safe", pure=True).load(Path(self.get_config_path("binning")).read_text(encoding="utf-8"))
        if binning.get("bin_column") != "Z_MEAN" or binning.get("weight_col"):
            sys.exit(f"{self.name}: the truth is computed for unweighted bins in Z_MEAN; config "
                     f"{self.get_config_path('binning')} asks for bin_column {binning.get('bin_column')!r}"
                     f" and weight_col {binning.get('weight_col')!r}")
        catalog = mocks.make_catalog(np.random.default_rng(p["seed"]), p["n_galaxies"], p["area_deg2"],
                                     p["zmax"], p["sigma_z"], p["sigma_e"], p["shear_amplitude"],
                                     p["shear_scale_arcmin"])
        mocks.write_catalogs(catalog, self.get_output_path("shear-catalog"),
                             self.get_output_path("photoz-catalog"), p["nz"], p["zmax"], p["sigma_z"])

        nbin = int(binning["nbin"])
        edges, fraction = mocks.expected_edges(float(binning["zmin"]), float(binning["zmax"]), nbin,
                                               p["zmax"], p["sigma_z"])
        tomography = mocks.expected_bins(edges, p["nz"], p["zmax"], p["sigma_z"])
        def flow(values) -> CommentedSeq:
            """Numbers written as one YAML flow list, not one line each."""
            seq = CommentedSeq(np.asarray(values, dtype=float).tolist())
            seq.fa.set_flow_style()
            return seq

        sigma2 = 2 * p["shear_amplitude"] ** 2
        theta = np.geomspace(*THETA_GRID)
        efficiency = tomography["efficiency"]
        truth = {
            "parameters": {**p, "lens_z": mocks.LENS_Z, "z0": mocks.Z0,
                           "patch_centre_deg": flow([mocks.PATCH_RA, mocks.PATCH_DEC])},
            "model": {
                "n_of_z": "n(z) ∝ z^2 exp(-(z/z0)^1.5) on 0 < z < zmax",
                "photo_z": "Z_MEAN = z + N(0, sigma_z (1+z)); PDF = N(Z_MEAN, sigma_z (1+Z_MEAN)) on the grid",
                "shear": "E_1 + i E_2 = A(z) gamma + N(0, sigma_e) per component, A(z) = max(0, 1 - lens_z/z)",
                "power_spectrum": "P(k) = 2 pi s^6 sigma2 k^4 exp(-k^2 s^2), s = shear_scale_arcmin",
                "xi_plus": "sigma2 exp(-x) (1 - 2x + x^2/2), x = theta^2 / (4 s^2)",
                "xi_minus": "sigma2 exp(-x) x^2 / 2",
                "xi_of_bins": "xi±_ij(theta) = efficiency_i efficiency_j xi±(theta)",
                "sigma2": sigma2,
            },
            "tomography": {
                "binning": {key: binning[key] for key in ("bin_column", "zmin", "zmax", "nbin")},
                "edges": flow(edges),
                "binned_fraction": fraction,
                "efficiency": flow(efficiency),
            },
            "n_of_z": {
                "z_mid": flow(tomography["z_mid"]),
                **{f"true_BIN_{b + 1}": flow(tomography["n_true"][b]) for b in range(nbin)},
                **{f"stacked_BIN_{b + 1}": flow(tomography["n_stacked"][b]) for b in range(nbin)},
            },
            "xi": {
                "theta_arcmin": flow(theta),
                "xi_plus": flow(mocks.xi_plus(theta, sigma2, p["shear_scale_arcmin"])),
                "xi_minus": flow(mocks.xi_minus(theta, sigma2, p["shear_scale_arcmin"])),
                "pairs": [{"bin1": b1 + 1, "bin2": b2 + 1, "amplitude": float(efficiency[b1] * efficiency[b2])}
                          for b1 in range(nbin) for b2 in range(b1, nbin)],
            },
        }
        yaml = YAML()   # round-trip mode: keeps this order, and `flow` lists stay on a line
        yaml.width = 100
        with open(self.get_output_path("mock-truth"), "w", encoding="utf-8") as out:
            out.write("# Truth of the mock catalogs: expected n(z) and xi+/- of each tomographic bin.\n")
            yaml.dump(truth, out)
        print(f"{self.name}: wrote {p['n_galaxies']} galaxies on {p['area_deg2']} deg^2 (seed {p['seed']}, "
              f"shear rms {p['shear_amplitude']} per component on {p['shear_scale_arcmin']} arcmin)")
        print(f"  expected bin edges {np.round(edges, 4).tolist()}, "
              f"efficiencies {np.round(efficiency, 4).tolist()}")


if __name__ == "__main__":
    Stage.main()
