//! Negative controls of the key index's crash campaign (`--features failpoints`): each test plants
//! one bug in the index with a `fail` failpoint and passes only if the campaign of
//! `index_crash.rs` (every crash point, every persistence model, searches compared with scans)
//! reports a violation.
//!
//! | failpoint | planted bug | caught by |
//! |---|---|---|
//! | `index::revision_before_postings` | the revision record is written in a batch of its own before the postings it covers | a crash between the two, in maintenance or in an open's catch-up: the reopened index says it is current but lacks postings (a search misses a key a scan finds) |
//! | `index::skip_posting_delete` | a key no longer live keeps its postings | a search returns a deleted key |
//!
//! The fail registry is process-global: every test holds a `fail::FailScenario`, so the tests of
//! this binary run one at a time.
//!
//! `cargo test -p kvstore-model --features failpoints --test index_sabotage`

mod index_campaign;

use index_campaign::{behind_image, campaign};
use kvstore::Durability;
use kvstore_faults::DiskImage;

/// Runs the campaign (from `image`, if given) with `failpoint` on; it must fail.
fn caught(failpoint: &str, durability: Durability, image: Option<&DiskImage>) {
    let scenario = fail::FailScenario::setup();
    fail::cfg(failpoint, "return").expect("configure the failpoint");
    let outcome = campaign(0x1d_5ab0, durability, image, 8);
    scenario.teardown();
    match outcome {
        Ok(points) => panic!("{failpoint}: {points} crash points passed with the bug planted"),
        Err(e) => eprintln!(
            "[index negative control] {failpoint} caught: {}",
            e.lines().next().unwrap_or("")
        ),
    }
}

#[test]
fn the_revision_written_before_its_postings_is_caught() {
    caught("index::revision_before_postings", Durability::Sync, None);
}

#[test]
fn the_revision_written_before_the_postings_of_a_catch_up_is_caught() {
    let image = behind_image(0x1d_5ab1, false);
    caught(
        "index::revision_before_postings",
        Durability::Sync,
        Some(&image),
    );
}

#[test]
fn a_posting_kept_after_its_key_is_deleted_is_caught() {
    caught("index::skip_posting_delete", Durability::Sync, None);
}
