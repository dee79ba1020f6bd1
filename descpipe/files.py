"""Writing files whole: a reader never sees a half-written file under its final name."""
from __future__ import annotations

import contextlib
from pathlib import Path

from .errors import UserError


def write_files(files: dict[Path, str], executable: bool = False) -> None:
    """Write every file under a temporary name, then rename them all, creating folders as needed.

    A failure (a folder in the way, no permission, a full disk) removes the temporary files and
    raises a UserError: nothing is left half-written, and no mix of old and new files.
    """
    for path in files:
        if path.is_dir():
            raise UserError(f"cannot write {path}: it is a folder; give a file name inside it")
    partials = {path: path.with_name(path.name + ".partial") for path in files}
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            partials[path].write_text(text, encoding="utf-8")
            if executable:
                partials[path].chmod(0o755)
    except OSError as e:
        for partial in partials.values():
            with contextlib.suppress(OSError):
                partial.unlink()
        raise UserError(f"cannot write {e.filename or path}: {e.strerror or e}") from None
    for path, partial in partials.items():
        partial.replace(path)
