//! Negative controls: the crash campaigns must be able to fail. Each test installs one durability
//! bug below the engine (through the `Vfs`, without touching the engine) and passes only if the
//! campaign reports a violation; it prints the violation and its replay line.

use std::time::Instant;

use kvstore::Durability;
use kvstore_faults::{CampaignFailure, FaultConfig};
use kvstore_model::{Mutation, Sabotage, Setup, Step, campaign_catches};

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % 23).into_bytes()
}

/// Puts and deletes (enough to rotate the WAL and flush), a batch, a flush and a compaction.
fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..50 {
        steps.push(match i % 10 {
            3 => Step::Write(Mutation::Delete(key(i + 4)), None),
            5 => Step::Write(
                Mutation::Batch(vec![(key(i), Some(vec![7; 900])), (key(i + 1), None)]),
                None,
            ),
            8 if i == 18 => Step::Flush,
            8 if i == 38 => Step::Compact,
            _ => Step::Write(
                Mutation::Put(key(i), vec![u8::try_from(i).unwrap_or(0); 3000]),
                None,
            ),
        });
    }
    steps
}

/// Runs the crash campaign with `setup` and `faults`; returns the failure it must report.
fn campaign(name: &str, setup: &Setup, faults: FaultConfig) -> CampaignFailure {
    let started = Instant::now();
    let (failure, checked) = campaign_catches(0xc0_ffee, setup, faults, &steps())
        .unwrap_or_else(|e| panic!("negative control {name}: {e}"));
    let first_line = failure.message.chars().take(300).collect::<String>();
    eprintln!(
        "[negative control {name}] caught after {checked} crash points in {:.1}s: \
         {first_line}...\n  {}",
        started.elapsed().as_secs_f64(),
        failure.point
    );
    failure
}

#[test]
fn skipping_the_wal_fsync_is_caught() {
    let setup = Setup {
        sabotage: Sabotage::SkipWalSync,
        ..Setup::new(Durability::Sync)
    };
    campaign("skip WAL sync_data", &setup, FaultConfig::default());
}

#[test]
fn skipping_the_wal_fsync_in_group_commit_is_caught() {
    let setup = Setup {
        sabotage: Sabotage::SkipWalSync,
        ..Setup::new(Durability::GroupCommit)
    };
    campaign(
        "skip WAL sync_data, group commit",
        &setup,
        FaultConfig::default(),
    );
}

#[test]
fn a_lying_fsync_is_caught() {
    campaign(
        "lying_sync_from(0)",
        &Setup::new(Durability::Sync),
        FaultConfig::default().lying_sync_from(0),
    );
}

#[test]
fn skipping_every_directory_sync_is_caught() {
    let setup = Setup {
        sabotage: Sabotage::SkipAllDirSync,
        ..Setup::new(Durability::Sync)
    };
    campaign("skip every sync_dir", &setup, FaultConfig::default());
}

#[test]
fn skipping_the_directory_sync_after_the_manifest_rename_is_caught() {
    let setup = Setup {
        sabotage: Sabotage::SkipManifestDirSync,
        ..Setup::new(Durability::Sync)
    };
    campaign(
        "skip sync_dir after manifest rename",
        &setup,
        FaultConfig::default(),
    );
}
