"""File types a stage may declare: suffix, CWL format IRI and a cheap content check.

This module runs inside stage containers too, so it uses only the standard library
(plus ruamel.yaml, imported only when a YAML file is checked).
"""
from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EDAM = "http://edamontology.org/"

# How many bytes a text check reads: enough to catch a binary file named .txt, cheap on a 10 GB one.
_TEXT_SAMPLE = 65536


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


FITS_BLOCK = 2880


class FitsError(ValueError):
    """A file that is not a whole FITS file."""


def fits_headers(path: Path) -> list[dict[str, str]]:
    """The header keywords of every HDU, read by walking the blocks (no FITS library needed).

    Raises FitsError when the file is not FITS, or is shorter than its headers say.
    """
    size = path.stat().st_size
    headers: list[dict[str, str]] = []
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            header: dict[str, str] = {}
            while True:
                block = f.read(FITS_BLOCK)
                offset += len(block)
                if offset == len(block) and not block.startswith(b"SIMPLE  ="):
                    raise FitsError(f"not a FITS file: it starts with {block[:16]!r}, not 'SIMPLE  ='")
                if len(block) < FITS_BLOCK:
                    raise FitsError(f"truncated FITS file: header {len(headers)} ends before its END card")
                cards = [block[i:i + 80].decode("ascii", "replace") for i in range(0, FITS_BLOCK, 80)]
                for card in cards:
                    if card[8:10] == "= ":
                        header[card[:8].strip()] = card[10:].split("/")[0].strip().strip("'").strip()
                if any(card.startswith("END ") or card.rstrip() == "END" for card in cards):
                    break
            headers.append(header)
            offset += _fits_data_size(header)
            f.seek(offset)
    if offset > size:
        raise FitsError(f"truncated FITS file: HDU {len(headers) - 1} needs {offset - size} more bytes "
                        f"than the file's {size}")
    return headers


def _fits_data_size(header: dict[str, str]) -> int:
    """Bytes of data after a header, padded to whole blocks (FITS standard 4.0, section 4.4.1)."""
    axes = int(header.get("NAXIS", "0"))
    if axes == 0:
        return 0
    count = 1
    for axis in range(1, axes + 1):
        count *= int(header.get(f"NAXIS{axis}", "0"))
    bits = abs(int(header.get("BITPIX", "8")))
    size = bits // 8 * int(header.get("GCOUNT", "1")) * (int(header.get("PCOUNT", "0")) + count)
    return -(-size // FITS_BLOCK) * FITS_BLOCK


def fits_columns(path: Path, hdu: int = 1) -> list[str]:
    """The column names (TTYPEn) of table HDU `hdu`."""
    header = fits_headers(path)[hdu]
    return [header[f"TTYPE{i}"] for i in range(1, int(header.get("TFIELDS", "0")) + 1)]


def missing_columns(path: Path, wanted: list[str]) -> list[str]:
    """Which of `wanted` (names, or patterns such as `PDF_*`) table HDU 1 of a FITS file lacks."""
    if not wanted:
        return []
    columns = fits_columns(path)
    return [name for name in wanted if not fnmatch.filter(columns, name)]


def _check_fits(path: Path) -> str | None:
    try:
        fits_headers(path)
    except FitsError as e:
        return str(e)
    return None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_hdf5(path: Path) -> str | None:
    # The signature may sit at 0, 512, 1024, 2048, ... when a user block precedes it.
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            if f.read(8) == _HDF5_SIGNATURE:
                return None
            offset = 512 if offset == 0 else offset * 2
    return "not an HDF5 file: no HDF5 signature found"


def _text_sample(path: Path) -> tuple[str | None, str]:
    raw = _head(path, _TEXT_SAMPLE)
    if b"\x00" in raw:
        return "not a text file: it contains NUL bytes", ""
    try:
        # A multi-byte character may be cut at the sample's end: ignore only that tail.
        return None, raw.decode("utf-8", errors="strict" if len(raw) < _TEXT_SAMPLE else "ignore")
    except UnicodeDecodeError as e:
        return f"not UTF-8 text: {e.reason} at byte {e.start}", ""


def _check_text(path: Path) -> str | None:
    return _text_sample(path)[0]


def _check_csv(path: Path) -> str | None:
    problem, text = _text_sample(path)
    if problem:
        return problem
    rows = [r for r in csv.reader(text.splitlines()[:50]) if r]
    if not rows:
        return "empty CSV file"
    if len({len(r) for r in rows[:-1] or rows}) > 1:  # the last sampled row may be cut short
        return "not CSV: its first rows have different numbers of fields"
    return None


def _check_yaml(path: Path) -> str | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (YAMLError, UnicodeDecodeError) as e:
        return "not valid YAML: " + " ".join(str(e).split())
    return None


def _check_json(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return f"not valid JSON: {e}"
    return None


def _check_png(path: Path) -> str | None:
    if _head(path, 8) != b"\x89PNG\r\n\x1a\n":
        return "not a PNG file: no PNG signature"
    return None


@dataclass(frozen=True)
class FileType:
    """A kind of file a stage reads or writes.

    `name` is what stages write in their `inputs`/`outputs` dicts, `suffix` the file name ending
    descpipe gives outputs, `format` the IRI CWL engines use to match producers and consumers,
    and `check` returns a problem description, or None when the content looks right.
    """

    name: str
    suffix: str
    format: str
    check: Callable[[Path], str | None]

    def problem(self, path: Path) -> str | None:
        """Why `path` is not a file of this type, or None when it looks right."""
        if not path.exists():
            return "file does not exist"
        if not path.is_file():
            return "not a regular file"
        return self.check(path)


FILE_TYPES: dict[str, FileType] = {
    t.name: t
    for t in [
        FileType("fits", "fits", EDAM + "format_2333", _check_fits),
        FileType("hdf5", "hdf5", EDAM + "format_3590", _check_hdf5),
        FileType("yaml", "yaml", EDAM + "format_3750", _check_yaml),
        FileType("txt", "txt", EDAM + "format_2330", _check_text),
        FileType("csv", "csv", EDAM + "format_3752", _check_csv),
        FileType("json", "json", EDAM + "format_3464", _check_json),
        FileType("png", "png", EDAM + "format_3603", _check_png),
    ]
}

# Config files are named by the stage (`config = {"config": "tomo.yml"}`): their type comes from the ending.
_SUFFIX_ALIASES = {"yml": "yaml", "hdf": "hdf5", "h5": "hdf5", "text": "txt", "dat": "txt"}


def file_type(name: str) -> FileType:
    """The registered type called `name`; KeyError names the known ones."""
    try:
        return FILE_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown file type {name!r} (known: {', '.join(FILE_TYPES)})") from None


def type_of_file_name(file_name: str) -> FileType | None:
    """The type a file name's ending implies (`tomo.yml` is yaml), or None for an unknown ending."""
    ending = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return FILE_TYPES.get(_SUFFIX_ALIASES.get(ending, ending))
