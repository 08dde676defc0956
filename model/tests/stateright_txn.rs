//! Exhaustive search with stateright over two clients running read-modify-write increments as
//! optimistic transactions on the real `Db` (begin, read at the snapshot, commit with the
//! conflict check, begin again after a conflict), with crashes at every I/O op of a commit under
//! two persistence models, each step on `SimVfs::from_image`: in every interleaving explored no
//! increment is lost and the committed history is serializable (the model: `txn_search/mod.rs`).
//! Flushes (and the compactions they make due) interleave, so reads and conflict checks also
//! find versions in tables. BFS to a bounded depth, two increments per client on one counter and
//! an overlapping two-key workload; `KVSTORE_CAMPAIGN=deep` goes deeper with three increments per
//! client and a longer two-key workload. The planted bugs it must catch: `tests/txn_sabotage.rs`
//! (feature `failpoints`).

#[allow(
    dead_code,
    reason = "shared with another test binary, which uses other workloads"
)]
mod txn_search;

use kvstore_model::Budget;
use txn_search::{
    NO_LOST_INCREMENT, NO_VIOLATION, Report, SAME_KEY_THRICE, SAME_KEY_TWICE, SERIALIZABLE,
    SOMETIMES, Search, TWO_KEYS, TWO_KEYS_LONGER, Workload, bfs,
};

/// The properties every explored state must keep.
const ALWAYS: [&str; 3] = [NO_VIOLATION, NO_LOST_INCREMENT, SERIALIZABLE];

/// Runs `workload` with crashes to `depth`, prints the counts, and requires every `always`
/// property kept, every `sometimes` one reached and at least `floor` unique states.
fn search(workload: Workload, depth: usize, floor: usize) {
    let budget = Budget::from_env();
    let report: Report = bfs(Search::new(workload), depth);
    eprintln!(
        "[stateright txn: {}] depth {depth}: {} states, {} unique, max depth {}, {:.1}s (budget \
         {budget:?})",
        workload.name,
        report.states,
        report.unique,
        report.max_depth,
        report.elapsed.as_secs_f64()
    );
    for property in ALWAYS {
        if let Some(path) = report.discovery(property) {
            panic!("`{property}` violated by {path:?}");
        }
    }
    for name in SOMETIMES {
        assert!(
            report.discovery(name).is_some(),
            "`{name}` was never reached: the search got shallow"
        );
    }
    assert!(
        report.unique >= floor,
        "only {} unique states explored, fewer than {floor}: the search got shallow",
        report.unique
    );
}

#[test]
fn bfs_two_clients_incrementing_one_counter() {
    let budget = Budget::from_env();
    search(
        budget.pick(SAME_KEY_TWICE, SAME_KEY_THRICE),
        budget.pick(24, 36),
        budget.pick(3_000, 18_000),
    );
}

#[test]
fn bfs_two_clients_incrementing_overlapping_keys() {
    let budget = Budget::from_env();
    search(
        budget.pick(TWO_KEYS, TWO_KEYS_LONGER),
        budget.pick(24, 36),
        budget.pick(1_000, 14_000),
    );
}
