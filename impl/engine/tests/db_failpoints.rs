//! Failpoints at each protocol step of flush and compaction (`--features failpoints`): the step
//! fails, the database is poisoned, and after a power cut every acknowledged write is recovered
//! and no leftover file breaks the reopen. And the watch dispatcher held back while a compaction
//! commits: the event it then offers still has its previous version. And a flush held back while
//! a later stamped commit lands: its manifest records the stamp as of its freeze.
//!
//! `cargo test -p kvstore --features failpoints --test db_failpoints`
#![cfg(feature = "failpoints")]

use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::vfs::OsVfs;
use kvstore::watch::{WatchRequest, WatchResponse};
use kvstore::{BackgroundMode, Db, HistoryRetention, KeyRange, Options, ScanOptions, WriteOptions};
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

/// A compaction committed before the watch dispatcher offers an event must not take the
/// version before it: the event still comes with its `prev_kv`. Found by the server's
/// differential test against etcd (a live watch was cancelled as compacted); without the
/// dispatcher's pin the watcher ends with `Compacted` here.
#[test]
fn a_compaction_racing_the_watch_dispatcher_keeps_prev_kv() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        history_retention: HistoryRetention::Manual,
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let watcher = db
        .watch(WatchRequest {
            prev_kv: true,
            ..WatchRequest::new(KeyRange::all())
        })
        .unwrap();
    let wait = std::time::Duration::from_secs(20);
    let first = db.put(b"k", b"one").unwrap();
    assert!(matches!(
        watcher.next_timeout(wait).unwrap(),
        Some(WatchResponse::Events { revision, .. }) if revision == first
    ));
    fail::cfg("watch::before_offer", "pause").unwrap();
    let second = db.put(b"k", b"two").unwrap();
    db.compact_history(second).unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    fail::remove("watch::before_offer");
    let response = watcher.next_timeout(wait);
    let Ok(Some(WatchResponse::Events { revision, events })) = response else {
        panic!("the event after the compaction: {response:?}");
    };
    assert_eq!(revision, second);
    let prev: Vec<_> = events
        .iter()
        .map(|e| e.prev.as_ref().map(|v| v.value.clone()))
        .collect();
    assert_eq!(prev, vec![Some(b"one".to_vec())]);
    scenario.teardown();
}

/// A flush writes the manifest's `lastStamp` as of its freeze: a stamped commit applied while the
/// flush runs (here, held at the failpoint after its table is written) is only in the WAL the
/// new manifest keeps, so naming its stamp would claim a commit a power cut could lose (and the
/// reopen would find the WAL's stamps below the manifest's: corruption).
#[test]
fn a_flush_records_the_stamp_of_its_freeze_not_of_later_commits() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        background: BackgroundMode::Threads,
        ..Options::default()
    };
    let stamp = |n| WriteOptions {
        stamp: Some(n),
        ..WriteOptions::default()
    };
    let db = Db::open(dir.path(), options.clone()).unwrap();
    db.put_with(b"a", b"1", stamp(1)).unwrap();
    fail::cfg("flush::after_sst_written", "pause").unwrap();
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush())
    };
    let started = std::time::Instant::now();
    while db.stats().frozen_memtables == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never froze"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    db.put_with(b"b", b"2", stamp(2)).unwrap();
    fail::remove("flush::after_sst_written");
    flusher.join().unwrap().unwrap();
    let manifest = kvstore::manifest::load(&OsVfs, dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(manifest.last_stamp, 1);
    db.close().unwrap();
    assert_eq!(Db::open(dir.path(), options).unwrap().last_stamp(), 2);
    scenario.teardown();
}
