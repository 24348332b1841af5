#!/usr/bin/env bash
# Prints the root key (the Bearer token for admin, mesh and write endpoints) of a node that
# was left without SAPIX_ROOT_KEY and derived it from the master seed into /data/root_key. Both
# nodes of one seed have the same key.
#
#   docker/root-key.sh [service]            # compose: primary (default) or replica-eu
#   docker/root-key.sh --container NAME     # a container started with `docker run --name NAME`
#   TOKEN=$(docker/root-key.sh primary)
#
# Run it where you ran `docker compose up` (it uses that directory's compose file and project;
# COMPOSE_FILE and COMPOSE_PROJECT_NAME are honoured as compose honours them). The image has no
# shell, so the file is copied out with `docker cp` (as a tar stream) rather than exec'd.
set -euo pipefail

if [ "${1:-}" = "--container" ]; then
    name=${2:?usage: docker/root-key.sh --container NAME}
    docker cp "$name:/data/root_key" - | tar -xO
    exit
fi
service=${1:-primary}

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    echo "root-key.sh: neither 'docker compose' nor 'docker-compose' is available" >&2
    exit 1
fi

# The compose file interpolates SAPIX_MASTER_SEED as mandatory; looking up a container id
# does not need its value.
cid=$(SAPIX_MASTER_SEED=${SAPIX_MASTER_SEED:-unused} "${compose[@]}" ps -q "$service")
if [ -z "$cid" ]; then
    echo "root-key.sh: no running container for service '$service' in this compose project" >&2
    exit 1
fi
docker cp "$cid:/data/root_key" - | tar -xO
