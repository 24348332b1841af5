#!/usr/bin/env bash
# Installs Schemathesis (PyPI), pinned, into a virtualenv under the target dir once, and prints
# the path of its `st` command. tests/tests/openapi.rs runs it against a real node.
#   scripts/schemathesis.sh            install if missing, print the path
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.32.5
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
venv="$target_dir/schemathesis-$version"
if [ ! -x "$venv/bin/st" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo "python3 with venv is needed; installing it (Debian)" >&2
        apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv >&2
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
fi
echo "$venv/bin/st"
