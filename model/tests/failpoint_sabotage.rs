//! Engine-level negative controls (`--features failpoints`): each test plants one bug inside the
//! engine with a `fail` failpoint and passes only if the crash campaign (every crash point of the
//! workload under every persistence model, each recovery checked by the oracle; reads during the
//! workload compared with the model) reports a violation. `tests/negative_controls.rs` does the
//! same for bugs planted below the engine, in the `Vfs` (WAL fsync skipped, directory syncs
//! skipped, fsync lying).
//!
//! | failpoint | planted bug | caught by |
//! |---|---|---|
//! | `compaction::delete_inputs_before_manifest` | compaction deletes its input tables before the manifest that drops them is durable | recovery after a crash in that window: the old manifest lists a deleted table |
//! | `commit::partial_batch` | only the first op of a multi-op batch reaches the memtable (at commit and at WAL replay) | reads during the workload, and the oracle's prefix rule after recovery |
//!
//! The fail registry is process-global: every test holds a `fail::FailScenario` (whose `setup`
//! takes the crate's global scenario lock and clears every failpoint, and whose drop clears them
//! again, even on panic), so the tests of this binary run one at a time.
//!
//! `cargo test -p kvstore-model --features failpoints --test failpoint_sabotage`

use std::time::Instant;

use kvstore::Durability;
use kvstore_faults::FaultConfig;
use kvstore_model::{Mutation, Setup, Step, campaign_catches};

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % 31).into_bytes()
}

/// Puts big enough to fill the 64 KiB memtable, two-put batches (a batch cut to its first op loses
/// a put that a scan sees), two flushes (the second triggers an L0->L1
/// compaction), a manual compaction, and scans.
fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..48 {
        steps.push(match i % 8 {
            3 => Step::Write(
                Mutation::Batch(vec![
                    (key(i + 1), Some(vec![b'b'; 500])),
                    (key(i + 2), Some(format!("batch {i}").into_bytes())),
                ]),
                None,
            ),
            5 => Step::Scan,
            7 if i == 15 || i == 31 => Step::Flush,
            7 if i == 39 => Step::Compact,
            _ => Step::Write(
                Mutation::Put(key(i), vec![u8::try_from(i).unwrap_or(0); 2500]),
                None,
            ),
        });
    }
    steps.push(Step::Scan);
    steps
}

/// Configures `failpoint` with `actions` for the campaign; panics unless the campaign reports a
/// violation.
fn caught(failpoint: &str, actions: &str) {
    let started = Instant::now();
    let scenario = fail::FailScenario::setup();
    fail::cfg(failpoint, actions).unwrap_or_else(|e| panic!("fail::cfg({failpoint}): {e}"));
    let result = campaign_catches(
        0x5ab0_7a9e,
        &Setup::new(Durability::Sync),
        FaultConfig::default(),
        &steps(),
    );
    scenario.teardown();
    let (failure, checked) =
        result.unwrap_or_else(|e| panic!("failpoint sabotage {failpoint}: {e}"));
    eprintln!(
        "[failpoint sabotage {failpoint}] caught after {checked} crash points in {:.1}s: {}...\n  \
         {}",
        started.elapsed().as_secs_f64(),
        failure.message.chars().take(300).collect::<String>(),
        failure.point
    );
}

#[test]
fn deleting_compaction_inputs_before_the_manifest_is_durable_is_caught() {
    caught("compaction::delete_inputs_before_manifest", "return");
}

#[test]
fn applying_half_a_batch_is_caught() {
    caught("commit::partial_batch", "return");
}

/// The control of the controls: with no failpoint configured, the same campaign passes, so what
/// the tests above catch is the planted bug.
#[test]
fn the_same_campaign_passes_without_sabotage() {
    let started = Instant::now();
    let scenario = fail::FailScenario::setup();
    let result = campaign_catches(
        0x5ab0_7a9e,
        &Setup::new(Durability::Sync),
        FaultConfig::default(),
        &steps(),
    );
    scenario.teardown();
    if let Ok((failure, _)) = result {
        panic!("the campaign fails without any sabotage: {failure}");
    }
    eprintln!(
        "[failpoint sabotage: none] the campaign passed, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
