//! Crash-point campaigns of the key index (`spec/SEMANTICS.md`, "Key index"): a crash after every
//! I/O op of a workload maintaining the index (in a syncing and in the buffered mode, where the
//! main database loses its unsynced tail), and of an open that catches a stale index up from the
//! history or rebuilds it, must leave a disk whose searches answer exactly as scans (see
//! `index_campaign`). `index_sabotage.rs` (feature `failpoints`) plants bugs the same campaign
//! must catch. Deeper: `KVSTORE_CAMPAIGN=deep`.

mod index_campaign;

use std::time::Instant;

use index_campaign::{behind_image, campaign};
use kvstore::Durability;
use kvstore_model::Budget;

/// Rounds of the maintenance workload: 8 under the CI budget, 150 under `KVSTORE_CAMPAIGN=deep`.
fn rounds() -> u32 {
    Budget::from_env().pick(8, 150)
}

#[test]
fn a_crash_anywhere_in_index_maintenance_leaves_searches_equal_to_scans() {
    for (seed, durability) in [
        (0x1d_0001, Durability::Sync),
        (0x1d_0002, Durability::Buffered),
    ] {
        let started = Instant::now();
        let points = campaign(seed, durability, None, rounds()).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "[index crash points] {durability:?}: {points} crash points checked, {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn a_crash_anywhere_in_a_catch_up_or_a_rebuild_leaves_searches_equal_to_scans() {
    for (seed, compact, what) in [(0x1d_0003, false, "catch-up"), (0x1d_0004, true, "rebuild")] {
        let started = Instant::now();
        let image = behind_image(seed, compact);
        let points = campaign(seed, Durability::Sync, Some(&image), 2)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!(
            "[index crash points] {what}: {points} crash points checked, {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}
