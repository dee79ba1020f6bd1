"""Find a stage's directory, import its `run.py` in isolation and read its metadata."""
from __future__ import annotations

import inspect
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .errors import UserError
from .filetypes import FILE_TYPES, FileType, type_of_file_name
from .split import SplitStage
from .stage import RESERVED_NAMES, RESOURCE_KEYS, Parameter, Stage, parameter_from_declaration

# Tags, stage and parameter names become CWL ids and `--name` options: no dots (descpipe joins
# `stage.name` with one) and no leading dash.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
NAME_RULE = "letters, digits, '_' and '-', starting with a letter"


@dataclass(frozen=True)
class StageSpec:
    """What a stage's `run.py` declares, checked."""

    name: str                     # the stage directory's name: its id everywhere
    directory: Path
    label: str
    doc: str
    inputs: dict[str, FileType]
    outputs: dict[str, FileType]
    config: dict[str, str]        # tag -> file name the stage expects
    parameters: dict[str, Parameter]
    resources: dict[str, int]
    network: bool = False
    columns: dict[str, list[str]] = field(default_factory=dict)
    split_over: str | None = None   # what a part is, for a SplitStage


def find_stage_directory(name: str, search_dirs: list[Path]) -> Path | None:
    """The first `<dir>/<name>/` holding both `Dockerfile` and `run.py`, as the prototype searched."""
    for base in search_dirs:
        candidate = base / name
        if (candidate / "Dockerfile").is_file() and (candidate / "run.py").is_file():
            return candidate
    return None


def load_stage(directory: Path) -> StageSpec:
    """Import `directory/run.py` without running it as a script and check its `Stage` class."""
    run_py = directory / "run.py"
    stage_class = _import_stage_class(run_py)

    def fail(message: str) -> UserError:
        return UserError(message, run_py, _class_line(run_py))

    kinds: dict[str, dict[str, Any]] = {}
    for kind in ("inputs", "outputs", "config", "parameters", "resources"):
        value = getattr(stage_class, kind)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise fail(f"Stage.{kind} must be a dict keyed by name, got {value!r}")
        kinds[kind] = value
    seen: dict[str, str] = {}
    for kind in ("inputs", "outputs", "config", "parameters"):
        for tag in kinds[kind]:
            if not NAME_PATTERN.match(tag):
                raise fail(f"invalid name {tag!r} in Stage.{kind}: use {NAME_RULE}")
            if tag in RESERVED_NAMES:
                raise fail(f"{tag!r} in Stage.{kind} is reserved by descpipe "
                           f"({', '.join(sorted(RESERVED_NAMES))}): rename it")
            if tag in seen:
                raise fail(f"{tag!r} is in both Stage.{seen[tag]} and Stage.{kind}: "
                           "each name may appear once, since each becomes a --option")
            seen[tag] = kind
    for kind in ("inputs", "outputs"):
        for tag, type_name in kinds[kind].items():
            if type_name not in FILE_TYPES:
                raise fail(f"Stage.{kind}[{tag!r}]: unknown file type {type_name!r} "
                           f"(known: {', '.join(FILE_TYPES)})")
    for tag, file_name in kinds["config"].items():
        if not isinstance(file_name, str) or not file_name or "/" in file_name:
            raise fail(f"Stage.config[{tag!r}] must be a file name such as 'config.yaml', got {file_name!r}")
    try:
        parameters = {n: parameter_from_declaration(n, v) for n, v in kinds["parameters"].items()}
    except ValueError as e:
        raise fail(f"Stage.parameters: {e}") from None
    for key, value in kinds["resources"].items():
        if key not in RESOURCE_KEYS:
            raise fail(f"Stage.resources: unknown key {key!r} (known: {', '.join(RESOURCE_KEYS)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(f"Stage.resources[{key!r}] must be a positive whole number, got {value!r}")
    columns = stage_class.columns
    if not isinstance(columns, dict):
        raise fail(f"Stage.columns must be a dict of FITS input tag -> column names, got {columns!r}")
    for tag, names in columns.items():
        if kinds["inputs"].get(tag) != "fits":
            raise fail(f"Stage.columns names {tag!r}, which is not a FITS input of this stage")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise fail(f"Stage.columns[{tag!r}] must be a list of column names, got {names!r}")
    if not isinstance(stage_class.network, bool):
        raise fail(f"Stage.network must be True or False, got {stage_class.network!r}")
    split_over = None
    if issubclass(stage_class, SplitStage):
        missing = [m for m in ("parts", "run_part", "gather") if getattr(stage_class, m) is getattr(SplitStage, m)]
        if missing:
            raise fail(f"a SplitStage must implement parts(), run_part() and gather(); this one lacks "
                       f"{', '.join(m + '()' for m in missing)}")
        split_over = stage_class.split_over
    elif stage_class.run is Stage.run:
        raise fail("the Stage class has no run() method")
    return StageSpec(
        name=directory.name,
        directory=directory,
        label=stage_class.name or directory.name,
        doc=_clean_doc(stage_class.__doc__),
        inputs={t: FILE_TYPES[n] for t, n in kinds["inputs"].items()},
        outputs={t: FILE_TYPES[n] for t, n in kinds["outputs"].items()},
        config=dict(kinds["config"]),
        parameters=parameters,
        resources=dict(kinds["resources"]),
        network=stage_class.network,
        columns={tag: list(names) for tag, names in columns.items()},
        split_over=split_over,
    )


def config_file_type(spec: StageSpec, tag: str) -> FileType | None:
    """The type of config file `tag`, from the file name the stage gives it."""
    return type_of_file_name(spec.config[tag])


def _import_stage_class(run_py: Path) -> type[Stage]:
    # Absolute but not resolved (that costs 40 ms over 1,000 stages): the stage's helper modules
    # are found through this folder, so their `__file__` starts with it as written here.
    directory = os.path.abspath(run_py.parent)
    path = os.path.join(directory, run_py.name)
    # Compiled and run here rather than through importlib, whose machinery (a module spec, a
    # look for cached bytecode) costs half as much again as compiling: 60 ms over 1,000 stages.
    module = types.ModuleType(f"descpipe_stage_{abs(hash(directory))}")
    module.__file__ = path
    before = set(sys.modules)
    # Like `python3 run.py`, which puts the script's folder first on the path.
    sys.path.insert(0, directory)
    # A run.py that calls os._exit() as it is read would end descpipe itself, with its exit status:
    # while it is read, os._exit raises SystemExit instead, which is reported like sys.exit().
    real_exit = os._exit
    os._exit = _exit_refused
    try:
        # Running the stage's own run.py is the point here (S102). dont_inherit: run.py gets its own
        # __future__ imports, not this module's, as importing it would.
        exec(compile(run_py.read_bytes(), path, "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except SyntaxError as e:
        raise UserError(f"syntax error: {e.msg}", run_py, e.lineno) from None
    # run.py is the user's code: whatever it raises becomes a UserError naming its line (BLE001).
    except (Exception, SystemExit) as e:  # noqa: BLE001
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
        line = frames[-1].lineno if frames else None
        hint = ("; import science libraries inside run(), not at the top of run.py"
                if isinstance(e, ImportError) else
                "; guard the entry point with `if __name__ == '__main__': Stage.main()`"
                if isinstance(e, SystemExit) else "")
        raise UserError(f"importing failed: {type(e).__name__}: {e}{hint}", run_py, line) from None
    finally:
        os._exit = real_exit
        sys.path.remove(directory)
        # Helper modules of one stage (say `mocks.py`) must not shadow another stage's.
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(directory + os.sep):
                del sys.modules[name]
    stage_class = getattr(module, "Stage", None)
    if not (isinstance(stage_class, type) and issubclass(stage_class, Stage)):
        raise UserError("defines no `class Stage(descpipe.Stage)`", run_py, _class_line(run_py))
    return stage_class


def _exit_refused(status: int) -> NoReturn:
    raise SystemExit(status)


def _class_line(run_py: Path) -> int | None:
    for number, text in enumerate(run_py.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if re.match(r"class\s+Stage\b", text):
            return number
    return None


def _clean_doc(doc: str | None) -> str:
    return inspect.cleandoc(doc) if doc else ""

