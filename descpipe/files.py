"""Writing files whole: a reader never sees a half-written file under its final name."""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from .errors import UserError


def write_files(files: Mapping[Path, str | bytes], executable: bool = False) -> None:
    """Write every file under a temporary name, then rename them all, creating folders as needed.

    A failure (a folder in the way, no permission, a full disk) removes the temporary files and
    raises a UserError: nothing is left half-written, and no mix of old and new files.
    """
    for path in files:
        if path.is_dir():
            raise UserError(f"cannot write {path}: it is a folder; give a file name inside it")
        # Renaming over a device, FIFO or socket (or a link to one) would replace it with a file.
        if path.exists() and not path.is_file():
            raise UserError(f"cannot write {path}: it is {'a link to ' if path.is_symlink() else ''}"
                            "a device, FIFO or socket, not a file; give a regular file's name")
    partials = {path: path.with_name(path.name + ".partial") for path in files}
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                partials[path].write_bytes(content)
            else:
                partials[path].write_text(content, encoding="utf-8")
            if executable:
                partials[path].chmod(0o755)
        for path, partial in partials.items():
            partial.replace(path)
    except OSError as e:
        for partial in partials.values():
            with contextlib.suppress(OSError):
                partial.unlink()
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
