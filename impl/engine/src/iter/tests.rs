use super::*;
use crate::error::Error;
use crate::format::sst::EntryRef;
use crate::memtable::MemTable;
use proptest::prelude::*;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

fn entry(key: &[u8], revision: u64, value: Option<&[u8]>) -> Entry {
    Entry {
        key: key.to_vec(),
        revision,
        value: value.map(<[u8]>::to_vec),
        wal_offset: 0,
        created_at_ms: 0,
        meta: crate::entry::VersionMeta::first((value.map(<[u8]>::to_vec)).is_some(), revision),
    }
}

fn source(items: Vec<Result<Entry>>) -> BoxedCursor {
    Box::new(OwnedCursor::new(items.into_iter()))
}

fn corruption() -> Error {
    Error::Corruption {
        file: PathBuf::from("000007.sst"),
        offset: 4096,
        what: "block checksum".to_owned(),
    }
}

fn keys(iter: MergeIter) -> Vec<(Vec<u8>, u64)> {
    iter.map(|e| e.map(|e| (e.key, e.revision)).unwrap())
        .collect()
}

#[test]
fn newest_revision_wins_whatever_the_source_order() {
    let older_listed_first = source(vec![Ok(entry(b"a", 1, Some(b"old")))]);
    let newer = source(vec![
        Ok(entry(b"a", 9, Some(b"new"))),
        Ok(entry(b"b", 2, None)),
    ]);
    let spec = ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX);
    let out: Vec<Entry> = MergeIter::new(vec![older_listed_first, newer], spec)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, vec![entry(b"a", 9, Some(b"new"))]);
}

#[test]
fn equal_revisions_resolve_to_the_first_source() {
    let first = source(vec![Ok(entry(b"a", 3, Some(b"first")))]);
    let second = source(vec![Ok(entry(b"a", 3, Some(b"second")))]);
    let spec = ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX);
    let out: Vec<Entry> = MergeIter::new(vec![first, second], spec)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, vec![entry(b"a", 3, Some(b"first"))]);
}

#[test]
fn versions_above_the_snapshot_are_invisible() {
    let newer = source(vec![
        Ok(entry(b"a", 9, None)),
        Ok(entry(b"c", 8, Some(b"c"))),
    ]);
    let older = source(vec![Ok(entry(b"a", 2, Some(b"a")))]);
    let spec = ScanSpec::user(KeyRange::all(), Direction::Forward, 5);
    assert_eq!(
        keys(MergeIter::new(vec![newer, older], spec)),
        vec![(b"a".to_vec(), 2)]
    );
}

#[test]
fn tombstones_hidden_for_users_kept_for_compaction() {
    let make = || {
        vec![
            source(vec![
                Ok(entry(b"a", 5, None)),
                Ok(entry(b"b", 6, Some(b"b"))),
            ]),
            source(vec![Ok(entry(b"a", 1, Some(b"a")))]),
        ]
    };
    let user = ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX);
    assert_eq!(keys(MergeIter::new(make(), user)), vec![(b"b".to_vec(), 6)]);
    assert_eq!(
        keys(MergeIter::new(
            make(),
            ScanSpec {
                tombstones: Tombstones::Keep,
                ..ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX)
            }
        )),
        vec![(b"a".to_vec(), 5), (b"b".to_vec(), 6)]
    );
}

#[test]
fn out_of_range_keys_from_sources_are_dropped_in_both_directions() {
    let range = KeyRange::new(
        Bound::Included(b"b".to_vec()),
        Bound::Excluded(b"d".to_vec()),
    );
    let fwd = source(
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| Ok(entry(k.as_bytes(), 1, Some(b"v"))))
            .collect(),
    );
    let spec = ScanSpec::user(range.clone(), Direction::Forward, u64::MAX);
    assert_eq!(
        keys(MergeIter::new(vec![fwd], spec)),
        vec![(b"b".to_vec(), 1), (b"c".to_vec(), 1)]
    );
    let rev = source(
        ["e", "d", "c", "b", "a"]
            .iter()
            .map(|k| Ok(entry(k.as_bytes(), 1, Some(b"v"))))
            .collect(),
    );
    let spec = ScanSpec::user(range, Direction::Reverse, u64::MAX);
    assert_eq!(
        keys(MergeIter::new(vec![rev], spec)),
        vec![(b"c".to_vec(), 1), (b"b".to_vec(), 1)]
    );
}

#[test]
fn limit_counts_yielded_entries_not_hidden_ones() {
    let src = source(vec![
        Ok(entry(b"a", 1, None)),
        Ok(entry(b"b", 2, Some(b"b"))),
        Ok(entry(b"c", 3, Some(b"c"))),
    ]);
    let spec = ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX).with_limit(1);
    assert_eq!(
        keys(MergeIter::new(vec![src], spec)),
        vec![(b"b".to_vec(), 2)]
    );
}

#[test]
fn a_source_error_is_yielded_then_the_scan_ends() {
    let good = source(vec![
        Ok(entry(b"a", 1, Some(b"a"))),
        Ok(entry(b"z", 1, Some(b"z"))),
    ]);
    let bad = source(vec![
        Ok(entry(b"b", 2, Some(b"b"))),
        Err(corruption()),
        Ok(entry(b"c", 3, Some(b"c"))),
    ]);
    let spec = ScanSpec::user(KeyRange::all(), Direction::Forward, u64::MAX);
    let mut merge = MergeIter::new(vec![good, bad], spec);
    assert_eq!(merge.next().unwrap().unwrap().key, b"a".to_vec());
    assert_eq!(merge.next().unwrap().unwrap().key, b"b".to_vec());
    assert!(matches!(
        merge.next(),
        Some(Err(Error::Corruption { offset: 4096, .. }))
    ));
    assert!(merge.next().is_none());
    assert!(merge.next().is_none());
}

// ---- property: memtables + merge against a BTreeMap model ----

/// Small key alphabet with the edge bytes 0x00 and 0xFF, so keys collide and prefixes matter.
fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, b'a', b'b', 0xFF]), 1..3)
}

fn bound_strategy() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key_strategy().prop_map(Bound::Included),
        key_strategy().prop_map(Bound::Excluded),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    /// One commit writing these keys (None = delete) at one revision.
    Commit(Vec<(Vec<u8>, Option<u8>)>),
    /// Freeze the active memtable and start a new one (the old one stays a merge source).
    Freeze,
    /// Point read at `current - back`: memtables newest first, the first version found wins.
    Get { key: Vec<u8>, back: u64 },
    /// Scan at `current - back`; after the first item, `interleave` is committed (at newer
    /// revisions) before the scan is drained.
    Scan {
        range: KeyRange,
        reverse: bool,
        limit: Option<usize>,
        back: u64,
        interleave: Vec<(Vec<u8>, Option<u8>)>,
    },
}

fn writes() -> impl Strategy<Value = Vec<(Vec<u8>, Option<u8>)>> {
    prop::collection::vec(
        (key_strategy(), prop::option::weighted(0.7, any::<u8>())),
        1..4,
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let range = prop_oneof![
        (bound_strategy(), bound_strategy()).prop_map(|(s, e)| KeyRange::new(s, e)),
        prop::collection::vec(prop::sample::select(vec![0x00u8, b'a', 0xFF]), 0..3)
            .prop_map(|p| KeyRange::prefix(&p)),
    ];
    prop_oneof![
        6 => writes().prop_map(Op::Commit),
        1 => Just(Op::Freeze),
        2 => (key_strategy(), 0u64..4).prop_map(|(key, back)| Op::Get { key, back }),
        3 => (range, any::<bool>(), prop::option::of(0usize..4), 0u64..4, prop::collection::vec((key_strategy(), prop::option::of(any::<u8>())), 0..3))
            .prop_map(|(range, reverse, limit, back, interleave)| Op::Scan { range, reverse, limit, back, interleave }),
    ]
}

/// Every version ever written, in commit order: (key, revision, value).
type Model = Vec<(Vec<u8>, u64, Option<Vec<u8>>)>;

fn model_scan(
    model: &Model,
    range: &KeyRange,
    reverse: bool,
    limit: Option<usize>,
    snap: u64,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut latest: std::collections::BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> =
        Default::default();
    for (k, rev, v) in model {
        // Later writes at the same revision (inside one batch) replace earlier ones.
        if *rev <= snap && latest.get(k).is_none_or(|(r, _)| r <= rev) {
            latest.insert(k.clone(), (*rev, v.clone()));
        }
    }
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = latest
        .into_iter()
        .filter(|(k, _)| range.contains(k))
        .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
        .collect();
    if reverse {
        out.reverse();
    }
    out.truncate(limit.unwrap_or(usize::MAX));
    out
}

struct Engine {
    memtables: Vec<Arc<MemTable>>,
    revision: u64,
    model: Model,
}

impl Engine {
    fn commit(&mut self, writes: &[(Vec<u8>, Option<u8>)]) {
        self.revision += 1;
        let active = self.memtables.last().unwrap();
        for (k, v) in writes {
            let value = v.map(|b| vec![b; 2]);
            active.insert(Entry {
                key: k.clone(),
                revision: self.revision,
                value: value.clone(),
                wal_offset: 0,
                created_at_ms: 0,
                meta: crate::entry::VersionMeta::first((value.clone()).is_some(), self.revision),
            });
            self.model.push((k.clone(), self.revision, value));
        }
    }

    fn scan(&self, spec: ScanSpec) -> MergeIter {
        let sources = self
            .memtables
            .iter()
            .rev()
            .map(|m| {
                let scan = m.scan(spec.range.clone(), spec.direction, spec.snapshot_rev);
                Box::new(OwnedCursor::new(scan)) as BoxedCursor
            })
            .collect();
        MergeIter::new(sources, spec)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Scans over several memtables through the merge equal the model at the scan's snapshot,
    /// forward and reverse, with bounds, prefixes and limits, even with commits mid-scan.
    #[test]
    fn memtables_and_merge_match_the_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut db = Engine { memtables: vec![Arc::new(MemTable::new())], revision: 0, model: Vec::new() };
        for op in ops {
            match op {
                Op::Commit(writes) => db.commit(&writes),
                Op::Freeze => db.memtables.push(Arc::new(MemTable::new())),
                Op::Get { key, back } => {
                    let snap = db.revision.saturating_sub(back);
                    let got = db.memtables.iter().rev().find_map(|m| m.get(&key, snap)).and_then(|e| e.value);
                    let range = KeyRange::new(Bound::Included(key.clone()), Bound::Included(key.clone()));
                    let expected = model_scan(&db.model, &range, false, None, snap).pop().map(|(_, v)| v);
                    prop_assert_eq!(got, expected);
                }
                Op::Scan { range, reverse, limit, back, interleave } => {
                    let snap = db.revision.saturating_sub(back);
                    let direction = if reverse { Direction::Reverse } else { Direction::Forward };
                    let mut spec = ScanSpec::user(range.clone(), direction, snap);
                    spec.limit = limit;
                    let expected = model_scan(&db.model, &range, reverse, limit, snap);
                    // The owned and the lending sequences, each with commits after its first row.
                    let mut iter = db.scan(spec.clone());
                    let mut lent = db.scan(spec);
                    let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                    let mut got_lent: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                    let copy = |e: EntryRef<'_>| (e.key.to_vec(), e.value.unwrap().to_vec());
                    if let Some(first) = iter.next() {
                        let e = first.unwrap();
                        got.push((e.key, e.value.unwrap()));
                    }
                    if let Some(first) = lent.next_ref() {
                        got_lent.push(copy(first.unwrap()));
                    }
                    if !interleave.is_empty() {
                        db.commit(&interleave);
                    }
                    for e in iter {
                        let e = e.unwrap();
                        got.push((e.key, e.value.unwrap()));
                    }
                    while let Some(e) = lent.next_ref() {
                        got_lent.push(copy(e.unwrap()));
                    }
                    prop_assert_eq!(&got, &expected);
                    prop_assert_eq!(got_lent, expected);
                }
            }
        }
    }
}
