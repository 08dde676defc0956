//! stateright over leases, commits, expiries and a watcher's resume, with crashes, on the real
//! engine (the search: `tests/lease_search/`). Every path's recoveries, reads, lease tables and
//! watch deliveries must match the model; an expiry deleting a key, a crash inside an expiry and
//! a watch checked after a crash all happen. `KVSTORE_CAMPAIGN=deep` goes one step deeper.
//! Planted bugs it must find: `tests/lease_sabotage.rs`.

use std::time::Instant;

use kvstore::Durability;
use kvstore_model::{Budget, Setup};
use stateright::{Checker, Model};

mod lease_search;

use lease_search::Search;

#[test]
fn bfs_over_leases_expiries_watches_and_crashes() {
    let started = Instant::now();
    let budget = Budget::from_env();
    let depth = budget.pick(7, 8);
    let checker = Search {
        setup: Setup::new(Durability::Sync),
    }
    .checker()
    .threads(2)
    .target_max_depth(depth)
    .spawn_bfs()
    .join();
    eprintln!(
        "[stateright leases] depth {depth}: {} states, {} unique, {:.1}s (budget {budget:?})",
        checker.state_count(),
        checker.unique_state_count(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = checker.discovery(lease_search::ORACLE_PROPERTY) {
        panic!("violation: {:?}", path.into_actions());
    }
    checker.assert_properties();
}
