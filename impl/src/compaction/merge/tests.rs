use super::*;
use crate::iter::{BoxedSource, MergeIter, ScanSpec};
use crate::range::{Direction, KeyRange};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn entry(key: u8, revision: u64, value: Option<u8>) -> Entry {
    Entry {
        key: vec![key],
        revision,
        value: value.map(|v| vec![v; 3]),
        wal_offset: revision,
        created_at_ms: 0,
    }
}

fn ok(entries: Vec<Entry>) -> impl Iterator<Item = Result<Entry>> {
    entries.into_iter().map(Ok)
}

#[test]
fn tombstones_are_dropped_only_at_the_bottom() {
    let input = || ok(vec![entry(1, 5, None), entry(2, 6, Some(7))]);
    let kept = split_into_files(input(), false, 1 << 20).unwrap();
    assert_eq!(kept, vec![vec![entry(1, 5, None), entry(2, 6, Some(7))]]);
    let dropped = split_into_files(input(), true, 1 << 20).unwrap();
    assert_eq!(dropped, vec![vec![entry(2, 6, Some(7))]]);
}

#[test]
fn files_are_cut_before_exceeding_the_target() {
    // Each entry is 1 + 3 + 24 = 28 bytes: two fit in 60, a third does not.
    let input = ok((0..5).map(|k| entry(k, 1, Some(k))).collect());
    let files = split_into_files(input, false, 60).unwrap();
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
}

#[test]
fn an_oversized_entry_gets_a_file_of_its_own() {
    let files = split_into_files(
        ok(vec![entry(1, 1, Some(1)), entry(2, 1, Some(2))]),
        false,
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
    let mut stream = CompactionStream::new(input.into_iter(), false, 1 << 20);
    assert!(stream.next().unwrap().unwrap().starts_new_file);
    assert!(stream.next().unwrap().is_err());
    assert!(stream.next().is_none());
    assert!(
        split_into_files(vec![Err(crate::error::Error::Closed)].into_iter(), false, 1).is_err()
    );
}

// ---- property: compaction preserves the visible state ----

/// Newest version per key of a slice of commits: what one SST (or flushed memtable) holds.
fn as_sst(commits: &[(u8, Option<u8>)], first_revision: u64) -> Vec<Entry> {
    let mut newest: BTreeMap<u8, Entry> = BTreeMap::new();
    for (i, (k, v)) in commits.iter().enumerate() {
        newest.insert(*k, entry(*k, first_revision + i as u64, *v));
    }
    newest.into_values().collect()
}

/// A source sorted in `direction` (the entries are held in ascending order).
fn directed(entries: &[Entry], direction: Direction) -> BoxedSource {
    let mut entries = entries.to_vec();
    if direction == Direction::Reverse {
        entries.reverse();
    }
    Box::new(entries.into_iter().map(Ok))
}

fn visible(sources: Vec<BoxedSource>, direction: Direction) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    MergeIter::new(
        sources,
        ScanSpec::user(KeyRange::all(), direction, u64::MAX),
    )
    .map(|e| e.map(|e| (e.key, e.value)).unwrap())
    .collect()
}

fn commits() -> impl Strategy<Value = Vec<(u8, Option<u8>)>> {
    prop::collection::vec((0u8..12, prop::option::weighted(0.6, any::<u8>())), 0..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Reading through the compacted output (plus whatever lies below) equals reading through the
    /// inputs; tombstones survive unless the output is bottommost; files respect the target size.
    #[test]
    fn compaction_preserves_the_visible_state(
        below in commits(),
        inputs in prop::collection::vec(commits(), 1..5),
        target in 20u64..200,
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

        let merged = MergeIter::new(input_ssts.iter().map(|s| directed(s, Direction::Forward)).collect(), ScanSpec::compaction());
        let files = split_into_files(merged, bottommost, target).unwrap();

        for file in &files {
            let bytes: u64 = file.iter().map(Entry::size_bytes).sum();
            prop_assert!(!file.is_empty());
            prop_assert!(file.len() == 1 || bytes <= target, "file of {} bytes over target {}", bytes, target);
        }
        for pair in files.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let a_bytes: u64 = a.iter().map(Entry::size_bytes).sum();
            prop_assert!(a_bytes + b[0].size_bytes() > target, "file cut early");
        }
        let output: Vec<Entry> = files.into_iter().flatten().collect();
        prop_assert!(output.windows(2).all(|w| w[0].key < w[1].key), "output keys not strictly increasing");
        let tombstones = output.iter().filter(|e| e.is_tombstone()).count();
        let newest_is_tombstone = {
            let mut newest: BTreeMap<Vec<u8>, &Entry> = BTreeMap::new();
            for e in input_ssts.iter().flatten() {
                if newest.get(&e.key).is_none_or(|n| n.revision < e.revision) {
                    newest.insert(e.key.clone(), e);
                }
            }
            newest.values().filter(|e| e.is_tombstone()).count()
        };
        prop_assert_eq!(tombstones, if bottommost { 0 } else { newest_is_tombstone });

        for direction in [Direction::Forward, Direction::Reverse] {
            let mut before: Vec<BoxedSource> =
                input_ssts.iter().map(|s| directed(s, direction)).collect();
            before.push(directed(&below_sst, direction));
            let after = vec![directed(&output, direction), directed(&below_sst, direction)];
            prop_assert_eq!(visible(after, direction), visible(before, direction));
        }
    }
}
