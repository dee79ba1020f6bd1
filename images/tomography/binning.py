"""Equal-weight tomographic binning of a redshift column."""
from __future__ import annotations

from typing import Optional

import numpy as np


def tomographic_bins(z: np.ndarray, weight: Optional[np.ndarray], zmin: float, zmax: float,
                     nbin: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based bin of every object (-1 when unbinned) and the nbin + 1 bin edges.

    Objects with zmin < z < zmax and weight > 0 are binned so that each bin holds the same total
    weight (the same number, to within one object, when `weight` is None): sorted by z, the
    interior edge i is the first z whose cumulative weight fraction exceeds i / nbin.
    """
    if nbin < 1:
        raise ValueError(f"nbin={nbin}: need at least one bin")
    weight = np.ones_like(z) if weight is None else weight
    selected = (z > zmin) & (z < zmax) & (weight > 0)
    if not selected.any():
        raise ValueError(f"no object has {zmin} < z < {zmax} and a positive weight")
    z_selected = z[selected]
    order = np.argsort(z_selected)
    cumulative = np.cumsum(weight[selected][order])
    cumulative /= cumulative[-1]
    interior = z_selected[order][np.searchsorted(cumulative, np.arange(1, nbin) / nbin, side="right")]
    bins = np.full(len(z), -1, np.int32)
    # An object exactly on an interior edge goes to the upper bin, as the edge is its first member.
    bins[selected] = np.searchsorted(interior, z_selected, side="right") + 1
    return bins, np.concatenate([[zmin], interior, [zmax]])
