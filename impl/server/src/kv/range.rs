//! Range: etcd's read of a key or a range (etcd v3.4's `applierV3backend.Range`).
//!
//! etcd reads the range at the requested revision (the newest when `revision <= 0`), counting
//! every key in it; it keeps `limit + 1` rows, or all of them when the request sorts or filters
//! by revision; then it drops rows outside the min/max mod and create revisions, sorts (a
//! target other than KEY with order NONE sorts ascending), and cuts to `limit`, setting `more`
//! if it cut. `count` is the number of keys in the range whatever the limit and the filters;
//! `count_only` returns it with no rows. The header's revision is the store's current revision,
//! not the revision read at.
//!
//! Invariants:
//! - A read at the newest revision and its header come from one snapshot: the rows are exactly
//!   those of the revision the header names.
//! - Sorting is stable, so rows that tie on the target stay in key order (etcd's sort is
//!   Go's unstable `sort.Sort`, which keeps that order for up to 12 rows; see the README).

use std::cmp::Ordering;

use kvstore::{KeyRange, Scan, ScanOptions, Snapshot, Versioned};

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::keys::{Keys, key_value, keys};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse};
use crate::proto::mvccpb::KeyValue;

/// One row of a range: a key and its version.
pub(crate) type Row = (Vec<u8>, Versioned);

/// Refuses a range request etcd refuses before reading.
pub(crate) fn check(request: &RangeRequest) -> EtcdResult<()> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// The engine revision a wire `revision` asks to read at; `None` for "the newest" (`<= 0`).
pub(crate) fn requested_revision(revision: i64) -> Option<u64> {
    u64::try_from(revision)
        .ok()
        .filter(|&r| r != 0)
        .map(crate::revision::engine)
}

/// Where a read at a wire revision reads: the snapshot of the newest revision (which the
/// response header names) and, when an older revision was asked for, that revision.
pub(crate) struct ReadPoint {
    snapshot: Snapshot,
    older: Option<u64>,
}

impl ReadPoint {
    /// The read point of wire `revision` (the newest when `<= 0`); `ErrFutureRev` above the
    /// newest, `ErrCompacted` below the history horizon (checked here, whatever the range, as
    /// etcd checks it before reading; a compaction racing the read is caught by the read).
    pub(crate) fn new(context: &Context, revision: i64) -> EtcdResult<ReadPoint> {
        let snapshot = context.db().snapshot()?;
        let older = match requested_revision(revision) {
            Some(r) => check_revision(context, r, snapshot.revision())?,
            None => None,
        };
        Ok(ReadPoint { snapshot, older })
    }

    /// The newest revision when the read started: the header's.
    pub(crate) fn current(&self) -> u64 {
        self.snapshot.revision()
    }

    /// A scan of `range` at the read point.
    pub(crate) fn scan(&self, context: &Context, range: KeyRange) -> EtcdResult<Scan> {
        Ok(match self.older {
            Some(revision) => context.db().scan(
                range,
                ScanOptions {
                    revision: Some(revision),
                    ..ScanOptions::default()
                },
            )?,
            None => self.snapshot.scan(range, ScanOptions::default())?,
        })
    }
}

/// Checks that engine revision `revision` can be read with `current` the newest: etcd's
/// `ErrFutureRev` above it, `ErrCompacted` below the history horizon. `Some(revision)` if it is
/// older than `current`, `None` if it is `current`.
pub(crate) fn check_revision(
    context: &Context,
    revision: u64,
    current: u64,
) -> EtcdResult<Option<u64>> {
    if revision > current {
        return Err(EtcdError::FutureRev);
    }
    if revision < context.db().history_horizon() {
        return Err(EtcdError::Compacted);
    }
    Ok((revision != current).then_some(revision))
}

/// Serves a top-level Range (blocking).
pub(crate) fn read(context: &Context, request: &RangeRequest) -> EtcdResult<RangeResponse> {
    check(request)?;
    if !request.serializable {
        context.store.read_barrier()?;
    }
    let point = ReadPoint::new(context, request.revision)?;
    let (rows, total) = match keys(&request.key, &request.range_end) {
        Keys::Empty => (Vec::new(), 0),
        Keys::Range(range) => collect(
            point.scan(context, range)?.versioned(),
            fetch_limit(request),
        )?,
    };
    let (kvs, more, count) = shape(rows, total, request);
    Ok(RangeResponse {
        header: Some(context.header(point.current())),
        kvs,
        more,
        count,
    })
}

/// How many rows etcd keeps from storage: `limit + 1` (to know `more`) unless the request
/// sorts or filters, then all; none for `count_only`.
fn fetch_limit(request: &RangeRequest) -> Option<usize> {
    if request.count_only {
        return Some(0);
    }
    let sorts_or_filters = request.sort_order() != SortOrder::None
        || request.min_mod_revision != 0
        || request.max_mod_revision != 0
        || request.min_create_revision != 0
        || request.max_create_revision != 0;
    match usize::try_from(request.limit) {
        Ok(limit) if limit > 0 && !sorts_or_filters => Some(limit.saturating_add(1)),
        _ => None,
    }
}

/// Keeps the first `keep` rows (all for `None`) and counts every row.
fn collect(
    rows: impl Iterator<Item = kvstore::error::Result<Row>>,
    keep: Option<usize>,
) -> EtcdResult<(Vec<Row>, u64)> {
    let mut kept = Vec::new();
    let mut total = 0u64;
    for row in rows {
        let row = row?;
        total = total.saturating_add(1);
        if keep.is_none_or(|keep| kept.len() < keep) {
            kept.push(row);
        }
    }
    Ok((kept, total))
}

/// etcd's processing of the rows read (see the module doc), on their wire form: `(kvs, more,
/// count)`.
pub(crate) fn shape(
    rows: Vec<Row>,
    total: u64,
    request: &RangeRequest,
) -> (Vec<KeyValue>, bool, i64) {
    let count = crate::identity::wire_i64(total);
    if request.count_only {
        return (Vec::new(), false, count);
    }
    let mut rows: Vec<KeyValue> = rows
        .into_iter()
        .map(|(key, v)| key_value(key, v, false))
        .filter(|kv| within_filters(kv, request))
        .collect();
    let order = match (request.sort_order(), request.sort_target()) {
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    let target = request.sort_target();
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => rows.sort_by(|a, b| compare(a, b, target)),
        SortOrder::Descend => rows.sort_by(|a, b| compare(b, a, target)),
    }
    let mut more = false;
    if let Ok(limit) = usize::try_from(request.limit)
        && limit > 0
        && rows.len() > limit
    {
        rows.truncate(limit);
        more = true;
    }
    if request.keys_only {
        for kv in &mut rows {
            kv.value = Vec::new();
        }
    }
    (rows, more, count)
}

/// Whether `kv` passes the request's min/max mod and create revision filters (0: no bound).
fn within_filters(kv: &KeyValue, request: &RangeRequest) -> bool {
    let at_most = |value: i64, bound: i64| bound == 0 || value <= bound;
    let at_least = |value: i64, bound: i64| bound == 0 || value >= bound;
    at_most(kv.mod_revision, request.max_mod_revision)
        && at_least(kv.mod_revision, request.min_mod_revision)
        && at_most(kv.create_revision, request.max_create_revision)
        && at_least(kv.create_revision, request.min_create_revision)
}

/// Orders two rows by `target` (ascending).
fn compare(a: &KeyValue, b: &KeyValue, target: SortTarget) -> Ordering {
    match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: &str, revision: u64, create: u64, version: u64) -> Row {
        (
            key.as_bytes().to_vec(),
            Versioned {
                value: value.as_bytes().to_vec(),
                revision,
                created_at_ms: 0,
                create_revision: create,
                version,
                lease: 0,
            },
        )
    }

    fn rows() -> Vec<Row> {
        vec![
            row("a", "3", 4, 2, 2),
            row("b", "1", 3, 3, 1),
            row("c", "2", 5, 5, 1),
        ]
    }

    fn keys_of(kvs: &[KeyValue]) -> Vec<&[u8]> {
        kvs.iter().map(|kv| kv.key.as_slice()).collect()
    }

    #[test]
    fn limit_sets_more_and_count_is_the_total() {
        let request = RangeRequest {
            limit: 2,
            ..RangeRequest::default()
        };
        let (kvs, more, count) = shape(rows(), 3, &request);
        assert_eq!(keys_of(&kvs), vec![&b"a"[..], b"b"]);
        assert!(more);
        assert_eq!(count, 3);
    }

    #[test]
    fn a_target_without_order_sorts_ascending_and_ties_keep_key_order() {
        let request = RangeRequest {
            sort_target: SortTarget::Version as i32,
            ..RangeRequest::default()
        };
        let (kvs, _, _) = shape(rows(), 3, &request);
        assert_eq!(keys_of(&kvs), vec![&b"b"[..], b"c", b"a"]);
        let request = RangeRequest {
            sort_target: SortTarget::Version as i32,
            sort_order: SortOrder::Descend as i32,
            ..RangeRequest::default()
        };
        let (kvs, _, _) = shape(rows(), 3, &request);
        assert_eq!(keys_of(&kvs), vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn filters_prune_rows_but_not_the_count() {
        // Wire mod revisions are the engine's plus one: 5, 4, 6.
        let request = RangeRequest {
            min_mod_revision: 5,
            keys_only: true,
            ..RangeRequest::default()
        };
        let (kvs, more, count) = shape(rows(), 3, &request);
        assert_eq!(keys_of(&kvs), vec![&b"a"[..], b"c"]);
        assert!(kvs.iter().all(|kv| kv.value.is_empty()));
        assert!(!more);
        assert_eq!(count, 3);
    }

    #[test]
    fn count_only_returns_no_rows() {
        let request = RangeRequest {
            count_only: true,
            limit: 1,
            ..RangeRequest::default()
        };
        assert_eq!(fetch_limit(&request), Some(0));
        let (kvs, more, count) = shape(Vec::new(), 3, &request);
        assert!(kvs.is_empty() && !more);
        assert_eq!(count, 3);
    }

    #[test]
    fn fetch_limit_follows_etcd() {
        let limited = RangeRequest {
            limit: 5,
            ..RangeRequest::default()
        };
        assert_eq!(fetch_limit(&limited), Some(6));
        let sorted = RangeRequest {
            limit: 5,
            sort_order: SortOrder::Ascend as i32,
            ..RangeRequest::default()
        };
        assert_eq!(fetch_limit(&sorted), None);
        assert_eq!(fetch_limit(&RangeRequest::default()), None);
        assert_eq!(requested_revision(-3), None);
        assert_eq!(requested_revision(0), None);
        assert_eq!(requested_revision(7), Some(6));
        assert_eq!(requested_revision(1), Some(0));
    }
}
