use super::*;
use crate::entry::VersionMeta;
use crate::iter::{BoxedCursor, BoxedSource, HistoryMerge, MergeIter, OwnedCursor, ScanSpec};
use crate::range::{Direction, KeyRange};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn entry(key: u8, revision: u64, value: Option<u8>) -> Entry {
    Entry {
        key: vec![key],
        revision,
        meta: VersionMeta::first(value.is_some(), revision),
        value: value.map(|v| vec![v; 3]),
        wal_offset: revision,
        created_at_ms: 0,
    }
}

/// Keeps every version: no reader below revision 0, not the bottom.
const ALL: Retention = Retention {
    floor: 0,
    bottommost: false,
};

fn ok(entries: Vec<Entry>) -> impl Iterator<Item = Result<Entry>> {
    entries.into_iter().map(Ok)
}

#[test]
fn tombstones_are_dropped_only_at_the_bottom() {
    let input = || ok(vec![entry(1, 5, None), entry(2, 6, Some(7))]);
    let keep = |bottommost| Retention {
        floor: 9,
        bottommost,
    };
    let kept = split_into_files(input(), keep(false), 1 << 20).unwrap();
    assert_eq!(kept, vec![vec![entry(1, 5, None), entry(2, 6, Some(7))]]);
    let dropped = split_into_files(input(), keep(true), 1 << 20).unwrap();
    assert_eq!(dropped, vec![vec![entry(2, 6, Some(7))]]);
    // Above the floor a tombstone stays even at the bottom: a read between sees it.
    let pinned = Retention {
        floor: 4,
        bottommost: true,
    };
    assert_eq!(split_into_files(input(), pinned, 1 << 20).unwrap(), kept);
}

#[test]
fn versions_below_the_floor_keep_only_the_newest() {
    let input = ok(vec![
        entry(1, 9, Some(3)),
        entry(1, 6, Some(2)),
        entry(1, 4, Some(1)),
        entry(1, 2, Some(0)),
        entry(2, 3, None),
        entry(2, 1, Some(5)),
    ]);
    let retention = Retention {
        floor: 6,
        bottommost: false,
    };
    let kept = split_into_files(input, retention, 1 << 20).unwrap();
    let revisions: Vec<(u8, u64)> = kept[0].iter().map(|e| (e.key[0], e.revision)).collect();
    // Key 1: 9 is above the floor, 6 is what a read at the floor sees; 4 and 2 are unreachable.
    // Key 2: the tombstone at 3 is what a read at the floor sees (not bottommost: it stays).
    assert_eq!(revisions, vec![(1, 9), (1, 6), (2, 3)]);
}

#[test]
fn a_key_never_spans_two_files() {
    let input = ok(vec![
        entry(1, 3, Some(1)),
        entry(1, 2, Some(1)),
        entry(2, 1, Some(2)),
    ]);
    let files = split_into_files(
        input,
        Retention {
            floor: 0,
            bottommost: false,
        },
        10,
    )
    .unwrap();
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 1]);
}

#[test]
fn files_are_cut_before_exceeding_the_target() {
    // Each entry is 1 + 3 + ENTRY_OVERHEAD_BYTES = 52 bytes: two fit in 110, a third does not.
    assert_eq!(entry(0, 1, Some(0)).size_bytes(), 52);
    let input = ok((0..5).map(|k| entry(k, 1, Some(k))).collect());
    let files = split_into_files(input, ALL, 110).unwrap();
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
}

#[test]
fn an_oversized_entry_gets_a_file_of_its_own() {
    let files = split_into_files(
        ok(vec![entry(1, 1, Some(1)), entry(2, 1, Some(2))]),
        ALL,
        10,
    )
    .unwrap();
    assert_eq!(files.len(), 2);
}

#[test]
fn an_input_error_ends_the_stream() {
    let err = crate::error::Error::Corruption {
        file: "9.sst".into(),
        offset: 0,
        what: "footer".to_owned(),
    };
    let input = vec![Ok(entry(1, 1, Some(1))), Err(err), Ok(entry(2, 1, Some(1)))];
    let mut stream = CompactionStream::new(input.into_iter(), ALL, 1 << 20);
    assert!(stream.next().unwrap().unwrap().starts_new_file);
    assert!(stream.next().unwrap().is_err());
    assert!(stream.next().is_none());
    assert!(split_into_files(vec![Err(crate::error::Error::Closed)].into_iter(), ALL, 1).is_err());
}

// ---- property: compaction preserves every read at or above the floor ----

/// Every version of a slice of commits, in internal-key order: what one SST holds.
fn as_sst(commits: &[(u8, Option<u8>)], first_revision: u64) -> Vec<Entry> {
    let mut versions: Vec<Entry> = commits
        .iter()
        .enumerate()
        .map(|(i, (k, v))| entry(*k, first_revision + i as u64, *v))
        .collect();
    versions.sort_by(|a, b| a.key.cmp(&b.key).then(b.revision.cmp(&a.revision)));
    versions
}

/// A source of `entries` (held in internal-key order) in `direction`.
fn directed(entries: &[Entry], direction: Direction) -> BoxedSource {
    let mut entries = entries.to_vec();
    if direction == Direction::Reverse {
        entries.reverse();
    }
    Box::new(entries.into_iter().map(Ok))
}

/// Of a table's versions (internal-key order), the newest at or below `revision` of each key.
fn visible_versions(table: &[Entry], revision: u64) -> Vec<Entry> {
    let mut seen: Option<&[u8]> = None;
    let mut out = Vec::new();
    for e in table.iter().filter(|e| e.revision <= revision) {
        if seen != Some(e.key.as_slice()) {
            seen = Some(&e.key);
            out.push(e.clone());
        }
    }
    out
}

/// What a read at `revision` sees through `tables` (newest first).
fn visible(
    tables: &[&[Entry]],
    direction: Direction,
    revision: u64,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let sources: Vec<BoxedCursor> = tables
        .iter()
        .map(|t| {
            let source = directed(&visible_versions(t, revision), direction);
            Box::new(OwnedCursor::new(source)) as BoxedCursor
        })
        .collect();
    MergeIter::new(
        sources,
        ScanSpec::user(KeyRange::all(), direction, revision),
    )
    .map(|e| e.map(|e| (e.key, e.value)).unwrap())
    .collect()
}

fn commits() -> impl Strategy<Value = Vec<(u8, Option<u8>)>> {
    prop::collection::vec((0u8..8, prop::option::weighted(0.6, any::<u8>())), 0..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A read at any revision at or above the floor through the compacted output (plus whatever
    /// lies below) equals the read through the inputs; below the floor at most one version a key
    /// remains, and none that is a tombstone at the bottom; a key's versions share a file; files
    /// respect the target size.
    #[test]
    fn compaction_preserves_every_read_at_or_above_the_floor(
        below in commits(),
        inputs in prop::collection::vec(commits(), 1..5),
        target in 20u64..200,
        floor_pick in any::<u64>(),
    ) {
        // Revisions: the data below is oldest, then each input newer than the last.
        let below_sst = as_sst(&below, 1);
        let mut next_rev = 1 + below.len() as u64;
        let mut input_ssts = Vec::new();
        for commits in &inputs {
            input_ssts.push(as_sst(commits, next_rev));
            next_rev += commits.len() as u64;
        }
        input_ssts.reverse(); // newest first, as the merge wants them
        let bottommost = below_sst.is_empty();
        let floor = floor_pick % (next_rev + 1);
        let retention = Retention { floor, bottommost };

        let merged = HistoryMerge::new(input_ssts.iter().map(|s| directed(s, Direction::Forward)).collect());
        let files = split_into_files(merged, retention, target).unwrap();

        for file in &files {
            prop_assert!(!file.is_empty());
            // Up to the first version of its last key (the later versions of a key never start
            // a file), a file of several keys stays within the target.
            let last_key = &file.last().unwrap().key;
            let last_key_at = file.iter().position(|e| &e.key == last_key).unwrap();
            let bytes: u64 = file[..=last_key_at].iter().map(Entry::size_bytes).sum();
            prop_assert!(last_key_at == 0 || bytes <= target, "file of {} bytes over target {}", bytes, target);
        }
        for pair in files.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            prop_assert!(a.last().unwrap().key < b[0].key, "a key spans two files");
        }
        let output: Vec<Entry> = files.into_iter().flatten().collect();
        prop_assert!(
            output.windows(2).all(|w| crate::format::sst::internal_less((&w[0].key, w[0].revision), (&w[1].key, w[1].revision))),
            "output not in internal-key order"
        );
        let mut below_floor: BTreeMap<&[u8], usize> = BTreeMap::new();
        for e in output.iter().filter(|e| e.revision <= floor) {
            *below_floor.entry(&e.key).or_default() += 1;
            prop_assert!(!(bottommost && e.is_tombstone()), "a bottommost tombstone below the floor survived");
        }
        prop_assert!(below_floor.values().all(|&n| n == 1), "two versions at or below the floor");

        for revision in floor.max(1)..next_rev {
            for direction in [Direction::Forward, Direction::Reverse] {
                let mut before: Vec<&[Entry]> = input_ssts.iter().map(Vec::as_slice).collect();
                before.push(&below_sst);
                let after: Vec<&[Entry]> = vec![&output, &below_sst];
                prop_assert_eq!(visible(&after, direction, revision), visible(&before, direction, revision), "read at {}", revision);
            }
        }
    }
}
