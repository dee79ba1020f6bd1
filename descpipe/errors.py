"""The one exception for user mistakes: it names the file and line, and the command line exits 2."""
from __future__ import annotations

import os
from pathlib import Path


class UserError(Exception):
    """A mistake in a pipeline file, a stage or the command line, told as `file:line: message`."""

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        # normpath: `pipelines/../images/x/run.py` reads better as `images/x/run.py`.
        file = os.path.normpath(self.file) if self.file else None
        where = f"{file}:{self.line}: " if file and self.line else f"{file}: " if file else ""
        return where + self.message
