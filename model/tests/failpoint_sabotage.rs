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
//! | `compaction::drop_old_versions` | flush and compaction keep only the newest version of each key, whatever the floor | reads at older revisions: the history check after recovery (`check_history`), `Step::ReadAt` |
//! | `compaction::tombstone_dropped_early` | a tombstone at or below the floor is dropped by a flush (not bottommost): the older value in L1 resurfaces | the recovered state (the deleted key is back), scans and gets after the flush |
//! | `decide::stale_view` | every put's metadata is decided against an empty view of its key (`version` 1, `create_revision` its own) | the cells' metadata in the oracle's check of every recovery, gets and scans |
//! | `readers::ignore_pins` | the read floor ignores pinned revisions: a compaction after `compact_history` passed a live snapshot drops what it sees | `Step::CheckSnapshot` |
//! | `watch::ignore_durability` | the watch dispatcher delivers a revision's events as soon as it is published, before a `Buffered` commit is synced | the watch's events checked against each recovery (`Oracle::watch_after_recovery`): an event for a commit the crash took back |
//! | `lease::revoke_keeps_keys` | a revocation (an expiry) commits without deleting its lease's keys | the scan and gets after the expiry (the keys must be gone), and recovery (a key naming a lease that is not granted) |
//! | `lease::forget_on_recovery` | recovery ignores the leases the manifest lists (granted before the last flush) | the lease table read back at every recovery (`read_all`), and the keys still naming the forgotten lease |
//!
//! The first two run the durability workload ([`steps`]), the MVCC ones the history workload
//! ([`history_steps`]), the watch one [`watch_steps`], the lease ones [`lease_steps`]; each workload also runs with no failpoint and must pass. The proptest
//! state machine (`tests/state_machine.rs`, whose generators and runner live in
//! `tests/machine/`) must also find `compaction::drop_old_versions` and
//! `lease::revoke_keeps_keys` and shrink them.
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
use proptest::test_runner::{Config, TestCaseError, TestRunner};

mod machine;

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

fn hkey(i: u8) -> Vec<u8> {
    vec![b'h', b'0' + i]
}

fn put(i: u8, value: &str) -> Step {
    Step::Write(Mutation::Put(hkey(i), value.as_bytes().to_vec()), None)
}

fn delete(i: u8) -> Step {
    Step::Write(Mutation::Delete(hkey(i)), None)
}

/// Reads at several older revisions (`Step::ReadAt(back)`), compared with the model's history.
fn read_history(steps: &mut Vec<Step>) {
    steps.extend([0, 1, 3, 5, 8].map(Step::ReadAt));
}

/// The history workload: four keys rewritten, deleted and recreated (small values, so the
/// campaign stays short), with reads at older revisions between every structural change; a
/// snapshot held across writes, `compact_history` past it, a flush and a compaction (its pin
/// must keep what it sees); a tombstone at or below the floor flushed over an older version
/// in L1 (only a bottommost output may drop it); a reopen and a last `compact_history` to the
/// newest revision.
fn history_steps() -> Vec<Step> {
    let mut steps = vec![
        put(0, "a1"),
        put(1, "b1"),
        put(2, "c1"),
        put(3, "d1"),
        put(0, "a2"),
        Step::Write(
            Mutation::Batch(vec![
                (hkey(1), Some(b"b2".to_vec())),
                (hkey(3), None),
                (hkey(1), Some(b"b3".to_vec())),
            ]),
            None,
        ),
        Step::Get(hkey(0)),
        Step::Get(hkey(1)),
        delete(2),
        put(3, "d2"),
        Step::Scan,
    ];
    read_history(&mut steps);
    steps.extend([Step::Flush, put(0, "a3"), delete(1), put(2, "c2")]);
    read_history(&mut steps);
    steps.extend([Step::Compact, Step::TakeSnapshot, put(0, "a4"), delete(3)]);
    read_history(&mut steps);
    steps.extend([
        put(1, "b4"),
        Step::CompactHistory(1),
        put(0, "a5"),
        Step::Flush,
        Step::Compact,
        Step::CheckSnapshot,
        Step::Scan,
    ]);
    read_history(&mut steps);
    // A tombstone flushed to L0 over a value in L1, at or below the floor.
    steps.extend([
        delete(0),
        put(2, "c3"),
        Step::CompactHistory(0),
        Step::Flush,
        Step::Scan,
        Step::Get(hkey(0)),
        Step::Reopen,
        put(3, "d3"),
        Step::Scan,
    ]);
    read_history(&mut steps);
    steps
}

/// A watch of every key beside buffered puts, read (without waiting, then after a sync) every
/// third put: what it delivered must survive every crash.
fn watch_steps() -> Vec<Step> {
    let mut steps = vec![Step::Watch(0)];
    for i in 0..12u8 {
        steps.push(Step::Write(
            Mutation::Put(hkey(i % 3), vec![i; 64]),
            Some(Durability::Buffered),
        ));
        if i % 3 == 2 {
            steps.push(Step::CheckWatch);
        }
    }
    steps
}

/// Leases: two granted, keys attached to both (large values, so the memtable fills), a flush (the
/// manifest lists both), a keep-alive, the clock past the first's deadline, an expiry (it
/// revokes the first: its keys go in one revision), a reopen (the second comes back from the
/// manifest with its keys), then the second revoked.
fn lease_steps() -> Vec<Step> {
    let lease_put =
        |i: u8, lease: u64| Step::Write(Mutation::PutLease(hkey(i), vec![i; 2500], lease), None);
    vec![
        Step::Write(Mutation::Grant(1, 20), None),
        Step::Write(Mutation::Grant(2, 50), None),
        lease_put(0, 1),
        lease_put(1, 1),
        lease_put(2, 2),
        Step::Flush,
        lease_put(3, 2),
        Step::KeepAlive(2),
        Step::Advance(30),
        Step::KeepAlive(1),
        Step::Expire,
        Step::Scan,
        Step::Get(hkey(0)),
        Step::Reopen,
        Step::Scan,
        Step::Write(Mutation::Revoke(2), None),
        Step::Scan,
    ]
}

/// Configures `failpoint` with `actions` for the campaign of `steps`; panics unless the campaign
/// reports a violation.
fn caught(failpoint: &str, actions: &str, steps: &[Step]) {
    let scenario = fail::FailScenario::setup();
    // After the scenario lock: the time of this campaign alone, not of the wait for another's.
    let started = Instant::now();
    fail::cfg(failpoint, actions).unwrap_or_else(|e| panic!("fail::cfg({failpoint}): {e}"));
    let result = campaign_catches(
        0x5ab0_7a9e,
        &Setup::new(Durability::Sync),
        FaultConfig::default(),
        steps,
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
    caught(
        "compaction::delete_inputs_before_manifest",
        "return",
        &steps(),
    );
}

#[test]
fn applying_half_a_batch_is_caught() {
    caught("commit::partial_batch", "return", &steps());
}

#[test]
fn keeping_only_the_newest_version_is_caught() {
    caught("compaction::drop_old_versions", "return", &history_steps());
}

#[test]
fn dropping_a_tombstone_above_older_versions_is_caught() {
    caught(
        "compaction::tombstone_dropped_early",
        "return",
        &history_steps(),
    );
}

#[test]
fn deciding_version_metadata_against_a_stale_view_is_caught() {
    caught("decide::stale_view", "return", &history_steps());
}

#[test]
fn a_read_floor_ignoring_snapshots_is_caught() {
    caught("readers::ignore_pins", "return", &history_steps());
}

#[test]
fn a_watch_event_delivered_before_its_sync_is_caught() {
    caught("watch::ignore_durability", "return", &watch_steps());
}

#[test]
fn an_expired_lease_whose_keys_stay_readable_is_caught() {
    caught("lease::revoke_keeps_keys", "return", &lease_steps());
}

#[test]
fn a_lease_forgotten_by_recovery_is_caught() {
    caught("lease::forget_on_recovery", "return", &lease_steps());
}

/// Panics unless the campaign of `steps` passes with no failpoint configured.
fn passes(name: &str, steps: &[Step]) {
    let scenario = fail::FailScenario::setup();
    // After the scenario lock: the time of this campaign alone, not of the wait for another's.
    let started = Instant::now();
    let result = campaign_catches(
        0x5ab0_7a9e,
        &Setup::new(Durability::Sync),
        FaultConfig::default(),
        steps,
    );
    scenario.teardown();
    if let Ok((failure, _)) = result {
        panic!("the {name} campaign fails without any sabotage: {failure}");
    }
    eprintln!(
        "[failpoint sabotage: none] the {name} campaign passed, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// The control of the controls: with no failpoint configured, the same campaigns pass, so what
/// the tests above catch is the planted bug.
#[test]
fn the_same_campaign_passes_without_sabotage() {
    passes("durability", &steps());
}

#[test]
fn the_same_history_campaign_passes_without_sabotage() {
    passes("history", &history_steps());
}

#[test]
fn the_same_watch_campaign_passes_without_sabotage() {
    passes("watch", &watch_steps());
}

#[test]
fn the_same_lease_campaign_passes_without_sabotage() {
    passes("lease", &lease_steps());
}

/// Cases the state machine gets to find a planted bug.
const MACHINE_CASES_MAX: u32 = 2000;

/// The state machine (`tests/state_machine.rs`, its generators and runner shared through
/// `tests/machine/`) must find `failpoint` and shrink it.
fn the_state_machine_finds(failpoint: &str) {
    let scenario = fail::FailScenario::setup();
    let started = Instant::now();
    fail::cfg(failpoint, "return").unwrap_or_else(|e| panic!("fail::cfg: {e}"));
    let mut runner = TestRunner::new(Config {
        cases: MACHINE_CASES_MAX,
        failure_persistence: None,
        ..Config::default()
    });
    let setup = Setup::new(Durability::Sync);
    let result = runner.run(&machine::ops(), |(seed, ops)| {
        machine::run(seed, &ops, &setup).map_err(TestCaseError::fail)
    });
    scenario.teardown();
    match result {
        Ok(()) => {
            panic!("the state machine did not notice {failpoint} in {MACHINE_CASES_MAX} cases")
        }
        Err(e) => eprintln!(
            "[failpoint sabotage {failpoint}] the state machine caught and shrank it in {:.1}s: \
             {e}",
            started.elapsed().as_secs_f64()
        ),
    }
}

#[test]
fn the_state_machine_finds_and_shrinks_dropped_old_versions() {
    the_state_machine_finds("compaction::drop_old_versions");
}

#[test]
fn the_state_machine_finds_and_shrinks_a_revocation_keeping_its_keys() {
    the_state_machine_finds("lease::revoke_keeps_keys");
}
