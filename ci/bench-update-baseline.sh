#!/usr/bin/env bash
# Rewrites benches/baseline/workcount.txt with the figures of the current tree, on purpose: run it
# when a change is meant to cost more (or after a toolchain/dependency bump), and commit the new
# baseline with the change that explains it. Idempotent; takes about 30 s (one callgrind run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

figures="$(bash ci/bench-measure.sh)"
{
    echo "# Baseline of ci/bench-check.sh: the workcount workload (benches/src/workcount.rs)."
    echo "# Written by ci/bench-update-baseline.sh; $(rustc --version)."
    echo "$figures"
} >benches/baseline/workcount.txt
cat benches/baseline/workcount.txt
