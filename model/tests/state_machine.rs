//! proptest state machine: random sequences of put, delete, batch, etcd txn (compares on value,
//! absence and version; both branches), delete range, get, scan, reads at older revisions,
//! history compaction, a snapshot taken and checked later (held across the ops in
//! between), a watch, leases (grants, puts attached to them, keep-alives, revocations, the clock
//! moving and expiries), flush, compact, sync, reopen and crash (at a random I/O op inside the next operation, under a random
//! persistence model) against the real `Db` on `SimVfs` and the model side by side, on 2-4 keys so
//! they collide. Every read is compared with the model, every acknowledged revision with the
//! model's, every recovery with the oracle. A failure shrinks and prints the seed and the ops.
//! `KVSTORE_CAMPAIGN=deep` runs many more cases.

use std::sync::atomic::Ordering;

use kvstore::Durability;
use kvstore_model::{Budget, Setup};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

mod machine;

use machine::{CASES_RUN, CRASHES_CHECKED, ops, run};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: Budget::from_env().pick(2000, 50_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn engine_matches_the_model_across_crashes() {
    let started = std::time::Instant::now();
    let config = config();
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let setup = Setup::new(Durability::Sync);
    let result = runner.run(&ops(), |(seed, ops)| {
        run(seed, &ops, &setup).map_err(TestCaseError::fail)
    });
    eprintln!(
        "[state machine] {cases} cases asked, {} runs finished in this process (shrinking and the negative control included), {} crash \
         recoveries checked, {:.1}s (budget {:?})",
        CASES_RUN.load(Ordering::Relaxed),
        CRASHES_CHECKED.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        Budget::from_env()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Negative control: with the WAL fsync skipped (through the `Vfs`), the state machine must find a
/// violation and shrink it.
#[test]
fn negative_control_skipped_wal_fsync_is_found_and_shrunk() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let setup = Setup {
        sabotage: kvstore_model::Sabotage::SkipWalSync,
        ..Setup::new(Durability::Sync)
    };
    let result = runner.run(&ops(), |(seed, ops)| {
        run(seed, &ops, &setup).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => panic!("the state machine did not notice a skipped WAL fsync in 2000 cases"),
        Err(e) => eprintln!("[state machine negative control] caught and shrunk: {e}"),
    }
}
