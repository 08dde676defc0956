use super::*;
use std::thread;

fn put(t: &MemTable, key: &[u8], rev: u64, value: Option<&[u8]>) {
    t.insert(Entry {
        key: key.to_vec(),
        revision: rev,
        value: value.map(<[u8]>::to_vec),
        wal_offset: rev * 10,
        created_at_ms: rev * 100,
        meta: crate::entry::VersionMeta::first((value.map(<[u8]>::to_vec)).is_some(), rev),
    });
}

/// Inserts `writes` as one commit at `rev` (packed when it has `PACK_MIN_ENTRIES` or more).
fn commit(t: &MemTable, rev: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    let entries = writes
        .iter()
        .map(|(key, value)| Entry {
            key: key.clone(),
            revision: rev,
            value: value.clone(),
            wal_offset: rev * 10,
            created_at_ms: rev * 100,
            meta: crate::entry::VersionMeta::first(value.is_some(), rev),
        })
        .collect();
    t.insert_commit(entries);
}

fn keys_values(iter: MemTableIter) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
    iter.map(|e| {
        let e = e.unwrap();
        (e.key, e.revision, e.value)
    })
    .collect()
}

#[test]
fn get_sees_newest_version_at_or_below_snapshot() {
    let t = MemTable::new();
    put(&t, b"k", 2, Some(b"v2"));
    put(&t, b"k", 5, Some(b"v5"));
    put(&t, b"k", 7, None);
    assert_eq!(t.get(b"k", 1), None);
    assert_eq!(t.get(b"k", 2).unwrap().value, Some(b"v2".to_vec()));
    assert_eq!(t.get(b"k", 6).unwrap().value, Some(b"v5".to_vec()));
    let tomb = t.get(b"k", u64::MAX).unwrap();
    assert!(tomb.is_tombstone());
    assert_eq!(
        (tomb.revision, tomb.wal_offset, tomb.created_at_ms),
        (7, 70, 700)
    );
    assert_eq!(t.get(b"j", u64::MAX), None);
    assert_eq!(t.get(b"k\0", u64::MAX), None);
    assert_eq!(t.max_revision(), 7);
    assert_eq!(t.len(), 3);
}

#[test]
fn same_key_and_revision_keeps_the_last_write() {
    let t = MemTable::new();
    put(&t, b"k", 3, Some(b"first"));
    put(&t, b"k", 3, Some(b"second"));
    assert_eq!(t.get(b"k", 3).unwrap().value, Some(b"second".to_vec()));
    assert_eq!(t.len(), 1);
}

#[test]
fn size_grows_with_every_insert() {
    let t = MemTable::new();
    assert!(t.is_empty());
    assert_eq!(t.approximate_size_bytes(), 0);
    put(&t, b"abc", 1, Some(b"12345"));
    put(&t, b"abc", 2, None);
    let overhead = crate::entry::ENTRY_OVERHEAD_BYTES;
    assert_eq!(t.approximate_size_bytes(), 8 + 3 + 2 * overhead);
}

#[test]
fn scan_forward_and_reverse_respects_bounds_and_snapshot() {
    let t = Arc::new(MemTable::new());
    put(&t, b"a", 1, Some(b"a1"));
    put(&t, b"b", 2, Some(b"b2"));
    put(&t, b"c", 3, Some(b"c3"));
    put(&t, b"b", 4, None);
    put(&t, b"d", 5, Some(b"d5"));
    let range = KeyRange::new(
        Bound::Excluded(b"a".to_vec()),
        Bound::Included(b"d".to_vec()),
    );
    assert_eq!(
        keys_values(t.scan(range.clone(), Direction::Forward, 3)),
        vec![
            (b"b".to_vec(), 2, Some(b"b2".to_vec())),
            (b"c".to_vec(), 3, Some(b"c3".to_vec()))
        ]
    );
    assert_eq!(
        keys_values(t.scan(range.clone(), Direction::Reverse, u64::MAX)),
        vec![
            (b"d".to_vec(), 5, Some(b"d5".to_vec())),
            (b"c".to_vec(), 3, Some(b"c3".to_vec())),
            (b"b".to_vec(), 4, None),
        ]
    );
    let upto_c = KeyRange::new(Bound::Unbounded, Bound::Excluded(b"c".to_vec()));
    assert_eq!(
        keys_values(t.scan(upto_c, Direction::Reverse, 1)),
        vec![(b"a".to_vec(), 1, Some(b"a1".to_vec()))]
    );
    assert_eq!(
        keys_values(t.scan(KeyRange::all(), Direction::Forward, 0)),
        vec![]
    );
}

#[test]
fn a_running_scan_ignores_later_writes_and_does_not_block_them() {
    let t = Arc::new(MemTable::new());
    for i in 0..100u64 {
        put(&t, format!("k{i:03}").as_bytes(), i + 1, Some(b"old"));
    }
    let mut scan = t.scan(KeyRange::all(), Direction::Forward, 100);
    let first = scan.next().unwrap().unwrap();
    assert_eq!(first.key, b"k000".to_vec());
    let writer = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            for i in 0..100u64 {
                put(&t, format!("k{i:03}").as_bytes(), 101 + i, Some(b"new"));
                put(&t, format!("k{i:03}x").as_bytes(), 201 + i, Some(b"new"));
            }
        })
    };
    let rest: Vec<Entry> = scan.map(Result::unwrap).collect();
    writer.join().unwrap();
    assert_eq!(rest.len(), 99);
    assert!(
        rest.iter()
            .all(|e| e.value.as_deref() == Some(b"old".as_slice()))
    );
    assert_eq!(
        t.scan(KeyRange::all(), Direction::Forward, u64::MAX)
            .count(),
        200
    );
}

mod against_a_model {
    use super::*;
    use crate::range::Direction;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The newest version of each key at or below `snapshot` within `lo..hi`, in scan order.
    fn expected(
        versions: &BTreeMap<(Vec<u8>, u64), Option<Vec<u8>>>,
        lo: &[u8],
        hi: &[u8],
        snapshot: u64,
        direction: Direction,
    ) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
        let mut newest: BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> = BTreeMap::new();
        for ((key, rev), value) in versions {
            if *rev <= snapshot && key.as_slice() >= lo && key.as_slice() < hi {
                newest.insert(key.clone(), (*rev, value.clone()));
            }
        }
        let mut out: Vec<_> = newest.into_iter().map(|(k, (r, v))| (k, r, v)).collect();
        if direction == Direction::Reverse {
            out.reverse();
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Scans in both directions, at any snapshot and over any range, return exactly the
        /// model's newest visible versions, across refill boundaries (hundreds of keys, many
        /// versions each).
        #[test]
        fn scans_equal_the_model(
            writes in prop::collection::vec((0u16..400, prop::option::of(0u8..4)), 1..1500),
            commit_len in 1usize..24,
            lo in 0u16..400,
            len in 0u16..400,
            snapshot_pick in 0usize..1500,
            reverse in any::<bool>(),
        ) {
            // Commits of `commit_len` writes, each at one revision: those of PACK_MIN_ENTRIES or
            // more share one buffer, and a key written twice in one keeps its later write.
            let table = Arc::new(MemTable::new());
            let mut versions = BTreeMap::new();
            for (i, chunk) in writes.chunks(commit_len).enumerate() {
                let rev = u64::try_from(i).unwrap() + 1;
                let chunk: Vec<_> = chunk
                    .iter()
                    .map(|(k, v)| (format!("{k:04}").into_bytes(), v.map(|b| vec![b; 3])))
                    .collect();
                commit(&table, rev, &chunk);
                for (key, value) in chunk {
                    versions.insert((key, rev), value);
                }
            }
            let commits = writes.len().div_ceil(commit_len);
            let snapshot = u64::try_from(snapshot_pick.min(commits)).unwrap();
            let lo_key = format!("{lo:04}").into_bytes();
            let hi_key = format!("{:04}", lo.saturating_add(len)).into_bytes();
            let direction = if reverse { Direction::Reverse } else { Direction::Forward };
            let range = KeyRange::new(Bound::Included(lo_key.clone()), Bound::Excluded(hi_key.clone()));
            let got = keys_values(table.scan(range, direction, snapshot));
            prop_assert_eq!(got, expected(&versions, &lo_key, &hi_key, snapshot, direction));
            // History: every version, keys ascending, each key's versions newest first.
            let mut all: Vec<_> = versions.iter().map(|((k, r), v)| (k.clone(), *r, v.clone())).collect();
            all.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            prop_assert_eq!(keys_values(table.history()), all);
        }
    }

    /// Keys of 0..12 bytes over a 3-letter alphabet with zero bytes: many share an 8-byte
    /// prefix, some are shorter than one, some differ only past it.
    fn short_key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, b'a', 0xff]), 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Point reads of inserted and absent keys, at any snapshot, return the model's newest
        /// visible version: the prefix bounds never hide a key that is there.
        #[test]
        fn gets_equal_the_model(
            writes in prop::collection::vec((short_key(), prop::option::of(0u8..4)), 0..40),
            commit_len in 1usize..12,
            probes in prop::collection::vec(short_key(), 1..40),
            snapshot_pick in 0usize..40,
        ) {
            let table = MemTable::new();
            let mut versions = BTreeMap::new();
            for (i, chunk) in writes.chunks(commit_len).enumerate() {
                let rev = u64::try_from(i).unwrap() + 1;
                let chunk: Vec<_> = chunk
                    .iter()
                    .map(|(key, v)| (key.clone(), v.map(|b| vec![b; 3])))
                    .collect();
                commit(&table, rev, &chunk);
                for (key, value) in chunk {
                    versions.insert((key, rev), value);
                }
            }
            let snapshot = u64::try_from(snapshot_pick.min(writes.len())).unwrap();
            for probe in probes.iter().chain(writes.iter().map(|(k, _)| k)) {
                let want = versions
                    .iter()
                    .filter(|((k, rev), _)| k == probe && *rev <= snapshot)
                    .max_by_key(|((_, rev), _)| *rev)
                    .map(|((_, rev), value)| (*rev, value.clone()));
                let got = table.get(probe, snapshot).map(|e| (e.revision, e.value));
                prop_assert_eq!(got, want, "key {:?}", probe);
            }
        }
    }
}
