#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, scenario, and black-box tests with
# real sapix-agent processes on loopback, then a short run of every fuzz target. This is the
# README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the agent binary the black-box tests start"
cargo build --locked -p sapix-server --bin sapix-agent

step "cargo test (workspace)"
cargo test --workspace --locked

# A short run of every fuzz target from its seed corpus, so a parser regression fails here.
fuzz_secs=${SAPIX_FUZZ_SECS:-15}
if [ "$fuzz_secs" != 0 ]; then
    step "fuzz smoke run (${fuzz_secs}s per target)"
    scripts/fuzz.sh "$fuzz_secs"
fi
