"""The `descpipe` command: export, validate, graph and run pipelines."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import UserError
from .files import write_files
from .folders import claim_working, refuse_user_files
from .images import BUILDERS
from .run_config import COMMAND_LINE, CONTAINER_RUNTIMES, ENGINES, SETTINGS, read_settings, run_config

EXAMPLES = """examples:
  descpipe validate pipelines/des-sv-mock.yaml
  descpipe export pipelines/des-sv-mock.yaml -o wf.cwl      # then: cwltool wf.cwl job.yml
  descpipe graph pipelines/des-sv-mock.yaml -o dag.svg
  descpipe run pipelines/des-sv-mock.yaml
  descpipe run pipelines/des-sv-mock.yaml --engine toil --batch-system slurm
  descpipe run pipelines/des-sv-mock.yaml --resume       # reuse what an earlier run finished
  descpipe provenance output/des-sv-mock                 # what ran, on what, making what
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="descpipe", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Turn a pipeline file and its stage directories into CWL, and run it.")
    parser.add_argument("--version", action="version", version=f"descpipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    export = commands.add_parser("export", help="write the pipeline as CWL v1.2 plus a job file",
                                 description="Write the pipeline as one CWL v1.2 document and a job "
                                 "file, so that `cwltool WF.cwl JOB.yml` runs it.")
    export.add_argument("pipeline", type=Path, help="the pipeline file")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="WF.cwl",
                        help="the CWL file to write (its folder is created if needed)")
    export.add_argument("--job", type=Path, metavar="JOB.yml",
                        help="the job file to write (default: job.yml beside WF.cwl)")
    export.add_argument("--tool-files", action="store_true",
                        help="write each stage's tool to its own <stage>.cwl beside WF.cwl")
    export.add_argument("--split", dest="tool_files", action="store_true", help=argparse.SUPPRESS)  # old name
    export.add_argument("--pin", choices=("auto", *BUILDERS, "none"), default="auto",
                        help="pin each tool to the image id `descpipe build` recorded for this container "
                        "runtime (auto: Docker's record when there is one)")

    build = commands.add_parser("build", help="build the base and stage images, with no registry",
                                description="Build the base image (from debootstrap unless pipeline.base_image "
                                "says otherwise) and every stage image; skip those whose build context has not "
                                "changed; record their ids in runtime.working for export and run.")
    build.add_argument("--singularity", type=Path, metavar="DIR",
                       help="also convert the images to SIF files in DIR, named as `CWL_SINGULARITY_CACHE=DIR "
                       "cwltool --singularity` expects; without apptainer/singularity, print the commands")
    image_commands = [build]
    for verb, what in (("push", "push each stage's built image to the registry its name starts with"),
                       ("pull", "pull each stage's image (by digest when `push` recorded one)")):
        image_commands.append(commands.add_parser(
            verb, help=what, description=what[0].upper() + what[1:] + ", and record it for pinning. The "
            "registry is part of the image name: set pipeline.owner to, for example, registry.example.org:5000/desc."))
    for command in image_commands:
        command.add_argument("pipeline", type=Path, help="the pipeline file")
        command.add_argument("--container", choices=BUILDERS, default="docker",
                             help="the container runtime that builds and holds the images (default: docker)")
        # The old name, from before "engine" meant only the CWL engine.
        command.add_argument("--engine", dest="container", choices=BUILDERS, help=argparse.SUPPRESS)

    local = commands.add_parser("local", help="write a bash script that runs each stage with docker run",
                                description="Write the prototype's launcher: a bash script that runs the "
                                "stages one after another with `docker run`, no CWL engine (images from "
                                "`descpipe build`, pinned when it recorded them).")
    local.add_argument("pipeline", type=Path, help="the pipeline file")
    local.add_argument("script", type=Path, help="the script to write")

    new_stage = commands.add_parser("new-stage", help="create a working stage directory to start from",
                                    description="Create IMAGES/NAME/ with a Dockerfile, a run.py (a small "
                                    "working stage with its metadata and docstring) and a test.")
    new_stage.add_argument("name", help="the stage's name (its directory)")
    new_stage.add_argument("--images", type=Path, default=Path("images"),
                           help="the folder of stage directories (default: images)")

    provenance = commands.add_parser("provenance", help="summarise the run record of a `descpipe run`",
                                     description="Say what a run ran, with which code (checksums of each "
                                     "stage's files), on which inputs, making which files, from its run record.")
    provenance.add_argument("directory", type=Path, metavar="DIR",
                            help="the run's output directory (or its working directory, after a failed run)")

    commands.add_parser("sites", help="list the sites `run --site` knows, with their settings",
                        description="List the sites descpipe ships and those in the user's and the project's "
                        "sites files, with their settings.")

    validate = commands.add_parser("validate", help="check a pipeline file and its stages; run nothing",
                                   description="Run every check descpipe makes, and run nothing.")
    validate.add_argument("pipeline", type=Path, help="the pipeline file")
    validate.add_argument("--json", action="store_true",
                          help="print the checked pipeline as JSON: its stages in run order, what each reads and makes")

    graph = commands.add_parser("graph", help="draw the stages and the files between them",
                                description="Draw the pipeline: .dot needs nothing, .svg and .png "
                                "need Graphviz's `dot` program.")
    graph.add_argument("pipeline", type=Path, help="the pipeline file")
    graph.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                       help="the drawing to write: FILE.dot, FILE.svg or FILE.png")

    run = commands.add_parser("run", help="export the pipeline and run it with cwltool or Toil",
                              description="Export the pipeline into runtime.working and run it with "
                              "cwltool or Toil; products go to runtime.output, stage logs to its logs/ folder.")
    run.add_argument("pipeline", type=Path, help="the pipeline file")
    run.add_argument("--site", metavar="NAME",
                     help="named settings for where the run goes (see `descpipe sites`; default: runtime.site)"
                     ).completer = _complete_site  # type: ignore[attr-defined]
    run.add_argument("--engine", choices=ENGINES,
                     help="the CWL engine that runs the pipeline (default: runtime.engine, else cwltool)")
    run.add_argument("--container", choices=CONTAINER_RUNTIMES,
                     help="the container runtime stages run in (default: runtime.container, else none: "
                     "on this machine's Python)")
    toil = run.add_argument_group("Toil settings (--engine toil; each overrides the runtime section's key "
                                  "of the same name)")
    toil.add_argument("--batch-system", metavar="NAME",
                      help="where Toil runs the stages: slurm, single_machine (default) or another Toil batch system")
    toil.add_argument("--retries", type=_count, metavar="N", help="times a failed stage is tried again (Toil's default: 1)")
    toil.add_argument("--partition", help="SLURM partition for the stages' jobs")
    toil.add_argument("--time", metavar="[D-]HH:MM:SS",
                      help="SLURM time limit for every stage's job, instead of the stages' own minutes")
    toil.add_argument("--sbatch-args", metavar="'ARGS'", help="more sbatch arguments, such as '--account=m1727'")
    toil.add_argument("--restart", action="store_true", default=None,
                      help="finish a failed run from its job store, without re-running the stages that finished")
    run.add_argument("--resume", action="store_true", default=None,
                     help="reuse the outputs of stages whose code, inputs, parameters, config and image are "
                     "unchanged since an earlier run, even a killed one (cwltool's job cache; with Toil, "
                     "--restart where a job store was left); default: runtime.resume")
    run.add_argument("--provenance", action="store_true", default=None,
                     help="(cwltool) also record the engine's CWLProv research object and write it as a Workflow Run "
                     "RO-Crate in the output's provenance/crate/")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="change one value for this run: STAGE.PARAM=VALUE, global.PARAM=VALUE (every stage's "
                     "parameter of that name) or runtime.KEY=VALUE; VALUE as in the pipeline file; repeatable"
                     ).completer = _complete_set  # type: ignore[attr-defined]
    run.add_argument("engine_args", nargs="*", metavar="-- ENGINE-OPTION",
                     help="options passed to the engine as they are, after `--`")
    return parser


def _complete_site(prefix: str, **_: object) -> list[str]:
    """Shell completion of --site: the known sites' names."""
    from .sites import known_sites

    return [name for name in known_sites() if name.startswith(prefix)]


def _complete_set(prefix: str, parsed_args: argparse.Namespace, **_: object) -> list[str]:
    """Shell completion of --set: `STAGE.PARAM=` of the pipeline on the line, `global.PARAM=`, `runtime.KEY=`."""
    from .pipeline import load_pipeline

    keys = [f"runtime.{key}=" for key in SETTINGS]
    try:
        pipeline = load_pipeline(parsed_args.pipeline)
    except (UserError, AttributeError, TypeError):
        return [key for key in keys if key.startswith(prefix)]
    for stage in pipeline.stages:
        keys += [f"{stage.name}.{name}=" for name in stage.spec.parameters]
    keys += sorted({f"global.{name}=" for stage in pipeline.stages for name in stage.spec.parameters})
    return [key for key in keys if key.startswith(prefix)]


def _count(text: str) -> int:
    """A whole number, 0 or more, for argparse."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `descpipe` command with `argv` (default: this process's arguments); return its exit status."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:   # the shell asks for completions (argcomplete): answer, and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as e:
        print(f"descpipe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("descpipe: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from .pipeline import load_pipeline

    if args.command == "new-stage":
        from .scaffold import new_stage

        for path in new_stage(args.name, args.images):
            print(f"wrote {path}")
        print(f"next: list {args.name!r} in a pipeline file's pipeline.stages, give it "
              f"'runtime: inputs: {args.name}-input: PATH', and run `descpipe validate` on it")
        return 0
    if args.command == "sites":
        from .sites import describe_sites

        print(describe_sites())
        return 0
    if args.command == "provenance":
        from .provenance import load_record, summary

        print(summary(*load_record(args.directory)))
        return 0
    pipeline = load_pipeline(args.pipeline)
    if args.command == "validate" and args.json:
        import json

        print(json.dumps({"pipeline": pipeline.name, "file": str(pipeline.file), "stages": [
            {"name": stage.name, "reads": [*stage.spec.inputs, *stage.config_files], "makes": list(stage.spec.outputs),
             "parameters": {name: stage.parameter_values.get(name, parameter.default)
                            for name, parameter in stage.spec.parameters.items()},
             "resources": stage.resources, "split": stage.split} for stage in pipeline.stages],
            "inputs": {tag: str(path) for tag, path in pipeline.inputs.items()}, "final": list(pipeline.final),
            "working": str(pipeline.working), "output": str(pipeline.output)}, indent=2))
        return 0
    if args.command == "validate":
        print(f"{args.pipeline}: valid; {len(pipeline.stages)} stages in this order:")
        for stage in pipeline.stages:
            reads = ", ".join([*stage.spec.inputs, *stage.config_files]) or "nothing"
            print(f"  {stage.name}: reads {reads}; makes {', '.join(stage.spec.outputs) or 'nothing'}")
        return 0
    if args.command == "export":
        from .cwl import write_export
        from .images import image_record, pins, read_pins, record_path

        runtime = "docker" if args.pin == "auto" else args.pin
        chosen = (None if runtime == "none" else read_pins(pipeline, runtime) if args.pin == "auto"
                  else pins(image_record(pipeline, runtime)))
        job = args.job or args.output.parent / "job.yml"
        for path in write_export(pipeline, args.output, job, tool_files=args.tool_files, pins=chosen):
            print(f"wrote {path}")
        if chosen:
            print(f"images pinned to the ids in {record_path(pipeline, runtime)}")
        return 0
    if args.command == "local":
        from .images import read_pins
        from .local_script import local_script

        refuse_user_files(pipeline, [args.script])
        claim_working(pipeline)   # the script runs each stage in a folder there
        write_files({args.script: local_script(pipeline, read_pins(pipeline, "docker"))}, executable=True)
        print(f"wrote {args.script}; run it with: bash {args.script}")
        return 0
    if args.command in ("push", "pull"):
        from .build import pull_images, push_images
        from .images import record_path

        (push_images if args.command == "push" else pull_images)(pipeline, args.container)
        print(f"recorded image ids and digests in {record_path(pipeline, args.container)}")
        return 0
    if args.command == "build":
        from .build import build_images, singularity_images
        from .images import record_path

        build_images(pipeline, args.container)
        print(f"recorded image ids in {record_path(pipeline, args.container)}")
        if args.singularity:
            singularity_images(pipeline, args.singularity, args.container)
        return 0
    if args.command == "graph":
        from .draw import draw

        refuse_user_files(pipeline, [args.output])
        draw(pipeline, args.output)
        print(f"wrote {args.output}")
        return 0
    from .overrides import apply
    from .runner import run_pipeline
    from .sites import site_settings

    given = read_settings({key: getattr(args, key.replace("-", "_")) for key in SETTINGS},
                          lambda key: COMMAND_LINE)
    pipeline, overridden = apply(pipeline, args.set)
    # pipeline file < site < command line; the site itself is chosen in any of them.
    site_choice = {**pipeline.run_settings, **given, **overridden}.get("site")
    site = site_settings(site_choice.value, site_choice.origin) if site_choice else {}
    config = run_config(pipeline.run_settings, site, given, overridden, engine_options=tuple(args.engine_args))
    return run_pipeline(pipeline, config)


if __name__ == "__main__":
    sys.exit(main())
