use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::ops::Bound;

fn file(number: u64, level: usize, smallest: &str, largest: &str, max_revision: u64) -> FileMeta {
    FileMeta {
        number,
        level,
        smallest_key: smallest.as_bytes().to_vec(),
        largest_key: largest.as_bytes().to_vec(),
        size_bytes: 100,
        wal_offset: 0,
        created_at_ms: 0,
        max_revision,
    }
}

fn counters(next_file_number: u64, last_revision: u64) -> VersionEdit {
    VersionEdit {
        next_file_number: Some(next_file_number),
        last_revision: Some(last_revision),
        ..VersionEdit::default()
    }
}

/// A version with L0 = {3 (rev 30), 2 (rev 20)} and L1 = {4: a..c, 5: e..g}.
fn sample() -> Version {
    let v = Version::new(4).apply(&counters(10, 100)).unwrap();
    v.apply(&VersionEdit {
        add: vec![
            file(2, 0, "b", "f", 20),
            file(3, 0, "a", "c", 30),
            file(5, 1, "e", "g", 5),
            file(4, 1, "a", "c", 5),
        ],
        ..VersionEdit::default()
    })
    .unwrap()
}

fn numbers<'a>(files: impl Iterator<Item = &'a Arc<FileMeta>>) -> Vec<u64> {
    files.map(|f| f.number).collect()
}

#[test]
fn levels_are_kept_in_order() {
    let v = sample();
    assert_eq!(numbers(v.files(0).iter()), vec![3, 2]);
    assert_eq!(numbers(v.files(1).iter()), vec![4, 5]);
    assert!(v.files(9).is_empty());
    assert_eq!(v.level_size_bytes(1), 200);
}

#[test]
fn files_for_key_are_newest_first() {
    let v = sample();
    assert_eq!(numbers(v.files_for_key(b"b")), vec![3, 2, 4]);
    assert_eq!(numbers(v.files_for_key(b"e")), vec![2, 5]);
    assert_eq!(numbers(v.files_for_key(b"d")), vec![2]);
    assert_eq!(numbers(v.files_for_key(b"z")), Vec::<u64>::new());
}

#[test]
fn overlapping_respects_exclusive_bounds() {
    let v = sample();
    let r = KeyRange::new(
        Bound::Excluded(b"c".to_vec()),
        Bound::Excluded(b"e".to_vec()),
    );
    assert!(v.overlapping(1, &r).is_empty());
    let r = KeyRange::new(
        Bound::Included(b"c".to_vec()),
        Bound::Included(b"e".to_vec()),
    );
    assert_eq!(numbers(v.overlapping(1, &r).iter()), vec![4, 5]);
}

#[test]
fn bad_edits_are_rejected() {
    let v = sample();
    let rejects = [
        (
            "overlap",
            VersionEdit {
                add: vec![file(6, 1, "c", "d", 1)],
                ..VersionEdit::default()
            },
        ),
        (
            "reused number",
            VersionEdit {
                add: vec![file(4, 2, "a", "b", 1)],
                ..VersionEdit::default()
            },
        ),
        (
            "number too big",
            VersionEdit {
                add: vec![file(10, 2, "a", "b", 1)],
                ..VersionEdit::default()
            },
        ),
        (
            "no such level",
            VersionEdit {
                add: vec![file(6, 4, "a", "b", 1)],
                ..VersionEdit::default()
            },
        ),
        (
            "reversed keys",
            VersionEdit {
                add: vec![file(6, 2, "b", "a", 1)],
                ..VersionEdit::default()
            },
        ),
        (
            "revision too new",
            VersionEdit {
                add: vec![file(6, 2, "a", "b", 101)],
                ..VersionEdit::default()
            },
        ),
        (
            "missing removal",
            VersionEdit {
                remove: vec![RemovedFile {
                    level: 1,
                    number: 3,
                }],
                ..VersionEdit::default()
            },
        ),
        ("counter backwards", counters(9, 100)),
        ("revision backwards", counters(10, 99)),
        (
            "wal backwards",
            VersionEdit {
                wal_offset: Some(0),
                ..VersionEdit::default()
            },
        ),
    ];
    let v = v
        .apply(&VersionEdit {
            wal_offset: Some(1),
            ..VersionEdit::default()
        })
        .unwrap();
    for (what, edit) in rejects {
        assert!(
            matches!(v.apply(&edit), Err(Error::InvalidArgument(_))),
            "{what} accepted"
        );
    }
}

#[test]
fn a_compaction_edit_moves_files_down() {
    let v = sample();
    let edit = VersionEdit {
        add: vec![file(6, 1, "a", "d", 30)],
        remove: [(0, 3), (0, 2), (1, 4)]
            .into_iter()
            .map(|(level, number)| RemovedFile { level, number })
            .collect(),
        ..VersionEdit::default()
    };
    let next = v.apply(&edit).unwrap();
    assert!(next.files(0).is_empty());
    assert_eq!(numbers(next.files(1).iter()), vec![6, 5]);
    assert_eq!(
        numbers(v.files(0).iter()),
        vec![3, 2],
        "the old version is untouched"
    );
}

// ---- property: apply keeps the invariants or rejects ----

/// An edit described relative to the version it is applied to, so many generated edits are valid.
#[derive(Clone, Debug)]
struct EditSpec {
    /// (level, number offset from next_file_number, smallest, span length, max_revision offset).
    add: Vec<(usize, u64, u8, u8, u64)>,
    /// (level, index into the live file numbers).
    remove: Vec<(usize, usize)>,
    next_file_number_delta: Option<i64>,
    last_revision_delta: Option<i64>,
    wal_offset_delta: Option<i64>,
    history_horizon_delta: Option<i64>,
    last_stamp_delta: Option<i64>,
}

fn edit_spec() -> impl Strategy<Value = EditSpec> {
    (
        prop::collection::vec((0usize..5, 0u64..4, 0u8..20, 0u8..4, 0u64..6), 0..4),
        prop::collection::vec((0usize..5, 0usize..8), 0..3),
        prop::option::of(-1i64..8),
        prop::option::of(-1i64..8),
        prop::option::of(-1i64..8),
        prop::option::of(-1i64..8),
        prop::option::of(-1i64..8),
    )
        .prop_map(|(add, remove, n, r, w, h, s)| EditSpec {
            add,
            remove,
            next_file_number_delta: n,
            last_revision_delta: r,
            wal_offset_delta: w,
            history_horizon_delta: h,
            last_stamp_delta: s,
        })
}

fn shift(base: u64, delta: Option<i64>) -> Option<u64> {
    delta.map(|d| base.saturating_add_signed(d))
}

fn materialize(v: &Version, spec: &EditSpec) -> VersionEdit {
    let live: Vec<u64> = (0..v.num_levels())
        .flat_map(|l| v.files(l).iter().map(|f| f.number))
        .collect();
    VersionEdit {
        add: spec
            .add
            .iter()
            .map(|&(level, off, lo, len, rev)| FileMeta {
                number: v.next_file_number() + off,
                level,
                smallest_key: vec![lo],
                largest_key: vec![lo.saturating_add(len)],
                size_bytes: 10,
                wal_offset: 0,
                created_at_ms: 0,
                max_revision: v.last_revision() + rev,
            })
            .collect(),
        remove: spec
            .remove
            .iter()
            .map(|&(level, i)| RemovedFile {
                level,
                number: live.get(i).copied().unwrap_or(999),
            })
            .collect(),
        next_file_number: shift(v.next_file_number(), spec.next_file_number_delta).map(|n| n + 4),
        last_revision: shift(v.last_revision(), spec.last_revision_delta).map(|r| r + 6),
        wal_offset: shift(v.wal_offset(), spec.wal_offset_delta),
        history_horizon: shift(v.history_horizon(), spec.history_horizon_delta),
        last_stamp: shift(v.last_stamp(), spec.last_stamp_delta),
        leases: None,
    }
}

pub(crate) fn check_invariants(v: &Version) {
    let mut seen = BTreeSet::new();
    for level in 0..v.num_levels() {
        for f in v.files(level) {
            assert_eq!(f.level, level);
            assert!(seen.insert(f.number), "file {} twice", f.number);
            assert!(f.number < v.next_file_number());
            assert!(f.smallest_key <= f.largest_key);
            assert!(f.max_revision <= v.last_revision());
        }
        for pair in v.files(level).windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if level == 0 {
                assert!(a.number > b.number);
            } else {
                assert!(a.largest_key < b.smallest_key, "overlap at L{level}");
            }
        }
    }
}

fn contents(v: &Version) -> BTreeSet<(usize, u64)> {
    (0..v.num_levels())
        .flat_map(|l| v.files(l).iter().map(move |f| (l, f.number)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every accepted edit yields a version that keeps the invariants and holds exactly the old
    /// files minus the removed plus the added; counters never go back.
    #[test]
    fn apply_keeps_invariants_or_rejects(specs in prop::collection::vec(edit_spec(), 1..30)) {
        let mut v = Version::new(4);
        for spec in &specs {
            let edit = materialize(&v, spec);
            match v.apply(&edit) {
                Ok(next) => {
                    check_invariants(&next);
                    let mut expected = contents(&v);
                    for r in &edit.remove {
                        prop_assert!(expected.remove(&(r.level, r.number)));
                    }
                    for f in &edit.add {
                        prop_assert!(expected.insert((f.level, f.number)));
                    }
                    prop_assert_eq!(contents(&next), expected);
                    prop_assert!(next.next_file_number() >= v.next_file_number());
                    prop_assert!(next.last_revision() >= v.last_revision());
                    prop_assert!(next.wal_offset() >= v.wal_offset());
                    prop_assert!(next.history_horizon() >= v.history_horizon());
                    prop_assert!(next.last_stamp() >= v.last_stamp());
                    v = next;
                }
                Err(e) => prop_assert!(matches!(e, Error::InvalidArgument(_))),
            }
        }
    }
}

/// A bound of `kind` (0: unbounded, 1: included, 2: excluded) at the one-byte key `key`.
fn bound(kind: u8, key: u8) -> Bound<Vec<u8>> {
    match kind {
        0 => Bound::Unbounded,
        1 => Bound::Included(vec![key]),
        _ => Bound::Excluded(vec![key]),
    }
}

proptest! {
    /// The binary-searched span of a sorted level holds exactly the files `overlapping` finds.
    #[test]
    fn overlapping_span_agrees_with_overlapping(
        keys in prop::collection::btree_set(0u8..40, 0..24),
        (start_kind, start) in (0u8..3, 0u8..42),
        (end_kind, end) in (0u8..3, 0u8..42),
    ) {
        // Consecutive pairs of the sorted keys make disjoint files (a single key: a one-key file).
        let keys: Vec<u8> = keys.into_iter().collect();
        let add = keys
            .chunks(2)
            .zip(1u64..)
            .map(|(pair, number)| {
                let (smallest, largest) = (pair[0], *pair.last().unwrap());
                let mut f = file(number, 1, "", "", 1);
                (f.smallest_key, f.largest_key) = (vec![smallest], vec![largest]);
                f
            })
            .collect();
        let v = Version::new(2)
            .apply(&counters(100, 1))
            .unwrap()
            .apply(&VersionEdit { add, ..VersionEdit::default() })
            .unwrap();
        let range = KeyRange::new(bound(start_kind, start), bound(end_kind, end));
        let span = v.overlapping_span(1, &range);
        prop_assert_eq!(
            numbers(v.files(1)[span].iter()),
            numbers(v.overlapping(1, &range).iter())
        );
    }
}
