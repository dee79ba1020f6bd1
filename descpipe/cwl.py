"""Export a checked pipeline as CWL v1.2: a CommandLineTool per stage, a Workflow, a job file.

The documents are built as plain data by pure functions (no file system access), so the same
pipeline always gives the same bytes; `write_export` is the one place that writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


from .files import write_files
from .filetypes import EDAM, FileType
from .pipeline import Pipeline, PipelineStage
from .stage_loader import config_file_type
from .yaml_writer import to_yaml_text

CWL_VERSION = "v1.2"
NAMESPACES = {"edam": EDAM}
# Declared only in exports that use it (MPI stages), so other exports stay plain CWL v1.2.
CWLTOOL_NAMESPACE = {"cwltool": "http://commonwl.org/cwltool#"}
# Offline, cwltool warns that it cannot fetch this and falls back to comparing format IRIs exactly.
SCHEMAS = ["https://edamontology.org/EDAM_1.25.owl"]
# Workflow-level ids of per-stage things are `<stage>.<name>`: tags and names never hold a dot,
# so these cannot clash with overall input tags or with each other.
SEPARATOR = "."


@dataclass(frozen=True)
class Pin:
    """The image a tool must run: the engine's id for it, and its registry digest if pushed or pulled."""

    id: str
    digest: Optional[str] = None


def short_format(kind: FileType) -> str:
    """`edam:format_2333` for a type whose IRI is in EDAM, else the full IRI."""
    return "edam:" + kind.format[len(EDAM):] if kind.format.startswith(EDAM) else kind.format


def _file_parameter(kind: FileType | None) -> dict[str, Any]:
    return {"type": "File", **({"format": short_format(kind)} if kind else {})}


def command_line_tool(stage: PipelineStage, pin: Optional[Pin] = None) -> dict[str, Any]:
    """The CommandLineTool that runs one stage: `python3 <code>/run.py --<tag> PATH ...`.

    With a `pin` (from `descpipe build`, `push` or `pull`) the tool runs exactly that image id,
    never whatever later carries the same name, and pulls it by digest where one is known.
    """
    docker = {"dockerPull": pin.digest if pin and pin.digest else stage.image}
    if pin:
        docker["dockerImageId"] = pin.id
    spec = stage.spec
    inputs: dict[str, Any] = {
        "code": {"type": "Directory",
                 "doc": "The stage's directory: run.py and any modules beside it.",
                 # Engines then see (and hash) every file in it: editing run.py invalidates
                 # cwltool's cached outputs of this stage, and provenance lists each file.
                 "loadListing": "deep_listing",
                 "inputBinding": {"position": 0, "valueFrom": "$(self.path)/run.py"}},
    }
    for tag, kind in spec.inputs.items():
        inputs[tag] = {**_file_parameter(kind), "inputBinding": {"position": 1, "prefix": f"--{tag}"}}
    for tag in spec.config:
        inputs[tag] = {**_file_parameter(config_file_type(spec, tag)),
                       "inputBinding": {"position": 1, "prefix": f"--{tag}"}}
    for name, parameter in spec.parameters.items():
        inputs[name] = {"type": parameter.cwl_type,
                        **({} if parameter.required else {"default": parameter.default}),
                        # One `--name=VALUE` token; JSON for lists and booleans, as Stage.main parses.
                        "inputBinding": {"position": 1, "prefix": f"--{name}", "separate": False,
                                         "valueFrom": "=$(self)"}}
    outputs: dict[str, Any] = {
        tag: {**_file_parameter(kind), "outputBinding": {"glob": _output_name(tag, kind)}}
        for tag, kind in spec.outputs.items()
    }
    outputs["stdout"] = {"type": "stdout"}
    outputs["stderr"] = {"type": "stderr"}
    arguments: list[Any] = [
        {"position": 2, "prefix": f"--{tag}", "valueFrom": _output_name(tag, kind)}
        for tag, kind in spec.outputs.items()
    ]
    processes = stage.resources.get("processes", 1)
    # An MPI stage's ranks share the job's cores, so each is told its own share; otherwise the
    # stage gets the cores the engine granted.
    cores = str(stage.resources["cores"]) if processes > 1 else "$(runtime.cores)"
    arguments.append({"position": 3, "prefix": "--cores", "valueFrom": cores})
    resources = {"coresMin": stage.resources["cores"] * processes}
    if "memory_mb" in stage.resources:
        resources["ramMin"] = stage.resources["memory_mb"]
    requirements: dict[str, Any] = {
        # Python would otherwise write __pycache__ into the staged (possibly read-only) code.
        "EnvVarRequirement": {"envDef": {"PYTHONDONTWRITEBYTECODE": "1"}},
        "ResourceRequirement": resources,
    }
    if "minutes" in stage.resources:
        requirements["ToolTimeLimit"] = {"timelimit": stage.resources["minutes"] * 60}
    if spec.network:
        # CWL engines run tools without network unless this says otherwise.
        requirements["NetworkAccess"] = {"networkAccess": True}
    if processes > 1:
        # cwltool's extension (`--enable-ext`, which Toil reads too): the engine prefixes the
        # command with `mpirun -n N`, or what its --mpi-config-file says.
        requirements["cwltool:MPIRequirement"] = {"processes": processes}
    tool: dict[str, Any] = {"class": "CommandLineTool", "id": spec.name, "label": spec.label}
    if spec.doc:
        tool["doc"] = spec.doc + "\n"
    tool.update({
        # A hint, not a requirement, so that `cwltool --no-container` runs the same document.
        "hints": {"DockerRequirement": docker},
        "requirements": requirements,
        "baseCommand": ["python3"],
        "arguments": arguments,
        "inputs": inputs,
        "outputs": outputs,
        "stdout": f"{spec.name}.out",
        "stderr": f"{spec.name}.err",
    })
    return tool


def _output_name(tag: str, kind: FileType) -> str:
    """The file name of a tag's file: `<tag>.<suffix>`, as the prototype named them."""
    return f"{tag}.{kind.suffix}"


def workflow(pipeline: Pipeline, tool_reference: dict[str, str]) -> dict[str, Any]:
    """The Workflow wiring the stages by tag; `tool_reference` maps a stage to its `run:` value."""
    inputs: dict[str, Any] = {tag: _file_parameter(kind) for tag, kind in pipeline.input_types.items()}
    made_by = {tag: stage.name for stage in pipeline.stages for tag in stage.spec.outputs}
    steps: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for stage in pipeline.stages:
        spec = stage.spec

        def own(name: str) -> str:
            return f"{spec.name}{SEPARATOR}{name}"

        wiring = {"code": own("code")}
        inputs[own("code")] = {"type": "Directory"}
        for tag in spec.inputs:
            wiring[tag] = f"{made_by[tag]}/{tag}" if tag in made_by else tag
        for tag in spec.config:
            wiring[tag] = inputs_key = own(tag)
            inputs[inputs_key] = _file_parameter(config_file_type(spec, tag))
        for name, parameter in spec.parameters.items():
            wiring[name] = own(name)
            inputs[own(name)] = {"type": parameter.cwl_type,
                                 **({} if parameter.required else {"default": parameter.default})}
        steps[spec.name] = {"run": tool_reference[spec.name], "in": wiring,
                            "out": [*spec.outputs, "stdout", "stderr"]}
        for tag in spec.outputs:
            if tag in pipeline.final:
                outputs[tag] = {"type": "File", "outputSource": f"{spec.name}/{tag}"}
        for stream in ("stdout", "stderr"):
            outputs[own(stream)] = {"type": "File", "outputSource": f"{spec.name}/{stream}"}
    return {"class": "Workflow", "id": "main", "label": pipeline.name,
            "doc": f"The {pipeline.name} pipeline, exported by descpipe from {pipeline.file.name}.",
            "inputs": inputs, "outputs": outputs, "steps": steps}


def single_document(pipeline: Pipeline, pins: Optional[dict[str, Pin]] = None) -> dict[str, Any]:
    """One self-contained document: every tool and the workflow (`#main`) in a `$graph`.

    `pins` maps stages to the image ids to run (see `command_line_tool`).
    """
    tools = [command_line_tool(stage, (pins or {}).get(stage.name)) for stage in pipeline.stages]
    main = workflow(pipeline, {stage.name: f"#{stage.name}" for stage in pipeline.stages})
    return {"cwlVersion": CWL_VERSION, "$namespaces": _namespaces(tools), "$schemas": SCHEMAS,
            "$graph": [*tools, main]}


def _namespaces(documents: list[dict[str, Any]]) -> dict[str, str]:
    uses_cwltool = any(key.startswith("cwltool:") for document in documents
                       for key in document.get("requirements", {}))
    return {**NAMESPACES, **(CWLTOOL_NAMESPACE if uses_cwltool else {})}


def split_documents(pipeline: Pipeline, pins: Optional[dict[str, Pin]] = None) -> dict[str, dict[str, Any]]:
    """One document per tool (`<stage>.cwl`) and the workflow that runs them, keyed by file name."""
    def standalone(document: dict[str, Any]) -> dict[str, Any]:
        return {"cwlVersion": CWL_VERSION, "$namespaces": _namespaces([document]), "$schemas": SCHEMAS,
                **document}

    documents = {f"{stage.name}.cwl": standalone(command_line_tool(stage, (pins or {}).get(stage.name)))
                 for stage in pipeline.stages}
    main = workflow(pipeline, {stage.name: f"{stage.name}.cwl" for stage in pipeline.stages})
    return {"workflow": standalone(main), **documents}


def job(pipeline: Pipeline, job_dir: Path) -> dict[str, Any]:
    """The job (inputs) file: overall inputs, config files, stage code and parameter values.

    Paths are relative to `job_dir`, where the job file goes: CWL engines resolve them from there,
    and the bytes do not depend on where the checkout lives. Files are staged under the names the
    prototype gave them (`<tag>.<suffix>`, and a config file's declared name), whatever they are
    called on disk: engines refuse names with spaces or quotes, and stages see stable names.
    """
    def file_object(path: Path, basename: str, kind: FileType | None) -> dict[str, Any]:
        entry = {"class": "File", "path": os.path.relpath(path, job_dir), "basename": basename}
        if kind:
            entry["format"] = kind.format
        return entry

    values: dict[str, Any] = {tag: file_object(path, _output_name(tag, pipeline.input_types[tag]),
                                               pipeline.input_types[tag])
                              for tag, path in pipeline.inputs.items()}
    for stage in pipeline.stages:
        spec = stage.spec
        values[f"{spec.name}{SEPARATOR}code"] = {"class": "Directory",
                                                 "path": os.path.relpath(spec.directory, job_dir)}
        for tag, path in stage.config_files.items():
            values[f"{spec.name}{SEPARATOR}{tag}"] = file_object(path, spec.config[tag],
                                                                 config_file_type(spec, tag))
        for name, value in stage.parameter_values.items():
            values[f"{spec.name}{SEPARATOR}{name}"] = value
    return values


def to_yaml(document: dict[str, Any], header: str = "") -> str:
    """YAML text of a document, the same bytes for the same data."""
    return header + to_yaml_text(document)


def write_export(pipeline: Pipeline, cwl_path: Path, job_path: Path, split: bool = False,
                 pins: Optional[dict[str, Pin]] = None) -> list[Path]:
    """Write the CWL (one document, or one per tool beside it with `split`) and the job file.

    Every file is written whole to a temporary name and then renamed, so an interrupted export
    never leaves a half-written document under its final name. Returns the paths written.
    """
    source = os.path.relpath(pipeline.file, cwl_path.parent)
    header = (f"#!/usr/bin/env cwl-runner\n# Exported by descpipe from {source}: "
              "edit that file and export again rather than editing this one.\n")
    files: dict[Path, str] = {}
    if split:
        for name, document in split_documents(pipeline, pins).items():
            path = cwl_path if name == "workflow" else cwl_path.parent / name
            files[path] = to_yaml(document, header)
    else:
        files[cwl_path] = to_yaml(single_document(pipeline, pins), header)
    files[job_path] = to_yaml(job(pipeline, job_path.parent),
                              f"# Inputs of {cwl_path.name}, exported by descpipe from {source}.\n")
    write_files(files)
    return list(files)
