#!/usr/bin/env bash
# Install and start what container runs need: Docker's engine, Podman and debootstrap (the base
# image is bootstrapped from Debian's packages, since no image registry is reachable here).
# Idempotent: quick when everything is installed and running. Run as root.
set -euo pipefail

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Podman's default ulimits need CAP_SYS_RESOURCE, which these machines lack.
if ! grep -qs '^default_ulimits' /etc/containers/containers.conf; then
    mkdir -p /etc/containers
    printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' \
        >> /etc/containers/containers.conf
fi

# dockerd without touching the host's firewall or bridges: containers run with --network none,
# and builds use --network host to reach the package registries.
if ! docker info >/dev/null 2>&1; then
    mkdir -p /var/log/descpipe
    nohup dockerd --storage-driver overlay2 --iptables=false --ip6tables=false --bridge=none \
        >/var/log/descpipe/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/descpipe/dockerd.log" >&2; exit 1; }
fi

# A private image registry on loopback, for `descpipe push`/`pull` and their tests.
if ! command -v docker-registry >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
if ! python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/v2/', timeout=2)" 2>/dev/null; then
    mkdir -p /etc/descpipe /var/lib/descpipe-registry /var/log/descpipe
    cat >/etc/descpipe/registry.yml <<'YAML'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/descpipe-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YAML
    nohup docker-registry serve /etc/descpipe/registry.yml >/var/log/descpipe/registry.log 2>&1 &
    for _ in $(seq 1 30); do
        python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/v2/', timeout=2)" 2>/dev/null && break
        sleep 1
    done
fi
