#!/usr/bin/env bash
# Makes `docker compose ...` (Compose v2 syntax, as the replication page writes it) work on a
# host that has only the standalone Compose v1 tool `docker-compose` (Debian bookworm's
# docker-compose 1.29 package, for one): installs a Docker CLI plugin named `compose` that runs
# `docker-compose` with the same arguments. docker-compose.replication.yml works with both.
#
#   docker/install-compose-shim.sh             # into ${DOCKER_CONFIG:-~/.docker}/cli-plugins
#   docker/install-compose-shim.sh DIR         # into DIR (e.g. /usr/local/lib/docker/cli-plugins)
#
# Does nothing if `docker compose` already works (a real v2 plugin is always preferred).
set -euo pipefail
dir=${1:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}

if docker compose version >/dev/null 2>&1; then
    echo "docker compose already works: $(docker compose version | head -n1); nothing to do"
    exit 0
fi
command -v docker-compose >/dev/null || {
    echo "install-compose-shim.sh: docker-compose (v1) is not installed either" >&2
    exit 1
}
mkdir -p "$dir"
cat >"$dir/docker-compose" <<'SHIM'
#!/bin/sh
# Docker CLI plugin shim: `docker compose ARGS` -> `docker-compose ARGS` (Compose v1).
# Installed by SapixDB's docker/install-compose-shim.sh; delete this file to remove it.
if [ "$1" = docker-cli-plugin-metadata ]; then
    printf '%s\n' '{"SchemaVersion":"0.1.0","Vendor":"SapixDB shim","Version":"v1-shim","ShortDescription":"runs docker-compose (v1)"}'
    exit 0
fi
[ "$1" = compose ] && shift
exec docker-compose "$@"
SHIM
chmod 0755 "$dir/docker-compose"
docker compose version >/dev/null 2>&1 || {
    echo "install-compose-shim.sh: installed $dir/docker-compose but 'docker compose' still fails" >&2
    exit 1
}
echo "installed $dir/docker-compose: 'docker compose' now runs $(docker-compose version --short 2>/dev/null || echo docker-compose)"
