#!/usr/bin/env bash
# Install, configure and start a one-node SLURM cluster on this machine (run as root), for
# `descpipe run --engine toil --batch-system slurm` and the tests marked `slurm`; also MPICH and
# mpi4py for MPI stages. Safe to run again: what is installed, written or running is left as is.
# Fails loudly when the node does not come up idle.
set -euo pipefail

# Installs only what is missing, so a machine that has it all needs no package index.
missing=()
for program in slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client munged:munge mpirun:mpich mpicc:libmpich-dev; do
    command -v "${program%%:*}" >/dev/null || missing+=("${program#*:}")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge mpich libmpich-dev >/dev/null
fi
# mpi4py for the Python that runs the stages (`python3` on PATH), built from source against
# Debian's MPICH (about 3 minutes): PyPI's binary wheel looks for libmpi.so.12, which Debian names
# libmpich.so.12.
python3 -c 'from mpi4py import MPI' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-binary=mpi4py mpi4py

# One node on loopback, no accounting (nothing to query but `scontrol`), cores and memory as
# the node reports them so that jobs asking for more are refused rather than left pending.
cpus=$(nproc)
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf.new <<EOF
# Written by descpipe's scripts/slurm.sh: one node on 127.0.0.1.
ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=sched_interval=1
# Let finished jobs stay visible to \`scontrol show job\` for a while.
MinJobAge=600
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
if cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
    rm /etc/slurm/slurm.conf.new
else
    mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
    changed=1
fi

# munge needs its key (the package makes one) and its socket folder.
[ -s /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create
mkdir -p /run/munge && chown munge:munge /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
if [ -n "${changed:-}" ] && pgrep -x slurmctld >/dev/null; then
    scontrol reconfigure   # running daemons read the new slurm.conf
fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd -N localhost

for _ in $(seq 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null || true)
    if [ "$state" = idle ] || [ "$state" = mixed ] || [ "$state" = allocated ]; then
        echo "slurm.sh: SLURM is up: node localhost is $state ($cpus CPUs, $memory_mb MB)"
        exit 0
    fi
    sleep 1
done
echo "slurm.sh: SLURM did not come up: sinfo says '${state:-nothing}'; see /var/log/slurm/" >&2
exit 1
