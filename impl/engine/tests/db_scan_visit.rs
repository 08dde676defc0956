//! `Scan::visit` (rows lent from the engine's blocks and buffers) against the owned scan and a
//! `BTreeMap` model with every revision: random puts and deletes on `SimVfs` under small
//! options (so rows come from memtables, L0 tables and deeper levels at once), read through
//! random ranges, directions, limits, older revisions and a snapshot, with rows both kept and
//! stopped early by `ControlFlow::Break`.

mod common;

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::sync::Arc;

use kvstore::{Db, KeyRange, Options, ScanOptions, WriteBatch};
use kvstore_faults::SimVfs;
use proptest::prelude::*;

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Every revision's state: `states[r]` is the database after revision `r`.
type History = Vec<BTreeMap<Vec<u8>, Vec<u8>>>;

fn options() -> Options {
    Options {
        // Keep every revision readable: reads at older revisions are part of the check.
        history_retention: kvstore::HistoryRetention::Manual,
        ..common::small_options()
    }
}

fn key(i: u16) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// The rows a scan of `range` at `state` yields, in the scan's order, at most `limit`.
fn model_rows(
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    reverse: bool,
    limit: Option<usize>,
) -> Rows {
    let mut rows: Rows = state
        .iter()
        .filter(|(k, _)| range.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        rows.reverse();
    }
    rows.truncate(limit.unwrap_or(usize::MAX));
    rows
}

/// The rows `visit` is given, copied, stopping (by `Break`) after `stop_after` rows if set.
fn visited(scan: kvstore::Scan, stop_after: Option<usize>) -> (Rows, ControlFlow<usize>) {
    let mut rows = Rows::new();
    let flow = scan
        .visit(|k, v| {
            rows.push((k.to_vec(), v.to_vec()));
            match stop_after {
                Some(n) if rows.len() >= n => ControlFlow::Break(rows.len()),
                _ => ControlFlow::Continue(()),
            }
        })
        .unwrap();
    (rows, flow)
}

fn bound(b: Option<(u16, bool)>) -> Bound<Vec<u8>> {
    match b {
        None => Bound::Unbounded,
        Some((i, true)) => Bound::Included(key(i)),
        Some((i, false)) => Bound::Excluded(key(i)),
    }
}

#[derive(Clone, Debug)]
struct Read {
    start: Option<(u16, bool)>,
    end: Option<(u16, bool)>,
    reverse: bool,
    limit: Option<usize>,
    back: usize,
    stop_after: Option<usize>,
}

fn read_strategy() -> impl Strategy<Value = Read> {
    let b = || prop::option::of((0u16..200, any::<bool>()));
    (
        b(),
        b(),
        any::<bool>(),
        prop::option::of(0usize..50),
        0usize..30,
        prop::option::of(1usize..40),
    )
        .prop_map(|(start, end, reverse, limit, back, stop_after)| Read {
            start,
            end,
            reverse,
            limit,
            back,
            stop_after,
        })
}

/// Batches of (key, value or delete); values long enough that a few hundred fill small tables.
fn batches_strategy() -> impl Strategy<Value = Vec<Vec<(u16, Option<u8>)>>> {
    let op = (0u16..200, prop::option::weighted(0.8, any::<u8>()));
    prop::collection::vec(prop::collection::vec(op, 1..40), 1..60)
}

fn check(db: &Db, history: &History, read: &Read) -> Result<(), TestCaseError> {
    let newest = history.len() - 1;
    let revision = newest.saturating_sub(read.back);
    let range = KeyRange::new(bound(read.start), bound(read.end));
    let opts = ScanOptions {
        reverse: read.reverse,
        limit: read.limit,
        revision: Some(revision as u64),
    };
    let want = model_rows(&history[revision], &range, read.reverse, read.limit);
    let owned: Rows = db
        .scan(range.clone(), opts)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    prop_assert_eq!(&owned, &want);
    let (lent, flow) = visited(db.scan(range.clone(), opts).unwrap(), None);
    prop_assert_eq!(&lent, &want);
    prop_assert_eq!(flow, ControlFlow::Continue(()));
    if let Some(n) = read.stop_after {
        let (lent, flow) = visited(db.scan(range, opts).unwrap(), Some(n));
        let expected: Rows = want.iter().take(n).cloned().collect();
        let expected_flow = if want.len() >= n {
            ControlFlow::Break(n)
        } else {
            ControlFlow::Continue(())
        };
        prop_assert_eq!(lent, expected);
        prop_assert_eq!(flow, expected_flow);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn visit_lends_exactly_the_rows_the_owned_scan_yields(
        batches in batches_strategy(),
        reads in prop::collection::vec(read_strategy(), 1..12),
    ) {
        let vfs = SimVfs::new(7);
        let db = Db::open_with_vfs(Arc::new(vfs), Path::new("/db"), options()).unwrap();
        let mut history: History = vec![BTreeMap::new()];
        for batch in &batches {
            let mut state = history.last().cloned().unwrap_or_default();
            let mut wb = WriteBatch::new();
            for &(k, v) in batch {
                match v {
                    Some(byte) => {
                        let value = vec![byte; 200];
                        wb.put(&key(k), &value);
                        state.insert(key(k), value);
                    }
                    None => {
                        wb.delete(&key(k));
                        state.remove(&key(k));
                    }
                }
            }
            let revision = db.write(wb).unwrap();
            prop_assert_eq!(revision as usize, history.len());
            history.push(state);
        }
        // A snapshot reads through the same path as a scan at its revision.
        let snapshot = db.snapshot().unwrap();
        for read in &reads {
            check(&db, &history, read)?;
        }
        let want = model_rows(history.last().unwrap(), &KeyRange::all(), false, None);
        let (lent, _) = visited(snapshot.scan(KeyRange::all(), ScanOptions::default()).unwrap(), None);
        prop_assert_eq!(lent, want);
        db.close().unwrap();
    }
}
