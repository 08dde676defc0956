#!/usr/bin/env bash
# Measures the fixed workload of the regression check and prints its figures as `name value` lines
# on stdout: `instructions` (callgrind's total Ir for the whole run of the `workcount` binary) and
# the binary's own lines (`vfs_written_bytes`, `write_amp_milli`, ...). Used by bench-check.sh and
# bench-update-baseline.sh. Deterministic: SimVfs, inline background work, a fixed clock and seed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v valgrind >/dev/null; then
    echo "bench: valgrind is not installed (apt-get install -y valgrind)" >&2
    exit 2
fi

cargo build --release --locked -q -p kvstore-benches --bin workcount >&2
out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out_dir/callgrind.out" \
    "${CARGO_TARGET_DIR:-target}/release/workcount" >"$out_dir/figures.txt" 2>"$out_dir/valgrind.log" || {
    cat "$out_dir/valgrind.log" >&2
    exit 2
}
instructions="$(awk '/^(summary|totals):/ { print $2; exit }' "$out_dir/callgrind.out")"
[ -n "$instructions" ] || { echo "bench: no instruction total in callgrind output" >&2; exit 2; }
echo "instructions $instructions"
cat "$out_dir/figures.txt"
