#!/usr/bin/env bash
# Builds the container image sapixdb/agent:latest from this checkout, without pulling anything:
#
#   1. cargo build --release --locked -p sapix-server --bin sapix-agent
#   2. assemble a build context in a temporary directory: the binary (debug info stripped),
#      exactly the shared libraries `ldd` lists for it plus the dynamic loader, docker/etc/*,
#      and empty /data/{strand,graph,blobs} for the agent's user (see docker/Dockerfile)
#   3. docker build -t sapixdb/agent:latest -f docker/Dockerfile <context>   (FROM scratch)
#   4. smoke test: start the image, wait for its "listening" line, stop it
#
# Idempotent: re-running rebuilds only what changed (cargo and docker both cache) and removes
# the image it replaced if nothing uses it. Any failure stops the script with a message.
#
# Environment:
#   SAPIX_IMAGE=name:tag     image to build (default sapixdb/agent:latest, the spec's name)
#   SAPIX_IMAGE_SMOKE=0      skip the smoke test
#   SAPIX_IMAGE_BIN=path     package this already built sapix-agent instead of building the
#                            release one (the test command passes its debug build, to save a
#                            second full compile; images for use come from the release build)
#   CARGO_TARGET_DIR         honoured, as cargo does
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SAPIX_IMAGE:-sapixdb/agent:latest}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${SAPIX_IMAGE_BIN:-$TARGET_DIR/release/sapix-agent}

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'docker-image.sh: error: %s\n' "$*" >&2
    exit 1
}

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed)"
command -v ldd >/dev/null || die "ldd is needed to find the binary's shared libraries"

if [ -n "${SAPIX_IMAGE_BIN:-}" ]; then
    step "packaging the given binary $BIN (SAPIX_IMAGE_BIN)"
    [ -x "$BIN" ] || die "SAPIX_IMAGE_BIN=$BIN is not an executable file"
else
    step "cargo build --release --locked -p sapix-server --bin sapix-agent"
    cargo build --release --locked -p sapix-server --bin sapix-agent
    [ -x "$BIN" ] || die "cargo did not produce $BIN"
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/sapix-image.XXXXXX")
smoke=""
cleanup() {
    rm -rf "$ctx"
    if [ -n "$smoke" ]; then docker rm -f "$smoke" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "assemble the build context in $ctx"
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$ctx/data/strand" "$ctx/data/graph" "$ctx/data/blobs"
cp "$BIN" "$root/usr/local/bin/sapix-agent"
# The release profile keeps line tables (debug = 1) for local backtraces; the image does not
# need them. Symbols stay, so panics still name functions.
if command -v objcopy >/dev/null; then
    objcopy --strip-debug "$root/usr/local/bin/sapix-agent"
fi
chmod 0755 "$root/usr/local/bin/sapix-agent"
printf '  %-45s %s\n' /usr/local/bin/sapix-agent "$(du -h "$root/usr/local/bin/sapix-agent" | cut -f1)"

# Every line of ldd naming a file: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
# the loader "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file. Each is copied to
# the path the binary and loader look for it under, dereferencing symlinks.
ldd_out=$(ldd "$BIN") || die "ldd $BIN failed: $ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then
    die "the binary has unresolved libraries:"$'\n'"$ldd_out"
fi
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
[ -n "$libs" ] || die "ldd listed no libraries for $BIN (a static binary needs no context change, but this one is expected to be dynamic):"$'\n'"$ldd_out"
interp=$(readelf -p .interp "$BIN" 2>/dev/null | sed -n 's/.*\]  *\(\/.*\)$/\1/p' | head -n1 || true)
if [ -n "$interp" ] && ! grep -qxF "$interp" <<<"$libs"; then
    libs=$(printf '%s\n%s\n' "$libs" "$interp" | sort -u)
fi
while IFS= read -r lib; do
    [ -e "$lib" ] || die "library $lib listed by ldd does not exist"
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
    printf '  %-45s %s\n' "$lib" "$(du -h "$root$lib" | cut -f1)"
done <<<"$libs"
cp docker/etc/passwd docker/etc/group docker/etc/nsswitch.conf "$root/etc/"

step "docker build -t $IMAGE"
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
docker build \
    --label "org.opencontainers.image.title=sapix-agent" \
    --label "org.opencontainers.image.version=${version:-unknown}" \
    --label "org.opencontainers.image.revision=$revision" \
    -t "$IMAGE" -f docker/Dockerfile "$ctx"
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    # The previous build is now untagged; drop it unless a container still uses it.
    if docker rmi "$old_id" >/dev/null 2>&1; then
        echo "removed the image this build replaced ($old_id)"
    fi
fi

if [ "${SAPIX_IMAGE_SMOKE:-1}" != 0 ]; then
    step "smoke test: the image starts and listens"
    name="sapix-image-smoke-$$"
    smoke=$name
    docker run -d --name "$name" --read-only \
        -e SAPIX_AGENT_ID=smoke -e SAPIX_DATA_DIR=/tmp/sapix --tmpfs /tmp:uid=10001,gid=10001 \
        "$IMAGE" >/dev/null || die "docker run $IMAGE failed"
    ok=0
    for _ in $(seq 1 100); do
        if docker logs "$name" 2>/dev/null | grep -q '^sapix-agent listening on http://0.0.0.0:7475$'; then
            ok=1
            break
        fi
        if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
            break
        fi
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        docker logs "$name" >&2 2>&1 || true
        die "the image did not start listening (its logs are above)"
    fi
    docker stop -t 10 "$name" >/dev/null
    code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || { docker logs "$name" >&2 2>&1 || true; die "the agent exited with $code on SIGTERM"; }
    docker rm "$name" >/dev/null
    smoke=""
    echo "started as $(docker image inspect -f '{{.Config.User}}' "$IMAGE"), printed its listening line, exited 0 on SIGTERM"
fi

step "built $IMAGE"
docker image ls "$IMAGE"
