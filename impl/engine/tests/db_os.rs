//! `Db` on the real filesystem (`OsVfs`) in temporary directories: reopen, large values, binary
//! keys, many keys across SSTs and levels, scans, concurrency, group commit, locking.

use std::collections::BTreeMap;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::db::key_range;
use kvstore::{
    BackgroundMode, Db, Durability, Error, KeyRange, Options, ScanOptions, WriteBatch, WriteOptions,
};

fn small(background: BackgroundMode) -> Options {
    Options {
        memtable_size_bytes: 64 * 1024,
        sst_block_size_bytes: 1024,
        sst_target_file_size_bytes: 32 * 1024,
        l1_target_size_bytes: 128 * 1024,
        wal_segment_size_bytes: 64 * 1024,
        background,
        durability: Durability::Buffered,
        clock: SharedClock::new(FixedClock(1_700_000_000_000)),
        ..Options::default()
    }
}

fn collect(scan: kvstore::Scan) -> Vec<(Vec<u8>, Vec<u8>)> {
    scan.map(|r| r.unwrap()).collect()
}

#[test]
fn put_get_delete_and_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.put(b"a", b"1").unwrap(), 1);
    assert_eq!(db.put(b"b", b"2").unwrap(), 2);
    assert_eq!(db.delete(b"a").unwrap(), 3);
    let mut batch = WriteBatch::new();
    batch.put(b"c", b"3").put(b"d", b"4").delete(b"b");
    assert_eq!(db.write(batch).unwrap(), 4);
    assert_eq!(db.get(b"a").unwrap(), None);
    assert_eq!(db.get(b"b").unwrap(), None);
    assert_eq!(db.get(b"c").unwrap(), Some(b"3".to_vec()));
    let v = db.get_versioned(b"d").unwrap().unwrap();
    assert_eq!((v.value.as_slice(), v.revision), (&b"4"[..], 4));
    assert!(matches!(
        db.write(WriteBatch::new()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(db.put(b"", b"x"), Err(Error::InvalidArgument(_))));
    assert_eq!(db.stats().last_revision, 4);
    db.close().unwrap();
}

#[test]
fn reopen_after_close_and_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k1", b"v1").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k1").unwrap(), Some(b"v1".to_vec()));
    db.put(b"k2", b"v2").unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k2").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(
        db.put(b"k3", b"v3").unwrap(),
        3,
        "the revision counter survives"
    );
}

#[test]
fn second_open_is_locked_until_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Locked { .. })
    ));
    db.close().unwrap();
    Db::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn data_files_without_manifest_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    db.close().unwrap();
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    assert!(matches!(
        Db::open(dir.path(), Options::default()),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn a_wal_revision_not_above_the_previous_names_its_segment_file_and_offset() {
    use kvstore::format::wal::{WalBody, WalRecord, encode_record, segment_file_name};
    let dir = tempfile::tempdir().unwrap();
    Db::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let record = |revision: u64| {
        encode_record(&WalRecord {
            revision,
            created_at_ms: 1,
            synced_through: 0,
            stamp: 0,
            body: WalBody::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: 0,
            },
        })
        .unwrap()
    };
    let first = [record(1), record(2)].concat();
    let second_base = first.len() as u64;
    let third = record(3);
    let second = [third.clone(), record(3)].concat();
    std::fs::write(dir.path().join(segment_file_name(0)), &first).unwrap();
    std::fs::write(dir.path().join(segment_file_name(second_base)), &second).unwrap();
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Corruption { file, offset, what }) => {
            assert_eq!(file, dir.path().join(segment_file_name(second_base)));
            assert_eq!(offset, third.len() as u64);
            assert!(what.contains("revision 3 is not above 3"), "{what}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn large_values_and_binary_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Inline)).unwrap();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    db.put(b"big", &big).unwrap();
    let keys: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0, 0],
        vec![0xFF],
        vec![0xFF, 0xFF, 0],
        vec![1, 0, 2],
    ];
    for (i, k) in keys.iter().enumerate() {
        db.put(k, &[i as u8; 3]).unwrap();
    }
    db.flush().unwrap();
    assert_eq!(db.get(b"big").unwrap().as_deref(), Some(big.as_slice()));
    db.close().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Inline)).unwrap();
    assert_eq!(db.get(b"big").unwrap().as_deref(), Some(big.as_slice()));
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(db.get(k).unwrap(), Some(vec![i as u8; 3]));
    }
    let all: Vec<Vec<u8>> = collect(db.scan(KeyRange::all(), ScanOptions::default()).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut expected = keys.clone();
    expected.push(b"big".to_vec());
    expected.sort();
    assert_eq!(all, expected);
    let ff = collect(db.scan_prefix(&[0xFF], ScanOptions::default()).unwrap());
    assert_eq!(ff.len(), 2);
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:07}").into_bytes()
}

fn many_keys(background: BackgroundMode, n: u32) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(background);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model = BTreeMap::new();
    for chunk in 0..n / 1000 {
        let mut batch = WriteBatch::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let v = format!("value-{i}-{}", i % 13).into_bytes();
            batch.put(&key(i), &v);
            model.insert(key(i), v);
        }
        db.write(batch).unwrap();
    }
    for i in (0..n).step_by(7) {
        db.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert!(stats.files_per_level.iter().sum::<usize>() > 1, "{stats:?}");
    let check = |db: &Db| {
        for i in (0..n).step_by(97) {
            assert_eq!(
                db.get(&key(i)).unwrap().as_ref(),
                model.get(&key(i)),
                "key {i}"
            );
        }
        let got = collect(db.scan(KeyRange::all(), ScanOptions::default()).unwrap());
        assert_eq!(got.len(), model.len());
        assert!(
            got.iter()
                .zip(model.iter())
                .all(|((k, v), (mk, mv))| k == mk && v == mv)
        );
    };
    check(&db);
    db.compact_range(KeyRange::all()).unwrap();
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    check(&db);
    let stats = db.stats();
    assert!(
        stats.files_per_level.iter().skip(1).sum::<usize>() > 1,
        "{stats:?}"
    );
}

#[test]
fn hundred_thousand_keys_inline() {
    many_keys(BackgroundMode::Inline, 100_000);
}

#[test]
fn many_keys_with_background_thread() {
    many_keys(BackgroundMode::Threads, 50_000);
}

#[test]
fn reverse_limit_prefix_and_bounded_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Inline)).unwrap();
    for p in ["a", "b", "c"] {
        for i in 0..100u32 {
            db.put(format!("{p}{i:03}").as_bytes(), &i.to_be_bytes())
                .unwrap();
        }
        db.flush().unwrap();
    }
    db.put(b"b050", b"new").unwrap();
    db.delete(b"b051").unwrap();
    let b = collect(db.scan_prefix(b"b", ScanOptions::default()).unwrap());
    assert_eq!(b.len(), 99);
    assert_eq!(b[50], (b"b050".to_vec(), b"new".to_vec()));
    let rev = collect(
        db.scan_prefix(
            b"b",
            ScanOptions {
                reverse: true,
                limit: Some(3),
                revision: None,
            },
        )
        .unwrap(),
    );
    let keys: Vec<&[u8]> = rev.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"b099"[..], b"b098", b"b097"]);
    let lo: &[u8] = b"a098";
    let hi: &[u8] = b"b002";
    let mid = collect(db.scan(key_range(lo..hi), ScanOptions::default()).unwrap());
    let keys: Vec<&[u8]> = mid.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"a098"[..], b"a099", b"b000", b"b001"]);
    let mid_rev = collect(
        db.scan(
            key_range(lo..=hi),
            ScanOptions {
                reverse: true,
                limit: None,
                revision: None,
            },
        )
        .unwrap(),
    );
    assert_eq!(mid_rev.len(), 5);
    assert_eq!(mid_rev[0].0, b"b002".to_vec());
}

#[test]
fn scans_see_a_consistent_snapshot_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Inline)).unwrap();
    for i in 0..2000u32 {
        db.put(&key(i), b"old").unwrap();
    }
    let scan = db.scan(KeyRange::all(), ScanOptions::default()).unwrap();
    for i in 0..2000u32 {
        db.put(&key(i), b"new").unwrap();
    }
    db.put(b"zzz", b"late").unwrap();
    db.flush().unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    let seen = collect(scan);
    assert_eq!(seen.len(), 2000);
    assert!(seen.iter().all(|(_, v)| v == b"old"));
}

#[test]
fn concurrent_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Threads)).unwrap();
    let writers: Vec<_> = (0..4u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..3000u32 {
                    let k = format!("t{t}-{i:05}");
                    db.put(k.as_bytes(), k.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2u32)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    // A batch-consistent view: every key a writer wrote before k is visible too.
                    let got = collect(db.scan_prefix(b"t0-", ScanOptions::default()).unwrap());
                    for (i, (k, v)) in got.iter().enumerate() {
                        assert_eq!(k, v);
                        assert_eq!(k, format!("t0-{i:05}").as_bytes());
                    }
                }
            })
        })
        .collect();
    for h in writers.into_iter().chain(readers) {
        h.join().unwrap();
    }
    for t in 0..4u32 {
        let n = collect(
            db.scan_prefix(format!("t{t}-").as_bytes(), ScanOptions::default())
                .unwrap(),
        )
        .len();
        assert_eq!(n, 3000);
    }
    db.close().unwrap();
}

/// A point read on another thread sees every acknowledged write at once, while writers widen the
/// memtable's key range at both ends (ascending and descending keys) and background flushes
/// freeze it: the memtable's prefix bounds never hide a key a reader can already see.
#[test]
fn point_reads_see_acknowledged_writes_at_both_ends_of_the_key_range() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    const N: u32 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(BackgroundMode::Threads)).unwrap();
    // For each writer: how many of its keys are acknowledged (0 = none yet).
    let acked: Arc<[AtomicU32; 2]> = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    // Writer 0 ascends from "m", writer 1 descends from "m": each write extends the range.
    let key_of = |writer: usize, i: u32| match writer {
        0 => format!("m{i:07}").into_bytes(),
        _ => format!("l{:07}", N - i).into_bytes(),
    };
    let writers: Vec<_> = (0..2usize)
        .map(|w| {
            let (db, acked) = (db.clone(), Arc::clone(&acked));
            std::thread::spawn(move || {
                for i in 0..N {
                    db.put(&key_of(w, i), b"v").unwrap();
                    acked[w].store(i + 1, Ordering::Release);
                }
            })
        })
        .collect();
    let reader = {
        let (db, acked) = (db.clone(), Arc::clone(&acked));
        std::thread::spawn(move || {
            let mut checked = 0u64;
            while (0..2).any(|w| acked[w].load(Ordering::Acquire) < N) {
                for w in 0..2usize {
                    let n = acked[w].load(Ordering::Acquire);
                    if let Some(last) = n.checked_sub(1) {
                        let k = key_of(w, last);
                        assert_eq!(db.get(&k).unwrap().as_deref(), Some(&b"v"[..]), "{k:?}");
                        checked += 1;
                    }
                }
            }
            checked
        })
    };
    for h in writers {
        h.join().unwrap();
    }
    assert!(reader.join().unwrap() > 0);
    db.close().unwrap();
}

#[test]
fn group_commit_from_many_threads_is_durable_and_shares_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::GroupCommit,
        ..small(BackgroundMode::Threads)
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let handles: Vec<_> = (0..8u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut revs = Vec::new();
                for i in 0..200u32 {
                    revs.push(db.put(format!("g{t}-{i}").as_bytes(), b"v").unwrap());
                    let s = db.stats();
                    assert!(s.wal_synced_offset > 0);
                }
                revs
            })
        })
        .collect();
    let mut revs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let stats = db.stats();
    eprintln!(
        "group commit: {} syncs for {} commits",
        stats.commit_syncs, stats.commits
    );
    assert_eq!(stats.commits, 1600);
    assert!(
        stats.commit_syncs < stats.commits,
        "no fsync was shared: {stats:?}"
    );
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(revs.len(), 1600, "each commit has its own revision");
    let per_write = db
        .put_with(
            b"x",
            b"y",
            WriteOptions {
                durability: Some(Durability::Sync),
                ..WriteOptions::default()
            },
        )
        .unwrap();
    assert_eq!(per_write, 1601);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    for t in 0..8u32 {
        assert_eq!(
            db.get(format!("g{t}-199").as_bytes()).unwrap(),
            Some(b"v".to_vec())
        );
    }
}

#[test]
fn close_makes_other_clones_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(other.put(b"a", b"b"), Err(Error::Closed)));
    drop(other);
    let _ = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
}
