"""Plot the example's measured xi+/- and n(z) against the truth the mock catalogs were made with.

Usage, after `descpipe run pipelines/des-sv-mock.yaml`:

    python3 pipelines/plot_truth.py output/des-sv-mock [-o output/des-sv-mock/truth.png]

Reads mock-truth.yaml, correlation-functions.fits and n_of_z.fits from the run's output folder
and writes a PNG: theta * xi+ and theta * xi- of every bin pair (points with the shape-noise error
bars the treecorr stage measured, curves the closed-form expectation), and each bin's stacked
n(z) against the expected stack and the bins' true-redshift distributions. Needs numpy, fitsio,
ruamel.yaml and matplotlib; not descpipe.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import fitsio
import matplotlib
import numpy as np
from ruamel.yaml import YAML

matplotlib.use("Agg")   # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def plot(output: Path, png: Path) -> None:
    """Draw the comparison for the run whose products are in `output` into `png`."""
    truth = YAML(typ="safe", pure=True).load((output / "mock-truth.yaml").read_text(encoding="utf-8"))
    pairs = [(pair["bin1"], pair["bin2"], pair["amplitude"]) for pair in truth["xi"]["pairs"]]
    theta = np.array(truth["xi"]["theta_arcmin"])
    shown = theta < 10 * truth["parameters"]["shear_scale_arcmin"]   # beyond, both are ~0

    figure = plt.figure(figsize=(3 * len(pairs), 10), layout="constrained")
    grid = figure.add_gridspec(3, len(pairs))
    for row, (extname, label) in enumerate((("xip", r"\xi_+"), ("xim", r"\xi_-"))):
        table = fitsio.read(output / "correlation-functions.fits", ext=extname)
        expected = np.array(truth["xi"]["xi_plus" if extname == "xip" else "xi_minus"])
        for column, (b1, b2, amplitude) in enumerate(pairs):
            axes = figure.add_subplot(grid[row, column])
            rows = table[(table["BIN1"] == b1) & (table["BIN2"] == b2) & (table["ANG"] < theta[shown][-1])]
            axes.errorbar(rows["ANG"], rows["ANG"] * rows["VALUE"], rows["ANG"] * rows["ERR"], fmt="o", ms=3,
                          label="measured")
            axes.plot(theta[shown], theta[shown] * amplitude * expected[shown], "k-", label="expected")
            axes.axhline(0, color="0.7", lw=0.5)
            axes.set_xscale("log")
            axes.set_title(f"bins {b1},{b2}")
            axes.set_xlabel(r"$\theta$ [arcmin]")
            if column == 0:
                axes.set_ylabel(rf"$\theta\,{label}$ [arcmin]")
                axes.legend(fontsize="small")

    axes = figure.add_subplot(grid[2, :])
    n_of_z = fitsio.read(output / "n_of_z.fits")
    z = np.array(truth["n_of_z"]["z_mid"])
    for b in range(1, truth["tomography"]["binning"]["nbin"] + 1):
        line, = axes.plot(n_of_z["z_mid"], n_of_z[f"BIN_{b}"], "o", ms=3, label=f"bin {b}: stacked PDFs")
        axes.plot(z, truth["n_of_z"][f"stacked_BIN_{b}"], "-", color=line.get_color(), label="expected stack")
        axes.plot(z, truth["n_of_z"][f"true_BIN_{b}"], ":", color=line.get_color(), label="true z")
    axes.set_xlabel("z")
    axes.set_ylabel("n(z) per grid bin")
    axes.legend(ncols=3, fontsize="small")
    figure.suptitle(f"{truth['parameters']['n_galaxies']:,} mock galaxies on {truth['parameters']['area_deg2']} deg²: "
                    "measured (points) and injected (lines)")
    figure.savefig(png, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the run's output folder (runtime.output)")
    parser.add_argument("-o", "--png", type=Path, help="PNG to write (default OUTPUT/truth.png)")
    args = parser.parse_args()
    png = args.png or args.output / "truth.png"
    plot(args.output, png)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
