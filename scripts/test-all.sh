#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, scenario, and black-box tests with
# real sapix-agent processes on loopback. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the agent binary the black-box tests start"
cargo build --locked -p sapix-server --bin sapix-agent

step "cargo test (workspace)"
cargo test --workspace --locked

step "madsim second opinion: the core nodes over madsim's network (cargo madsim-test)"
# Its own target dir and `--cfg madsim` come from the alias in .cargo/config.toml; an env
# RUSTFLAGS would replace that flag, so this step runs without one.
env -u RUSTFLAGS cargo madsim-test
