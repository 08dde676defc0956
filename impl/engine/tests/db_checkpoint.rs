//! `Db::checkpoint` on the OS filesystem and on `SimVfs`: the checkpoint opens and reads exactly
//! as the source did at the checkpoint's revision (every revision from the horizon up, the
//! leases), also while writers go on; it survives the source's later writes, flushes and
//! compactions; a table that cannot be linked is copied; a target that is not empty is refused.

use std::sync::Arc;
use std::time::Duration;

use kvstore::vfs::Vfs;
use kvstore::{
    BackgroundMode, Db, Error, HistoryRetention, KeyRange, Options, ScanOptions, Versioned,
    WriteBatch, checkpoint_is_complete,
};
use kvstore_faults::{Failure, FaultConfig, OpKind, SimVfs};

fn options(background: BackgroundMode) -> Options {
    Options {
        memtable_size_bytes: 64 * 1024,
        sst_block_size_bytes: 1024,
        sst_target_file_size_bytes: 16 * 1024,
        l0_compaction_trigger_files: 2,
        l1_target_size_bytes: 64 * 1024,
        wal_segment_size_bytes: 64 * 1024,
        background,
        history_retention: HistoryRetention::Manual,
        ..Options::default()
    }
}

/// Every row a scan at `revision` returns, with its metadata.
fn rows_at(db: &Db, revision: u64) -> Vec<(Vec<u8>, Versioned)> {
    let scan = ScanOptions {
        revision: Some(revision),
        ..ScanOptions::default()
    };
    db.scan(KeyRange::all(), scan)
        .unwrap()
        .versioned()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Writes history: puts over several rounds, deletions, a compacted horizon, a leased key, and
/// a lease granted after the last flush (only the WAL holds it).
fn write_history(db: &Db) {
    let lease = db.grant_id(7, Duration::from_secs(60)).unwrap();
    for round in 0..4u8 {
        for k in 0..40u32 {
            let key = format!("key{k:03}");
            if k % 10 == 0 {
                db.put_with_lease(key.as_bytes(), &[round; 300], lease)
                    .unwrap();
            } else {
                db.put(key.as_bytes(), &[round; 300]).unwrap();
            }
        }
        let mut batch = WriteBatch::new();
        batch.delete(format!("key{:03}", round + 1).as_bytes());
        db.write(batch).unwrap();
        if round == 1 {
            db.flush().unwrap();
            db.compact_history(db.stats().last_revision - 10).unwrap();
        }
    }
    db.flush().unwrap();
    db.grant_id(8, Duration::from_secs(90)).unwrap();
}

/// What `db` reads at every revision from `horizon` to `revision`.
fn history(db: &Db, horizon: u64, revision: u64) -> Vec<Vec<(Vec<u8>, Versioned)>> {
    (horizon..=revision).map(|rev| rows_at(db, rev)).collect()
}

/// The checkpoint `copy` reads as `source` did at every revision from the horizon to
/// `revision`, has the same leases, and refuses reads below the horizon.
fn assert_same_at(copy: &Db, source: &Db, revision: u64, horizon: u64) {
    assert_reads(copy, &history(source, horizon, revision), revision, horizon);
}

/// [`assert_same_at`] against the source's reads `expected`, taken earlier.
fn assert_reads(copy: &Db, expected: &[Vec<(Vec<u8>, Versioned)>], revision: u64, horizon: u64) {
    assert_eq!(copy.stats().last_revision, revision);
    assert_eq!(copy.history_horizon(), horizon);
    assert_eq!(history(copy, horizon, revision), expected);
    if horizon > 0 {
        assert!(matches!(
            copy.get_at(b"key005", horizon - 1),
            Err(Error::Compacted { .. })
        ));
    }
    let mut leases = copy.leases().unwrap();
    leases.sort_unstable();
    assert_eq!(leases, [7, 8]);
}

#[test]
fn a_checkpoint_on_the_os_reads_as_the_source_did_and_survives_its_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, ckpt) = (dir.path().join("db"), dir.path().join("ckpt"));
    let db = Db::open(&src, options(BackgroundMode::Inline)).unwrap();
    write_history(&db);
    db.put(b"in-memtable", b"only the WAL has me").unwrap();
    let summary = db.checkpoint(&ckpt).unwrap();
    assert_eq!(summary.revision, db.stats().last_revision);
    assert_eq!(summary.horizon, db.history_horizon());
    assert!(summary.tables_linked > 0);
    assert_eq!(summary.tables_copied, 0);
    assert!(checkpoint_is_complete(&kvstore::vfs::OsVfs, &ckpt).unwrap());
    // The source goes on: writes, a flush and a compaction that drops the linked tables.
    for k in 0..40u32 {
        db.put(format!("key{k:03}").as_bytes(), b"later").unwrap();
    }
    db.compact_range(KeyRange::all()).unwrap();
    let copy = Db::open(&ckpt, options(BackgroundMode::Inline)).unwrap();
    assert_same_at(&copy, &db, summary.revision, summary.horizon);
    assert_eq!(
        copy.get(b"in-memtable").unwrap(),
        Some(b"only the WAL has me".to_vec())
    );
    // The checkpoint is a database of its own: its next commit follows the checkpoint's revision.
    assert_eq!(copy.put(b"new", b"x").unwrap(), summary.revision + 1);
    copy.close().unwrap();
    db.close().unwrap();
}

#[test]
fn a_checkpoint_taken_while_writers_go_on_is_consistent_at_its_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (src, ckpt) = (dir.path().join("db"), dir.path().join("ckpt"));
    let db = Db::open(&src, options(BackgroundMode::Threads)).unwrap();
    write_history(&db);
    let writers: Vec<_> = (0..3u8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..400u32 {
                    let mut batch = WriteBatch::new();
                    batch.put(format!("w{w}-{i:04}").as_bytes(), &[w; 200]);
                    batch.put(format!("w{w}-last").as_bytes(), &i.to_be_bytes());
                    db.write(batch).unwrap();
                }
            })
        })
        .collect();
    let summary = db.checkpoint(&ckpt).unwrap();
    for writer in writers {
        writer.join().unwrap();
    }
    let copy = Db::open(&ckpt, options(BackgroundMode::Inline)).unwrap();
    assert_same_at(&copy, &db, summary.revision, summary.horizon);
    // Each writer's batches are all in or all out, and a prefix of its sequence.
    for w in 0..3u8 {
        let last = copy.get(format!("w{w}-last").as_bytes()).unwrap();
        let written = last.map_or(0, |bytes| u32::from_be_bytes(bytes.try_into().unwrap()) + 1);
        let prefix = format!("w{w}-0");
        let rows = copy
            .scan_prefix(prefix.as_bytes(), ScanOptions::default())
            .unwrap()
            .count();
        assert_eq!(rows as u32, written, "writer {w}");
    }
    copy.close().unwrap();
    db.close().unwrap();
}

#[test]
fn a_target_that_is_not_empty_is_refused_and_an_empty_one_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), options(BackgroundMode::Inline)).unwrap();
    db.put(b"k", b"v").unwrap();
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("something"), b"x").unwrap();
    let err = db.checkpoint(&busy).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("not empty")),
        "{err}"
    );
    // The source is unharmed and an empty directory (or a nested new one) is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    db.checkpoint(&empty).unwrap();
    db.checkpoint(dir.path().join("a/b/c")).unwrap();
    let copy = Db::open(dir.path().join("a/b/c"), options(BackgroundMode::Inline)).unwrap();
    assert_eq!(copy.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.put(b"k", b"w").unwrap(), 2);
}

#[test]
fn a_checkpoint_of_an_empty_database_opens_empty() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), options(BackgroundMode::Inline)).unwrap();
    let summary = db.checkpoint(dir.path().join("ckpt")).unwrap();
    assert_eq!((summary.revision, summary.tables_linked), (0, 0));
    let copy = Db::open(dir.path().join("ckpt"), options(BackgroundMode::Inline)).unwrap();
    assert_eq!(copy.stats().last_revision, 0);
    assert_eq!(copy.put(b"k", b"v").unwrap(), 1);
}

/// On `SimVfs`, with every hard link failing as across filesystems: each table is copied, and
/// the copy reads the same.
#[test]
fn tables_that_cannot_be_linked_are_copied() {
    for cross_device in [false, true] {
        let sim = SimVfs::new(0xc4ec);
        if cross_device {
            sim.set_faults(FaultConfig::default().fail_path(
                "",
                Some(OpKind::HardLink),
                Failure::CrossesDevices,
            ));
        }
        let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
        let db =
            Db::open_with_vfs(Arc::clone(&vfs), "/db", options(BackgroundMode::Inline)).unwrap();
        write_history(&db);
        let summary = db.checkpoint("/ckpt").unwrap();
        let tables = summary.tables_linked + summary.tables_copied;
        assert!(tables > 0);
        assert_eq!(summary.tables_copied > 0, cross_device);
        assert_eq!(summary.tables_linked > 0, !cross_device);
        let copy =
            Db::open_with_vfs(Arc::clone(&vfs), "/ckpt", options(BackgroundMode::Inline)).unwrap();
        assert_same_at(&copy, &db, summary.revision, summary.horizon);
        // After a power cut that keeps nothing unsynced, the checkpoint is still all there.
        let expected = history(&db, summary.horizon, summary.revision);
        drop(copy);
        let after = sim.reboot(kvstore_faults::PersistenceModel::UnsyncedLost);
        let copy =
            Db::open_with_vfs(Arc::new(after), "/ckpt", options(BackgroundMode::Inline)).unwrap();
        assert_reads(&copy, &expected, summary.revision, summary.horizon);
    }
}
