"""How a pipeline runs: the engine, the container runtime and the batch system, as one typed value.

Three separate choices, as Parsl separates executors, providers and launchers:
- the **engine**, the CWL runner that schedules the steps (cwltool, Toil);
- the **container runtime** each stage runs in (none, Docker, Podman, Singularity);
- the **batch system** that gives Toil its machines (this one, SLURM, or another Toil knows).

Each setting is read from layers, the pipeline file's `runtime:` section first and the command
line last, each value checked as it is read (`read_settings`), then merged and checked together
(`run_config`): a combination that cannot work is refused before anything is exported or run,
naming the file and line (or the option) it came from. A new setting is one entry in SETTINGS.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

ENGINES = ("cwltool", "toil")
CONTAINER_RUNTIMES = ("none", "docker", "podman", "singularity")
SINGLE_MACHINE = "single_machine"
SLURM = "slurm"


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from: a line of the pipeline file, or a command-line option."""

    file: Path | None = None
    line: int | None = None
    option: str | None = None   # the command line's option that gave it, where not `--KEY`
    section: str = "runtime"    # the file's section that holds it (a sites file: `sites.NAME`)

    def error(self, message: str) -> UserError:
        """A UserError at this origin (a command-line value has no file to name)."""
        return UserError(message, self.file, self.line)

    def name(self, key: str) -> str:
        """The setting as the user wrote it: `KEY` in the file, `--KEY` or `--set runtime.KEY`."""
        return key if self.file else self.option or f"--{key}"

    def describe(self, key: str) -> str:
        """`runtime.KEY` of the file at FILE:LINE, or the command line's option."""
        if self.file is None:
            return self.name(key)
        return f"{self.section}.{key}" + (f" ({self.file}:{self.line})" if self.line else f" ({self.file})")


COMMAND_LINE = Origin()


@dataclass(frozen=True)
class Setting:
    """One setting's value and where it came from."""

    value: Any
    origin: Origin


Settings = dict[str, Setting]   # by the key as the pipeline file spells it


# --- Checking one value --------------------------------------------------------------------------

def _choice(known: tuple[str, ...], what: str) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if value not in known:
            raise ValueError(f"unknown {what} {value!r} in {{where}} (known: {', '.join(known)})")
        return value
    return check


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{{where}} must be true or false, got {value!r}")
    return value


def _count(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{{where}} must be a whole number of {key} (0 or more), got {value!r}")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{{where}} must be a string, got {value!r}")
    return value


def _batch_system(key: str, value: Any) -> str:
    name = _text(key, value)
    if name in (SINGLE_MACHINE, SLURM):
        return name
    # Only another name costs importing Toil (a second or more), to ask it what it knows.
    from toil.batchSystems.registry import get_batch_systems

    known = list(get_batch_systems())
    if name not in known:
        raise ValueError(f"unknown batch system {name!r} (Toil knows: {', '.join(known)})")
    return name


def _time(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f'{{where}} must be a string, got {value!r} (quote it: time: "2:00:00")')
    slurm_minutes(value)
    return value


@dataclass(frozen=True)
class SettingSpec:
    """What a setting accepts and which engine or batch system it belongs to."""

    check: Callable[[str, Any], Any]
    engine: str | None = None          # the one engine that understands it
    batch_system: str | None = None    # the one batch system it applies to
    in_file: bool = True               # settable in the pipeline file's runtime section


SETTINGS: dict[str, SettingSpec] = {
    # Named settings for where runs go (see sites.py), between the pipeline file's and the command line's.
    "site": SettingSpec(_text),
    "engine": SettingSpec(_choice(ENGINES, "engine")),
    "container": SettingSpec(_choice(CONTAINER_RUNTIMES, "container runtime")),
    "resume": SettingSpec(_flag),
    "provenance": SettingSpec(_flag, engine="cwltool"),
    "batch-system": SettingSpec(_batch_system, engine="toil"),
    "retries": SettingSpec(_count, engine="toil"),
    "partition": SettingSpec(_text, engine="toil", batch_system=SLURM),
    "time": SettingSpec(_time, engine="toil", batch_system=SLURM),
    "sbatch-args": SettingSpec(_text, engine="toil", batch_system=SLURM),
    # Finishing one failed run is an act, not a property of the pipeline: command line only.
    "restart": SettingSpec(_flag, engine="toil", in_file=False),
}
FILE_KEYS = tuple(key for key, spec in SETTINGS.items() if spec.in_file)


def read_settings(values: Mapping[str, Any], origin: Callable[[str], Origin]) -> Settings:
    """Check each value given (None: not given); `origin(key)` says where it came from.

    A wrong value is a UserError at its origin, such as `p.yaml:12: runtime.retries must be a whole
    number of retries (0 or more), got -1`.
    """
    settings: Settings = {}
    for key, value in values.items():
        if value is None:
            continue
        where = origin(key)
        try:
            checked = SETTINGS[key].check(key, value)
        except (TypeError, ValueError) as e:   # TypeError: not even the right kind of value
            name = f"{where.section}.{key}" if where.file else where.name(key)
            raise where.error(str(e).replace("{where}", name)) from None
        settings[key] = Setting(checked, where)
    return settings


def slurm_minutes(text: str) -> float:
    """Minutes in a SLURM time limit: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS,
    DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS (as sbatch --time reads them)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise ValueError(f"time limit {text!r} is not one SLURM reads: write [DAYS-]HOURS:MINUTES:SECONDS, "
                         "such as 2:00:00")
    days, first, second, third = (int(group) if group else None for group in match.groups())
    assert first is not None   # the pattern requires it
    if days is not None:   # DAYS-HOURS[:MINUTES[:SECONDS]]
        return days * 1440 + first * 60 + (second or 0) + (third or 0) / 60
    if third is not None:  # HOURS:MINUTES:SECONDS
        return first * 60 + (second or 0) + third / 60
    return first + (second or 0) / 60   # MINUTES[:SECONDS]


# --- The merged configuration ---------------------------------------------------------------------

@dataclass(frozen=True)
class BatchSystem:
    """Where Toil runs the stages' jobs: this machine, SLURM (with its job settings), or another."""

    name: str = SINGLE_MACHINE
    partition: str | None = None
    time: str | None = None            # one time limit for every job, instead of the stages' own
    sbatch_args: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything about how one run goes, checked: see the module's docstring."""

    engine: str = "cwltool"
    container: str = "none"
    batch_system: BatchSystem = field(default_factory=BatchSystem)
    retries: int | None = None         # None: the engine's default
    resume: bool = False               # reuse what an earlier run of this pipeline finished
    restart: bool = False              # finish Toil's unfinished run in its job store
    provenance: bool = False           # keep the engine's CWLProv research object, as an RO-Crate
    engine_options: tuple[str, ...] = ()   # passed to the engine as they are
    # The settings given, as given, and where each came from: `--engine`, `runtime.retries (p.yaml:12)`.
    given: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


def run_config(*layers: Settings, engine_options: tuple[str, ...] = ()) -> RunConfig:
    """Merge the layers (each later one wins: pipeline file, then command line) and check the result.

    Refused, naming where the value came from: a setting of one engine given to another (Toil's
    batch system with cwltool, --provenance with Toil), and a SLURM setting for another batch system.
    """
    merged: Settings = {}
    for layer in layers:
        merged.update(layer)
    values = {key: setting.value for key, setting in merged.items()}
    engine = values.get("engine", "cwltool")
    batch_system = values.get("batch-system", SINGLE_MACHINE)
    for key in merged:
        owner = SETTINGS[key].engine
        if owner not in (None, engine):
            foreign = [k for k in merged if SETTINGS[k].engine == owner]
            raise merged[key].origin.error(f"{_names(merged, foreign)} {_OTHER_ENGINE[owner](len(foreign))}")
    for key in merged:
        if SETTINGS[key].batch_system not in (None, batch_system):
            foreign = [k for k in merged if SETTINGS[k].batch_system == SLURM]
            verb = "is a SLURM setting" if len(foreign) == 1 else "are SLURM settings"
            raise merged[key].origin.error(f"{_names(merged, foreign)} {verb}, but Toil's batch system is "
                                           f"{batch_system}: run with --batch-system slurm (or set "
                                           "runtime.batch-system: slurm)")
    return RunConfig(
        engine=engine,
        container=values.get("container", "none"),
        batch_system=BatchSystem(batch_system, values.get("partition"), values.get("time"),
                                 values.get("sbatch-args")),
        retries=values.get("retries"),
        resume=values.get("resume", False),
        restart=values.get("restart", False),
        provenance=values.get("provenance", False),
        engine_options=engine_options,
        given=values,
        origins={key: setting.origin.describe(key) for key, setting in merged.items()},
    )


# What to say of settings that belong to an engine other than the one chosen, by that engine.
_OTHER_ENGINE: dict[str, Callable[[int], str]] = {
    "toil": lambda count: ("is a Toil setting" if count == 1 else "are Toil settings")
    + ": run with --engine toil (or set runtime.engine: toil)",
    "cwltool": lambda count: ("needs" if count == 1 else "need") + " cwltool: run with --engine cwltool "
    "(every run, Toil's too, writes its run record)",
}


def _names(merged: Settings, keys: list[str]) -> str:
    """The settings as the user gave them: `--retries` on the command line, `retries` in the file."""
    return ", ".join(merged[key].origin.name(key) for key in keys)
