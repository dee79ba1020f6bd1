"""File types a stage may declare: suffix, CWL format IRI and a cheap content check.

This module runs inside stage containers too, so it uses only the standard library
(plus ruamel.yaml, imported only when a YAML file is checked).
"""
from __future__ import annotations

import csv
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

EDAM = "http://edamontology.org/"

# How many bytes a text check reads: enough to catch a binary file named .txt, cheap on a 10 GB one.
_TEXT_SAMPLE = 65536


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


FITS_BLOCK = 2880
# A header longer than this (28.8 MB, 360 000 cards) is refused: no real file has one, and it bounds
# the memory a file with no END card can take.
_FITS_MAX_HEADER_BLOCKS = 10_000
_FITS_BITPIX = (8, 16, 32, 64, -32, -64)
# A quoted FITS string: '' stands for a quote inside it, and a / inside it is not a comment.
_FITS_STRING = re.compile(r"'((?:[^']|'')*)'")


class FitsError(ValueError):
    """A file that is not a whole FITS file."""


def fits_headers(path: Path) -> list[dict[str, str]]:
    """The header keywords of every HDU, read by walking the blocks (no FITS library needed).

    Raises FitsError when the file is not FITS, or is shorter than its headers say.
    """
    return list(_fits_hdus(path))


def _fits_hdus(path: Path) -> Iterator[dict[str, str]]:
    """Each HDU's header in turn; FitsError at the first thing that is not FITS. Seeks over the data,
    so time goes with the number of header blocks, and memory with one header."""
    size = path.stat().st_size
    if size == 0:
        raise FitsError("not a FITS file: it is empty")
    offset = index = 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            header, blocks = _fits_header(f, index)
            offset += blocks * FITS_BLOCK + _fits_data_size(header, index)
            yield header
            index += 1
    if offset > size:
        raise FitsError(f"truncated FITS file: HDU {index - 1} needs {offset - size} more bytes "
                        f"than the file's {size}")


def _fits_header(f: BinaryIO, index: int) -> tuple[dict[str, str], int]:
    """The keywords of the header that starts at `f`'s position, and how many blocks it takes."""
    pieces: dict[str, list[str]] = {}   # CONTINUE cards add pieces to the long string before them
    last = ""
    for blocks in range(1, _FITS_MAX_HEADER_BLOCKS + 1):
        block = f.read(FITS_BLOCK)
        if index == 0 and blocks == 1 and not block.startswith(b"SIMPLE  ="):
            raise FitsError(f"not a FITS file: it starts with {block[:16]!r}, not 'SIMPLE  ='")
        if len(block) < FITS_BLOCK:
            raise FitsError(f"truncated FITS file: header {index} ends before its END card")
        for start in range(0, FITS_BLOCK, 80):
            card = block[start:start + 80].decode("ascii", "replace")
            if card.startswith("END ") or card.rstrip() == "END":
                return {key: "".join(value) for key, value in pieces.items()}, blocks
            if card.startswith("CONTINUE") and last and pieces[last][-1].endswith("&"):
                pieces[last][-1] = pieces[last][-1][:-1]
                pieces[last].append(_fits_value(card[8:]))
            elif card.startswith("HIERARCH ") and "=" in card:
                keyword, _, value = card[9:].partition("=")
                last = keyword.strip()
                pieces[last] = [_fits_value(value)]
            elif card[8:10] == "= ":
                last = card[:8].strip()
                pieces[last] = [_fits_value(card[10:])]
    raise FitsError(f"not a FITS file: header {index} has no END card in its first "
                    f"{_FITS_MAX_HEADER_BLOCKS} blocks")


def _fits_value(text: str) -> str:
    """A card's value without its comment: a string's text, or a number or logical as written."""
    text = text.strip()
    if text.startswith("'"):
        match = _FITS_STRING.match(text)
        return match.group(1).replace("''", "'").rstrip() if match else text[1:].rstrip()
    return text.split("/")[0].strip()


def _fits_int(header: dict[str, str], key: str, index: int, default: int | None = None,
              allowed: range | tuple[int, ...] = range(1 << 63)) -> int:
    """A whole-number keyword, checked: a negative or non-numeric size would walk the file backwards."""
    text = header.get(key)
    if text is None:
        if default is None:
            raise FitsError(f"not a FITS file: HDU {index} has no {key} card")
        return default
    try:
        value = int(text)
    except ValueError:
        raise FitsError(f"not a FITS file: HDU {index} has {key} = {text[:20]!r}, not a whole number") from None
    if value not in allowed:
        raise FitsError(f"not a FITS file: HDU {index} has {key} = {value}, which FITS does not allow")
    return value


def _fits_data_size(header: dict[str, str], index: int) -> int:
    """Bytes of data after a header, padded to whole blocks (FITS standard 4.0, section 4.4.1)."""
    bits = abs(_fits_int(header, "BITPIX", index, allowed=_FITS_BITPIX))
    axes = _fits_int(header, "NAXIS", index, allowed=range(1000))
    if axes == 0:
        return 0
    # Random groups (NAXIS1 = 0 with GROUPS = T) leave the first axis out of the count.
    first = 2 if header.get("GROUPS") == "T" and _fits_int(header, "NAXIS1", index) == 0 else 1
    count = 1
    for axis in range(first, axes + 1):
        count *= _fits_int(header, f"NAXIS{axis}", index)
    size = bits // 8 * _fits_int(header, "GCOUNT", index, 1) * (_fits_int(header, "PCOUNT", index, 0) + count)
    return -(-size // FITS_BLOCK) * FITS_BLOCK


def fits_columns(path: Path, hdu: int = 1) -> list[str]:
    """The column names (TTYPEn) of table HDU `hdu`; FitsError when the file has no such HDU."""
    for index, header in enumerate(_fits_hdus(path)):
        if index == hdu:
            fields = _fits_int(header, "TFIELDS", index, 0, allowed=range(1000))
            return [header[f"TTYPE{i}"] for i in range(1, fields + 1) if f"TTYPE{i}" in header]
    raise FitsError(f"no HDU {hdu}: the file has only {index + 1} (a table's columns are read from HDU {hdu})")


def missing_columns(path: Path, wanted: list[str]) -> list[str]:
    """Which of `wanted` (names, or patterns such as `PDF_*`) table HDU 1 of a FITS file lacks.

    Raises FitsError when the file is not FITS or has no HDU 1."""
    if not wanted:
        return []
    columns = fits_columns(path)
    return [name for name in wanted if not fnmatch.filter(columns, name)]


def _check_fits(path: Path) -> str | None:
    try:
        for _ in _fits_hdus(path):
            pass
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
    try:
        rows = [r for r in csv.reader(text.splitlines()[:50]) if r]
    except csv.Error as e:
        return f"not CSV: {e}"
    if not rows:
        return "empty CSV file"
    if len({len(r) for r in rows[:-1] or rows}) > 1:  # the last sampled row may be cut short
        return "not CSV: its first rows have different numbers of fields"
    return None


# JSON and YAML files are parsed whole, up to this size; a bigger one (no config or summary is)
# gets the text check only, so that memory stays bounded.
_PARSE_LIMIT = 16 << 20
# Deeper nesting than this is refused: the parsers recurse, and no config nests so deep.
MAX_DEPTH = 100
# Aliases may copy this many nodes in all: a few kilobytes of aliases can otherwise stand for
# billions of nodes (a "billion laughs" document), which every later step would walk.
MAX_ALIAS_COPIES = 1_000_000


def yaml_shape_problem(text: str) -> tuple[str, int] | None:
    """Why a YAML text nests too deep or its aliases copy too much, with the (1-based) line; or
    None. Walks the parser's events, stopping at the first excess, so it takes bounded time and
    memory whatever the text. Raises ruamel.yaml's YAMLError on malformed YAML."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

    sizes: dict[str, int] = {}      # values under each anchor, once its node is complete
    anchors: list[str | None] = []  # the anchor of each collection still open, outermost first
    counts: list[int] = []          # and the values in it so far, aliases expanded
    copies = 0
    for event in YAML(typ="safe").parse(text):
        line = event.start_mark.line + 1
        if isinstance(event, CollectionStartEvent):
            if len(anchors) >= MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep: flatten it", line
            anchors.append(event.anchor)
            counts.append(1)
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, size = anchors.pop(), counts.pop()
        elif isinstance(event, AliasEvent):
            if event.anchor in anchors:
                return f"alias *{event.anchor} is inside the node it names: a value cannot contain itself", line
            anchor, size = None, sizes.get(event.anchor, 1)
            copies += size
            if copies > MAX_ALIAS_COPIES:
                return (f"aliases copy more than {MAX_ALIAS_COPIES} values (a YAML alias bomb?): "
                        "write the values out instead of nesting aliases"), line
        elif isinstance(event, NodeEvent):   # a scalar
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor:
            sizes[anchor] = size
        if counts:
            counts[-1] += size
    return None


def _check_yaml(path: Path) -> str | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if path.stat().st_size > _PARSE_LIMIT:
        return _check_text(path)
    try:
        text = path.read_text(encoding="utf-8")
        shape = yaml_shape_problem(text)
        if shape:
            return f"not usable YAML: line {shape[1]}: {shape[0]}"
        YAML(typ="safe", pure=True).load(text)
    except (YAMLError, UnicodeDecodeError) as e:
        return "not valid YAML: " + " ".join(str(e).split())
    return None


def _check_json(path: Path) -> str | None:
    if path.stat().st_size > _PARSE_LIMIT:
        return _check_text(path)
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return f"not valid JSON: {e}"
    except RecursionError:
        return "not usable JSON: nested too deeply to read"
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
        try:
            return self.check(path)
        except OSError as e:
            return f"cannot read it: {e.strerror or e}"


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
