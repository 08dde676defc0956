//! Incremental backups (`kvstore::backup`): each backup restores to a database that reads as the
//! source did at the backup's revision; a table already in the backup directory is not copied
//! again; `list` shows complete backups only; `verify` and `restore` catch damaged bytes.

use std::sync::Arc;
use std::time::Duration;

use kvstore::vfs::Vfs;
use kvstore::{
    BackgroundMode, Db, Error, HistoryRetention, KeyRange, Options, ScanOptions, backup,
};
use kvstore_faults::{PersistenceModel, SimVfs};

fn options() -> Options {
    Options {
        memtable_size_bytes: 64 * 1024,
        sst_block_size_bytes: 1024,
        sst_target_file_size_bytes: 16 * 1024,
        background: BackgroundMode::Inline,
        history_retention: HistoryRetention::Manual,
        ..Options::default()
    }
}

/// What `db` reads at every revision from its horizon to its last.
fn reads(db: &Db) -> Vec<Vec<(Vec<u8>, kvstore::Versioned)>> {
    (db.history_horizon()..=db.stats().last_revision)
        .map(|revision| {
            let scan = ScanOptions {
                revision: Some(revision),
                ..ScanOptions::default()
            };
            db.scan(KeyRange::all(), scan)
                .unwrap()
                .versioned()
                .collect::<Result<_, _>>()
                .unwrap()
        })
        .collect()
}

fn write_round(db: &Db, round: u8) {
    for k in 0..30u32 {
        db.put(format!("key{k:03}").as_bytes(), &[round; 400])
            .unwrap();
    }
    db.delete(format!("key{round:03}").as_bytes()).unwrap();
}

#[test]
fn backups_are_incremental_listed_verified_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (src, backups) = (dir.path().join("db"), dir.path().join("backups"));
    let db = Db::open(&src, options()).unwrap();
    db.grant_id(5, Duration::from_secs(60)).unwrap();
    write_round(&db, 1);
    db.flush().unwrap();
    write_round(&db, 2);
    let first = db.backup(&backups).unwrap();
    let first_reads = reads(&db);
    assert_eq!(first.info.id, 1);
    assert_eq!(first.tables_reused, 0);
    assert_eq!(first.tables_copied, first.info.tables);
    assert_eq!(first.info.revision, db.stats().last_revision);
    // More writes, a compacted horizon: the second backup shares the tables that did not change.
    write_round(&db, 3);
    db.compact_history(first.info.revision).unwrap();
    let second = db.backup(&backups).unwrap();
    let second_reads = reads(&db);
    assert_eq!(second.info.id, 2);
    assert!(second.tables_reused > 0, "{second:?}");
    assert_eq!(
        second.tables_copied + second.tables_reused,
        second.info.tables
    );
    assert_eq!(second.info.horizon, first.info.revision);
    assert_eq!(backup::list(&backups).unwrap(), [first.info, second.info]);
    for (summary, expected) in [(first, first_reads), (second, second_reads)] {
        assert_eq!(
            backup::verify(&backups, summary.info.id).unwrap(),
            summary.info
        );
        let target = dir.path().join(format!("restored-{}", summary.info.id));
        assert_eq!(
            backup::restore(&backups, summary.info.id, &target).unwrap(),
            summary.info
        );
        let restored = Db::open(&target, options()).unwrap();
        assert_eq!(restored.stats().last_revision, summary.info.revision);
        assert_eq!(reads(&restored), expected, "backup {}", summary.info.id);
        assert_eq!(restored.leases().unwrap(), [5]);
        restored.close().unwrap();
    }
    // A restore refuses a target that is not empty.
    let err = backup::restore(&backups, 1, dir.path().join("restored-2")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(matches!(
        backup::restore(&backups, 9, dir.path().join("nine")),
        Err(Error::Io { .. })
    ));
    db.close().unwrap();
}

#[test]
fn damaged_tables_and_metadata_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let db = Db::open(dir.path().join("db"), options()).unwrap();
    write_round(&db, 1);
    db.backup(&backups).unwrap();
    let tables = backups.join(backup::TABLES_DIR_NAME);
    let table = std::fs::read_dir(&tables)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&table, &bytes).unwrap();
    let err = backup::verify(&backups, 1).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file == &table),
        "{err}"
    );
    let err = backup::restore(&backups, 1, dir.path().join("restored")).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    // Metadata: a flipped byte, then a cut file.
    let meta = backups.join("00000000000000000001.backup");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&meta, &bytes).unwrap();
    let err = backup::list(&backups).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, what, .. } if file == &meta && what.contains("crc32c")),
        "{err}"
    );
    std::fs::write(&meta, &bytes[..40]).unwrap();
    assert!(matches!(
        backup::verify(&backups, 1),
        Err(Error::Corruption { .. })
    ));
}

/// A backup cut off by a power cut at any of its I/O operations is never listed; the backups
/// listed verify and restore; the next backup after the reboot completes.
#[test]
fn a_backup_cut_off_by_a_crash_is_never_listed() {
    let setup = SimVfs::new(0xbac0);
    let db = Db::open_with_vfs(Arc::new(setup.clone()), "/db", options()).unwrap();
    write_round(&db, 1);
    db.backup("/backups").unwrap();
    write_round(&db, 2);
    let expected = reads(&db);
    let image = setup.image();
    drop(db);
    let count = {
        let sim = SimVfs::from_image(&image, 1);
        let db = Db::open_with_vfs(Arc::new(sim.clone()), "/db", options()).unwrap();
        let before = sim.op_count();
        db.backup("/backups").unwrap();
        sim.op_count() - before
    };
    let mut crashed_listed = 0;
    for at in 0..=count {
        for model in [
            PersistenceModel::UnsyncedLost,
            PersistenceModel::RandomSubset,
        ] {
            let sim = SimVfs::from_image(&image, at);
            let db = Db::open_with_vfs(Arc::new(sim.clone()), "/db", options()).unwrap();
            sim.crash_at(sim.op_count() + at);
            let returned = db.backup("/backups").is_ok();
            std::mem::forget(db);
            let vfs = sim.reboot(model);
            let listed = backup::list_with_vfs(&vfs, "/backups".as_ref())
                .unwrap_or_else(|e| panic!("crash at {at}, {model}: {e}"));
            let ids: Vec<u64> = listed.iter().map(|b| b.id).collect();
            assert!(
                ids == [1] || ids == [1, 2],
                "crash at {at}, {model}: {ids:?}"
            );
            assert!(
                !returned || ids == [1, 2],
                "crash at {at}, {model}: returned, not listed"
            );
            if ids == [1, 2] {
                crashed_listed += 1;
                let target = "/restored";
                backup::restore_with_vfs(&vfs, "/backups".as_ref(), 2, target.as_ref())
                    .unwrap_or_else(|e| panic!("crash at {at}, {model}: {e}"));
                let restored = Db::open_with_vfs(Arc::new(vfs.clone()), target, options()).unwrap();
                assert_eq!(reads(&restored), expected, "crash at {at}, {model}");
            }
            backup::verify_with_vfs(&vfs, "/backups".as_ref(), 1).unwrap();
            // The directory takes the next backup whatever the crash left.
            let again = Db::open_with_vfs(Arc::new(vfs.clone()), "/db", options()).unwrap();
            let next = again.backup("/backups").unwrap();
            assert_eq!(next.info.id, ids.len() as u64 + 1);
            backup::verify_with_vfs(&vfs, "/backups".as_ref(), next.info.id).unwrap();
        }
    }
    assert!(crashed_listed > 0);
    eprintln!(
        "[backup crash points] {} crash points ({count} I/O ops of the backup x 2 models), {crashed_listed} left backup 2 complete",
        (count + 1) * 2
    );
}

#[test]
fn an_empty_or_missing_backup_directory_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(backup::list(dir.path().join("none")).unwrap().is_empty());
    assert!(backup::list(dir.path()).unwrap().is_empty());
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new(3));
    assert!(
        backup::list_with_vfs(vfs.as_ref(), "/x".as_ref())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn one_backup_at_a_time_into_a_directory() {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new(4));
    let db = Db::open_with_vfs(Arc::clone(&vfs), "/db", options()).unwrap();
    db.put(b"k", b"v").unwrap();
    vfs.create_dir_all("/backups".as_ref()).unwrap();
    let held = vfs.lock("/backups/LOCK".as_ref()).unwrap();
    assert!(matches!(db.backup("/backups"), Err(Error::Locked { .. })));
    drop(held);
    assert_eq!(db.backup("/backups").unwrap().info.id, 1);
}
