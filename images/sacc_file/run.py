"""descpipe stage `sacc_file`: n(z) and xi+/- in one SACC file, the input of DESC likelihood codes."""
import descpipe

# The SACC data type of each twopoint extension the treecorr stage writes.
DATA_TYPES = {"xip": "galaxy_shear_xi_plus", "xim": "galaxy_shear_xi_minus"}


class Stage(descpipe.Stage):
    """Combine the tomographic n(z) and the shear correlation functions into a SACC file.

    Reads `n_of_z` (columns z_mid and BIN_1..BIN_<NBIN>, header DZ) and `correlation-functions`
    (twopoint extensions xip and xim: BIN1, BIN2, ANG, VALUE, ERR). Writes `sacc-data`, a
    SACC FITS file with one NZ tracer `source_<b>` per tomographic bin (n(z) as a density in z:
    the stacked PDF divided by DZ, so it integrates to 1), one `galaxy_shear_xi_plus` or
    `galaxy_shear_xi_minus` data point per (bin pair, angular bin) with tag `theta` (the mean
    separation, in the units recorded in the metadata as theta_units), and a diagonal
    covariance from the squared errors. Those errors are shape noise only, as the treecorr stage
    measures them: likelihood codes should replace the covariance with one that includes
    cosmic variance.
    """

    name = "sacc_file"
    inputs = {"n_of_z": "fits", "correlation-functions": "fits"}
    outputs = {"sacc-data": "fits"}
    config = {}

    def run(self):
        import fitsio
        import numpy as np
        import sacc

        data = sacc.Sacc()
        n_of_z, header = fitsio.read(self.get_input_path("n_of_z"), header=True)
        for b in range(1, int(header["NBIN"]) + 1):
            data.add_tracer("NZ", f"source_{b}", n_of_z["z_mid"], n_of_z[f"BIN_{b}"] / header["DZ"])

        variances = []
        with fitsio.FITS(self.get_input_path("correlation-functions")) as fits:
            for extname, data_type in DATA_TYPES.items():
                table = fits[extname].read()
                units = fits[extname].read_header()[f"TUNIT{table.dtype.names.index('ANG') + 1}"]
                for row in table:
                    data.add_data_point(data_type, (f"source_{row['BIN1']}", f"source_{row['BIN2']}"),
                                        float(row["VALUE"]), theta=float(row["ANG"]))
                variances.append(table["ERR"] ** 2)
        data.add_covariance(np.concatenate(variances))
        data.metadata["theta_units"] = units
        data.metadata["covariance"] = "diagonal, shape noise only (TreeCorr varxip/varxim)"
        data.save_fits(self.get_output_path("sacc-data"), overwrite=True)
        print(f"{self.name}: {len(data.tracers)} n(z) tracers, {len(data.data)} xi+/- points")


if __name__ == "__main__":
    Stage.main()
