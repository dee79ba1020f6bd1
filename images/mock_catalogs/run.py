"""descpipe stage `mock_catalogs`: synthetic DES-SV-like shear and photo-z catalogs."""
import descpipe


class Stage(descpipe.Stage):
    """Write a synthetic shear catalog and a row-aligned photo-z catalog, so the demo needs no download.

    Galaxies are uniform in area on a `area_deg2` patch near RA=70, DEC=-50 deg, with true redshifts
    from n(z) ∝ z^2 exp(-(z/0.5)^1.5) on 0 < z < zmax. Photo-z: Z_MEAN is the true z plus a Gaussian
    error sigma_z (1+z); PDF_0..PDF_<nz-1> is a Gaussian of width sigma_z (1+Z_MEAN) around Z_MEAN on
    `nz` bins from 0 to zmax (header NZ, ZMIN, ZMAX), summing to 1. Shapes E_1, E_2 are a coherent
    shear (Gaussian-profile tangential patterns with rms `shear_amplitude` per component, scaled by
    a lensing efficiency 1 - 0.3/z) plus shape noise sigma_e per component; weights W are 1.
    Outputs: `shear-catalog` (RA, DEC in degrees, E_1, E_2, W) and `photoz-catalog` (Z_MEAN, Z_TRUE,
    PDFs), FITS tables in HDU 1 with the same rows in the same order.
    """

    name = "mock_catalogs"
    inputs = {}
    outputs = {"shear-catalog": "fits", "photoz-catalog": "fits"}
    config = {}
    parameters = {
        "n_galaxies": 100000,
        "seed": 1,
        "area_deg2": 25.0,
        "nz": 100,
        "zmax": 2.0,
        "sigma_z": 0.05,
        "sigma_e": 0.25,
        "shear_amplitude": 0.02,
    }

    def run(self):
        import numpy as np

        import mocks

        p = {name: self.get_parameter(name) for name in self.parameters}
        catalog = mocks.make_catalog(np.random.default_rng(p["seed"]), p["n_galaxies"], p["area_deg2"],
                                     p["zmax"], p["sigma_z"], p["sigma_e"], p["shear_amplitude"])
        mocks.write_catalogs(catalog, self.get_output_path("shear-catalog"),
                             self.get_output_path("photoz-catalog"), p["nz"], p["zmax"], p["sigma_z"])
        print(f"{self.name}: wrote {p['n_galaxies']} galaxies on {p['area_deg2']} deg^2 "
              f"(seed {p['seed']}, shear_amplitude {p['shear_amplitude']})")


if __name__ == "__main__":
    Stage.main()
