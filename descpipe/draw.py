"""Draw a pipeline: stages as boxes, the files they pass as ellipses (Graphviz DOT, SVG, PNG)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .errors import UserError
from .files import write_files
from .pipeline import Pipeline

FORMATS = ("dot", "svg", "png")


def to_dot(pipeline: Pipeline) -> str:
    """The pipeline as Graphviz DOT text: overall inputs, stages, and every file between them."""
    def quote(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid DOT string, escapes included

    lines = [f"digraph {quote(pipeline.name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica"];']
    def file_label(tag: str, kind_name: str) -> str:
        return quote(f"{tag}\n({kind_name})")

    for tag, kind in pipeline.input_types.items():
        lines.append(f"  {quote('file:' + tag)} [label={file_label(tag, kind.name)}, "
                     "shape=note, style=filled, fillcolor=lightyellow];")
    for stage in pipeline.stages:
        lines.append(f"  {quote('stage:' + stage.name)} [label={quote(stage.name)}, shape=box, "
                     "style=\"rounded,filled\", fillcolor=lightblue];")
        for tag, kind in stage.spec.outputs.items():
            final = tag in pipeline.final
            lines.append(f"  {quote('file:' + tag)} [label={file_label(tag, kind.name)}, shape=ellipse"
                         + (", peripheries=2" if final else "") + "];")
            lines.append(f"  {quote('stage:' + stage.name)} -> {quote('file:' + tag)};")
        for tag in stage.spec.inputs:
            lines.append(f"  {quote('file:' + tag)} -> {quote('stage:' + stage.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(pipeline: Pipeline, path: Path) -> None:
    """Write the drawing to `path`; its ending picks the format (.dot, .svg or .png)."""
    kind = path.suffix.lstrip(".").lower()
    if kind not in FORMATS:
        raise UserError(f"cannot draw to {path}: the file name must end in .dot, .svg or .png")
    text = to_dot(pipeline)
    if kind == "dot":
        write_files({path: text})
        return
    dot = shutil.which("dot")
    if dot is None:
        raise UserError(f"drawing {path.name} needs Graphviz's `dot` program: install it "
                        "(apt-get install graphviz) or write a .dot file instead")
    # dot draws to its standard output; descpipe writes the file, with the checks every file gets.
    result = subprocess.run([dot, f"-T{kind}"], input=text.encode(), capture_output=True)
    if result.returncode:
        raise UserError(f"Graphviz failed to draw {path}: {' '.join(result.stderr.decode(errors='replace').split())}")
    write_files({path: result.stdout})
