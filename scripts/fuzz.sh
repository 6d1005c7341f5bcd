#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each (default 60),
# starting from a temporary copy of its committed seed corpus (fuzz/corpus/<target>/) so the
# run does not grow the repository. Fails if a target crashes; the crashing input is kept in
# fuzz/artifacts/<target>/ and `cargo fuzz run <target> <file>` replays it.
#
#   scripts/fuzz.sh [SECONDS]
#
# Stable Rust only here: cargo-fuzz passes flags that need a nightly compiler, which
# RUSTC_BOOTSTRAP=1 unlocks on stable. Installs cargo-fuzz if it is missing. Sanitizer:
# none by default (the crate forbids unsafe code, and without one a target runs several
# times faster); FUZZ_SANITIZER=address to change it. Debug assertions (overflow checks)
# are on, as cargo-fuzz builds by default.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2 && exit 2 ;;
esac
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    start=$SECONDS
    cargo install cargo-fuzz --locked
    echo "    installed in $((SECONDS - start)) s"
fi
cargo fuzz --version

echo "==> building the fuzz targets (sanitizer: $sanitizer)"
start=$SECONDS
cargo fuzz build -s "$sanitizer"
echo "    built in $((SECONDS - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
summary="$work/summary"
failed=()
for target in $(cargo fuzz list); do
    seeds="fuzz/corpus/$target"
    if ! compgen -G "$seeds/*" >/dev/null; then
        echo "no seed corpus in $seeds" >&2
        failed+=("$target (no seeds)")
        continue
    fi
    mkdir "$work/$target"
    cp "$seeds"/* "$work/$target/"
    echo "==> $target: ${secs} s from $(ls "$seeds" | wc -l) seeds"
    log="$work/$target.log"
    # The outer timeout only guards against a hung run; libFuzzer stops itself at max_total_time.
    status=0
    timeout "$((secs + 300))" cargo fuzz run -s "$sanitizer" "$target" "$work/$target" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" || true
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    corpus="$(ls "$work/$target" | wc -l)"
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log"
        failed+=("$target")
        result="FAILED (exit $status)"
    else
        result="ok"
    fi
    printf '%-14s %6s s %12s execs %8s exec/s %6s inputs in corpus  %s\n' \
        "$target" "$secs" "${runs:-?}" "${speed:-?}" "$corpus" "$result" >>"$summary"
done

echo
echo "==> fuzz summary"
cat "$summary" 2>/dev/null || true
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing passed: no crashes"
