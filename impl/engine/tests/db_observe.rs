//! The notify stage: observers registered with `Db::observe` are told of every commit above
//! the revision registration returned, in revision order, once each, whole, and only after it
//! is published; a commit whose sync failed is never observed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kvstore::entry::Entry;
use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore::{BackgroundMode, CommitObserver, Db, Durability, KeyRange, Options, WriteBatch};
use kvstore_faults::{Failure, FaultConfig, OpKind, SimVfs};

/// Every notification, in the order received, with what a read at its revision saw while the
/// observer was being told (the commit must already be readable).
#[derive(Default)]
struct Recorder {
    db: Mutex<Option<Db>>,
    seen: Mutex<Vec<(u64, Vec<Entry>)>>,
    unreadable: Mutex<Vec<u64>>,
}

impl CommitObserver for Recorder {
    fn committed(&self, revision: u64, changes: &Arc<[Entry]>) {
        if let Some(db) = self.db.lock().unwrap().as_ref() {
            let published = db.stats().last_revision;
            if published < revision {
                self.unreadable.lock().unwrap().push(revision);
            }
        }
        self.seen.lock().unwrap().push((revision, changes.to_vec()));
    }
}

fn small_options(durability: Durability) -> Options {
    Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        wal_segment_size_bytes: kvstore::options::WAL_SEGMENT_SIZE_BYTES_MIN,
        durability,
        ..Options::default()
    }
}

/// What each thread's commits wrote: revision -> the keys written (`None` value: deleted).
type Expected = BTreeMap<u64, Vec<(Vec<u8>, Option<Vec<u8>>)>>;

/// One thread's workload: puts, batches, a txn and a delete per round, recording what each
/// commit that wrote was expected to contain.
fn writer(db: &Db, thread: u8, rounds: u32) -> Expected {
    let mut expected = Expected::new();
    for round in 0..rounds {
        let key = |n: u32| format!("t{thread}-k{:03}", (round + n) % 40).into_bytes();
        let value = format!("v{round} {}", "x".repeat(300)).into_bytes();
        let revision = db.put(&key(0), &value).unwrap();
        expected.insert(revision, vec![(key(0), Some(value.clone()))]);
        let mut batch = WriteBatch::new();
        batch.put(&key(1), &value);
        batch.put(&key(2), &value);
        let revision = db.write(batch).unwrap();
        let rows = vec![(key(1), Some(value.clone())), (key(2), Some(value.clone()))];
        expected.insert(revision, rows);
        let txn = Txn {
            compares: vec![Compare::key(
                &key(0),
                CompareOp::Equal,
                CompareTarget::Value(value.clone()),
            )],
            success: vec![TxnOp::Put {
                key: key(3),
                value: value.clone(),
                lease: 0,
            }],
            failure: vec![],
        };
        let response = db.txn(txn).unwrap();
        assert!(response.succeeded, "no other thread writes t{thread}-*");
        expected.insert(response.revision, vec![(key(3), Some(value.clone()))]);
        if round % 3 == 0 {
            let revision = db.delete(&key(2)).unwrap();
            expected.insert(revision, vec![(key(2), None)]);
        }
    }
    expected
}

fn observed_equals_committed(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options(durability)).unwrap();
    db.put(b"before", b"v").unwrap();
    let recorder = Arc::new(Recorder::default());
    *recorder.db.lock().unwrap() = Some(db.clone());
    let after = db.observe(recorder.clone()).unwrap();
    assert_eq!(after, db.stats().last_revision);
    let expected: Expected = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let db = db.clone();
                scope.spawn(move || writer(&db, t, 60))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    *recorder.db.lock().unwrap() = None;
    let seen = recorder.seen.lock().unwrap().clone();
    let revisions: Vec<u64> = seen.iter().map(|(r, _)| *r).collect();
    let want: Vec<u64> = expected.keys().copied().collect();
    assert_eq!(revisions, want, "every commit once, in revision order");
    assert_eq!(
        want,
        ((after + 1)..=db.stats().last_revision).collect::<Vec<_>>(),
        "one revision per commit, none skipped"
    );
    for (revision, changes) in &seen {
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
            .iter()
            .map(|e| {
                assert_eq!(e.revision, *revision, "an entry of another revision");
                (e.key.clone(), e.value.clone())
            })
            .collect();
        assert_eq!(
            &got, &expected[revision],
            "revision {revision} delivered whole"
        );
        for entry in changes {
            let read = db.get_at(&entry.key, *revision).unwrap();
            assert_eq!(read.as_ref().map(|v| &v.value), entry.value.as_ref());
            if let Some(read) = read {
                assert_eq!(read.meta(), entry.meta, "metadata as a read sees it");
            }
        }
    }
    assert!(
        recorder.unreadable.lock().unwrap().is_empty(),
        "an observer was told of a commit before it was readable"
    );
}

#[test]
fn observers_see_every_commit_in_order_whole_and_published_sync() {
    observed_equals_committed(Durability::Sync);
}

#[test]
fn observers_see_every_commit_in_order_whole_and_published_buffered() {
    observed_equals_committed(Durability::Buffered);
}

#[test]
fn commits_before_registration_are_not_observed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"a", b"1").unwrap();
    let first = Arc::new(Recorder::default());
    let after_first = db.observe(first.clone()).unwrap();
    db.put(b"b", b"2").unwrap();
    let second = Arc::new(Recorder::default());
    let after_second = db.observe(second.clone()).unwrap();
    let last = db.delete_range(KeyRange::all()).unwrap().0;
    let revisions =
        |r: &Recorder| -> Vec<u64> { r.seen.lock().unwrap().iter().map(|(rev, _)| *rev).collect() };
    assert_eq!(revisions(&first), vec![after_first + 1, last]);
    assert_eq!(revisions(&second), vec![last]);
    assert_eq!(after_second, after_first + 1);
    let deleted = &second.seen.lock().unwrap()[0].1;
    assert_eq!(
        deleted.len(),
        2,
        "a delete_range is one revision, delivered whole"
    );
    assert!(deleted.iter().all(Entry::is_tombstone));
}

#[test]
fn a_commit_whose_sync_failed_is_never_observed_nor_visible() {
    let vfs = SimVfs::new(7);
    let options = Options {
        background: BackgroundMode::Inline,
        durability: Durability::Sync,
        ..Options::default()
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new("/db"), options).unwrap();
    let kept = db.put(b"k", b"kept").unwrap();
    let recorder = Arc::new(Recorder::default());
    db.observe(recorder.clone()).unwrap();
    vfs.set_faults(FaultConfig::default().fail_path("wal-", Some(OpKind::SyncData), Failure::Eio));
    assert!(db.put(b"k", b"lost").is_err());
    assert!(
        recorder.seen.lock().unwrap().is_empty(),
        "a failed commit was observed"
    );
    assert_eq!(
        db.stats().last_revision,
        kept,
        "a failed commit was published"
    );
    assert_eq!(db.get(b"k").unwrap(), Some(b"kept".to_vec()));
    assert!(db.put(b"k", b"after").is_err(), "the database is poisoned");
    assert!(recorder.seen.lock().unwrap().is_empty());
}
