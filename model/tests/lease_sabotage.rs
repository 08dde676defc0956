//! The lease search (`tests/lease_search/`) with a bug planted in the engine (`--features
//! failpoints`): each must be found, with the path that shows it.
//!
//! | failpoint | planted bug |
//! |---|---|
//! | `lease::revoke_keeps_keys` | an expiry commits without deleting its lease's keys |
//! | `watch::ignore_durability` | a watcher gets a buffered commit's event before its sync, so a crash takes back an event it saw |
//!
//! `cargo test -p kvstore-model --features failpoints --test lease_sabotage`

use kvstore::Durability;
use kvstore_model::Setup;
use stateright::{Checker, Model};

mod lease_search;

use lease_search::{ORACLE_PROPERTY, Search};

fn found(failpoint: &str) {
    let scenario = fail::FailScenario::setup();
    fail::cfg(failpoint, "return").unwrap_or_else(|e| panic!("fail::cfg({failpoint}): {e}"));
    let checker = Search {
        setup: Setup::new(Durability::Sync),
    }
    .checker()
    .threads(2)
    .target_max_depth(6)
    .spawn_bfs()
    .join();
    scenario.teardown();
    let Some(path) = checker.discovery(ORACLE_PROPERTY) else {
        panic!(
            "the lease search explored {} states with {failpoint} and found no violation",
            checker.unique_state_count()
        );
    };
    eprintln!(
        "[lease sabotage {failpoint}] found: {:?}",
        path.into_actions()
    );
}

#[test]
fn an_expiry_keeping_its_keys_is_found() {
    found("lease::revoke_keeps_keys");
}

#[test]
fn a_watch_event_before_its_sync_is_found() {
    found("watch::ignore_durability");
}
