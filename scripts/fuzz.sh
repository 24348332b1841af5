#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and fuzzes each for a while, starting from its
# checked-in seed corpus (copied to a scratch directory, so runs never add files to git).
# Fails on the first crash, panic, timeout or memory blow-up and says how to reproduce it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    default: 10 s, every target
#
# Environment: FUZZ_SANITIZER (address | none, default address), FUZZ_KEEP_CORPUS=DIR keeps
# the grown corpora under DIR instead of deleting them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-10}
shift || true

# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes); this is how a stable
# toolchain accepts them.
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
triple=$(rustc -vV | sed -n 's/^host: //p')

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "==> cargo fuzz build (sanitizer: $sanitizer)"
cargo fuzz build -O -s "$sanitizer"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Longest input per target: room for a few blocks, past each parser's own size checks where
# that is cheap (the Codios answer is refused unread over 16 KiB).
max_len() {
    case "$1" in
        block_decode | block_structured) echo 4096 ;;
        codios_answer) echo 20000 ;;
        *) echo 16384 ;;
    esac
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p artifacts

summary=()
failed=()
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    if [ -d "corpus/$t" ]; then
        cp corpus/"$t"/* "$corpus"/
    fi
    log="$work/$t.log"
    echo "==> fuzzing $t for ${secs}s"
    status=0
    "target/$triple/release/$t" "$corpus" \
        -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    if [ "$status" -ne 0 ]; then
        echo "!! $t failed (exit $status); last lines of its log:"
        tail -40 "$log"
        echo "!! reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s $sanitizer $t <artifact above>)"
        failed+=("$t")
    fi
    summary+=("$(printf '%-18s %12s %10s %8s %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "$([ "$status" -eq 0 ] && echo ok || echo FAILED)")")
    if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$t"
        cp "$corpus"/* "$FUZZ_KEEP_CORPUS/$t"/
    fi
done

echo
printf '%-18s %12s %10s %8s %s\n' target executions exec/s cov result
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found failures in: ${failed[*]}"
    exit 1
fi
