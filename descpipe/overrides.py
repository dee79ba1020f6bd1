"""`descpipe run --set KEY=VALUE`: one run's changes to the pipeline file's values, checked as the
file's are.

`STAGE.PARAM=VALUE` sets a stage's parameter, `global.PARAM=VALUE` the parameter of that name of
every stage that has one, and `runtime.KEY=VALUE` a run setting (see run_config.py). VALUE is
read as YAML, as it would be in the file: `3`, `0.5`, `true`, `[0.2, 1.2]`, `Z_MEAN`.
Each mistake is one UserError naming the `--set` that made it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .errors import UserError
from .pipeline import Pipeline
from .run_config import SETTINGS, Origin, Settings, read_settings

OPTION = "--set"


def parse(text: str) -> tuple[str, str, Any]:
    """(`runtime`, `global` or a stage, the parameter or setting, the value) of `SCOPE.NAME=VALUE`."""
    key, equals, value_text = text.partition("=")
    scope, dot, name = key.partition(".")
    if not (equals and dot and scope and name):
        raise UserError(f"{OPTION} {text!r}: write STAGE.PARAM=VALUE, global.PARAM=VALUE or runtime.KEY=VALUE")
    try:
        value = YAML(typ="safe", pure=True).load(value_text) if value_text.strip() else ""
    except YAMLError:
        raise UserError(f"{OPTION} {text}: {value_text!r} is not a value (write it as in the pipeline file; "
                        "quote a string such as 'a, b')") from None
    return scope, name, value


def apply(pipeline: Pipeline, texts: list[str]) -> tuple[Pipeline, Settings]:
    """The pipeline with each `--set` parameter in place, and the run settings the `--set`s give."""
    by_name = {stage.name: stage for stage in pipeline.stages}
    values: dict[str, dict[str, Any]] = {name: {} for name in by_name}
    settings: dict[str, Any] = {}
    for text in texts:
        scope, name, value = parse(text)
        if scope == "runtime":
            if name not in SETTINGS:
                raise UserError(f"{OPTION} {text}: no run setting {name!r} (known: {', '.join(SETTINGS)})")
            settings[name] = value
            continue
        if scope == "global":
            targets = [stage for stage in pipeline.stages if name in stage.spec.parameters]
            if not targets:
                raise UserError(f"{OPTION} {text}: no stage has a parameter {name!r}")
        elif scope in by_name:
            targets = [by_name[scope]]
            if name not in targets[0].spec.parameters:
                raise UserError(f"{OPTION} {text}: stage {scope!r} has no parameter {name!r} (its parameters: "
                                f"{', '.join(targets[0].spec.parameters) or 'none'})")
        else:
            raise UserError(f"{OPTION} {text}: no stage {scope!r} in this pipeline (stages: {', '.join(by_name)}; "
                            "or global.PARAM, runtime.KEY)")
        for stage in targets:
            try:
                values[stage.name][name] = stage.spec.parameters[name].coerce(value)
            except ValueError as e:
                raise UserError(f"{OPTION} {text}: parameter {name!r} of stage {stage.name!r}: {e}") from None
    stages = tuple(replace(stage, parameter_values={**stage.parameter_values, **values[stage.name]},
                           parameter_origins={**stage.parameter_origins, **dict.fromkeys(values[stage.name], OPTION)})
                   if values[stage.name] else stage for stage in pipeline.stages)
    layer = read_settings(settings, lambda key: Origin(option=f"{OPTION} runtime.{key}"))
    return replace(pipeline, stages=stages), layer
