"""descpipe stage `treecorr`: tomographic cosmic-shear correlation functions with TreeCorr."""
import sys
import time
from pathlib import Path

import descpipe

# The corr2-style config keys this stage passes to TreeCorr. File and column keys of a corr2
# config are ignored: the stage knows its own files and columns.
BINNING_KEYS = ("min_sep", "max_sep", "nbins", "bin_size", "sep_units", "bin_slop", "angle_slop", "bin_type")


class Stage(descpipe.SplitStage):
    """Measure the shear two-point correlation functions xi+ and xi- of every pair of tomographic bins.

    Reads RA, DEC (degrees), E_1, E_2 and W from HDU 1 of `shear-catalog` and BIN (header NBIN) from
    the row-aligned `tomographic-catalog`. For each bin pair b1 <= b2 (1-based) TreeCorr's
    GGCorrelation correlates the shears (g1 = E_1, g2 = E_2, weight W) of the two bins, an
    auto-correlation when b1 == b2, with the angular binning of the corr2-style YAML `config`
    (min_sep, max_sep, bin_size or nbins, sep_units, bin_slop), on all the cores it is given.
    Output `correlation-functions`: twopoint-style FITS with extensions xip and xim, one row per
    (bin pair, angular bin): BIN1, BIN2, ANGBIN, VALUE, ANG (mean separation in sep_units),
    ERR (shape noise only) and NPAIRS. The work splits over bin pairs (`split: true` in the
    pipeline file runs one job per pair, then gathers them into the same file).
    """

    name = "treecorr"
    inputs = {"shear-catalog": "fits", "tomographic-catalog": "fits"}
    outputs = {"correlation-functions": "fits"}
    config = {"config": "config.yaml"}
    resources = {"cores": 2}
    columns = {"shear-catalog": ["RA", "DEC", "E_1", "E_2", "W"], "tomographic-catalog": ["BIN"]}
    split_over = "bin pair"

    def parts(self):
        import fitsio

        nbin = int(fitsio.read_header(self.get_input_path("tomographic-catalog"), ext=1)["NBIN"])
        return [f"{b1}-{b2}" for b1 in range(1, nbin + 1) for b2 in range(b1, nbin + 1)]

    def run_part(self, part):
        import fitsio
        import numpy as np
        import treecorr

        import twopoint_fits

        b1, b2 = (int(b) for b in part.split("-"))
        binning = self._binning()
        shear = fitsio.read(self.get_input_path("shear-catalog"), ext=1, columns=["RA", "DEC", "E_1", "E_2", "W"])
        bins, header = fitsio.read(self.get_input_path("tomographic-catalog"), ext=1, columns=["BIN"], header=True)
        bins, nbin = bins["BIN"], int(header["NBIN"])
        if len(bins) != len(shear):
            sys.exit(f"{self.name}: shear-catalog has {len(shear)} rows but tomographic-catalog has "
                     f"{len(bins)}: they must hold the same objects in the same order")
        catalogs = []
        for b in sorted({b1, b2}):
            rows = shear[bins == b]
            if len(rows) == 0:
                sys.exit(f"{self.name}: tomographic bin {b} is empty")
            catalogs.append(treecorr.Catalog(ra=rows["RA"], dec=rows["DEC"], g1=rows["E_1"], g2=rows["E_2"],
                                             w=rows["W"], ra_units="deg", dec_units="deg"))
        started = time.time()
        gg = treecorr.GGCorrelation(binning)
        gg.process(*catalogs, num_threads=self.cores)
        n_ang = gg.nbins
        tables = {}
        for extname, value, variance in (("xip", gg.xip, gg.varxip), ("xim", gg.xim, gg.varxim)):
            table = twopoint_fits.empty_table(n_ang)
            table["BIN1"], table["BIN2"], table["ANGBIN"] = b1, b2, np.arange(n_ang)
            table["VALUE"], table["ANG"], table["ERR"] = value, gg.meanr, np.sqrt(variance)
            table["NPAIRS"] = gg.npairs
            tables[extname] = table
        twopoint_fits.write_shear_twopoint(self.get_output_path("correlation-functions"), tables, nbin, n_ang,
                                           binning.get("sep_units", "radians"))
        print(f"  bins {b1},{b2}: {gg.npairs.sum():.3g} pairs in {time.time() - started:.1f} s "
              f"on {self.cores} cores")

    def gather(self, partials):
        import fitsio
        import numpy as np

        import twopoint_fits

        parts = partials["correlation-functions"]
        tables = {extname: np.concatenate([fitsio.read(path, ext=extname) for path in parts])
                  for extname in twopoint_fits.QUANTITIES}
        header = fitsio.read_header(parts[0], ext="xip")
        twopoint_fits.write_shear_twopoint(self.get_output_path("correlation-functions"), tables,
                                           int(header["N_ZBIN_1"]), int(header["N_ANG"]),
                                           header.get(twopoint_fits.ANG_UNIT_KEY, ""))
        print(f"{self.name}: {len(parts)} bin pairs x {header['N_ANG']} angular bins")

    def _binning(self):
        from ruamel.yaml import YAML

        config_path = self.get_config_path("config")
        config = YAML(typ="safe", pure=True).load(Path(config_path).read_text(encoding="utf-8")) or {}
        ignored = sorted(set(config) - set(BINNING_KEYS))
        if ignored:
            print(f"{self.name}: ignoring config keys {', '.join(ignored)}")
        return {key: value for key, value in config.items() if key in BINNING_KEYS}


if __name__ == "__main__":
    Stage.main()
