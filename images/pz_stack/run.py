"""descpipe stage `pz_stack`: n(z) of each tomographic bin from stacked photo-z PDFs."""
import sys

import descpipe


class Stage(descpipe.Stage):
    """Estimate the redshift distribution n(z) of each tomographic bin by stacking photo-z PDFs.

    Reads the PDF grid (header NZ, ZMIN, ZMAX) and columns PDF_0..PDF_<NZ-1> from HDU 1 of
    `photoz-catalog`, and BIN (header NBIN) from `tomographic-catalog`; the two must have the same
    rows in the same order. Both are streamed in lock-step, `chunk_rows` rows at a time, so memory
    does not grow with the catalog. n(z) of bin b is the mean PDF of its objects. Output `n_of_z`:
    a FITS table with NZ rows, columns z_low, z_mid, z_high (grid edges linspace(ZMIN, ZMAX, NZ+1))
    and BIN_1..BIN_<NBIN>, header ZMIN, ZMAX, NBIN, NZ, DZ.
    """

    name = "pz_stack"
    inputs = {"photoz-catalog": "fits", "tomographic-catalog": "fits"}
    outputs = {"n_of_z": "fits"}
    config = {}
    parameters = {"chunk_rows": 100000}

    def run(self):
        import fitsio
        import numpy as np
        from numpy.lib.recfunctions import structured_to_unstructured

        chunk_rows = self.get_parameter("chunk_rows")
        if chunk_rows < 1:
            sys.exit(f"{self.name}: chunk_rows must be positive, got {chunk_rows}")
        with fitsio.FITS(self.get_input_path("photoz-catalog")) as photoz, \
                fitsio.FITS(self.get_input_path("tomographic-catalog")) as tomo:
            grid = photoz[1].read_header()
            nz, zmin, zmax = int(grid["NZ"]), float(grid["ZMIN"]), float(grid["ZMAX"])
            nbin = int(tomo[1].read_header()["NBIN"])
            nrows = photoz[1].get_nrows()
            if tomo[1].get_nrows() != nrows:
                sys.exit(f"{self.name}: photoz-catalog has {nrows} rows but tomographic-catalog has "
                         f"{tomo[1].get_nrows()}: they must hold the same objects in the same order")
            pdf_columns = [f"PDF_{i}" for i in range(nz)]
            sums = np.zeros((nbin, nz))
            counts = np.zeros(nbin, np.int64)
            for start in range(0, nrows, chunk_rows):
                rows = np.arange(start, min(start + chunk_rows, nrows))
                pdfs = photoz[1].read(columns=pdf_columns, rows=rows)
                bins = tomo[1].read(columns=["BIN"], rows=rows)["BIN"]
                for b in range(nbin):
                    in_bin = bins == b + 1
                    # Summed in float64 without a float64 copy of the chunk's PDFs.
                    sums[b] += structured_to_unstructured(pdfs[in_bin]).sum(axis=0, dtype=np.float64)
                    counts[b] += in_bin.sum()

        # The mean PDF of the bin, as the prototype did: it sums to 1 over the grid, not integrates to 1.
        n_of_z = np.divide(sums, counts[:, np.newaxis], out=np.zeros_like(sums), where=counts[:, np.newaxis] > 0)
        edges = np.linspace(zmin, zmax, nz + 1)
        table = np.empty(nz, [(c, "f8") for c in ("z_low", "z_mid", "z_high")]
                         + [(f"BIN_{b}", "f8") for b in range(1, nbin + 1)])
        table["z_low"], table["z_high"] = edges[:-1], edges[1:]
        table["z_mid"] = (edges[:-1] + edges[1:]) / 2
        for b in range(nbin):
            table[f"BIN_{b + 1}"] = n_of_z[b]
        header = [{"name": "ZMIN", "value": zmin, "comment": "lower edge of the redshift grid"},
                  {"name": "ZMAX", "value": zmax, "comment": "upper edge of the redshift grid"},
                  {"name": "NBIN", "value": nbin, "comment": "number of tomographic bins"},
                  {"name": "NZ", "value": nz, "comment": "number of redshift grid bins"},
                  {"name": "DZ", "value": (zmax - zmin) / nz, "comment": "width of a grid bin"}]
        fitsio.write(self.get_output_path("n_of_z"), table, header=header, extname="nz_source", clobber=True)

        print(f"{self.name}: stacked {nrows} rows in chunks of {chunk_rows}")
        for b in range(nbin):
            mean_z = (table["z_mid"] * n_of_z[b]).sum() / n_of_z[b].sum() if counts[b] else float("nan")
            print(f"  bin {b + 1}: {counts[b]} objects, mean z {mean_z:.3f}"
                  + ("" if counts[b] else " (empty bin: n(z) left at zero)"))


if __name__ == "__main__":
    Stage.main()
