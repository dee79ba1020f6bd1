#!/usr/bin/env bash
# Install what descpipe, its example and its tests need on a fresh Debian machine (run as root).
# Safe to run again: every step is skipped or quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Graphviz draws pipelines (`descpipe graph -o dag.svg`).
if ! command -v dot >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
fi

# Docker (started here), Podman and debootstrap, for the stage images and container runs.
bash scripts/containers.sh

# descpipe itself, the example's science libraries, the test runner, and for --provenance runcrate
# (with --no-deps: it pins cwl-utils==0.40, which cwltool refuses; it works with cwltool's).
python3 -m pip install -q --disable-pip-version-check -e '.[science,test,provenance]'
python3 -m pip install -q --disable-pip-version-check --no-deps runcrate==0.6.2

# A one-node SLURM cluster (and MPICH with mpi4py) for Toil runs and the tests marked `slurm`.
bash scripts/slurm.sh
