"""Stages whose work splits into independent parts, such as correlations per pair of bins.

A `SplitStage` says what its parts are (`parts()`), computes one (`run_part(part)`, writing
partial outputs) and assembles them (`gather(partials)`). Run whole, it does every part and
then gathers; split (`<stage>: {split: true}` in the pipeline file), the exported CWL runs a
plan step, one scattered job per part, and a gather step, so Toil can spread the parts over
nodes. Both ways run the same code, so they give the same results.

This module runs inside stage containers: standard library only.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from .filetypes import file_type
from .stage import Stage

# What the plan step writes: CWL engines read a tool's outputs from it, no JavaScript needed.
CWL_OUTPUT = "cwl.output.json"


class SplitStage(Stage):
    """Base class of stages whose work splits into independent, named parts.

    Subclasses set `split_over` (what one part is, in words, e.g. "bin pair") and implement
    `parts()`, `run_part(part)` and `gather(partials)` instead of `run()`.
    """

    split_over: ClassVar[str] = "part"

    def parts(self) -> list[str]:
        """The names of the parts, in the order `gather` assembles them (from inputs and config)."""
        raise NotImplementedError

    def run_part(self, part: str) -> None:
        """Compute one part, writing each output to `get_output_path(tag)` (a partial file)."""
        raise NotImplementedError

    def gather(self, partials: dict[str, list[str]]) -> None:
        """Write the outputs from the partial files: `partials[tag]` lists them in `parts()` order."""
        raise NotImplementedError

    def run(self) -> None:
        """Every part, one after another, then gather: what the split pipeline does, in one job."""
        parts = self.parts()
        final = {tag: self.get_output_path(tag) for tag in self.outputs}
        partials: dict[str, list[str]] = {tag: [] for tag in self.outputs}
        with tempfile.TemporaryDirectory(prefix="descpipe-parts-") as scratch:
            for index, part in enumerate(parts):
                for tag in self.outputs:
                    self._paths[tag] = str(Path(scratch) / f"{index}-{tag}.{file_type(self.outputs[tag]).suffix}")
                    partials[tag].append(self._paths[tag])
                self.run_part(part)
            self._paths.update(final)
            self.gather(partials)

    @classmethod
    def _argument_parser(cls) -> argparse.ArgumentParser:
        parser = super()._argument_parser()
        modes = parser.add_mutually_exclusive_group()
        modes.add_argument("--plan", action="store_true",
                           help=f"write the list of parts ({cls.split_over}s) to {CWL_OUTPUT}")
        modes.add_argument("--part", metavar="PART", help=f"compute one {cls.split_over} only")
        modes.add_argument("--gather", action="store_true", help="assemble the outputs from partial files")
        for tag in cls.outputs:
            parser.add_argument(f"--{tag}-parts", dest=f"{tag}-parts", nargs="+", metavar="PATH",
                                help=f"partial {tag} files, in the order of the parts (with --gather)")
        return parser

    def _execute(self, args: dict[str, Any]) -> None:
        if args["plan"]:
            Path(CWL_OUTPUT).write_text(json.dumps({"parts": self.parts()}) + "\n", encoding="utf-8")
        elif args["part"] is not None:
            self.run_part(args["part"])
        elif args["gather"]:
            self.gather({tag: args[f"{tag}-parts"] or [] for tag in self.outputs})
        else:
            self.run()

    def _produces_outputs(self, args: dict[str, Any]) -> bool:
        return not args["plan"]
