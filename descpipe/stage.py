"""The stage contract: what a stage's `run.py` declares and how the stage finds its files.

A stage is `class Stage(descpipe.Stage)` in `images/<stage>/run.py`. Its class attributes
(`inputs`, `outputs`, `config`, `parameters`, `resources`) are read by descpipe on the host;
`Stage.main()` is what runs inside the container (or with no container).

This module runs inside stage containers, so it uses only the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .filetypes import FitsError, file_type, missing_columns, type_of_file_name

# Python type -> CWL type of a parameter. bool before int: True is an int too.
CWL_TYPES = {bool: "boolean", int: "int", float: "float", str: "string"}

# Names descpipe itself uses on a stage's command line and in its CWL tool.
RESERVED_NAMES = frozenset({"code", "cores", "help", "stdout", "stderr", "plan", "part", "parts", "gather"})

# The prototype's fixed directories, used when the command line gives no path for a tag.
PROTOTYPE_DIRS = {"input": ("DESC_INPUT", "/opt/input"),
                  "output": ("DESC_OUTPUT", "/opt/output"),
                  "config": ("DESC_CONFIG", "/opt/config")}

RESOURCE_KEYS = ("cores", "memory_mb", "minutes")


@dataclass(frozen=True)
class Parameter:
    """A typed stage parameter: `type` is the scalar type, `is_list` makes it a list of those."""

    name: str
    type: type
    is_list: bool
    required: bool
    default: Any = None

    @property
    def cwl_type(self) -> str | dict[str, str]:
        """The CWL type: `int`, or `{type: array, items: int}` for a list."""
        scalar = CWL_TYPES[self.type]
        return {"type": "array", "items": scalar} if self.is_list else scalar

    def parse(self, text: str) -> Any:
        """The value of `--name=TEXT`: strings as given, everything else as JSON (`true`, `[0.2, 1]`)."""
        if self.type is str and not self.is_list:
            return text
        try:
            return self.coerce(json.loads(text))
        except ValueError:
            raise ValueError(f"--{self.name}: {text!r} is not a {self.describe()}") from None

    def render(self, value: Any) -> str:
        """The `VALUE` of `--name=VALUE` for a value: what `parse` reads back."""
        return value if self.type is str and not self.is_list else json.dumps(value)

    def coerce(self, value: Any) -> Any:
        """`value` as a plain Python value of this parameter's type; ValueError if it is not one."""
        ok = (isinstance(value, list) and all(_is_a(v, self.type) for v in value)) if self.is_list \
            else _is_a(value, self.type)
        if not ok:
            raise ValueError(f"{value!r} is not a {self.describe()}")
        return [self.type(v) for v in value] if self.is_list else self.type(value)

    def describe(self) -> str:
        """The type in words, for messages: `float`, `list of str`."""
        return f"list of {self.type.__name__}" if self.is_list else self.type.__name__


def _is_a(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def parameter_from_declaration(name: str, declared: Any) -> Parameter:
    """Read one entry of a stage's `parameters` dict.

    A value is a default (`3`, `0.2`, `"Z_MEAN"`, `[0.2, 1.2]`); a type (`int`, `[float]`)
    makes a required parameter. ValueError says what is wrong.
    """
    if isinstance(declared, type) and declared in CWL_TYPES:
        return Parameter(name, declared, False, True)
    if isinstance(declared, list) and len(declared) == 1 and isinstance(declared[0], type) \
            and declared[0] in CWL_TYPES:
        return Parameter(name, declared[0], True, True)
    if isinstance(declared, list):
        kinds = {type(v) for v in declared}
        if kinds == {int, float}:
            kinds = {float}
        if len(kinds) != 1 or next(iter(kinds)) not in CWL_TYPES:
            raise ValueError(f"parameter {name!r}: a list default needs items of one type "
                             f"(int, float, str or bool), got {declared!r}; for a required list write [float]")
        kind = kinds.pop()
        return Parameter(name, kind, True, False, [kind(v) for v in declared])
    if type(declared) in CWL_TYPES:
        return Parameter(name, type(declared), False, False, declared)
    raise ValueError(f"parameter {name!r}: {declared!r} is neither a default value "
                     f"(int, float, str, bool or a list of one of them) nor one of those types")


class Stage:
    """Base class of every descpipe stage.

    Subclasses declare `inputs = {tag: file type}`, `outputs = {tag: file type}`,
    `config = {tag: file name}`, optionally `parameters = {name: default or type}`,
    `resources = {"cores": n, "memory_mb": m, "minutes": t}`, `network = True` (a stage
    runs with no network unless it says so) and `columns = {fits input tag: [names]}` (columns
    of HDU 1 that `run()` reads; patterns such as `PDF_*` allowed), and implement `run()`.
    Imports of science libraries belong inside `run()`, so that descpipe can read the
    metadata on a machine without them.
    """

    name: ClassVar[str] = ""
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {}
    config: ClassVar[dict[str, str]] = {}
    parameters: ClassVar[dict[str, Any]] = {}
    resources: ClassVar[dict[str, int]] = {}
    network: ClassVar[bool] = False
    columns: ClassVar[dict[str, list[str]]] = {}

    def __init__(self, paths: dict[str, str] | None = None,
                 parameter_values: dict[str, Any] | None = None, cores: int | None = None) -> None:
        self._paths = dict(paths or {})
        self._parameter_values = dict(parameter_values or {})
        self._cores = cores

    # --- The prototype's path lookup -------------------------------------------------------
    def get_input_path(self, tag: str) -> str:
        """Path of input `tag`: as given on the command line, else `$DESC_INPUT/<tag>.<type>`."""
        return self._path("input", self.inputs, tag)

    def get_output_path(self, tag: str) -> str:
        """Path to write output `tag` to: as given on the command line, else `$DESC_OUTPUT/<tag>.<type>`."""
        return self._path("output", self.outputs, tag)

    def get_config_path(self, tag: str) -> str:
        """Path of config file `tag`: as given on the command line, else `$DESC_CONFIG/<file name>`."""
        return self._path("config", self.config, tag)

    def _path(self, kind: str, declared: dict[str, str], tag: str) -> str:
        if tag not in declared:
            raise KeyError(f"stage {type(self).__name__} declares no {kind} {tag!r} "
                           f"(its {kind}s: {', '.join(declared) or 'none'})")
        if tag in self._paths:
            return self._paths[tag]
        file_name = declared[tag] if kind == "config" else f"{tag}.{file_type(declared[tag]).suffix}"
        variable, default = PROTOTYPE_DIRS[kind]
        return os.path.join(os.environ.get(variable, default), file_name)

    # --- Parameters and cores --------------------------------------------------------------
    def get_parameter(self, name: str) -> Any:
        """Value of parameter `name`: from the command line, else the declared default."""
        spec = self.parameter_specs()[name]
        if name in self._parameter_values:
            return self._parameter_values[name]
        if spec.required:
            raise KeyError(f"required parameter {name!r} was not given (--{name}=VALUE)")
        return spec.default

    @property
    def cores(self) -> int:
        """Cores this run was granted (CWL's `runtime.cores`), else the declared request."""
        return self._cores or self.resources.get("cores", 1)

    @classmethod
    def parameter_specs(cls) -> dict[str, Parameter]:
        """The declared parameters, read from the `parameters` dict."""
        return {name: parameter_from_declaration(name, value) for name, value in cls.parameters.items()}

    def run(self) -> None:
        raise NotImplementedError("a stage must implement run()")

    # --- Entry point -----------------------------------------------------------------------
    @classmethod
    def main(cls, argv: Sequence[str] | None = None) -> None:
        """Run the stage from a command line: `--<tag> PATH` per file, `--<name>=VALUE` per parameter.

        Inputs are checked before `run()` and outputs after it; a wrong file stops the stage
        with a message naming the tag, the path and the problem.
        """
        args = vars(cls._argument_parser().parse_args(argv))
        specs = cls.parameter_specs()
        paths = {tag: args[tag] for tag in [*cls.inputs, *cls.outputs, *cls.config] if args[tag]}
        values = {name: args[name] for name in specs if args[name] is not None}
        cores = args["cores"]
        if cores:
            # Before run() imports numpy or TreeCorr, so their thread pools see it.
            os.environ["OMP_NUM_THREADS"] = str(cores)
        stage = cls(paths, values, cores)
        stage._check_files("input", cls.inputs)
        stage._check_files("config", cls.config)
        status = _in_child(lambda: stage._execute(args))
        if status < 0:
            sys.exit(f"{stage._label()}: killed by signal {-status} ({signal.Signals(-status).name})")
        if status:
            sys.exit(status)
        if stage._produces_outputs(args):
            stage._check_files("output", cls.outputs)

    def _execute(self, args: dict[str, Any]) -> None:
        """What the command line asked for: here always `run()` (SplitStage has more modes)."""
        self.run()

    def _produces_outputs(self, args: dict[str, Any]) -> bool:
        return True

    @classmethod
    def _argument_parser(cls) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=cls.name or cls.__name__,
                                         description=(cls.__doc__ or "").strip() or None)
        for kind, tags in (("input", cls.inputs), ("output", cls.outputs), ("config", cls.config)):
            for tag in tags:
                parser.add_argument(f"--{tag}", dest=tag, metavar="PATH", help=f"{kind} file")
        for name, spec in cls.parameter_specs().items():
            parser.add_argument(f"--{name}", dest=name, type=_argparse_type(spec), metavar="VALUE",
                                help=f"{spec.describe()} parameter"
                                + (" (required)" if spec.required else f" (default {spec.default!r})"))
        parser.add_argument("--cores", type=int, help="cores granted to this run (sets OMP_NUM_THREADS)")
        return parser

    def _check_files(self, kind: str, declared: dict[str, str]) -> None:
        for tag, declared_as in declared.items():
            path = Path(self._path(kind, declared, tag))
            # Config files are declared by file name; their type, if any, comes from its ending.
            kind_of_file = type_of_file_name(declared_as) if kind == "config" else file_type(declared_as)
            problem = kind_of_file.problem(path) if kind_of_file else \
                None if path.is_file() else "file does not exist"
            if not problem and kind == "input" and tag in self.columns:
                try:
                    lacking = missing_columns(path, self.columns[tag])
                    problem = f"no column {', '.join(lacking)} in HDU 1" if lacking else None
                except FitsError as e:
                    problem = str(e)
            if problem:
                sys.exit(f"{self._label()}: {kind} {tag!r} ({path}): {problem}")

    def _label(self) -> str:
        return self.name or type(self).__name__


def _in_child(work: Callable[[], None]) -> int:
    """Do `work` in a child process and return how it ended: its exit status, or minus the signal
    that killed it. However the stage's code ends (returning, sys.exit(0), os._exit(0), a signal),
    the stage's own process then still checks its outputs and says what happened."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            work()
            status = 0
        except SystemExit as e:
            if isinstance(e.code, int) or e.code is None:
                status = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - whatever the stage's code raises, shown as Python shows it
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    # Signals meant for the stage (an engine's time limit, a batch system's cancel) reach its work.
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, frame: os.kill(child, received))
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


def _argparse_type(spec: Parameter) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = spec.describe()
    return parse

