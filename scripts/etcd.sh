#!/usr/bin/env bash
# Installs etcd (Debian's etcd-server) when missing, so the benchmark's short run in the test
# command also runs etcd side by side. Best effort: without apt or the package, the benchmark
# skips etcd and says so.
set -uo pipefail
if command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "etcd is not installed and apt-get is missing: the benchmark will skip etcd" >&2
    exit 0
fi
echo "installing etcd-server (Debian) for the benchmark's side-by-side runs" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; } >&2; then
    echo "etcd-server could not be installed: the benchmark will skip etcd" >&2
fi
exit 0
