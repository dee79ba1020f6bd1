"""Load a pipeline file, check it, and order its stages by the files they pass.

`load_pipeline(path)` returns a `Pipeline` in which every check has been done: later steps
(export, drawing, running) never look at the YAML again. Every mistake is a `UserError`
naming the file and line.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import UserError
from .filetypes import FileType, FitsError, missing_columns, yaml_shape_problem
from .graph import ancestors, find_cycle, run_order
from .run_config import FILE_KEYS, Origin, Settings, read_settings
from .stage_loader import NAME_PATTERN, NAME_RULE, StageSpec, config_file_type, find_stage_directory, load_stage

PIPELINE_KEYS = ("images", "stages", "owner", "basename", "version", "base_image")
# Then the run settings: how to run (see run_config.py).
RUNTIME_KEYS = ("launcher", "working", "output", "inputs", "config", "final", *FILE_KEYS)
STAGE_KEYS = ("depends-on", "config", "parameters", "cores", "openmp", "memory_mb", "minutes",
              "nodes", "ppn", "image", "split")
# Stage keys that take a positive whole number; `openmp` is the prototype's name for `cores`.
NUMBER_KEYS = ("cores", "openmp", "memory_mb", "minutes", "nodes", "ppn")


@dataclass(frozen=True)
class PipelineStage:
    """One stage as this pipeline uses it: its metadata plus the pipeline file's settings."""

    spec: StageSpec
    image: str
    config_files: dict[str, Path]
    parameter_values: dict[str, Any]    # only those the pipeline file sets
    resources: dict[str, int]           # cores, and memory_mb / minutes / MPI processes where set
    lines: dict[str, int | None] = field(default_factory=dict)   # line of each key of the stage's section
    split: bool = False                 # run as plan, one job per part, gather (a SplitStage)
    # Where a parameter's value came from, where not the pipeline file or the default (`--set`).
    parameter_origins: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The stage's id: its directory's name."""
        return self.spec.name


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline: stages in an order where every stage follows those it reads from."""

    file: Path
    name: str
    stages: tuple[PipelineStage, ...]
    inputs: dict[str, Path]              # overall input tag -> file
    input_types: dict[str, FileType]
    final: tuple[str, ...]               # output tags that are products of the run
    working: Path
    output: Path
    base_image: str | None = None     # what the base image builds FROM, instead of debootstrap
    # The runtime section's run settings (engine, container, batch-system, ...), checked, with their lines.
    run_settings: Settings = field(default_factory=dict)


class _Place:
    """Line numbers of a loaded YAML file, for error messages."""

    def __init__(self, file: Path):
        self.file = file

    def error(self, message: str, node: Any = None, key: Any = None) -> UserError:
        return UserError(message, self.file, self.line(node, key))

    @staticmethod
    def line(node: Any, key: Any = None) -> int | None:
        # A key merged in with `<<:` has no line of its own: the mapping's line stands in.
        if isinstance(node, CommentedMap) and key is not None and key in (node.lc.data or {}):
            return int(node.lc.key(key)[0]) + 1
        if isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            return int(node.lc.item(key)[0]) + 1
        if isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None:
            return int(node.lc.line) + 1
        return None


def load_pipeline(path: Path | str) -> Pipeline:
    """Read and check the pipeline file at `path`; raise UserError on any mistake."""
    file = Path(path)
    place = _Place(file)
    document = _read_yaml(file)
    if not isinstance(document, CommentedMap):
        raise UserError("a pipeline file is a mapping with 'pipeline:' and 'runtime:' sections", file, 1)
    base = file.parent
    pipeline = _section(place, document, "pipeline", PIPELINE_KEYS, required=True)
    runtime = _section(place, document, "runtime", RUNTIME_KEYS, required=False)

    stage_names = _names(place, pipeline, "stages", required=True)
    listed = set(stage_names)   # for the lookups below: a pipeline may have thousands of stages
    for key in document:
        if key not in ("pipeline", "runtime") and key not in listed:
            raise place.error(f"unknown key {key!r}: top-level keys are 'pipeline', 'runtime' and one "
                              f"section per stage in pipeline.stages ({', '.join(stage_names)})", document, key)
    image_dirs = [base / d for d in _names(place, pipeline, "images", required=True, is_path=True)]
    owner = str(pipeline.get("owner", "descpipe"))
    basename = str(pipeline.get("basename", file.stem))
    if not NAME_PATTERN.match(basename):
        # It names the exported files in runtime.working and the images: a path or a newline in
        # it would write elsewhere, or into the `descpipe local` script.
        raise place.error(f"pipeline.basename must be a name ({NAME_RULE}), got {basename!r}"
                          + ("" if "basename" in pipeline else ", from the file's name: set pipeline.basename"),
                          pipeline, "basename")
    version = str(pipeline.get("version", "latest"))

    runtime_config = _mapping(place, runtime, "config")
    for stage_name in runtime_config:
        if stage_name not in listed:
            raise place.error(f"runtime.config names {stage_name!r}, which is not in pipeline.stages",
                              runtime_config, stage_name)

    stages: dict[str, PipelineStage] = {}
    depends_on: dict[str, list[str]] = {}
    for index, name in enumerate(stage_names):
        directory = find_stage_directory(name, image_dirs)
        if directory is None:
            raise place.error(_missing_stage_message(name, image_dirs), pipeline["stages"], index)
        section = _section(place, document, name, STAGE_KEYS, required=False)
        spec = load_stage(directory)
        stages[name] = _pipeline_stage(place, spec, section, runtime_config.get(name),
                                       f"{owner}/{basename}-{name}:{version}", base)
        depends_on[name] = _names(place, section, "depends-on", required=False)
        for other in depends_on[name]:
            if other not in listed:
                raise place.error(f"stage {name!r} depends on {other!r}, which is not in pipeline.stages",
                                  section["depends-on"], depends_on[name].index(other))

    producers = _producers(place, pipeline, stages)
    input_types = _overall_input_types(place, pipeline, stages, producers)
    inputs = _overall_inputs(place, runtime, stages, input_types, producers, base)
    order = _run_order(place, document, pipeline, stages, producers, depends_on)
    all_outputs = [tag for name in order for tag in stages[name].spec.outputs]
    final = _names(place, runtime, "final", required=False) or all_outputs
    made = set(all_outputs)
    for index, tag in enumerate(final):
        if tag not in made:
            raise place.error(f"runtime.final lists {tag!r}, which no stage makes "
                              f"(outputs: {', '.join(all_outputs)})", runtime["final"], index)
    working = Path(os.path.normpath(base / _path_value(place, runtime, "working", "work")))
    output = Path(os.path.normpath(base / _path_value(place, runtime, "output", "output")))
    _check_folders(place, runtime, file, working, output, list(stages.values()), inputs)
    return Pipeline(
        file=file,
        name=basename,
        stages=tuple(stages[name] for name in order),
        inputs=inputs,
        input_types=input_types,
        final=tuple(final),
        working=working,
        output=output,
        base_image=_optional_name(place, pipeline, "base_image"),
        run_settings=read_settings({key: runtime.get(key) for key in FILE_KEYS},
                                   lambda key: Origin(file, _Place.line(runtime, key))),
    )


# --- Reading the YAML --------------------------------------------------------------------------

# A pipeline file bigger than this is refused before it is read: thousands of stages take a few MB.
_MAX_FILE_BYTES = 64 << 20


def _read_yaml(file: Path) -> Any:
    # Reading a FIFO or a device would wait, or never end: only a regular file is read.
    if file.exists() and not file.is_file():
        raise UserError("cannot read the pipeline file: it is not a regular file (a folder, FIFO or "
                        "device): give the path of a YAML file", file)
    try:
        if file.stat().st_size > _MAX_FILE_BYTES:
            raise UserError(f"the pipeline file is over {_MAX_FILE_BYTES >> 20} MB: is it the right file?", file)
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the pipeline file: {getattr(e, 'strerror', None) or e}", file) from None
    try:
        # First the events, which stop at the first excess: the parser recurses (and crashes)
        # on deep nesting, and aliases can stand for billions of values.
        shape = yaml_shape_problem(text)
        if shape:
            raise UserError(shape[0], file, shape[1])
        # libyaml (ruamel.yaml.clib) parses, six times faster than ruamel.yaml's pure-Python
        # round-trip parser; the round-trip constructor then builds mappings and lists that keep
        # the line of every key and item, for messages.
        node = YAML(typ="safe").compose(text)
        return None if node is None else YAML(typ="rt").constructor.construct_document(node)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(f"{e.context or ''} {e.problem or ''}".split())
        raise UserError(f"malformed YAML: {problem}", file, mark.line + 1 if mark else None) from None
    except YAMLError as e:
        raise UserError(f"malformed YAML: {' '.join(str(e).split())}", file) from None


def _section(place: _Place, parent: CommentedMap, key: str, allowed: tuple[str, ...],
             required: bool) -> CommentedMap:
    """The mapping under `key`, with every key in `allowed`; an empty one when absent and optional."""
    if key not in parent or parent[key] is None:
        if required:
            raise place.error(f"missing section '{key}:'", parent)
        return CommentedMap()
    section = parent[key]
    if not isinstance(section, CommentedMap):
        raise place.error(f"'{key}' must be a mapping of settings", parent, key)
    for name in section:
        if name not in allowed:
            raise place.error(f"unknown key {name!r} in '{key}' (known: {', '.join(allowed)})", section, name)
    return section


def _mapping(place: _Place, parent: CommentedMap, key: str) -> CommentedMap:
    value = parent.get(key)
    if value is None:
        return CommentedMap()
    if not isinstance(value, CommentedMap):
        raise place.error(f"'{key}' must be a mapping", parent, key)
    return value


def _names(place: _Place, parent: CommentedMap, key: str, required: bool, is_path: bool = False) -> list[str]:
    """A list of names under `key` (a single name is accepted as a list of one)."""
    value = parent.get(key)
    if value is None:
        if required:
            raise place.error(f"missing '{key}:'", parent)
        return []
    items = value if isinstance(value, CommentedSeq) else [value]
    names: dict[str, None] = {}   # a dict, to find repeats fast in a list of thousands
    for index, item in enumerate(items):
        if not isinstance(item, str) or not (is_path or NAME_PATTERN.match(item)):
            rule = "a path" if is_path else f"a name ({NAME_RULE})"
            raise place.error(f"'{key}' entries must each be {rule}, got {item!r}",
                              value if isinstance(value, CommentedSeq) else parent,
                              index if isinstance(value, CommentedSeq) else key)
        if item in names:
            raise place.error(f"{item!r} is listed twice in '{key}'", value, index)
        names[item] = None
    return list(names)


def _path_value(place: _Place, parent: CommentedMap, key: str, default: str) -> str:
    value = parent.get(key, default)
    if not isinstance(value, str) or not value:
        raise place.error(f"'{key}' must be a path", parent, key)
    _check_path_text(place, value, f"'{key}'", parent, key)
    return value


def _check_path_text(place: _Place, path: str, what: str, node: Any, key: Any) -> None:
    """Refuse a path with a tab, newline or other control character: CWL engines do not keep them
    (one would read another file than the one checked here)."""
    if any(ord(character) < 32 or ord(character) == 127 for character in path):
        raise place.error(f"{what}: the path {path!r} holds a control character (a tab or newline), which CWL "
                          "engines do not keep: rename the file or folder", node, key)


def user_paths(file: Path, inputs: dict[str, Path], stages: Iterable[PipelineStage]) -> list[tuple[str, Path]]:
    """The user's files and folders that a pipeline names, each in words: the pipeline file, the
    inputs, the config files and the stage folders. descpipe reads them and never writes them."""
    stages = list(stages)
    return [("the pipeline file", file), *((f"input {tag!r}", path) for tag, path in inputs.items()),
            *((f"config file {tag!r} of stage {stage.name!r}", path) for stage in stages
              for tag, path in stage.config_files.items()),
            *((f"stage {stage.name!r}'s folder", stage.spec.directory) for stage in stages)]


def _check_folders(place: _Place, runtime: CommentedMap, file: Path, working: Path, output: Path,
                   stages: list[PipelineStage], inputs: dict[str, Path]) -> None:
    """runtime.working and runtime.output are descpipe's: apart, and holding nothing of the user's
    that descpipe reads (a run empties folders in them, and puts its products there)."""
    def inside(path: Path, folder: Path) -> bool:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))

    for key, folder in (("working", working), ("output", output)):
        for what, path in user_paths(file, inputs, stages):
            if inside(path, folder) or inside(folder, path):
                raise place.error(f"runtime.{key} ({folder}) holds {what} ({path}), which a run could replace "
                                  f"or delete: give runtime.{key} a folder of its own, such as {key}",
                                  runtime, key if key in runtime else None)
    if inside(working, output) or inside(output, working):
        raise place.error(f"runtime.working ({working}) and runtime.output ({output}) must be apart, neither "
                          "inside the other: give each its own folder, such as work and output",
                          runtime, "output" if "output" in runtime else "working")


def _optional_name(place: _Place, parent: CommentedMap, key: str) -> str | None:
    value = parent.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise place.error(f"'{key}' must be an image name such as python:3.11-slim", parent, key)
    return value


def _missing_stage_message(name: str, image_dirs: list[Path]) -> str:
    for base in image_dirs:
        candidate = base / name
        if candidate.is_dir():
            missing = [f for f in ("Dockerfile", "run.py") if not (candidate / f).is_file()]
            return (f"stage directory {candidate} has no {' and no '.join(missing)}: "
                    "a stage needs both Dockerfile and run.py")
    return (f"unknown stage {name!r}: no {name}/ with Dockerfile and run.py in "
            f"pipeline.images ({', '.join(str(d) for d in image_dirs)})")


# --- One stage ---------------------------------------------------------------------------------

def _pipeline_stage(place: _Place, spec: StageSpec, section: CommentedMap, runtime_config: Any,
                    default_image: str, base: Path) -> PipelineStage:
    """Join a stage's metadata with its section of the pipeline file and its config files."""
    config_files: dict[str, Path] = {}
    for source in (runtime_config, section.get("config")):
        if source is None:
            continue
        if not isinstance(source, CommentedMap):
            raise place.error(f"config of stage {spec.name!r} must map config tags to files", source)
        for tag, value in source.items():
            if tag not in spec.config:
                raise place.error(f"stage {spec.name!r} has no config file {tag!r} "
                                  f"(its config tags: {', '.join(spec.config) or 'none'})", source, tag)
            if tag in config_files:
                raise place.error(f"config {tag!r} of stage {spec.name!r} is given twice "
                                  "(runtime.config and the stage's own section)", source, tag)
            if not isinstance(value, str):
                raise place.error(f"config {tag!r} of stage {spec.name!r} must be a path", source, tag)
            config_files[tag] = _existing_file(place, base / value, config_file_type(spec, tag),
                                               f"config file {tag!r} of stage {spec.name!r}", source, tag)
    for tag, file_name in spec.config.items():
        if tag not in config_files:
            raise place.error(f"stage {spec.name!r} needs config file {tag!r} ({file_name}): "
                              f"add 'runtime: config: {spec.name}: {tag}: PATH'", section or runtime_config)

    values = _mapping(place, section, "parameters")
    parameter_values = {}
    for name, value in values.items():
        if name not in spec.parameters:
            raise place.error(f"stage {spec.name!r} has no parameter {name!r} "
                              f"(its parameters: {', '.join(spec.parameters) or 'none'})", values, name)
        try:
            parameter_values[name] = spec.parameters[name].coerce(value)
        except ValueError as e:
            raise place.error(f"parameter {name!r} of stage {spec.name!r}: {e}", values, name) from None
    for name, parameter in spec.parameters.items():
        if parameter.required and name not in parameter_values:
            raise place.error(f"stage {spec.name!r} needs parameter {name!r} ({parameter.describe()}): "
                              f"add it under '{spec.name}: parameters:'", section)

    numbers = {}
    for key in NUMBER_KEYS:
        if key in section:
            value = section[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise place.error(f"'{key}' of stage {spec.name!r} must be a positive whole number, "
                                  f"got {value!r}", section, key)
            numbers[key] = value
    if "cores" in numbers and "openmp" in numbers:
        raise place.error(f"stage {spec.name!r} sets both 'cores' and 'openmp' (the prototype's name "
                          "for cores): keep one", section, "openmp")
    resources = {"cores": 1, **spec.resources}
    if "openmp" in numbers:
        resources["cores"] = numbers["openmp"]
    resources.update({k: numbers[k] for k in ("cores", "memory_mb", "minutes") if k in numbers})
    # The prototype's MPI layout: nodes x ppn processes (ranks), each with `cores` threads.
    processes = numbers.get("nodes", 1) * numbers.get("ppn", 1)
    if processes > 1:
        resources["processes"] = processes

    image = section.get("image", default_image)
    if not isinstance(image, str) or not image:
        raise place.error(f"'image' of stage {spec.name!r} must be an image name", section, "image")
    split = section.get("split", False)
    if not isinstance(split, bool):
        raise place.error(f"'split' of stage {spec.name!r} must be true or false, got {split!r}", section, "split")
    if split and spec.split_over is None:
        raise place.error(f"stage {spec.name!r} cannot be split: its Stage is not a descpipe.SplitStage",
                          section, "split")
    lines = {key: _Place.line(section, key) for key in section}
    return PipelineStage(spec, image, config_files, parameter_values, resources, lines, split)


def _existing_file(place: _Place, path: Path, kind: FileType | None, what: str,
                   node: Any, key: Any) -> Path:
    _check_path_text(place, str(path), what, node, key)
    if not path.is_file():
        raise place.error(f"{what}: {path} does not exist", node, key)
    problem = kind.problem(path) if kind else None
    if problem:
        raise place.error(f"{what}: {path}: {problem}", node, key)
    return path


# --- The graph ---------------------------------------------------------------------------------

def _producers(place: _Place, pipeline: CommentedMap, stages: dict[str, PipelineStage]) -> dict[str, str]:
    producers: dict[str, str] = {}
    for index, (name, stage) in enumerate(stages.items()):
        for tag in stage.spec.outputs:
            if tag in producers:
                raise place.error(f"stages {producers[tag]!r} and {name!r} both make {tag!r}: "
                                  "a tag must have one producer", pipeline["stages"], index)
            producers[tag] = name
    return producers


def _overall_input_types(place: _Place, pipeline: CommentedMap, stages: dict[str, PipelineStage],
                         producers: dict[str, str]) -> dict[str, FileType]:
    """Types of the tags no stage makes; also checks every consumer agrees with its producer."""
    types: dict[str, tuple[FileType, str]] = {}
    for index, (name, stage) in enumerate(stages.items()):
        for tag, kind in stage.spec.inputs.items():
            if tag in producers:
                made = stages[producers[tag]].spec.outputs[tag]
                if made != kind:
                    raise place.error(f"stage {name!r} reads {tag!r} as {kind.name}, but stage "
                                      f"{producers[tag]!r} makes it as {made.name}: make the types "
                                      "in the two run.py files agree", pipeline["stages"], index)
            elif tag in types and types[tag][0] != kind:
                raise place.error(f"stages {types[tag][1]!r} and {name!r} read input {tag!r} as "
                                  f"{types[tag][0].name} and {kind.name}: make them agree",
                                  pipeline["stages"], index)
            else:
                types.setdefault(tag, (kind, name))
    return {tag: kind for tag, (kind, _) in types.items()}


def _overall_inputs(place: _Place, runtime: CommentedMap, stages: dict[str, PipelineStage],
                    input_types: dict[str, FileType], producers: dict[str, str], base: Path) -> dict[str, Path]:
    given = _mapping(place, runtime, "inputs")
    for tag in given:
        if tag in producers:
            raise place.error(f"runtime.inputs gives {tag!r}, which stage {producers[tag]!r} makes: "
                              "remove it from runtime.inputs", given, tag)
        if tag not in input_types:
            raise place.error(f"runtime.inputs gives {tag!r}, which no stage reads "
                              f"(needed inputs: {', '.join(input_types) or 'none'})", given, tag)
    inputs = {}
    for tag, kind in input_types.items():
        if tag not in given:
            raise place.error(f"no stage makes {tag!r} and runtime.inputs does not give it: "
                              f"add 'runtime: inputs: {tag}: PATH'",
                              *((given, None) if given else (runtime, "inputs")))
        if not isinstance(given[tag], str):
            raise place.error(f"runtime.inputs.{tag} must be a path", given, tag)
        inputs[tag] = _existing_file(place, base / given[tag], kind, f"input {tag!r}", given, tag)
        for stage in stages.values():
            try:
                lacking = missing_columns(inputs[tag], stage.spec.columns.get(tag, []))
            except FitsError as e:
                raise place.error(f"input {tag!r}: {inputs[tag]}: {e}, which stage {stage.name!r} reads",
                                  given, tag) from None
            if lacking:
                raise place.error(f"input {tag!r}: {inputs[tag]} has no column {', '.join(lacking)} in HDU 1, "
                                  f"which stage {stage.name!r} reads", given, tag)
    return inputs


def _run_order(place: _Place, document: CommentedMap, pipeline: CommentedMap,
               stages: dict[str, PipelineStage], producers: dict[str, str],
               depends_on: dict[str, list[str]]) -> list[str]:
    """Stages in an order that respects data flow and `depends-on`; ties keep pipeline.stages order."""
    index = {name: i for i, name in enumerate(stages)}
    reads_from = {name: sorted({producers[t] for t in s.spec.inputs if t in producers}, key=index.__getitem__)
                  for name, s in stages.items()}
    cycle = find_cycle(reads_from)
    if cycle:
        path = " <- ".join(cycle)
        raise place.error(f"the stages form a cycle through their files ({path}, each reading "
                          "what the next makes): "
                          "a stage cannot read, even indirectly, what it makes", pipeline["stages"], index[cycle[0]])
    for name, listed in depends_on.items():
        section = document.get(name)
        if not section or "depends-on" not in section:
            continue
        for producer in reads_from[name]:
            if producer not in listed:
                raise place.error(f"stage {name!r} reads files made by {producer!r}, but its depends-on "
                                  f"omits it: add {producer!r} or drop depends-on", section, "depends-on")
        for other in listed:
            if name in ancestors(other, reads_from):
                raise place.error(f"stage {name!r} depends on {other!r}, but {other!r} reads files that "
                                  f"{name!r} makes: this depends-on contradicts the data flow",
                                  section["depends-on"], listed.index(other))
    edges = {name: sorted(set(reads_from[name]) | set(depends_on[name]), key=index.__getitem__) for name in stages}
    cycle = find_cycle(edges)
    if cycle:
        raise place.error(f"the depends-on entries form a cycle ({' -> '.join(cycle)})",
                          document[cycle[0]], "depends-on")
    return run_order(edges)
