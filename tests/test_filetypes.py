"""File types: each has a suffix, an EDAM format and a content check that catches the usual mix-ups."""
from __future__ import annotations

import pytest

from descpipe.filetypes import FILE_TYPES, file_type, fits_columns, type_of_file_name

def fits_header(*cards: str) -> bytes:
    return b"".join(card.ljust(80).encode() for card in (*cards, "END")).ljust(2880, b" ")


FITS_BLOCK = fits_header("SIMPLE  =                    T", "BITPIX  =                    8",
                         "NAXIS   =                    0")
HDF5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20

# type: (content that passes, content that fails, what the failure says)
CASES = {
    "fits": (FITS_BLOCK, b"# ra dec\n1 2\n", "not a FITS file"),
    "hdf5": (HDF5, FITS_BLOCK, "not an HDF5 file"),
    "yaml": (b"zmin: 0.2\nnbin: 3\n", b"zmin: [0.2\n", "not valid YAML"),
    "txt": (b"1 2 3\n", b"\x00\x01\x02", "not a text file"),
    "csv": (b"a,b\n1,2\n3,4\n", b"a,b\n1,2,3\n4\n5,6\n", "not CSV"),
    "json": (b'{"a": [1, 2]}', b"{'a': 1}", "not valid JSON"),
    "png": (PNG, b"GIF89a", "not a PNG file"),
}


def test_every_registered_type_is_covered_here():
    assert set(CASES) == set(FILE_TYPES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_accepts_the_type_and_rejects_a_lookalike(tmp_path, name):
    good, bad, says = CASES[name]
    kind = file_type(name)
    assert kind.suffix == name
    assert kind.format.startswith("http://edamontology.org/format_")
    (tmp_path / "good").write_bytes(good)
    (tmp_path / "bad").write_bytes(bad)
    assert kind.problem(tmp_path / "good") is None
    assert says in kind.problem(tmp_path / "bad")


def test_truncated_fits_is_caught(tmp_path):
    (tmp_path / "cut.fits").write_bytes(FITS_BLOCK[:1000])
    assert "truncated FITS file" in file_type("fits").problem(tmp_path / "cut.fits")


def test_fits_cut_at_a_block_boundary_is_caught_and_columns_are_read(tmp_path):
    fitsio = pytest.importorskip("fitsio", reason="the science extra installs it")
    import numpy as np

    table = np.zeros(5000, dtype=[("Z_MEAN", "f8"), ("PDF_0", "f4")])
    fitsio.write(tmp_path / "cat.fits", table)
    assert file_type("fits").problem(tmp_path / "cat.fits") is None
    assert fits_columns(tmp_path / "cat.fits") == ["Z_MEAN", "PDF_0"]
    whole = (tmp_path / "cat.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(whole[:len(whole) - 2880])
    assert "truncated FITS file: HDU 1 needs" in file_type("fits").problem(tmp_path / "cut.fits")


def test_hdf5_behind_a_user_block_is_accepted(tmp_path):
    (tmp_path / "ub.hdf5").write_bytes(b"\x00" * 512 + HDF5)
    assert file_type("hdf5").problem(tmp_path / "ub.hdf5") is None


def test_missing_file_and_directory(tmp_path):
    assert file_type("txt").problem(tmp_path / "nope.txt") == "file does not exist"
    assert file_type("txt").problem(tmp_path) == "not a regular file"


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: fits, hdf5"):
        file_type("parquet")


@pytest.mark.parametrize("file_name, expected", [("config.yaml", "yaml"), ("tomo.yml", "yaml"),
                                                 ("cat.FITS", "fits"), ("x.h5", "hdf5"), ("notes", None)])
def test_type_of_file_name(file_name, expected):
    kind = type_of_file_name(file_name)
    assert (kind.name if kind else None) == expected
