"""descpipe stage `tomography`: equal-number tomographic bins from a photo-z column."""
import sys
from pathlib import Path

import descpipe

REQUIRED_KEYS = ("bin_column", "zmin", "zmax", "nbin")


class Stage(descpipe.Stage):
    """Assign every galaxy of the photo-z catalog to a tomographic redshift bin.

    Reads `bin_column` (for example Z_MEAN) and the optional `weight_col` from HDU `hdu` (default 1)
    of `photoz-catalog`; objects with zmin < z < zmax and positive weight are split into `nbin` bins
    of equal total weight (equal numbers when unweighted): the interior edges are the weighted
    quantiles i/nbin of z. The YAML `config` gives bin_column, zmin, zmax, nbin and optionally
    weight_col and hdu. Output `tomographic-catalog`: a FITS table with one int32 column BIN per
    input row (1-based bin, -1 when unbinned), header NBIN and the bin edges ZEDGE0..ZEDGE<nbin>.
    """

    name = "tomography"
    inputs = {"photoz-catalog": "fits"}
    outputs = {"tomographic-catalog": "fits"}
    config = {"config": "config.yaml"}

    def run(self):
        import fitsio
        import numpy as np
        from ruamel.yaml import YAML

        from binning import tomographic_bins

        config_path = self.get_config_path("config")
        config = YAML(typ="safe", pure=True).load(Path(config_path).read_text(encoding="utf-8")) or {}
        missing = [key for key in REQUIRED_KEYS if key not in config]
        if missing:
            sys.exit(f"{self.name}: config {config_path} lacks {', '.join(missing)}")
        column, weight_column = config["bin_column"], config.get("weight_col")
        zmin, zmax, nbin = float(config["zmin"]), float(config["zmax"]), int(config["nbin"])

        catalog_path = self.get_input_path("photoz-catalog")
        columns = [column] + ([weight_column] if weight_column else [])
        with fitsio.FITS(catalog_path) as fits:
            hdu = fits[config.get("hdu", 1)]
            absent = [c for c in columns if c not in hdu.get_colnames()]
            if absent:
                sys.exit(f"{self.name}: photoz-catalog {catalog_path} has no column {', '.join(absent)}")
            data = hdu.read(columns=columns)
        weight = data[weight_column] if weight_column else None
        try:
            bins, edges = tomographic_bins(data[column].astype(np.float64), weight, zmin, zmax, nbin)
        except ValueError as e:
            sys.exit(f"{self.name}: {e}")

        header = [{"name": "NBIN", "value": nbin, "comment": "number of tomographic bins"}]
        header += [{"name": f"ZEDGE{i}", "value": float(edge), "comment": f"{column} edge {i} of the bins"}
                   for i, edge in enumerate(edges)]
        table = np.empty(len(bins), [("BIN", "i4")])
        table["BIN"] = bins
        fitsio.write(self.get_output_path("tomographic-catalog"), table, header=header, clobber=True)

        print(f"{self.name}: {nbin} bins of equal {'weight' if weight_column else 'number'} in {column}")
        for b in range(1, nbin + 1):
            print(f"  bin {b}: {edges[b - 1]:.4f} < {column} < {edges[b]:.4f}: {np.sum(bins == b)} objects")
        print(f"  unbinned: {np.sum(bins == -1)} objects")


if __name__ == "__main__":
    Stage.main()
