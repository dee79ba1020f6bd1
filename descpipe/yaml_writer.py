"""Write plain data (dicts, lists, strings, numbers, booleans, None) as block-style YAML, fast.

Exported CWL documents of 1,000-stage pipelines are megabytes of YAML, which ruamel.yaml's
emitter takes seconds to write; this one takes a small fraction of that. It writes a string
plain only when it is certainly read back as the same string, in a literal block when it spans
lines, and otherwise as a JSON string (in double quotes, with YAML's escapes). A property test
checks that ruamel.yaml reads every document back as the data it came from.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any

# Plain scalars: a conservative subset of YAML's rules. No spaces, no leading indicator
# character, nothing YAML 1.1 or 1.2 reads as a boolean, null or number.
_PLAIN = re.compile(r"^[A-Za-z_/.$][A-Za-z0-9_./:@$()=+-]*$")
_SPECIAL = re.compile(r"^(?:y|n|yes|no|on|off|true|false|null|~)$", re.IGNORECASE)
_NUMBER_LIKE = re.compile(r"^[-+.]?(?:\d|\.(?:inf|nan)$)", re.IGNORECASE)


def scalar(value: Any) -> str:
    """One value as a YAML scalar (or `[]`, `{}`, or a JSON flow collection)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 readers (PyYAML) want a dot in a float with an exponent: 1.0e-05, not 1e-05.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):   # nested in a list: flow style
        return "{" + ", ".join(f"{scalar(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(scalar(item) for item in value) + "]"


# Exports repeat the same strings many times: a 1,000-stage export writes about 124,000 strings,
# 17,000 of them distinct, so the cache holds them all.
@functools.lru_cache(maxsize=65536)
def _string(value: str) -> str:
    plain = _PLAIN.match(value) and not _SPECIAL.match(value) and not _NUMBER_LIKE.match(value) \
        and not value.endswith(":")
    return value if plain else _quoted(value)


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar: readable letters of any script, escapes for the rest."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _literal(text: str, indent: str) -> list[str]:
    """A multi-line string as a literal block (`|` keeps one final newline, `|-` none)."""
    body = text.removesuffix("\n")
    return ["|" if text.endswith("\n") else "|-"] + [f"{indent}{line}" if line else "" for line in body.split("\n")]


def _can_be_literal(value: str) -> bool:
    return ("\n" in value.rstrip("\n") and not value.startswith((" ", "\n"))
            and not value.endswith("\n\n") and not any(line != line.rstrip() for line in value.split("\n"))
            and all(ch == "\n" or ch == "\t" or ch.isprintable() for ch in value))


def _mapping(data: dict[str, Any], indent: str, out: list[str], prefix: str) -> None:
    """Append the lines of `data` to `out`: the first starts with `prefix` (ending in `- ` for a
    list item), the others with `indent`."""
    inner = indent + "  "
    for key, value in data.items():
        line = f"{prefix}{_string(str(key))}:"
        prefix = indent
        # One type test per value, strings (most values) first.
        if isinstance(value, str):
            if "\n" in value and _can_be_literal(value):
                head, *rest = _literal(value, inner)
                out.append(f"{line} {head}")
                out.extend(rest)
            else:
                out.append(f"{line} {_string(value)}")
        elif isinstance(value, dict) and value:
            out.append(line)
            _mapping(value, inner, out, inner)
        elif isinstance(value, list) and value:
            out.append(line)
            _sequence(value, inner, out)
        else:
            out.append(f"{line} {scalar(value)}")


def _sequence(items: list[Any], indent: str, out: list[str]) -> None:
    """Append a list's items to `out` as `- ` lines: mappings in block style, anything else as one scalar."""
    dash = indent + "- "
    for item in items:
        if isinstance(item, dict) and item:
            _mapping(item, indent + "  ", out, dash)
        else:
            out.append(dash + scalar(item))


def to_yaml_text(data: dict[str, Any]) -> str:
    """The YAML text of a mapping, one line per scalar, keys in the order given."""
    if not data:
        return "{}\n"
    out: list[str] = []
    _mapping(data, "", out, "")
    return "\n".join(out) + "\n"
