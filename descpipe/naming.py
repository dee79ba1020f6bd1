"""The export's naming scheme: the ids of the workflow, its steps, inputs and outputs, and the
file names of products and logs.

The exporter writes these names; the runner, the engines' log readers and the run record read
them back. Keeping both directions here means a stage is found by the same rule everywhere.
Tags and stage names never hold a dot (see stage_loader.NAME_PATTERN), so joining them with one
cannot clash.
"""
from __future__ import annotations

from typing import NamedTuple

from .filetypes import FileType

WORKFLOW_ID = "main"
SEPARATOR = "."
# The steps of a split stage (a SplitStage run with `split: true`): plan lists the parts, one
# scattered part job per part, gather assembles them.
SPLIT_MODES = ("plan", "part", "gather")
# Each tool's standard streams, and the endings of the files they go to.
LOG_STREAMS = {"stdout": "out", "stderr": "err"}


class Step(NamedTuple):
    """A workflow step: the stage it belongs to and, for a split stage, which of its steps."""

    stage: str
    mode: str | None = None

    @property
    def id(self) -> str:
        """`tomography`, or `treecorr.plan` / `.part` / `.gather`."""
        return f"{self.stage}{SEPARATOR}{self.mode}" if self.mode else self.stage


def step_id(stage: str, mode: str | None = None) -> str:
    """The id of a stage's step (and of its tool), `mode` being one of SPLIT_MODES for a split stage."""
    return Step(stage, mode).id


def stage_steps(stage: str, split: bool) -> list[str]:
    """The ids of the steps that run a stage: one, or a split stage's plan, part and gather."""
    return [step_id(stage, mode) for mode in (SPLIT_MODES if split else (None,))]


def parse_step(step: str) -> Step:
    """The stage and split mode of a step id: the inverse of `step_id`."""
    stage, _, mode = step.partition(SEPARATOR)
    return Step(stage, mode or None)


def stage_input_id(stage: str, name: str) -> str:
    """The workflow input of one stage's code, config file or parameter: `<stage>.<name>`."""
    return f"{stage}{SEPARATOR}{name}"


def log_output_id(stage: str, stream: str, parts: bool = False) -> str:
    """The workflow output of a stage's stdout or stderr (`<stage>.stdout`), or of its parts' (`<stage>.parts.stdout`)."""
    return f"{stage}{SEPARATOR}parts{SEPARATOR}{stream}" if parts else f"{stage}{SEPARATOR}{stream}"


def is_log_output(output_id: str) -> bool:
    """Whether a workflow output is a stage's stdout or stderr, not a product."""
    return output_id.rpartition(SEPARATOR)[2] in LOG_STREAMS and SEPARATOR in output_id


def output_file_name(tag: str, kind: FileType) -> str:
    """The file name of a tag's file: `<tag>.<suffix>`, as the prototype named them."""
    return f"{tag}.{kind.suffix}"


def log_file_stem(stage: str, mode: str | None = None, part: str | None = None) -> str:
    """The name, less its ending, of a tool's log files: `<step id>`, or `<stage>-<part>` for one
    part of a split stage, so that the logs of a scattered step do not collide."""
    return f"{stage}-{part}" if part is not None else step_id(stage, mode)


def part_of_log_file(stage: str, stem: str) -> str | None:
    """The part of `stage` whose log file is named `stem`.out|err (see `log_file_stem`), or None."""
    return stem[len(stage) + 1:] if stem.startswith(stage + "-") else None
