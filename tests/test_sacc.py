"""The example's final product: a SACC file that DESC likelihood codes read."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.engine

fitsio = pytest.importorskip("fitsio", reason="the example's science libraries come with scripts/setup.sh")
sacc = pytest.importorskip("sacc", reason="the example's science libraries come with scripts/setup.sh")


def test_sacc_file_holds_the_n_of_z_tracers_xi_points_and_covariance(examples):
    output = examples / "output/des-sv-mock"
    data = sacc.Sacc.load_fits(str(output / "sacc-data.fits"))
    n_of_z, header = fitsio.read(output / "n_of_z.fits", header=True)

    assert sorted(data.tracers) == ["source_1", "source_2", "source_3"]
    for b in (1, 2, 3):
        tracer = data.get_tracer(f"source_{b}")
        assert tracer.tracer_type == "NZ"
        assert np.array_equal(tracer.z, n_of_z["z_mid"])
        assert np.allclose(tracer.nz * header["DZ"], n_of_z[f"BIN_{b}"])
        assert np.sum(tracer.nz) * header["DZ"] == pytest.approx(1.0)

    assert data.get_data_types() == ["galaxy_shear_xi_plus", "galaxy_shear_xi_minus"]
    assert data.metadata["theta_units"] == "arcmin"
    errors = []
    with fitsio.FITS(output / "correlation-functions.fits") as fits:
        for extname, data_type in (("xip", "galaxy_shear_xi_plus"), ("xim", "galaxy_shear_xi_minus")):
            table = fits[extname].read()
            errors.append(table["ERR"])
            for b1, b2 in sorted({(int(r["BIN1"]), int(r["BIN2"])) for r in table}):
                rows = table[(table["BIN1"] == b1) & (table["BIN2"] == b2)]
                theta, xi = data.get_theta_xi(data_type, f"source_{b1}", f"source_{b2}")
                assert np.array_equal(theta, rows["ANG"]) and np.array_equal(xi, rows["VALUE"]), (data_type, b1, b2)
    assert len(data.data) == sum(len(e) for e in errors) == 2 * 6 * 29

    assert data.has_covariance()
    covariance = data.covariance.dense
    assert covariance.shape == (len(data.data),) * 2
    assert np.array_equal(np.diag(covariance), np.concatenate(errors) ** 2)
    assert np.count_nonzero(covariance - np.diag(np.diag(covariance))) == 0
