//! Export and import (`spec/FORMAT.md` § 6) on the real engine: the copy reads the same as the
//! source at every revision from the horizon to the export's (values, metadata, deletions),
//! has its leases with their keys, its horizon and its revision, and goes on from there; an
//! export taken while a writer commits is consistent at its revision; a damaged or cut stream is
//! refused with the offset and leaves the target as it was; a written target is refused; etcd's
//! snapshot framing after the stream (FORMAT § 6.1) is accepted when right, refused when not.

use std::time::Duration;

use kvstore::format::etcd_snapshot::SnapshotDigest;
use kvstore::{
    Db, Error, HistoryRetention, KeyRange, LeaseExpiry, Options, ScanOptions, WriteBatch,
};

fn options() -> Options {
    Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        history_retention: HistoryRetention::Manual,
        lease_expiry: LeaseExpiry::Manual,
        ..Options::default()
    }
}

/// Every row a scan at `revision` returns, with its metadata.
fn rows_at(db: &Db, revision: u64) -> Vec<(Vec<u8>, kvstore::Versioned)> {
    db.scan(
        KeyRange::all(),
        ScanOptions {
            revision: Some(revision),
            ..ScanOptions::default()
        },
    )
    .unwrap()
    .versioned()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A source with history in tables and in the memtable, deletions, a compacted horizon and two
/// leases (one with keys).
fn source(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, options()).unwrap();
    let lease = db.grant_id(7, Duration::from_secs(60)).unwrap();
    db.grant_id(8, Duration::from_secs(5)).unwrap();
    for round in 0..3u8 {
        for k in 0..40u32 {
            let key = format!("key{k:03}");
            let value = vec![round; 300 + k as usize];
            if k % 7 == 0 {
                db.put_with_lease(key.as_bytes(), &value, lease).unwrap();
            } else {
                db.put(key.as_bytes(), &value).unwrap();
            }
        }
        let mut batch = WriteBatch::new();
        batch.delete(format!("key{:03}", round * 3 + 1).as_bytes());
        batch.put(b"batch", &[round]);
        db.write(batch).unwrap();
        if round == 1 {
            db.flush().unwrap();
            db.compact_history(db.stats().last_revision - 20).unwrap();
        }
    }
    db
}

#[test]
fn an_import_reads_as_the_source_at_every_retained_revision() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = source(from.path());
    let mut stream = Vec::new();
    let exported = db.export(&mut stream).unwrap();
    assert_eq!(exported.revision, db.stats().last_revision);
    assert_eq!(exported.horizon, db.history_horizon());
    assert_eq!((exported.leases, exported.bytes), (2, stream.len() as u64));
    let (copy, imported) =
        Db::import(to.path(), options(), &mut stream.as_slice(), "stream").unwrap();
    assert_eq!(imported, exported);
    assert_eq!(copy.stats().last_revision, exported.revision);
    assert_eq!(copy.history_horizon(), exported.horizon);
    for revision in exported.horizon..=exported.revision {
        assert_eq!(
            rows_at(&copy, revision),
            rows_at(&db, revision),
            "at {revision}"
        );
    }
    assert!(matches!(
        copy.get_at(b"key000", exported.horizon - 1),
        Err(Error::Compacted { .. })
    ));
    assert_eq!(copy.leases().unwrap(), vec![7, 8]);
    assert_eq!(
        copy.time_to_live(7).unwrap().unwrap().keys,
        db.time_to_live(7).unwrap().unwrap().keys
    );
    assert_eq!(copy.revoke(7).unwrap(), exported.revision + 1);
    assert_eq!(copy.get(b"key007").unwrap(), None);
    // An export is a function of the state: the source, unchanged, exports the same bytes.
    let mut again = Vec::new();
    db.export(&mut again).unwrap();
    assert_eq!(again, stream);
}

#[test]
fn an_export_during_writes_is_consistent_at_its_revision() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = source(from.path());
    let writer = db.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut n = 0u32;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            writer
                .put(format!("live{:03}", n % 50).as_bytes(), &n.to_be_bytes())
                .unwrap();
            n += 1;
        }
    });
    let mut stream = Vec::new();
    let exported = db.export(&mut stream).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
    let (copy, _) = Db::import(to.path(), options(), &mut stream.as_slice(), "stream").unwrap();
    assert_eq!(
        rows_at(&copy, exported.revision),
        rows_at(&db, exported.revision)
    );
}

/// `stream` with etcd's snapshot framing after it (FORMAT § 6.1), as a server's Snapshot sends.
fn framed(stream: &[u8]) -> Vec<u8> {
    let mut digest = SnapshotDigest::new();
    digest.update(stream);
    [stream, &digest.framing()].concat()
}

#[test]
fn an_etcd_framed_snapshot_imports_as_the_bare_stream() {
    let from = tempfile::tempdir().unwrap();
    let db = source(from.path());
    let mut stream = Vec::new();
    db.export(&mut stream).unwrap();
    let file = framed(&stream);
    assert_eq!(file.len() % 512, 32, "what etcdctl snapshot save requires");
    let to = tempfile::tempdir().unwrap();
    let (copy, summary) = Db::import(to.path(), options(), &mut file.as_slice(), "snap").unwrap();
    assert_eq!(summary.bytes, stream.len() as u64);
    let revision = db.stats().last_revision;
    assert_eq!(summary.revision, revision);
    for r in [db.history_horizon(), revision] {
        assert_eq!(rows_at(&copy, r), rows_at(&db, r), "at {r}");
    }
}

#[test]
fn a_damaged_or_cut_stream_is_refused_and_leaves_the_target_as_it_was() {
    let from = tempfile::tempdir().unwrap();
    let db = source(from.path());
    let mut stream = Vec::new();
    db.export(&mut stream).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte", {
            let mut s = stream.clone();
            let middle = s.len() / 2;
            s[middle] ^= 0x10;
            s
        }),
        ("a cut", stream[..stream.len() - 30].to_vec()),
        ("no trailer", stream[..stream.len() - 29].to_vec()),
        (
            "a byte after the trailer",
            [stream.clone(), vec![0]].concat(),
        ),
        ("etcd's framing with a wrong digest", {
            let mut s = framed(&stream);
            let last = s.len() - 1;
            s[last] ^= 1;
            s
        }),
        ("etcd's framing cut short", {
            let s = framed(&stream);
            s[..s.len() - 1].to_vec()
        }),
    ];
    for (what, bytes) in cases {
        let to = tempfile::tempdir().unwrap();
        match Db::import(to.path(), options(), &mut bytes.as_slice(), "stream") {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, std::path::Path::new("stream")),
            other => panic!("{what}: expected corruption, got {other:?}"),
        }
        let target = Db::open(to.path(), options()).unwrap();
        assert_eq!(target.stats().last_revision, 0, "{what}");
        assert_eq!(rows_at(&target, 0), vec![], "{what}");
        assert!(target.leases().unwrap().is_empty(), "{what}");
        assert!(
            target.stats().files_per_level.iter().all(|&n| n == 0),
            "{what}: the manifest lists a table"
        );
        let tables = std::fs::read_dir(to.path())
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().extension() == Some("sst".as_ref()))
            .count();
        assert_eq!(tables, 0, "{what}: an orphan table survived the open");
    }
    let written = tempfile::tempdir().unwrap();
    Db::open(written.path(), options())
        .unwrap()
        .put(b"k", b"v")
        .unwrap();
    assert!(matches!(
        Db::import(written.path(), options(), &mut stream.as_slice(), "stream"),
        Err(Error::InvalidArgument(_))
    ));
}
