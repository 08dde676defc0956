//! Transactions on `Db` over `SimVfs`: etcd `Txn` (compares, branches, revisions, results),
//! compare-and-swap, delete_range, optimistic interactive transactions (conflicts, read your
//! writes, no lost increment under real threads), reads at old revisions, snapshots and the
//! history horizon, each surviving a power cut and reopen.

mod common;

use std::path::Path;
use std::sync::Arc;

use kvstore::txn::{
    Compare, CompareOp, CompareTarget, OpResult, RangeRequest, TXN_OPS_MAX, Txn, TxnOp,
};
use kvstore::{BackgroundMode, Db, Durability, Error, KeyRange, Options, ScanOptions};
use kvstore_faults::{PersistenceModel, SimVfs};

const DIR: &str = "/db";

/// The shared small-database options, with the default L0 stall and stop thresholds.
fn options() -> Options {
    let defaults = Options::default();
    Options {
        l0_stall_files: defaults.l0_stall_files,
        l0_stop_files: defaults.l0_stop_files,
        ..common::small_options()
    }
}

fn open(vfs: &SimVfs) -> Db {
    Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()).unwrap()
}

/// Power cut (unsynced data lost) and reopen on the rebooted disk.
fn power_cut(vfs: &mut SimVfs, db: Db) -> Db {
    vfs.crash();
    drop(db);
    *vfs = vfs.reboot(PersistenceModel::UnsyncedLost);
    open(vfs)
}

fn put(key: &[u8], value: &[u8]) -> TxnOp {
    TxnOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        lease: 0,
    }
}

#[test]
fn a_txn_runs_one_branch_atomically_under_one_revision() {
    let mut vfs = SimVfs::new(1);
    let db = open(&vfs);
    db.put(b"a", b"1").unwrap();
    let r = db.put(b"b", b"2").unwrap();
    let txn = |expected: &[u8]| Txn {
        compares: vec![Compare::key(
            b"a",
            CompareOp::Equal,
            CompareTarget::Value(expected.to_vec()),
        )],
        success: vec![
            put(b"a", b"10"),
            put(b"c", b"30"),
            TxnOp::DeleteRange(KeyRange::key(b"b")),
            TxnOp::Range(RangeRequest {
                range: KeyRange::all(),
                limit: None,
            }),
        ],
        failure: vec![TxnOp::Range(RangeRequest {
            range: KeyRange::key(b"a"),
            limit: None,
        })],
    };
    let done = db.txn(txn(b"1")).unwrap();
    assert!(done.succeeded);
    assert_eq!(done.revision, r + 1, "one revision for the whole branch");
    let OpResult::Range { rows, .. } = &done.results[3] else {
        panic!("{:?}", done.results)
    };
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        keys,
        vec![&b"a"[..], b"c"],
        "the branch reads its own writes"
    );
    // The compare now fails: the failure branch only reads, and takes no revision.
    let refused = db.txn(txn(b"1")).unwrap();
    assert!(!refused.succeeded);
    assert_eq!(refused.revision, r + 1);
    let a = db.get_versioned(b"a").unwrap().unwrap();
    assert_eq!(
        (a.value.as_slice(), a.revision, a.create_revision, a.version),
        (&b"10"[..], r + 1, 1, 2)
    );
    // Durable in Sync mode, with the same metadata after the WAL replays.
    let db = power_cut(&mut vfs, db);
    assert_eq!(db.get_versioned(b"a").unwrap(), Some(a));
    assert_eq!(db.get(b"b").unwrap(), None);
    assert_eq!(
        db.get_at(b"b", r).unwrap().map(|v| v.value),
        Some(b"2".to_vec())
    );
    assert_eq!(db.stats().last_revision, r + 1);
}

#[test]
fn compare_and_swap_and_delete_range() {
    let mut vfs = SimVfs::new(2);
    let db = open(&vfs);
    let created = db
        .compare_and_swap(b"k", None, b"v1")
        .unwrap()
        .expect("absent: swapped");
    assert_eq!(db.compare_and_swap(b"k", None, b"v2").unwrap(), None);
    assert_eq!(
        db.compare_and_swap(b"k", Some(b"nope"), b"v2").unwrap(),
        None
    );
    let swapped = db
        .compare_and_swap(b"k", Some(b"v1"), b"v2")
        .unwrap()
        .unwrap();
    assert_eq!(swapped, created + 1, "a refused CAS takes no revision");
    for i in 0..10u8 {
        db.put(&[b'p', i], &[i]).unwrap();
    }
    let before = db.stats().last_revision;
    assert_eq!(
        db.delete_range(KeyRange::prefix(b"p")).unwrap(),
        (before + 1, 10)
    );
    assert_eq!(
        db.delete_range(KeyRange::prefix(b"p")).unwrap(),
        (before + 1, 0),
        "nothing to delete: no revision"
    );
    assert_eq!(
        db.scan_prefix(b"p", ScanOptions::default())
            .unwrap()
            .count(),
        0
    );
    let db = power_cut(&mut vfs, db);
    assert_eq!(
        db.scan_prefix(b"p", ScanOptions::default())
            .unwrap()
            .count(),
        0
    );
    let old = ScanOptions {
        revision: Some(before),
        ..ScanOptions::default()
    };
    assert_eq!(
        db.scan_prefix(b"p", old).unwrap().count(),
        10,
        "the history keeps them"
    );
}

#[test]
fn txns_over_etcds_limits_or_writing_a_key_twice_are_refused() {
    let vfs = SimVfs::new(3);
    let db = open(&vfs);
    let too_many = Txn {
        success: (0..=TXN_OPS_MAX)
            .map(|i| put(format!("k{i}").as_bytes(), b"v"))
            .collect(),
        ..Txn::default()
    };
    assert!(matches!(db.txn(too_many), Err(Error::InvalidArgument(_))));
    let twice = Txn {
        success: vec![put(b"k", b"1"), put(b"k", b"2")],
        ..Txn::default()
    };
    assert!(matches!(db.txn(twice), Err(Error::InvalidArgument(_))));
    assert_eq!(db.stats().last_revision, 0, "nothing was committed");
    db.put(b"after", b"ok").unwrap();
}

#[test]
fn optimistic_transactions_conflict_on_what_they_read() {
    let vfs = SimVfs::new(4);
    let db = open(&vfs);
    db.put(b"x", b"1").unwrap();
    db.put(b"y", b"1").unwrap();
    // Read your writes, and a commit of its own.
    let mut tx = db.transaction().unwrap();
    tx.put(b"x", b"2").unwrap();
    assert_eq!(tx.get(b"x").unwrap(), Some(b"2".to_vec()));
    tx.delete(b"y").unwrap();
    assert_eq!(
        tx.scan(KeyRange::all()).unwrap(),
        vec![(b"x".to_vec(), b"2".to_vec())]
    );
    let committed = tx.commit().unwrap();
    assert_eq!(db.get(b"x").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(b"y").unwrap(), None);
    // A key read, then written by another commit: conflict, nothing committed.
    let mut tx = db.transaction().unwrap();
    tx.get(b"x").unwrap();
    tx.put(b"z", b"from tx").unwrap();
    db.put(b"x", b"3").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { key }) if key == b"x"));
    assert_eq!(db.get(b"z").unwrap(), None);
    // A phantom: a key inserted into a scanned range.
    let mut tx = db.transaction().unwrap();
    tx.scan(KeyRange::prefix(b"q")).unwrap();
    tx.put(b"r", b"1").unwrap();
    db.put(b"q1", b"new").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { key }) if key == b"q1"));
    // A deletion in a scanned range.
    let mut tx = db.transaction().unwrap();
    tx.scan(KeyRange::prefix(b"q")).unwrap();
    tx.put(b"r", b"1").unwrap();
    db.delete(b"q1").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { .. })));
    // Blind writes do not conflict.
    let mut tx = db.transaction().unwrap();
    tx.put(b"x", b"blind").unwrap();
    db.put(b"x", b"4").unwrap();
    assert!(tx.commit().unwrap() > committed);
    assert_eq!(db.get(b"x").unwrap(), Some(b"blind".to_vec()));
    // A read-only transaction commits nothing.
    let mut tx = db.transaction().unwrap();
    tx.get(b"x").unwrap();
    let now = db.stats().last_revision;
    assert_eq!(tx.commit().unwrap(), now);
    assert_eq!(db.stats().last_revision, now);
}

#[test]
fn a_transaction_resumed_at_an_older_revision_reads_and_checks_from_it() {
    let mut vfs = SimVfs::new(7);
    let db = open(&vfs);
    let first = db.put(b"c", b"1").unwrap();
    db.put(b"other", b"x").unwrap();
    // Resumed after a power cut: it reads at `first` and commits, nothing it read being newer.
    let db = power_cut(&mut vfs, db);
    let mut tx = db.transaction_at(first).unwrap();
    assert_eq!(tx.revision(), first);
    assert_eq!(tx.get(b"c").unwrap(), Some(b"1".to_vec()));
    tx.put(b"c", b"2").unwrap();
    let second = tx.commit().unwrap();
    assert_eq!(second, first + 2);
    // Another one at `first` conflicts with that commit.
    let mut tx = db.transaction_at(first).unwrap();
    assert_eq!(tx.get(b"c").unwrap(), Some(b"1".to_vec()));
    tx.put(b"c", b"2").unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { key }) if key == b"c"));
    assert_eq!(db.get(b"c").unwrap(), Some(b"2".to_vec()));
    // Past the newest revision, and below the horizon, it is refused.
    assert!(matches!(
        db.transaction_at(second + 1),
        Err(Error::FutureRevision { requested, current }) if requested == second + 1 && current == second
    ));
    db.compact_history(second).unwrap();
    assert!(matches!(
        db.transaction_at(first),
        Err(Error::Compacted { requested, horizon }) if requested == first && horizon == second
    ));
    assert_eq!(db.transaction_at(second).unwrap().revision(), second);
}

#[test]
fn concurrent_increments_never_lose_an_update() {
    let vfs = SimVfs::new(5);
    let db = Db::open_with_vfs(
        Arc::new(vfs.clone()),
        Path::new(DIR),
        Options {
            background: BackgroundMode::Threads,
            durability: Durability::Buffered,
            ..options()
        },
    )
    .unwrap();
    let threads = 4;
    let per_thread = 50;
    let conflicts: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || {
                    let mut conflicts = 0u64;
                    let mut done = 0;
                    while done < per_thread {
                        let key = [b'c', (done + t) as u8 % 2];
                        let mut tx = db.transaction().unwrap();
                        let n: u64 = tx
                            .get(&key)
                            .unwrap()
                            .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                        tx.put(&key, &(n + 1).to_be_bytes()).unwrap();
                        match tx.commit() {
                            Ok(_) => done += 1,
                            Err(Error::Conflict { .. }) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let total: u64 = [b"c\x00", b"c\x01"]
        .iter()
        .map(|k| u64::from_be_bytes(db.get(*k).unwrap().unwrap().try_into().unwrap()))
        .sum();
    assert_eq!(
        total,
        (threads * per_thread) as u64,
        "every committed increment counted ({conflicts} conflicts retried)"
    );
}

#[test]
fn snapshots_and_old_revisions_survive_compaction_until_the_horizon() {
    let mut vfs = SimVfs::new(6);
    let db = open(&vfs);
    let first = db.put(b"k", b"v1").unwrap();
    let snapshot = db.snapshot().unwrap();
    for i in 0..200u32 {
        db.put(b"k", format!("v{}", i + 2).as_bytes()).unwrap();
        db.put(format!("filler{i:04}").as_bytes(), &[0u8; 300])
            .unwrap();
    }
    db.compact_history(first + 100).unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    // The snapshot still reads its revision, below the horizon; a new read there is refused.
    assert_eq!(snapshot.get(b"k").unwrap(), Some(b"v1".to_vec()));
    assert!(
        matches!(db.get_at(b"k", first), Err(Error::Compacted { requested, horizon }) if requested == first && horizon == first + 100)
    );
    assert!(matches!(
        db.get_at(b"k", u64::MAX),
        Err(Error::FutureRevision { .. })
    ));
    let at = db.get_at(b"k", first + 100).unwrap().unwrap();
    assert_eq!(
        at.version,
        at.revision / 2 + 1,
        "k was put at 1, then at every even revision"
    );
    assert!(matches!(
        db.compact_history(first + 50),
        Err(Error::Compacted { .. })
    ));
    drop(snapshot);
    let db = power_cut(&mut vfs, db);
    assert_eq!(db.history_horizon(), first + 100);
    assert!(matches!(
        db.get_at(b"k", first + 99),
        Err(Error::Compacted { .. })
    ));
    assert_eq!(db.get_at(b"k", first + 100).unwrap(), Some(at));
}

/// Concurrent writers in `GroupCommit` share groups, whose members are decided against each
/// other through the decide stage's overlay before any reaches the memtable: each key's version
/// must still count every put, and a reopen (which decides them again from the WAL) must agree.
/// On the real filesystem, so that each group waits on a real fsync and the next one fills up.
#[test]
fn concurrent_writers_count_every_version_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        background: BackgroundMode::Threads,
        durability: Durability::GroupCommit,
        memtable_size_bytes: 1 << 20,
        ..options()
    };
    let db = Db::open(dir.path(), options()).unwrap();
    let (threads, per_thread, keys) = (4usize, 100usize, 2usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let key = [b'v', ((t + i) % keys) as u8];
                    db.put(&key, &[t as u8; 16]).unwrap();
                }
            });
        }
    });
    let mut puts = vec![0u64; keys];
    for t in 0..threads {
        for i in 0..per_thread {
            puts[(t + i) % keys] += 1;
        }
    }
    let versions = |db: &Db| -> Vec<(u64, u64)> {
        (0..keys as u8)
            .map(|k| {
                let v = db.get_versioned(&[b'v', k]).unwrap().unwrap();
                (v.version, v.create_revision)
            })
            .collect()
    };
    let before = versions(&db);
    for (k, ((version, create_revision), expected)) in before.iter().zip(&puts).enumerate() {
        assert_eq!(version, expected, "every put counted once: {before:?}");
        // The create revision is the key's first version: absent just before it, version 1 at it.
        let key = [b'v', k as u8];
        assert_eq!(
            db.get_at(&key, create_revision - 1).unwrap(),
            None,
            "{before:?}"
        );
        let first = db.get_at(&key, *create_revision).unwrap().unwrap();
        assert_eq!(
            (first.version, first.revision),
            (1, *create_revision),
            "{before:?}"
        );
    }
    let stats = db.stats();
    assert!(
        stats.commit_syncs < stats.commits,
        "groups of several commits formed ({} syncs for {} commits)",
        stats.commit_syncs,
        stats.commits
    );
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(versions(&db), before, "replay decides the same metadata");
}
