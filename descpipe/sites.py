"""Sites: named run settings for where runs go (`descpipe run --site NAME`, or `runtime.site`).

A site sets any run setting (engine, container runtime, batch system, partition, time, sbatch
arguments, retries; see run_config.SETTINGS), between the pipeline file's and the command line's:
pipeline file < site < command line. descpipe ships a few; users add their own, or replace a
shipped one, in a sites file, read in this order (a later one wins for a name):
`~/.config/descpipe/sites.yaml` (the user's), then `descpipe-sites.yaml` in the folder it is run from
(the project's). A sites file is `sites: {NAME: {doc: ..., KEY: VALUE, ...}}`.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .errors import UserError
from .run_config import FILE_KEYS, Origin, Settings, read_settings

PROJECT_FILE = "descpipe-sites.yaml"
SITE_KEYS = tuple(key for key in FILE_KEYS if key != "site")


def user_file() -> Path:
    """The user's sites file, where XDG puts configuration."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "descpipe" / "sites.yaml"


# Documented starting points. `local` and `slurm` are tested here; the two HPC centres' are not
# (no access from here): each names what a user must fill in.
SHIPPED: dict[str, dict[str, Any]] = {
    "local": {"doc": "this machine: cwltool, no container", "engine": "cwltool", "container": "none"},
    "slurm": {"doc": "a SLURM cluster from its login node: Toil submits each stage as a job",
              "engine": "toil", "batch-system": "slurm", "retries": 1},
    "nersc-perlmutter": {"doc": "NERSC Perlmutter CPU nodes from a login node (untested here): put your "
                                "project in --account, and run from $SCRATCH",
                         "engine": "toil", "batch-system": "slurm", "time": "2:00:00", "retries": 2,
                         "sbatch-args": "--constraint=cpu --qos=regular --account=YOUR_PROJECT"},
    "cc-in2p3": {"doc": "CC-IN2P3's SLURM cluster with Apptainer images (untested here): put your "
                        "group in --account",
                 "engine": "toil", "batch-system": "slurm", "partition": "htc", "time": "2:00:00",
                 "retries": 2, "container": "singularity", "sbatch-args": "--account=YOUR_GROUP"},
}


@dataclass(frozen=True)
class Site:
    """A site's settings, checked, and where it is defined."""

    name: str
    doc: str
    source: str              # `shipped with descpipe`, or the sites file
    settings: Settings


def known_sites() -> dict[str, Site]:
    """Every site: those descpipe ships, then the user's, then the project's (each replacing the same name)."""
    sites = {name: _site(name, dict(values), "shipped with descpipe", _shipped(name)) for name, values in SHIPPED.items()}
    for path in (user_file(), Path(PROJECT_FILE)):
        if path.is_file():
            sites.update(_read_sites_file(path))
    return sites


def site_settings(name: str, origin: Origin) -> Settings:
    """The settings of site `name`; a UserError at `origin` (where it was chosen) if there is no such site."""
    sites = known_sites()
    if name not in sites:
        raise origin.error(f"unknown site {name!r} (known: {', '.join(sites)}; add your own in {PROJECT_FILE} "
                           f"or {user_file()})")
    return sites[name].settings


def _read_sites_file(path: Path) -> dict[str, Site]:
    try:
        document = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as e:
        raise UserError(f"cannot read the sites file: {' '.join(str(e).split())}", path) from None
    if not isinstance(document, CommentedMap) or not isinstance(document.get("sites"), CommentedMap):
        raise UserError("a sites file is a mapping with a 'sites:' mapping of site names to settings", path, 1)
    sites = {}
    for name, values in document["sites"].items():
        line = document["sites"].lc.key(name)[0] + 1
        if not isinstance(name, str) or not isinstance(values, CommentedMap):
            raise UserError(f"site {name!r} must be a mapping of settings", path, line)
        for key in values:
            if key != "doc" and key not in SITE_KEYS:
                raise UserError(f"site {name!r}: unknown setting {key!r} (known: doc, {', '.join(SITE_KEYS)})",
                                path, values.lc.key(key)[0] + 1)
        sites[name] = _site(name, dict(values), str(path), _in_file(path, name, values))
    return sites


def _shipped(name: str) -> Callable[[str], Origin]:
    return lambda key: Origin(option=f"{key} of site {name}")


def _in_file(path: Path, name: str, values: CommentedMap) -> Callable[[str], Origin]:
    return lambda key: Origin(path, values.lc.key(key)[0] + 1, section=f"sites.{name}")


def _site(name: str, values: dict[str, Any], source: str, origin: Callable[[str], Origin]) -> Site:
    doc = str(values.pop("doc", ""))
    return Site(name, doc, source, read_settings(values, origin))


def describe_sites() -> str:
    """Every known site with its settings and where it is defined, for `descpipe sites`."""
    lines = []
    for site in known_sites().values():
        lines.append(f"{site.name}: {site.doc}" if site.doc else f"{site.name}:")
        lines.append(f"  from {site.source}")
        lines += [f"  {key}: {setting.value}" for key, setting in site.settings.items()]
    return "\n".join(lines)
