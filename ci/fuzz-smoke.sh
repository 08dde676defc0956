#!/usr/bin/env bash
# Fuzz smoke: builds every cargo-fuzz target, seeds corpora from spec/vectors, and runs each target
# for FUZZ_SECONDS (default 30), two at a time (the CI box has 2 cores). Any crash fails the step;
# libFuzzer leaves the reproducer in fuzz/artifacts/<target>/ (keep it as a regression vector).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
TARGETS=(wal_decode sst_decode manifest_decode varint structured lease_payload export_decode backup_meta_decode
    raft_record_decode raft_peer_decode)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

bash fuzz/seed-corpus.sh
mkdir -p fuzz/artifacts
(cd fuzz && cargo +nightly fuzz build)

run() {
    local t=$1 rc=0 log="fuzz/artifacts/smoke-$t.log"
    (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb=2048 -print_final_stats=1) > "$log" 2>&1 || rc=$?
    grep -E '^stat::number_of_executed_units|^Done' "$log" | sed "s/^/$t: /" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz-smoke: $t FAILED (rc $rc); log:" >&2
        tail -40 "$log" >&2
    fi
    return $rc
}

status=0
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
    pids=()
    for t in "${TARGETS[@]:i:2}"; do
        run "$t" & pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || status=1
    done
done
exit $status
