//! `Options::read_only`: a crash-left database (WAL records past the last flush and a torn tail)
//! opened read-only answers reads as a writer's recovery would, refuses every write with
//! `Error::ReadOnly`, shares its lock with other read-only openers but not with a writer, and
//! leaves every file in the directory byte-identical, opening none of them writable (the open
//! modes `SimVfs` records). And a database held by a writer says which process holds it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kvstore::txn::Txn;
use kvstore::{Db, Error, KeyRange, Options};
use kvstore_faults::{OpKind, SimVfs};

fn read_only() -> Options {
    Options {
        read_only: true,
        ..Options::default()
    }
}

/// Every file of `dir` (recursively) with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(dir).unwrap().display().to_string();
        if path.is_dir() {
            for (inner, bytes) in files(&path) {
                all.insert(format!("{name}/{inner}"), bytes);
            }
        } else {
            all.insert(name, std::fs::read(&path).unwrap());
        }
    }
    all
}

/// A database as a crash leaves it: a flushed table, WAL records after it, and a torn record
/// at the WAL's end (a copy of the files of a live database, plus half a record's bytes).
fn crash_image(image: &Path) {
    let live = tempfile::tempdir().unwrap();
    let db = Db::open(live.path(), Options::default()).unwrap();
    db.put(b"flushed", b"1").unwrap();
    db.flush().unwrap();
    db.put(b"in-wal", b"2").unwrap();
    db.delete(b"flushed").unwrap();
    std::fs::create_dir_all(image).unwrap();
    for (name, bytes) in files(live.path()) {
        std::fs::write(image.join(name), bytes).unwrap();
    }
    db.close().unwrap();
    let wal = std::fs::read_dir(image)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(&[0x17, 0, 0, 0, 0xde, 0xad]);
    std::fs::write(&wal, bytes).unwrap();
}

#[test]
fn read_only_reads_a_crash_left_database_and_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("db");
    crash_image(&image);
    let before = files(&image);
    let db = Db::open(&image, read_only()).unwrap();
    let other = Db::open(&image, read_only()).unwrap();
    assert!(matches!(
        Db::open(&image, Options::default()),
        Err(Error::Locked { .. })
    ));
    assert_eq!(db.get(b"in-wal").unwrap(), Some(b"2".to_vec()));
    assert_eq!(other.get(b"flushed").unwrap(), None);
    let last = db.stats().last_revision;
    assert_eq!(last, 3);
    let refused = [
        db.put(b"k", b"v").map(|_| ()),
        db.delete(b"in-wal").map(|_| ()),
        db.txn(Txn::default()).map(|_| ()),
        db.grant(Duration::from_secs(5)).map(|_| ()),
        db.compact_history(2),
        db.flush(),
        db.compact_range(KeyRange::all()),
        db.checkpoint(dir.path().join("copy")).map(|_| ()),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        assert!(matches!(result, Err(Error::ReadOnly)), "{i}: {result:?}");
    }
    db.sync().unwrap();
    other.close().unwrap();
    db.close().unwrap();
    assert_eq!(files(&image), before, "a read-only session wrote");
    // A writer recovers the same state (and cuts the torn tail).
    let db = Db::open(&image, Options::default()).unwrap();
    assert_eq!(db.get(b"in-wal").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.stats().last_revision, last);
    db.close().unwrap();
}

#[test]
fn read_only_opens_every_file_for_reading_only() {
    let vfs = SimVfs::new(11);
    let dir = Path::new("/db");
    let shared = || std::sync::Arc::new(vfs.clone()) as std::sync::Arc<dyn kvstore::vfs::Vfs>;
    let db = Db::open_with_vfs(shared(), dir, Options::default()).unwrap();
    db.put(b"flushed", b"1").unwrap();
    db.flush().unwrap();
    db.put(b"in-wal", b"2").unwrap();
    db.close().unwrap();
    let start = vfs.trace().len();
    let db = Db::open_with_vfs(shared(), dir, read_only()).unwrap();
    assert_eq!(db.get(b"flushed").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"in-wal").unwrap(), Some(b"2".to_vec()));
    db.close().unwrap();
    let ops: Vec<_> = vfs.trace().split_off(start);
    let writable = [
        OpKind::Create,
        OpKind::Open,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::HardLink,
        OpKind::CreateDirAll,
        OpKind::SyncDir,
        OpKind::Append,
        OpKind::SyncData,
        OpKind::SetLen,
    ];
    let wrote: Vec<_> = ops.iter().filter(|t| writable.contains(&t.op)).collect();
    assert!(wrote.is_empty(), "a read-only open did {wrote:?}");
    // The manifest, the table and the WAL segment were each opened, for reading.
    let read: Vec<_> = ops.iter().filter(|t| t.op == OpKind::OpenRead).collect();
    for suffix in ["manifest.json", ".sst", ".log"] {
        assert!(
            read.iter()
                .any(|t| t.path.to_string_lossy().ends_with(suffix)),
            "no {suffix} opened in {read:?}"
        );
    }
}

#[test]
fn read_only_needs_a_database_and_refuses_options_that_write() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    assert!(matches!(
        Db::open(&missing, read_only()),
        Err(Error::InvalidArgument(_) | Error::Io { .. })
    ));
    assert!(!missing.exists(), "a read-only open made the directory");
    for options in [
        Options {
            key_index: true,
            ..read_only()
        },
        Options {
            salvage_wal: true,
            ..read_only()
        },
    ] {
        assert!(matches!(
            Db::open(dir.path(), options),
            Err(Error::InvalidArgument(_))
        ));
    }
    // A writer holding the lock keeps a read-only opener out.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), read_only()),
        Err(Error::Locked { .. })
    ));
    db.close().unwrap();
}

#[test]
fn a_locked_database_names_the_writer_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for options in [Options::default(), read_only()] {
        match Db::open(dir.path(), options) {
            Err(e @ Error::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert!(
                    e.to_string()
                        .contains(&format!("(process {})", std::process::id())),
                    "{e}"
                );
            }
            other => panic!("not locked: {other:?}"),
        }
    }
    db.close().unwrap();
    // Closed: the pid is gone, and read-only holders are not named.
    assert_eq!(std::fs::read(dir.path().join("LOCK")).unwrap(), b"");
    let reader = Db::open(dir.path(), read_only()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Locked { holder: None, .. })
    ));
    reader.close().unwrap();
}
