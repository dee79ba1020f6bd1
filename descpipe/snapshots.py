"""What a run's stages read: with no container, descpipe's own copies of the pipeline's inputs,
config files and stage folders; with one, the originals, which the engine mounts read-only.

With no container, CWL engines hand a stage links to the user's files (cwltool links them, Toil
links them into its job store), so a stage that opened its input for appending, or wrote beside
its run.py, would change the user's data or code. descpipe gives the engine copies instead, in
runtime.working/snapshot, made again only when the original changed (their paths stay the same
from run to run, so cwltool's cache still finds what earlier runs made). After the run, a copy
that changed (or, in a container, an original that changed while the run read it) fails the run:
its products and cache entries would not be of the content that was checked and recorded.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .pipeline import Pipeline

FOLDER = "snapshot"
MANIFEST = "manifest.json"


def checksum(path: Path) -> str:
    """A file's SHA-1 in CWL's notation, `sha1$<hex>`: the checksum CWL engines give every output
    file (and the RO-Crate names files by), so one notation serves every file of a record. Read in
    blocks so that catalogs of any size fit."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha1${digest.hexdigest()}"


def _stat(path: Path) -> list[int]:
    """What changes when a file's content does: its size and modification time."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


@dataclass(frozen=True)
class Read:
    """One file a stage reads: the user's `original`, the file the engine is given (`given`: a
    copy, or the original itself), its checksum, and its size and time when that was taken."""

    what: str            # `input 'numbers'`, `config file 'config' of stage 'x'`, `stage 'x''s code`
    readers: tuple[str, ...]
    original: Path
    given: Path
    checksum: str
    stat: list[int]

    def changed(self) -> bool:
        """Whether the file the engine was given is not as it was when checked."""
        try:
            return _stat(self.given) != self.stat
        except OSError:
            return True


@dataclass(frozen=True)
class Snapshot:
    """The pipeline as the engine runs it (each path replaced by the file it is given) and every file read."""

    pipeline: Pipeline
    reads: tuple[Read, ...]
    copied: bool

    def checksums(self) -> dict[Path, str]:
        """The checksum of the content the stages read, by the user's original path."""
        return {read.original: read.checksum for read in self.reads}

    def changed(self) -> list[Read]:
        """The files read that changed during the run."""
        return [read for read in self.reads if read.changed()]


def take_snapshot(pipeline: Pipeline, copy: bool) -> Snapshot:
    """The files the run's stages read: copies in runtime.working (made again only where the original
    changed) when `copy`, else the originals; each with its checksum."""
    folder = pipeline.working / FOLDER
    manifest = _read_manifest(folder / MANIFEST)
    reads: list[Read] = []

    def given(what: str, readers: tuple[str, ...], original: Path, copy_at: Path) -> Path:
        target = copy_at if copy else original
        known = manifest.get(str(target), {})
        if not (known.get("original") == _stat(original) and target.is_file() and known.get("given") == _stat(target)):
            if copy:
                copy_at.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(original, copy_at)
            known = {"original": _stat(original), "given": _stat(target), "checksum": checksum(target)}
        manifest[str(target)] = known
        reads.append(Read(what, readers, original, target, known["checksum"], known["given"]))
        return target

    inputs = {tag: given(f"input {tag!r}", tuple(s.name for s in pipeline.stages if tag in s.spec.inputs), path,
                         folder / "inputs" / tag / path.name)
              for tag, path in pipeline.inputs.items()}
    stages = []
    for stage in pipeline.stages:
        configs = {tag: given(f"config file {tag!r} of stage {stage.name!r}", (stage.name,), path,
                              folder / "config" / stage.name / tag / path.name)
                   for tag, path in stage.config_files.items()}
        code = folder / "code" / stage.name
        files = sorted(p.relative_to(stage.spec.directory) for p in stage.spec.directory.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
        if copy and code.is_dir() and sorted(p.relative_to(code) for p in code.rglob("*") if p.is_file()) != files:
            shutil.rmtree(code)   # a file was added or removed: copy the folder afresh
        for name in files:
            given(f"stage {stage.name!r}'s code ({name})", (stage.name,), stage.spec.directory / name, code / name)
        stages.append(replace(stage, config_files=configs,
                              spec=replace(stage.spec, directory=code if copy else stage.spec.directory)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return Snapshot(replace(pipeline, inputs=inputs, stages=tuple(stages)), tuple(reads), copy)


def forget(reads: list[Read]) -> None:
    """Drop descpipe's copies among `reads` (a stage changed them): the next run copies them afresh."""
    for read in reads:
        if read.given != read.original:
            read.given.unlink(missing_ok=True)


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
