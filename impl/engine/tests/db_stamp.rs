//! Commit stamps on the real engine (`spec/SEMANTICS.md`, "Commit stamps"): every kind of commit
//! that logs a record records its stamp, one that logs nothing records none; a stamp below the
//! last is refused before anything is written; `last_stamp` survives a reopen from the
//! manifest alone (after a flush deleted the WAL) and from the manifest and the WAL; checkpoints
//! and backups keep it, an import does not; a WAL record whose stamp goes back is corruption.

use std::sync::Arc;
use std::time::Duration;

use kvstore::format::wal::WalBody;
use kvstore::txn::{Compare, CompareOp, CompareTarget, RangeRequest, Txn, TxnOp};
use kvstore::vfs::{OsVfs, Vfs};
use kvstore::wal::WalWriter;
use kvstore::{Db, Error, KeyRange, LeaseExpiry, Options, WriteBatch, WriteOptions};

fn options() -> Options {
    Options {
        lease_expiry: LeaseExpiry::Manual,
        ..Options::default()
    }
}

fn stamp(n: u64) -> WriteOptions {
    WriteOptions {
        stamp: Some(n),
        ..WriteOptions::default()
    }
}

fn manifest_stamp(dir: &std::path::Path) -> u64 {
    kvstore::manifest::load(&OsVfs, dir)
        .unwrap()
        .unwrap()
        .last_stamp
}

#[test]
fn every_commit_that_logs_records_its_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(db.last_stamp(), 0);
    db.put_with(b"a", b"1", stamp(1)).unwrap();
    assert_eq!(db.last_stamp(), 1);
    // Equal is allowed; `None` records nothing.
    db.put_with(b"b", b"2", stamp(1)).unwrap();
    db.put(b"c", b"3").unwrap();
    assert_eq!(db.last_stamp(), 1);
    db.delete_with(b"c", stamp(2)).unwrap();
    assert_eq!(db.last_stamp(), 2);
    // A delete of an absent key still commits (a tombstone), so it records its stamp.
    db.delete_with(b"absent", stamp(3)).unwrap();
    assert_eq!(db.last_stamp(), 3);
    let mut batch = WriteBatch::new();
    batch.put(b"d", b"5").delete(b"a");
    db.write_with(batch, stamp(4)).unwrap();
    assert_eq!(db.last_stamp(), 4);
    let put = Txn {
        success: vec![TxnOp::Put {
            key: b"e".to_vec(),
            value: b"6".to_vec(),
            lease: 0,
        }],
        ..Txn::default()
    };
    db.txn_with(put, stamp(5)).unwrap();
    assert_eq!(db.last_stamp(), 5);
    assert_eq!(
        db.delete_range_with(KeyRange::key(b"e"), stamp(6))
            .unwrap()
            .1,
        1
    );
    assert_eq!(db.last_stamp(), 6);
    // A grant and a revocation without keys take no revision but are logged.
    let revision = db.stats().last_revision;
    db.grant_id_with(9, Duration::from_secs(60), stamp(7))
        .unwrap();
    assert_eq!(db.last_stamp(), 7);
    db.revoke_with(9, stamp(8)).unwrap();
    assert_eq!(db.last_stamp(), 8);
    assert_eq!(db.stats().last_revision, revision);
    let mut tx = db.transaction().unwrap();
    tx.put(b"f", b"7").unwrap();
    tx.commit_with(stamp(9)).unwrap();
    assert_eq!(db.last_stamp(), 9);
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(db.last_stamp(), 9);
}

#[test]
fn a_commit_that_writes_nothing_records_no_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put_with(b"k", b"v", stamp(10)).unwrap();
    let read = Txn {
        success: vec![TxnOp::Range(RangeRequest {
            range: KeyRange::all(),
            limit: None,
        })],
        ..Txn::default()
    };
    db.txn_with(read, stamp(11)).unwrap();
    assert_eq!(
        db.delete_range_with(KeyRange::key(b"x"), stamp(12))
            .unwrap()
            .1,
        0
    );
    let failing = Txn {
        compares: vec![Compare::key(
            b"k",
            CompareOp::Equal,
            CompareTarget::Version(0),
        )],
        success: vec![TxnOp::Put {
            key: b"k".to_vec(),
            value: b"w".to_vec(),
            lease: 0,
        }],
        failure: vec![],
    };
    assert!(!db.txn_with(failing, stamp(13)).unwrap().succeeded);
    db.transaction().unwrap().commit_with(stamp(14)).unwrap();
    assert_eq!(db.last_stamp(), 10);
    // Not recorded, so not a floor either: a lower stamp than those is still accepted.
    db.put_with(b"k", b"w", stamp(10)).unwrap();
    assert_eq!(db.last_stamp(), 10);
}

#[test]
fn a_stamp_below_the_last_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    // 0 is no commit's stamp: accepted while the last stamp is 0, recording nothing.
    db.put_with(b"k", b"v", stamp(0)).unwrap();
    assert_eq!(db.last_stamp(), 0);
    db.put_with(b"k", b"v", stamp(5)).unwrap();
    let revision = db.stats().last_revision;
    let refused = |e: Error| {
        matches!(
            e,
            Error::StampBelowLast {
                stamp: 4,
                last_stamp: 5
            }
        )
    };
    assert!(refused(db.put_with(b"k", b"old", stamp(4)).unwrap_err()));
    assert!(refused(db.delete_with(b"k", stamp(4)).unwrap_err()));
    assert!(refused(
        db.grant_id_with(3, Duration::from_secs(1), stamp(4))
            .unwrap_err()
    ));
    let e = db.put_with(b"k", b"old", stamp(0)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::StampBelowLast {
                stamp: 0,
                last_stamp: 5
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("0") && e.to_string().contains("5"));
    assert_eq!(db.stats().last_revision, revision);
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.leases().unwrap(), Vec::<u64>::new());
    assert_eq!(db.last_stamp(), 5);
    // An unstamped write is never refused.
    db.put(b"k", b"w").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(
        (db.last_stamp(), db.get(b"k").unwrap()),
        (5, Some(b"w".to_vec()))
    );
}

#[test]
fn the_stamp_survives_flushes_wal_truncation_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put_with(b"a", b"1", stamp(3)).unwrap();
    db.flush().unwrap();
    assert_eq!(manifest_stamp(dir.path()), 3);
    // Only the manifest holds it now: the flush deleted the WAL below its offset.
    db.put(b"b", b"2").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(db.last_stamp(), 3);
    // The WAL's stamp is above the manifest's.
    db.put_with(b"c", b"3", stamp(8)).unwrap();
    assert_eq!(manifest_stamp(dir.path()), 3);
    // Closing flushes.
    db.close().unwrap();
    assert_eq!(manifest_stamp(dir.path()), 8);
    assert_eq!(Db::open(dir.path(), options()).unwrap().last_stamp(), 8);
}

#[test]
fn a_flush_records_the_stamp_as_of_its_freeze() {
    // The manifest a flush writes names the stamp of the records below its WAL offset, not a
    // later one: with a small memtable, writes freeze several memtables while later ones commit.
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        background: kvstore::BackgroundMode::Inline,
        ..options()
    };
    let db = Db::open(dir.path(), options.clone()).unwrap();
    let value = vec![7u8; 4096];
    for i in 1..=200u64 {
        db.put_with(format!("k{i:03}").as_bytes(), &value, stamp(i))
            .unwrap();
        let manifest = kvstore::manifest::load(&OsVfs, dir.path())
            .unwrap()
            .unwrap();
        // Every record below walOffset is in the tables: the manifest's stamp is the one of
        // the newest key the tables hold.
        let version = kvstore::manifest::to_version(&manifest, 7, dir.path()).unwrap();
        let in_tables = (1..=i)
            .filter(|j| {
                let key = format!("k{j:03}");
                (0..version.num_levels()).any(|l| {
                    version
                        .files(l)
                        .iter()
                        .any(|f| f.may_contain(key.as_bytes()))
                })
            })
            .max()
            .unwrap_or(0);
        assert_eq!(manifest.last_stamp, in_tables, "after the put stamped {i}");
    }
    db.close().unwrap();
    assert_eq!(Db::open(dir.path(), options).unwrap().last_stamp(), 200);
}

#[test]
fn checkpoints_and_backups_keep_the_stamp_and_an_import_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put_with(b"k", b"v", stamp(21)).unwrap();
    let copies = tempfile::tempdir().unwrap();
    let checkpoint = copies.path().join("checkpoint");
    db.checkpoint(&checkpoint).unwrap();
    let backups = copies.path().join("backups");
    let id = db.backup(&backups).unwrap().info.id;
    let mut stream = Vec::new();
    db.export(&mut stream).unwrap();
    db.close().unwrap();
    assert_eq!(Db::open(&checkpoint, options()).unwrap().last_stamp(), 21);
    let restored = copies.path().join("restored");
    kvstore::backup::restore(&backups, id, &restored).unwrap();
    assert_eq!(Db::open(&restored, options()).unwrap().last_stamp(), 21);
    let imported = copies.path().join("imported");
    let (db, _) = Db::import(&imported, options(), &mut stream.as_slice(), "stream").unwrap();
    assert_eq!(
        (db.last_stamp(), db.get(b"k").unwrap()),
        (0, Some(b"v".to_vec()))
    );
}

/// Appends a put stamped `stamp` to the WAL of the closed database in `dir`.
fn append_stamped(dir: &std::path::Path, stamp: u64) {
    let vfs: Arc<dyn Vfs> = Arc::new(OsVfs);
    let manifest = kvstore::manifest::load(vfs.as_ref(), dir).unwrap().unwrap();
    let recovered = kvstore::wal::recover(vfs.as_ref(), dir, manifest.wal_offset, false).unwrap();
    let last = recovered
        .records
        .last()
        .map_or(manifest.last_revision, |(_, r)| r.revision);
    let mut writer = WalWriter::open(vfs, dir, &recovered, 1 << 20).unwrap();
    let body = WalBody::Put {
        key: b"z".to_vec(),
        value: b"z".to_vec(),
        lease: 0,
    };
    writer.append(last + 1, 0, stamp, &body).unwrap();
    writer.sync().unwrap();
}

#[test]
fn a_wal_stamp_below_the_one_before_it_is_corruption() {
    // Below the manifest's lastStamp, and below an earlier record's.
    for flushed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        db.put_with(b"k", b"v", stamp(6)).unwrap();
        if flushed {
            db.flush().unwrap();
        }
        db.close().unwrap();
        append_stamped(dir.path(), 5);
        match Db::open(dir.path(), options()) {
            Err(Error::Corruption { what, .. }) => assert!(what.contains("stamp 5"), "{what}"),
            other => panic!("flushed {flushed}: expected corruption, got {other:?}"),
        }
    }
    // Equal, and unstamped, records replay.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put_with(b"k", b"v", stamp(6)).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    append_stamped(dir.path(), 6);
    append_stamped(dir.path(), 0);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(
        (db.last_stamp(), db.get(b"z").unwrap()),
        (6, Some(b"z".to_vec()))
    );
}
