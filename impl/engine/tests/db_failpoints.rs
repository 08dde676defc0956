//! Failpoints at each protocol step of flush and compaction (`--features failpoints`): the step
//! fails, the database is poisoned, and after a power cut every acknowledged write is recovered
//! and no leftover file breaks the reopen.
//!
//! `cargo test -p kvstore --features failpoints --test db_failpoints`
#![cfg(feature = "failpoints")]

use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::{BackgroundMode, Db, KeyRange, Options, ScanOptions};
use kvstore_faults::{PersistenceModel, SimVfs};

fn open(vfs: &SimVfs) -> Db {
    let options = Options {
        background: BackgroundMode::Inline,
        clock: SharedClock::new(FixedClock(1)),
        ..Options::default()
    };
    Db::open_with_vfs(Arc::new(vfs.clone()), Path::new("/db"), options).unwrap()
}

fn count(db: &Db) -> usize {
    db.scan(KeyRange::all(), ScanOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .len()
}

/// Failpoints are process-global: one test walks through all of them in turn.
#[test]
fn each_protocol_step_failure_poisons_and_recovers() {
    let scenario = fail::FailScenario::setup();
    let points = [
        ("flush::before_wal_rotate", false),
        ("flush::after_sst_written", false),
        ("manifest::before_rename", false),
        ("manifest::after_rename", false),
        ("compaction::after_outputs_written", true),
    ];
    for (seed, (point, compaction)) in points.into_iter().enumerate() {
        let vfs = SimVfs::new(seed as u64);
        let db = open(&vfs);
        for i in 0..20u32 {
            db.put(format!("a{i:02}").as_bytes(), b"1").unwrap();
        }
        if compaction {
            db.flush().unwrap();
            // The same keys again: two overlapping tables must be merged (tables that do not
            // overlap would be moved, writing no output for the failpoint to interrupt).
            for i in 0..20u32 {
                db.put(format!("a{i:02}").as_bytes(), b"2").unwrap();
            }
            db.flush().unwrap();
        }
        let expected = count(&db);
        fail::cfg(point, "return").unwrap();
        let result = if compaction {
            db.compact_range(KeyRange::all())
        } else {
            db.flush()
        };
        fail::remove(point);
        assert!(result.is_err(), "{point}: the step did not fail");
        assert!(db.put(b"late", b"x").is_err(), "{point}: not poisoned");
        assert_eq!(count(&db), expected, "{point}: reads changed");
        vfs.crash();
        drop(db);
        let vfs = vfs.reboot(PersistenceModel::UnsyncedLost);
        let db = open(&vfs);
        assert_eq!(count(&db), expected, "{point}: lost acknowledged writes");
        db.put(b"after", b"y").unwrap();
        db.flush().unwrap();
        db.compact_range(KeyRange::all()).unwrap();
        assert_eq!(count(&db), expected + 1, "{point}");
    }
    scenario.teardown();
}
