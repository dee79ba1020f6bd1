"""descpipe's own folders, and the files it must never write.

descpipe writes only what it owns. runtime.working is descpipe's when it is new or empty, carries
descpipe's mark, or holds only what descpipe makes there; runtime.output may hold the user's
files too, but descpipe touches only the products, logs and record that its last run put there
(the run record lists them). The pipeline file, its inputs, config files and stage folders are
never a target. Products replace the last run's all or nothing.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
from pathlib import Path

from .errors import UserError
from .pipeline import Pipeline, user_paths

# Written into runtime.working when descpipe first uses it: later runs (of any pipeline) know it is theirs.
MARK = ".descpipe"
# What descpipe makes in runtime.working (a folder holding only these was made by an earlier descpipe).
WORKING_NAMES = ("*.cwl", "*.job.yml", "cache", "cache_tmp*", "snapshot", "tmp", "toil-jobstore", "toil-jobstore.owner", "toil-logs",
                 "toil-batch", "cwlprov", "provenance", "progress.log", "cwltool.log", "toil.log", "bin", "build",
                 "local", "images.*.json", "*.lock", MARK)
RECORD_FOLDER = "provenance"
RECORD = "run-record.json"
# Where, inside runtime.output, a run's products wait until all of them replace the last run's.
STAGING = (".incoming", ".incoming-record", ".previous")


def claim_working(pipeline: Pipeline) -> None:
    """Make runtime.working descpipe's, or refuse (one UserError) if it holds the user's own files."""
    working = pipeline.working
    if (working / MARK).is_file():
        return
    if working.exists() and not working.is_dir():
        raise UserError(f"runtime.working {working} is not a folder: give runtime.working a folder of its own",
                        pipeline.file)
    others = sorted(entry.name for entry in (working.iterdir() if working.is_dir() else ())
                    if not any(fnmatch.fnmatch(entry.name, name) for name in WORKING_NAMES))
    if others:
        raise UserError(f"runtime.working {working} holds files descpipe did not make ({', '.join(others[:3])}"
                        f"{', ...' if len(others) > 3 else ''}), which a run could replace or delete: give "
                        "runtime.working a new or empty folder", pipeline.file)
    working.mkdir(parents=True, exist_ok=True)
    (working / MARK).write_text("This folder is descpipe's runtime.working: descpipe may replace or delete "
                                "anything in it.\n", encoding="utf-8")


def made_by_descpipe(output: Path) -> set[str]:
    """What in `output` the last successful run put there, by path relative to it."""
    record = output / RECORD_FOLDER / RECORD
    try:
        outputs = json.loads(record.read_text(encoding="utf-8")).get("outputs", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {RECORD_FOLDER, *(name for name in outputs if isinstance(name, str))}


def check_targets(pipeline: Pipeline, targets: list[str]) -> None:
    """Refuse (one UserError) to put products at `targets` (relative to runtime.output) where a file
    of the user's is: anything the last run did not make there."""
    output = pipeline.output
    if output.exists() and not output.is_dir():
        raise UserError(f"runtime.output {output} is not a folder: give runtime.output a folder", pipeline.file)
    ours = made_by_descpipe(output)
    for target in [RECORD_FOLDER, *targets]:
        path = output / target
        if target not in ours and (path.exists() or path.is_symlink()):
            raise UserError(f"runtime.output already holds {path}, which descpipe did not make: move it away, "
                            "or give runtime.output another folder", pipeline.file)


def replace_products(pipeline: Pipeline, staged: dict[str, Path]) -> None:
    """Put each staged file (or folder) at its target in runtime.output, in place of everything the
    last run put there, all or nothing: if a rename fails, the last run's products are put back."""
    output = pipeline.output
    check_targets(pipeline, [target for target in staged if target != RECORD_FOLDER])
    previous = output / STAGING[2]
    shutil.rmtree(previous, ignore_errors=True)
    kept = sorted(name for name in made_by_descpipe(output) if (output / name).exists())
    moved_away: list[str] = []
    moved_in: list[str] = []
    try:
        for name in kept:
            (previous / name).parent.mkdir(parents=True, exist_ok=True)
            os.rename(output / name, previous / name)
            moved_away.append(name)
        for name, source in staged.items():
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, output / name)
            moved_in.append(name)
    except OSError as e:
        for name in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.rename(output / name, staged[name])
        for name in reversed(moved_away):
            with contextlib.suppress(OSError):
                os.rename(previous / name, output / name)
        raise UserError(f"could not put the products in {output} ({e.strerror or e}: {e.filename}); the last "
                        "run's products are as they were", pipeline.file) from None
    shutil.rmtree(previous, ignore_errors=True)
    # Folders that only held the last run's products (logs/) and are now empty.
    for folder in sorted({(output / name).parent for name in kept}, key=lambda p: len(p.parts), reverse=True):
        if folder != output:
            with contextlib.suppress(OSError):
                folder.rmdir()


def refuse_user_files(pipeline: Pipeline, targets: list[Path]) -> None:
    """Refuse (one UserError) to write any of `targets` over the pipeline file, an input, a config
    file or into a stage's folder, or to write two of them to one path."""
    # By path, so that each target costs a look-up per folder above it, not one per stage: an
    # export of thousands of stages to one file each stays linear.
    users = {path.resolve(): what for what, path in user_paths(pipeline.file, pipeline.inputs, pipeline.stages)}
    seen: dict[Path, Path] = {}
    for target in targets:
        resolved = target.resolve()
        if resolved in users:
            raise UserError(f"will not write {target}: it is {users[resolved]}; give another file name")
        folder = next((parent for parent in resolved.parents if parent in users), None)
        if folder is not None:
            raise UserError(f"will not write {target}: it is inside {users[folder]}; give a file name elsewhere")
        if resolved in seen:
            raise UserError(f"{seen[resolved]} and {target} are the same file: give them different names")
        seen[resolved] = target
