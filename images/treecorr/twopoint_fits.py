"""Shear correlation functions in the twopoint (CosmoSIS 2pt) FITS layout, written with fitsio."""
from __future__ import annotations

import fitsio
import numpy as np

# One row per (bin pair, angular bin); ERR and NPAIRS extend the 2017 prototype's columns.
COLUMNS = [("BIN1", "i8"), ("BIN2", "i8"), ("ANGBIN", "i8"), ("VALUE", "f8"),
           ("ANG", "f8"), ("ERR", "f8"), ("NPAIRS", "f8")]

# The header key holding ANG's unit (TUNITn of its column), read back when gathering parts.
ANG_UNIT_KEY = f"TUNIT{[name for name, _ in COLUMNS].index('ANG') + 1}"

# twopoint's names of what is correlated: shear (G) in real space (R), the + and - combinations.
QUANTITIES = {"xip": "G+R", "xim": "G-R"}


def empty_table(n_rows: int) -> np.ndarray:
    """A zeroed table of `n_rows` rows with the twopoint spectrum columns."""
    return np.zeros(n_rows, COLUMNS)


def write_shear_twopoint(path: str, tables: dict[str, np.ndarray], nbin: int, n_ang: int, ang_unit: str) -> None:
    """Write an empty primary HDU, then one extension per spectrum of `tables` ("xip", "xim").

    Both spectra correlate the same `nbin` source bins, so their kernels are both "source".
    """
    units = ["" if name != "ANG" else ang_unit for name, _ in COLUMNS]
    # A table written first into a new file gets an empty primary HDU in front of it from cfitsio.
    with fitsio.FITS(path, "rw", clobber=True) as fits:
        for extname, table in tables.items():
            header = [{"name": "2PTDATA", "value": True, "comment": "this extension is a twopoint spectrum"},
                      {"name": "QUANT1", "value": QUANTITIES[extname]},
                      {"name": "QUANT2", "value": QUANTITIES[extname]},
                      {"name": "KERNEL_1", "value": "source"},
                      {"name": "KERNEL_2", "value": "source"},
                      {"name": "WINDOWS", "value": "SAMPLE"},
                      {"name": "N_ZBIN_1", "value": nbin},
                      {"name": "N_ZBIN_2", "value": nbin},
                      {"name": "N_ANG", "value": n_ang}]
            fits.write(table, extname=extname, header=header, units=units)
