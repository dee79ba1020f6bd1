"""File types a stage may declare: suffix, CWL format IRI and a cheap content check.

This module runs inside stage containers too, so it uses only the standard library
(plus ruamel.yaml, imported only when a YAML file is checked).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

EDAM = "http://edamontology.org/"

# How many bytes a text check reads: enough to catch a binary file named .txt, cheap on a 10 GB one.
_TEXT_SAMPLE = 65536


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _check_fits(path: Path) -> Optional[str]:
    head = _head(path, 80)
    if not head.startswith(b"SIMPLE  ="):
        return f"not a FITS file: it starts with {head[:16]!r}, not 'SIMPLE  ='"
    size = path.stat().st_size
    if size % 2880:
        return f"truncated FITS file: {size} bytes is not a whole number of 2880-byte blocks"
    return None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_hdf5(path: Path) -> Optional[str]:
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


def _text_sample(path: Path) -> tuple[Optional[str], str]:
    raw = _head(path, _TEXT_SAMPLE)
    if b"\x00" in raw:
        return "not a text file: it contains NUL bytes", ""
    try:
        # A multi-byte character may be cut at the sample's end: ignore only that tail.
        return None, raw.decode("utf-8", errors="strict" if len(raw) < _TEXT_SAMPLE else "ignore")
    except UnicodeDecodeError as e:
        return f"not UTF-8 text: {e.reason} at byte {e.start}", ""


def _check_text(path: Path) -> Optional[str]:
    return _text_sample(path)[0]


def _check_csv(path: Path) -> Optional[str]:
    problem, text = _text_sample(path)
    if problem:
        return problem
    rows = [r for r in csv.reader(text.splitlines()[:50]) if r]
    if not rows:
        return "empty CSV file"
    if len({len(r) for r in rows[:-1] or rows}) > 1:  # the last sampled row may be cut short
        return "not CSV: its first rows have different numbers of fields"
    return None


def _check_yaml(path: Path) -> Optional[str]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (YAMLError, UnicodeDecodeError) as e:
        return "not valid YAML: " + " ".join(str(e).split())
    return None


def _check_json(path: Path) -> Optional[str]:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return f"not valid JSON: {e}"
    return None


def _check_png(path: Path) -> Optional[str]:
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
    check: Callable[[Path], Optional[str]]

    def problem(self, path: Path) -> Optional[str]:
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


def type_of_file_name(file_name: str) -> Optional[FileType]:
    """The type a file name's ending implies (`tomo.yml` is yaml), or None for an unknown ending."""
    ending = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return FILE_TYPES.get(_SUFFIX_ALIASES.get(ending, ending))
