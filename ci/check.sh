#!/usr/bin/env bash
# What CI checks, in order: formatting, lints, the test suite (the README's test command), the
# benchmark regression check (instruction counts, ci/bench-check.sh), and a short fuzz smoke over
# every cargo-fuzz target. Budget: under 40 minutes on 2 cores (tests run under cargo-nextest, which
# keeps both cores busy across test binaries; .config/nextest.toml ends a test hung for 20 min).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Tests that would skip a check when a tool is missing on a developer's machine fail instead.
export CI="${CI:-true}"
# Disk: a CI machine may have little of it (a run died when the fuzz build's linker hit a full disk).
# A clean clone builds once, so the incremental cache (11 GB) is waste, and line tables are enough
# debug information for a test's backtrace (the debug build falls from 13 GB to a few).
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

step() { printf '\n==> %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "tools: protoc (impl/server's build), etcd, etcdctl 3.4 and curl (its tests' clients and oracle), strace (the read-only open test), openssl (the JWT test's keys)"
if ! command -v protoc >/dev/null || ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null \
    || ! command -v curl >/dev/null || ! command -v strace >/dev/null || ! command -v openssl >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y protobuf-compiler etcd-server etcd-client curl strace openssl
fi
df -h . | tail -1
protoc --version
etcd --version
etcdctl version

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken intra-doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "tests (the README's test command): cargo nextest, then the doc tests nextest does not run"
cargo nextest run --workspace --locked
cargo test --workspace --doc --locked

step "failpoint tests (feature failpoints; the fail registry is process-global, own test binary)"
cargo nextest run -p kvstore --features failpoints --test db_failpoints --locked

step "failpoint sabotage: engine-level negative controls (feature failpoints of kvstore-model)"
cargo clippy -p kvstore-model --features failpoints --all-targets --locked -- -D warnings
cargo nextest run -p kvstore-model --features failpoints --locked --test failpoint_sabotage \
    --test txn_sabotage --test lease_sabotage --test index_sabotage

step "failpoint sabotage: the server's crash and cluster tests' negative controls (feature failpoints of kvstore-cli)"
cargo clippy -p kvstore-cli --features failpoints --all-targets --locked -- -D warnings
cargo nextest run -p kvstore-cli --features failpoints --test serve_crash_sabotage \
    --test serve_cluster_sabotage --locked

step "benchmark regression check (callgrind instruction count, bytes written)"
bash ci/bench-check.sh

if [ -d fuzz/fuzz_targets ]; then
    step "fuzz smoke"
    # The debug build is done with; the fuzz build's sanitized binaries need the room.
    df -h . | tail -1
    rm -rf target/debug
    bash ci/fuzz-smoke.sh
fi
step "done"
