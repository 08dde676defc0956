//! Leases on the real engine (`spec/SEMANTICS.md`, "Leases"): grant, attach, keep alive, revoke
//! and expire by a manual clock; revocation deletes every attached key in one revision (and
//! watchers see it so); leases, their keys and revocations survive flushes and reopens, with
//! whole TTLs again after a reopen; lease errors are etcd's; a WAL lease record that breaks the
//! revision rule is corruption.

use std::sync::Arc;
use std::time::Duration;

use kvstore::clock::{ManualClock, SharedClock};
use kvstore::format::wal::WalBody;
use kvstore::txn::{Txn, TxnOp};
use kvstore::vfs::{OsVfs, Vfs};
use kvstore::wal::WalWriter;
use kvstore::watch::{WatchRequest, WatchResponse};
use kvstore::{Db, Error, HistoryRetention, KeyRange, LeaseExpiry, Options, WriteBatch};

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        history_retention: HistoryRetention::Manual,
        lease_expiry: LeaseExpiry::Manual,
        clock: SharedClock(Arc::clone(clock) as Arc<dyn kvstore::clock::Clock>),
        ..Options::default()
    }
}

fn setup() -> (tempfile::TempDir, Arc<ManualClock>, Db) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    (dir, clock, db)
}

fn keys(db: &Db, lease: u64) -> Vec<Vec<u8>> {
    db.time_to_live(lease).unwrap().unwrap().keys
}

#[test]
fn a_revocation_deletes_every_attached_key_in_one_revision() {
    let (_dir, _clock, db) = setup();
    let lease = db.grant(Duration::from_secs(60)).unwrap();
    let other = db.grant(Duration::from_secs(60)).unwrap();
    assert_ne!(lease, other);
    assert_eq!(
        db.leases().unwrap(),
        vec![lease.min(other), lease.max(other)]
    );
    // A grant takes no revision.
    assert_eq!(db.stats().last_revision, 0);
    db.put_with_lease(b"a", b"1", lease).unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put_with_lease(b"b", b"2", lease)
        .put_with_lease(b"c", b"3", other);
    db.write(batch).unwrap();
    db.put(b"plain", b"4").unwrap();
    // Moved to another lease, and detached by a plain put: neither is deleted with `lease`.
    db.put_with_lease(b"d", b"5", lease).unwrap();
    db.put_with_lease(b"d", b"6", other).unwrap();
    db.put_with_lease(b"e", b"7", lease).unwrap();
    let before = db.put(b"e", b"8").unwrap();
    assert_eq!(keys(&db, lease), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(db.get_versioned(b"a").unwrap().unwrap().lease, lease);

    let revision = db.revoke(lease).unwrap();
    assert_eq!(revision, before + 1, "one revision for both deletes");
    assert_eq!(db.get(b"a").unwrap(), None);
    assert_eq!(db.get(b"b").unwrap(), None);
    for key in [&b"c"[..], b"d", b"e", b"plain"] {
        assert!(db.get(key).unwrap().is_some(), "{key:?} survives");
    }
    assert_eq!(db.time_to_live(lease).unwrap(), None);
    assert!(matches!(
        db.revoke(lease),
        Err(Error::LeaseNotFound { id }) if id == lease
    ));
    // A lease without keys is revoked without a revision.
    let empty = db.grant(Duration::from_secs(1)).unwrap();
    assert_eq!(db.revoke(empty).unwrap(), revision);
    assert_eq!(db.stats().last_revision, revision);
}

#[test]
fn lease_errors_are_etcds() {
    let (_dir, _clock, db) = setup();
    assert!(matches!(
        db.put_with_lease(b"k", b"v", 42),
        Err(Error::LeaseNotFound { id: 42 })
    ));
    assert_eq!(
        db.stats().last_revision,
        0,
        "a refused put takes no revision"
    );
    assert_eq!(db.grant_id(42, Duration::from_secs(5)).unwrap(), 42);
    assert!(matches!(
        db.grant_id(42, Duration::from_secs(5)),
        Err(Error::LeaseExists { id: 42 })
    ));
    assert!(matches!(
        db.grant_id(0, Duration::from_secs(5)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.grant(Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.keep_alive(7),
        Err(Error::LeaseNotFound { id: 7 })
    ));
    assert_eq!(db.time_to_live(7).unwrap(), None);
    // A txn naming a lease not granted fails whole, as in etcd.
    let txn = Txn {
        compares: vec![],
        success: vec![
            TxnOp::Put {
                key: b"x".to_vec(),
                value: b"1".to_vec(),
                lease: 0,
            },
            TxnOp::Put {
                key: b"y".to_vec(),
                value: b"2".to_vec(),
                lease: 9,
            },
        ],
        failure: vec![],
    };
    assert!(matches!(db.txn(txn), Err(Error::LeaseNotFound { id: 9 })));
    assert_eq!(db.get(b"x").unwrap(), None);
    let txn = Txn {
        compares: vec![],
        success: vec![TxnOp::Put {
            key: b"x".to_vec(),
            value: b"1".to_vec(),
            lease: 42,
        }],
        failure: vec![],
    };
    db.txn(txn).unwrap();
    assert_eq!(keys(&db, 42), vec![b"x".to_vec()]);
}

#[test]
fn leases_expire_by_the_clock_and_keep_alive_defers_them() {
    let (_dir, clock, db) = setup();
    let (lease, _) = db
        .put_with_ttl(b"session", b"up", Duration::from_millis(100))
        .unwrap();
    let short = db.grant(Duration::from_millis(30)).unwrap();
    clock.advance(50);
    assert_eq!(db.expire_leases().unwrap(), vec![(short, 1)]);
    assert_eq!(
        db.time_to_live(lease).unwrap().unwrap().remaining,
        Duration::from_millis(50)
    );
    assert_eq!(db.keep_alive(lease).unwrap(), Duration::from_millis(100));
    clock.advance(99);
    assert_eq!(db.expire_leases().unwrap(), vec![]);
    clock.advance(1);
    // Past its deadline, before its revocation: still readable, not renewable, no time left.
    assert_eq!(db.get(b"session").unwrap(), Some(b"up".to_vec()));
    assert!(matches!(
        db.keep_alive(lease),
        Err(Error::LeaseNotFound { .. })
    ));
    assert_eq!(
        db.time_to_live(lease).unwrap().unwrap().remaining,
        Duration::ZERO
    );
    let before = db.stats().last_revision;
    assert_eq!(db.expire_leases().unwrap(), vec![(lease, before + 1)]);
    assert_eq!(db.get(b"session").unwrap(), None);
    assert_eq!(db.leases().unwrap(), Vec::<u64>::new());
}

#[test]
fn leases_and_their_keys_survive_flushes_and_reopens_with_whole_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    let flushed = db.grant(Duration::from_millis(500)).unwrap();
    let revoked = db.grant(Duration::from_millis(500)).unwrap();
    db.put_with_lease(b"f1", b"v", flushed).unwrap();
    db.put_with_lease(b"r1", b"v", revoked).unwrap();
    db.flush().unwrap();
    // Only in the WAL from here on.
    let logged = db.grant_id(77, Duration::from_millis(800)).unwrap();
    db.put_with_lease(b"w1", b"v", logged).unwrap();
    db.put_with_lease(b"f2", b"v", flushed).unwrap();
    db.revoke(revoked).unwrap();
    clock.advance(400);
    db.close().unwrap();

    clock.advance(10_000);
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    assert_eq!(db.leases().unwrap(), vec![flushed, logged]);
    assert_eq!(keys(&db, flushed), vec![b"f1".to_vec(), b"f2".to_vec()]);
    assert_eq!(keys(&db, logged), vec![b"w1".to_vec()]);
    let status = db.time_to_live(flushed).unwrap().unwrap();
    assert_eq!(
        status.remaining,
        Duration::from_millis(500),
        "whole TTL after a reopen"
    );
    assert_eq!(db.get(b"r1").unwrap(), None);
    assert_eq!(db.expire_leases().unwrap(), vec![]);
    db.flush().unwrap();
    db.close().unwrap();

    // Both leases now in the manifest only; they expire by the clock after the reopen.
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    assert_eq!(keys(&db, logged), vec![b"w1".to_vec()]);
    clock.advance(500);
    let revoked = db.expire_leases().unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![flushed]
    );
    assert_eq!(db.get(b"f1").unwrap(), None);
    assert_eq!(db.get(b"w1").unwrap(), Some(b"v".to_vec()));
    db.close().unwrap();
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    assert_eq!(db.leases().unwrap(), vec![logged]);
    assert_eq!(db.get(b"f2").unwrap(), None);
}

#[test]
fn a_revocation_reaches_watchers_as_one_revision_of_deletes() {
    let (_dir, _clock, db) = setup();
    let lease = db.grant(Duration::from_secs(5)).unwrap();
    db.put_with_lease(b"k1", b"v", lease).unwrap();
    let start = db.put_with_lease(b"k2", b"v", lease).unwrap() + 1;
    let watcher = db
        .watch(WatchRequest {
            start_revision: Some(start),
            ..WatchRequest::new(KeyRange::all())
        })
        .unwrap();
    let revision = db.revoke(lease).unwrap();
    let response = watcher
        .next_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let WatchResponse::Events {
        revision: got,
        events,
    } = response
    else {
        panic!("expected events, got {response:?}");
    };
    assert_eq!(got, revision);
    let deleted: Vec<_> = events.iter().map(|e| e.key.clone()).collect();
    assert_eq!(deleted, vec![b"k1".to_vec(), b"k2".to_vec()]);
}

#[test]
fn the_expiry_thread_revokes_expired_leases() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let db = Db::open(
        dir.path(),
        Options {
            lease_expiry: LeaseExpiry::Every(Duration::from_millis(5)),
            ..options(&clock)
        },
    )
    .unwrap();
    let (lease, _) = db
        .put_with_ttl(b"k", b"v", Duration::from_millis(10))
        .unwrap();
    clock.advance(10);
    let mut waited = Duration::ZERO;
    while db.time_to_live(lease).unwrap().is_some() {
        assert!(
            waited < Duration::from_secs(30),
            "the expiry thread never revoked it"
        );
        std::thread::sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
    assert_eq!(db.get(b"k").unwrap(), None);
    db.close().unwrap();
}

/// Appends `body` at `revision` to the WAL of the closed database in `dir`.
fn append_record(dir: &std::path::Path, revision: &dyn Fn(u64) -> u64, body: &WalBody) {
    let vfs: Arc<dyn Vfs> = Arc::new(OsVfs);
    let manifest = kvstore::manifest::load(vfs.as_ref(), dir).unwrap().unwrap();
    let recovered = kvstore::wal::recover(vfs.as_ref(), dir, manifest.wal_offset, false).unwrap();
    let mut writer = WalWriter::open(vfs, dir, &recovered, 1 << 20).unwrap();
    writer
        .append(revision(manifest.last_revision), 0, 0, body)
        .unwrap();
    writer.sync().unwrap();
}

#[test]
fn a_lease_record_that_breaks_the_revision_rule_is_corruption() {
    let grant = WalBody::LeaseGrant {
        lease: 3,
        ttl_ms: 10,
    };
    let above = |last: u64| last + 1;
    let below = |last: u64| last - 1;
    for (name, revision) in [("above", &above as &dyn Fn(u64) -> u64), ("below", &below)] {
        let (dir, clock, db) = setup();
        db.put(b"k", b"v").unwrap();
        db.close().unwrap();
        // A grant takes no revision: it must carry the one before it.
        append_record(dir.path(), revision, &grant);
        match Db::open(dir.path(), options(&clock)) {
            Err(Error::Corruption { what, .. }) => {
                assert!(what.contains("changes no key"), "{name}: {what}")
            }
            other => panic!("{name}: expected corruption, got {other:?}"),
        }
    }
    // The same record carrying the revision before it opens, granted.
    let (dir, clock, db) = setup();
    db.put(b"k", b"v").unwrap();
    db.close().unwrap();
    append_record(dir.path(), &|last| last, &grant);
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    assert_eq!(db.leases().unwrap(), vec![3]);
}
