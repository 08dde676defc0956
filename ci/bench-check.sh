#!/usr/bin/env bash
# The benchmark regression check: counts work, not seconds. Wall-clock numbers on shared 2-core
# machines are noise; callgrind's instruction count for a fixed deterministic workload is not.
#
# Fails when
# - the instruction count rises more than THRESHOLD_PERCENT over benches/baseline/workcount.txt, or
# - the bytes written to the Vfs (hence bytes written per user byte) rise at all: they are exact.
#
# Why 3 %: callgrind counts the same binary on the same input to within 0.1 % (runs of
# workcount differ only by std's random HashMap seeds: 750,045,824 to 750,394,864 Ir seen). What moves
# the count without a code change is the toolchain and the locked dependencies (inlining and
# codegen changes move such counts by 0.5-2 %). The regressions worth stopping (an extra copy per
# get, a lost bloom filter, a quadratic merge) cost well over 3 % of this workload.
#
# To accept a change on purpose: bash ci/bench-update-baseline.sh, and commit the baseline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

THRESHOLD_PERCENT=3
baseline=benches/baseline/workcount.txt
[ -f "$baseline" ] || { echo "bench: no $baseline; run ci/bench-update-baseline.sh" >&2; exit 1; }

current="$(bash ci/bench-measure.sh)"
get() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
base_text="$(grep -v '^#' "$baseline")"

fail=0
for k in puts gets user_bytes; do
    if [ "$(get "$k" "$current")" != "$(get "$k" "$base_text")" ]; then
        echo "bench: the workload changed ($k $(get "$k" "$base_text") -> $(get "$k" "$current")): update the baseline" >&2
        fail=1
    fi
done

base_ir="$(get instructions "$base_text")"
ir="$(get instructions "$current")"
limit_ir=$((base_ir + base_ir * THRESHOLD_PERCENT / 100))
change="$(awk -v a="$ir" -v b="$base_ir" 'BEGIN { printf "%+.2f", (a - b) * 100 / b }')"
printf 'bench: instructions %s (baseline %s, %s%%, limit +%s%%)\n' "$ir" "$base_ir" "$change" "$THRESHOLD_PERCENT"
if [ "$ir" -gt "$limit_ir" ]; then
    echo "bench: FAIL: instruction count rose more than $THRESHOLD_PERCENT %" >&2
    fail=1
elif [ "$ir" -lt $((base_ir - base_ir * THRESHOLD_PERCENT / 100)) ]; then
    echo "bench: note: $change% fewer instructions; consider ci/bench-update-baseline.sh to lock it in"
fi

base_wb="$(get vfs_written_bytes "$base_text")"
wb="$(get vfs_written_bytes "$current")"
printf 'bench: bytes written per user byte %s (baseline %s; %s of %s user bytes)\n' \
    "$(awk -v w="$wb" -v u="$(get user_bytes "$current")" 'BEGIN { printf "%.4f", w / u }')" \
    "$(awk -v w="$base_wb" -v u="$(get user_bytes "$base_text")" 'BEGIN { printf "%.4f", w / u }')" \
    "$wb" "$(get user_bytes "$current")"
if [ "$wb" -gt "$base_wb" ]; then
    echo "bench: FAIL: bytes written rose ($base_wb -> $wb)" >&2
    fail=1
fi
exit "$fail"
