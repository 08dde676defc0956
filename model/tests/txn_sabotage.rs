//! Negative controls of `tests/stateright_txn.rs` (`--features failpoints`): each test plants a
//! bug in the optimistic transaction's conflict check with a `fail` failpoint and passes only if
//! the stateright search over two incrementing clients (the model: `txn_search/mod.rs`) finds a
//! lost increment or a non-serializable history; the same search without a failpoint must pass.
//!
//! | failpoint | planted bug | caught by |
//! |---|---|---|
//! | `txn::skip_conflict_check` | the commit of an optimistic transaction skips the conflict check | two clients read the same counter, both commit: one increment lost, the second read is not what the first wrote |
//! | `txn::stale_view` | the conflict check reads at the transaction's own snapshot, not the newest revision (so it never sees a newer write) | the same |
//!
//! The fail registry is process-global: every test holds a `fail::FailScenario` (whose `setup`
//! takes the crate's global scenario lock and clears every failpoint), so the tests of this binary
//! run one at a time.
//!
//! `cargo test -p kvstore-model --features failpoints --test txn_sabotage`

#[allow(
    dead_code,
    reason = "shared with another test binary, which uses other workloads"
)]
mod txn_search;

use txn_search::{
    NO_LOST_INCREMENT, NO_VIOLATION, Report, SAME_KEY, SERIALIZABLE, Search, TWO_KEYS, Workload,
    bfs,
};

/// Deep enough for both clients to begin, read and commit (the initial state is depth 1).
const DEPTH: usize = 8;

/// The search every control runs, with crashes, with `failpoint` configured to return (if any).
fn run(workload: Workload, failpoint: Option<&str>) -> Report {
    let scenario = fail::FailScenario::setup();
    if let Some(name) = failpoint {
        fail::cfg(name, "return").unwrap_or_else(|e| panic!("fail::cfg({name}): {e}"));
    }
    let report = bfs(Search::new(workload), DEPTH);
    scenario.teardown();
    eprintln!(
        "[txn sabotage {failpoint:?}, {}] {} states, {} unique, max depth {}, {:.1}s",
        workload.name,
        report.states,
        report.unique,
        report.max_depth,
        report.elapsed.as_secs_f64()
    );
    report
}

/// Panics unless the search with `failpoint` finds a lost increment or a non-serializable
/// history, on every workload.
fn caught(failpoint: &str) {
    for workload in [SAME_KEY, TWO_KEYS] {
        let report = run(workload, Some(failpoint));
        let found: Vec<_> = [NO_LOST_INCREMENT, SERIALIZABLE]
            .into_iter()
            .filter_map(|p| report.discovery(p).map(|path| (p, path)))
            .collect();
        assert!(
            !found.is_empty(),
            "{failpoint} on {}: {} states explored and neither a lost increment nor a \
             non-serializable history found",
            workload.name,
            report.unique
        );
        for (property, path) in found {
            eprintln!("  `{property}` violated by {path:?}");
        }
    }
}

#[test]
fn a_skipped_conflict_check_is_caught() {
    caught("txn::skip_conflict_check");
}

#[test]
fn a_conflict_check_on_a_stale_view_is_caught() {
    caught("txn::stale_view");
}

#[test]
fn without_a_failpoint_the_same_search_passes() {
    for workload in [SAME_KEY, TWO_KEYS] {
        let report = run(workload, None);
        for property in [NO_VIOLATION, NO_LOST_INCREMENT, SERIALIZABLE] {
            if let Some(path) = report.discovery(property) {
                panic!("`{property}` violated without a failpoint by {path:?}");
            }
        }
    }
}
