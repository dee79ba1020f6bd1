"""Export a checked pipeline as CWL v1.2: a CommandLineTool per stage, a Workflow, a job file.

The documents are built as plain data by pure functions (no file system access), so the same
pipeline always gives the same bytes; `write_export` is the one place that writes files.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import write_files
from .filetypes import EDAM, FileType
from .folders import refuse_user_files
from .images import Pin
from .naming import (
    LOG_STREAMS,
    SPLIT_MODES,
    WORKFLOW_ID,
    log_file_stem,
    log_output_id,
    output_file_name,
    stage_input_id,
    step_id,
)
from .pipeline import Pipeline, PipelineStage
from .stage_loader import config_file_type
from .yaml_writer import to_yaml_text

CWL_VERSION = "v1.2"
NAMESPACES = {"edam": EDAM}
# Declared only in exports that use it (MPI stages), so other exports stay plain CWL v1.2.
CWLTOOL_NAMESPACE = {"cwltool": "http://commonwl.org/cwltool#"}
# Offline, cwltool warns that it cannot fetch this and falls back to comparing format IRIs exactly.
SCHEMAS = ["https://edamontology.org/EDAM_1.25.owl"]


def short_format(kind: FileType) -> str:
    """`edam:format_2333` for a type whose IRI is in EDAM, else the full IRI."""
    return "edam:" + kind.format[len(EDAM):] if kind.format.startswith(EDAM) else kind.format


def _file_parameter(kind: FileType | None) -> dict[str, Any]:
    return {"type": "File", **({"format": short_format(kind)} if kind else {})}


def command_line_tool(stage: PipelineStage, pin: Pin | None = None, mode: str | None = None) -> dict[str, Any]:
    """The CommandLineTool that runs one stage: `python3 <code>/run.py --<tag> PATH ...`.

    With a `pin` (from `descpipe build`, `push` or `pull`) the tool runs exactly that image id,
    never whatever later carries the same name, and pulls it by digest where one is known.
    `mode` makes one of a split stage's tools (SPLIT_MODES): `plan` lists the parts, `part`
    computes the one named by its `part` input, `gather` assembles the partial files.
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
    arguments: list[Any] = []
    outputs: dict[str, Any] = {}
    if mode == "plan":
        arguments.append({"position": 2, "valueFrom": "--plan"})
        # Read from the cwl.output.json the stage writes.
        outputs["parts"] = {"type": {"type": "array", "items": "string"}}
    else:
        outputs.update({tag: {**_file_parameter(kind), "outputBinding": {"glob": output_file_name(tag, kind)}}
                        for tag, kind in spec.outputs.items()})
        outputs.update({stream: {"type": stream} for stream in LOG_STREAMS})
        arguments += [{"position": 2, "prefix": f"--{tag}", "valueFrom": output_file_name(tag, kind)}
                      for tag, kind in spec.outputs.items()]
    if mode == "part":
        inputs["part"] = {"type": "string", "inputBinding": {"position": 1, "prefix": "--part"}}
    if mode == "gather":
        arguments.append({"position": 2, "valueFrom": "--gather"})
        for tag, kind in spec.outputs.items():
            inputs[f"{tag}-parts"] = {"type": {"type": "array", "items": "File"},
                                      "inputBinding": {"position": 1, "prefix": f"--{tag}-parts"}}
    # Only the parts do the heavy work: planning and gathering get one core.
    granted = stage.resources if mode in (None, "part") else {"cores": 1}
    processes = granted.get("processes", 1)
    # An MPI stage's ranks share the job's cores, so each is told its own share; otherwise the
    # stage gets the cores the engine granted.
    cores = str(granted["cores"]) if processes > 1 else "$(runtime.cores)"
    arguments.append({"position": 3, "prefix": "--cores", "valueFrom": cores})
    resources = {"coresMin": granted["cores"] * processes}
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
    name = step_id(spec.name, mode)
    tool: dict[str, Any] = {"class": "CommandLineTool", "id": name, "label": name}
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
    })
    if mode != "plan":
        # Each part's logs get the part's name, so a scattered step's logs do not collide.
        log = log_file_stem(spec.name, mode, "$(inputs.part)" if mode == "part" else None)
        tool.update({stream: f"{log}.{ending}" for stream, ending in LOG_STREAMS.items()})
    return tool


def stage_tools(stage: PipelineStage, pin: Pin | None = None) -> list[dict[str, Any]]:
    """The tools that run a stage: one, or a split stage's plan, part and gather."""
    return [command_line_tool(stage, pin, mode) for mode in (SPLIT_MODES if stage.split else (None,))]


def workflow(pipeline: Pipeline, tool_reference: dict[str, Any]) -> dict[str, Any]:
    """The Workflow wiring the stages by tag; `tool_reference` maps a tool id to its `run:` value
    (the tool itself, or the name of its file)."""
    inputs: dict[str, Any] = {tag: _file_parameter(kind) for tag, kind in pipeline.input_types.items()}
    # The step whose outputs a tag comes from: a split stage's come from its gather step.
    made_by = {tag: step_id(stage.name, "gather" if stage.split else None)
               for stage in pipeline.stages for tag in stage.spec.outputs}
    final = set(pipeline.final)   # looked up once per output tag: thousands of times
    steps: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for stage in pipeline.stages:
        spec = stage.spec

        wiring = {"code": stage_input_id(spec.name, "code")}
        inputs[stage_input_id(spec.name, "code")] = {"type": "Directory"}
        for tag in spec.inputs:
            wiring[tag] = f"{made_by[tag]}/{tag}" if tag in made_by else tag
        for tag in spec.config:
            wiring[tag] = inputs_key = stage_input_id(spec.name, tag)
            inputs[inputs_key] = _file_parameter(config_file_type(spec, tag))
        for name, parameter in spec.parameters.items():
            wiring[name] = stage_input_id(spec.name, name)
            inputs[stage_input_id(spec.name, name)] = {"type": parameter.cwl_type,
                                 **({} if parameter.required else {"default": parameter.default})}
        produced = [*spec.outputs, *LOG_STREAMS]
        final_step = step_id(spec.name, "gather" if stage.split else None)
        if stage.split:
            plan, part = step_id(spec.name, "plan"), step_id(spec.name, "part")
            # `run` last: a reader sees a step's wiring before the tool, which may be inline.
            steps[plan] = {"in": wiring, "out": ["parts"], "run": tool_reference[plan]}
            steps[part] = {"in": {**wiring, "part": f"{plan}/parts"}, "scatter": "part", "out": produced,
                           "run": tool_reference[part]}
            steps[final_step] = {"in": {**wiring, **{f"{tag}-parts": f"{part}/{tag}" for tag in spec.outputs}},
                                 "out": produced, "run": tool_reference[final_step]}
            for stream in LOG_STREAMS:
                outputs[log_output_id(spec.name, stream, parts=True)] = {"type": {"type": "array", "items": "File"},
                                                                         "outputSource": f"{part}/{stream}"}
        else:
            steps[spec.name] = {"in": wiring, "out": produced, "run": tool_reference[spec.name]}
        for tag in spec.outputs:
            if tag in final:
                outputs[tag] = {"type": "File", "outputSource": f"{final_step}/{tag}"}
        for stream in LOG_STREAMS:
            outputs[log_output_id(spec.name, stream)] = {"type": "File", "outputSource": f"{final_step}/{stream}"}
    document: dict[str, Any] = {"class": "Workflow", "id": WORKFLOW_ID, "label": pipeline.name,
                                "doc": f"The {pipeline.name} pipeline, exported by descpipe from {pipeline.file.name}."}
    if any(stage.split for stage in pipeline.stages):
        document["requirements"] = {"ScatterFeatureRequirement": {}}
    document.update({"inputs": inputs, "outputs": outputs, "steps": steps})
    return document


def single_document(pipeline: Pipeline, pins: dict[str, Pin] | None = None) -> dict[str, Any]:
    """One self-contained document: the workflow (`#main`), each tool inline in its step's `run`.

    Inline rather than in a `$graph`: cwltool and Toil load and check a whole `$graph` again for
    every step that names a tool in it, which costs a second per run of the example and grows
    with the square of the number of stages. `pins` maps stages to the image ids to run (see
    `command_line_tool`).
    """
    tools = [tool for stage in pipeline.stages for tool in stage_tools(stage, (pins or {}).get(stage.name))]
    main = workflow(pipeline, {tool["id"]: tool for tool in tools})
    return {"cwlVersion": CWL_VERSION, "$namespaces": _namespaces(tools), "$schemas": SCHEMAS, **main}


def _namespaces(documents: list[dict[str, Any]]) -> dict[str, str]:
    uses_cwltool = any(key.startswith("cwltool:") for document in documents
                       for key in document.get("requirements", {}))
    return {**NAMESPACES, **(CWLTOOL_NAMESPACE if uses_cwltool else {})}


def documents_per_tool(pipeline: Pipeline, pins: dict[str, Pin] | None = None) -> dict[str, dict[str, Any]]:
    """One document per tool (`<stage>.cwl`) and the workflow that runs them, keyed by file name."""
    def standalone(document: dict[str, Any]) -> dict[str, Any]:
        return {"cwlVersion": CWL_VERSION, "$namespaces": _namespaces([document]), "$schemas": SCHEMAS,
                **document}

    tools = [tool for stage in pipeline.stages for tool in stage_tools(stage, (pins or {}).get(stage.name))]
    documents = {f"{tool['id']}.cwl": standalone(tool) for tool in tools}
    main = workflow(pipeline, {tool["id"]: f"{tool['id']}.cwl" for tool in tools})
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

    values: dict[str, Any] = {tag: file_object(path, output_file_name(tag, pipeline.input_types[tag]),
                                               pipeline.input_types[tag])
                              for tag, path in pipeline.inputs.items()}
    for stage in pipeline.stages:
        spec = stage.spec
        values[stage_input_id(spec.name, "code")] = {"class": "Directory",
                                                 "path": os.path.relpath(spec.directory, job_dir)}
        for tag, path in stage.config_files.items():
            values[stage_input_id(spec.name, tag)] = file_object(path, spec.config[tag],
                                                                 config_file_type(spec, tag))
        for name, value in stage.parameter_values.items():
            values[stage_input_id(spec.name, name)] = value
    return values


def to_yaml(document: dict[str, Any], header: str = "") -> str:
    """YAML text of a document, the same bytes for the same data."""
    return header + to_yaml_text(document)


def write_export(pipeline: Pipeline, cwl_path: Path, job_path: Path, tool_files: bool = False,
                 pins: dict[str, Pin] | None = None) -> list[Path]:
    """Write the CWL (one document, or with `tool_files` one per tool beside it) and the job file.

    Every file is written whole to a temporary name and then renamed, so an interrupted export
    never leaves a half-written document under its final name. Returns the paths written.
    """
    source = os.path.relpath(pipeline.file, cwl_path.parent)
    header = (f"#!/usr/bin/env cwl-runner\n# Exported by descpipe from {source}: "
              "edit that file and export again rather than editing this one.\n")
    files: dict[Path, str] = {}
    if tool_files:
        for name, document in documents_per_tool(pipeline, pins).items():
            path = cwl_path if name == "workflow" else cwl_path.parent / name
            if path in files:
                raise UserError(f"the workflow would overwrite the tool of stage {Path(name).stem!r}, which "
                                f"--tool-files also writes as {name}: export to another file name", cwl_path)
            files[path] = to_yaml(document, header)
    else:
        files[cwl_path] = to_yaml(single_document(pipeline, pins), header)
    refuse_user_files(pipeline, [*files, job_path])
    files[job_path] = to_yaml(job(pipeline, job_path.parent),
                              f"# Inputs of {cwl_path.name}, exported by descpipe from {source}.\n")
    write_files(files)
    return list(files)
