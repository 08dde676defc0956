//! Txn: etcd's compare-then-branch transaction (etcd v3.4's `kvServer.Txn` checks and
//! `applierV3backend.Txn`), run as one engine [`kvstore::txn::Txn`].
//!
//! Before the engine sees it, a request passes etcd's checks in etcd's order: at most
//! `TXN_OPS_MAX` compares and ops per branch (`too many operations`), no empty key in a compare
//! or an op (`key is not provided`), no empty op (`key not found`), the put checks, then no
//! branch writing a key twice (`duplicate key`: two puts of a key, or a put inside a delete
//! range of the same branch).
//!
//! Each op becomes one engine op, except where the engine has no equivalent:
//! - a range at an older revision (`revision > 0`) is read before the txn, at that revision, by
//!   a plain scan (history below the newest revision never changes, so reading it before or
//!   inside the commit is the same). A read that fails (a compacted or future revision) empties
//!   its branch for the engine: if the engine takes that branch it commits nothing, and the txn
//!   answers the read's error, after etcd's earlier check of the branch's puts' leases; the
//!   other branch runs as usual. So, as etcd, only the branch that runs is checked;
//! - a range or delete whose keys are `[key, range_end)` with `range_end <= key` reads or
//!   deletes nothing, without an engine op;
//! - a nested txn, and a put with `ignore_value` or `ignore_lease`, are refused as unsupported
//!   (the engine's txn has one level of compares and no such put flags; see the README).
//!
//! The responses inside a txn carry a header with only a revision, as etcd's: a put's is the
//! txn's revision; a range's is the revision before the txn, plus one once an earlier op of the
//! branch wrote; a delete's is the txn's revision if it or an earlier op wrote, else the
//! revision before. The txn's own header carries the txn's revision (the current one if it
//! wrote nothing).

use std::ops::Bound;

use kvstore::KeyRange;
use kvstore::txn::{
    Compare, CompareOp, CompareTarget, OpResult, RangeRequest as EngineRange, TXN_OPS_MAX, Txn,
    TxnOp,
};

use super::range::{self, Row};
use super::write::{check_put, prev_kvs, put_lease};
use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::identity::wire_i64;
use crate::keys::{Keys, key_value, keys};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget as Target, TargetUnion};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::{
    Compare as WireCompare, DeleteRangeResponse, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};

/// Refuses a txn etcd refuses before applying it (`checkTxnRequest`, then `checkIntervals`
/// on each branch).
pub(crate) fn check(request: &TxnRequest) -> EtcdResult<()> {
    check_ops(request)?;
    check_intervals(&request.success)?;
    check_intervals(&request.failure)
}

/// etcd's `checkTxnRequest`.
fn check_ops(request: &TxnRequest) -> EtcdResult<()> {
    let ops = request
        .compare
        .len()
        .max(request.success.len())
        .max(request.failure.len());
    if ops > TXN_OPS_MAX {
        return Err(EtcdError::TooManyOps);
    }
    if request.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in request.success.iter().chain(&request.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => range::check(r)?,
            Some(Request::RequestPut(p)) => check_put(p)?,
            Some(Request::RequestDeleteRange(d)) if d.key.is_empty() => {
                return Err(EtcdError::EmptyKey);
            }
            Some(Request::RequestDeleteRange(_)) => {}
            Some(Request::RequestTxn(nested)) => check_ops(nested)?,
            None => return Err(EtcdError::KeyNotFound),
        }
    }
    Ok(())
}

/// etcd's `checkIntervals` for one branch of one level: no key put twice, no key put inside a
/// range the branch deletes. (A delete's `[key, range_end)` is taken literally, as etcd does,
/// so a `"\0"` range end covers nothing here; the engine then refuses such a txn itself.)
fn check_intervals(ops: &[RequestOp]) -> EtcdResult<()> {
    let deletes: Vec<(&[u8], Option<&[u8]>)> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some((
                d.key.as_slice(),
                (!d.range_end.is_empty()).then_some(d.range_end.as_slice()),
            )),
            _ => None,
        })
        .collect();
    let mut puts: Vec<&[u8]> = Vec::new();
    for op in ops {
        let Some(Request::RequestPut(put)) = &op.request else {
            continue;
        };
        let key = put.key.as_slice();
        let deleted = deletes.iter().any(|&(start, end)| match end {
            None => start == key,
            Some(end) => start <= key && key < end,
        });
        if deleted || puts.contains(&key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.push(key);
    }
    Ok(())
}

/// How one op of a branch is served.
enum Plan {
    /// A range: the engine op at `index` of the branch, or rows read before the txn.
    Range { request: RangeRequest, rows: Source },
    /// A put of `key`: the engine op at `index`.
    Put {
        key: Vec<u8>,
        index: usize,
        prev_kv: bool,
    },
    /// A delete range: the engine op at `index`, or nothing (an empty range).
    Delete { index: Option<usize>, prev_kv: bool },
}

/// Where a range's rows come from.
enum Source {
    Engine(usize),
    Read(Vec<Row>),
}

/// A translated branch: the engine's ops and how to answer each wire op.
struct Branch {
    ops: Vec<TxnOp>,
    plans: Vec<Plan>,
    /// The first read before the txn that failed: the branch cannot run.
    refused: Option<EtcdError>,
}

impl Branch {
    /// Takes the engine ops to run if the branch is taken: none if it cannot run (its ops
    /// stay, for [`Branch::refusal`]).
    fn take_runnable_ops(&mut self) -> Vec<TxnOp> {
        if self.refused.is_some() {
            Vec::new()
        } else {
            std::mem::take(&mut self.ops)
        }
    }

    /// The answer of a branch the engine took although it cannot run (nothing was committed):
    /// a put's missing lease first, as etcd checks puts before ranges, else `refused`, the
    /// read's error.
    fn refusal(&self, context: &Context, refused: EtcdError) -> EtcdResult<EtcdError> {
        for op in &self.ops {
            if let TxnOp::Put { lease, .. } = op
                && *lease != 0
                && context.db.time_to_live(*lease)?.is_none()
            {
                return Ok(EtcdError::LeaseNotFound);
            }
        }
        Ok(refused)
    }
}

/// Serves Txn (blocking).
pub(crate) fn txn(context: &Context, request: &TxnRequest) -> EtcdResult<TxnResponse> {
    check(request)?;
    let compares = request
        .compare
        .iter()
        .map(compare)
        .collect::<EtcdResult<Vec<_>>>()?;
    let current = context.current_revision()?;
    let mut success = branch(context, &request.success, current)?;
    let mut failure = branch(context, &request.failure, current)?;
    let txn = Txn {
        compares,
        success: success.take_runnable_ops(),
        failure: failure.take_runnable_ops(),
    };
    let response = context.db.txn(txn)?;
    let mut taken = if response.succeeded { success } else { failure };
    if let Some(refused) = taken.refused.take() {
        return Err(taken.refusal(context, refused)?);
    }
    let responses = respond(taken.plans, response.results, response.revision);
    Ok(TxnResponse {
        header: Some(context.header(response.revision)),
        succeeded: response.succeeded,
        responses,
    })
}

/// Translates one branch (see the module doc); `current` is the revision before the txn.
fn branch(context: &Context, ops: &[RequestOp], current: u64) -> EtcdResult<Branch> {
    let mut branch = Branch {
        ops: Vec::new(),
        plans: Vec::new(),
        refused: None,
    };
    for op in ops {
        let plan = match &op.request {
            Some(Request::RequestRange(r)) => {
                let rows = match (
                    keys(&r.key, &r.range_end),
                    range::requested_revision(r.revision),
                ) {
                    (keys, Some(revision)) => match read_at(context, keys, revision, current) {
                        Ok(rows) => Source::Read(rows),
                        Err(error @ (EtcdError::Compacted | EtcdError::FutureRev)) => {
                            branch.refused.get_or_insert(error);
                            Source::Read(Vec::new())
                        }
                        Err(error) => return Err(error),
                    },
                    (Keys::Empty, None) => Source::Read(Vec::new()),
                    (Keys::Range(keys), None) => {
                        branch.ops.push(TxnOp::Range(EngineRange {
                            range: keys,
                            limit: None,
                        }));
                        Source::Engine(branch.ops.len() - 1)
                    }
                };
                Plan::Range {
                    request: r.clone(),
                    rows,
                }
            }
            Some(Request::RequestPut(p)) => {
                if p.ignore_value || p.ignore_lease {
                    return Err(EtcdError::Unsupported(
                        "a put with ignore_value or ignore_lease inside a txn",
                    ));
                }
                branch.ops.push(TxnOp::Put {
                    key: p.key.clone(),
                    value: p.value.clone(),
                    lease: put_lease(p.lease)?,
                });
                Plan::Put {
                    key: p.key.clone(),
                    index: branch.ops.len() - 1,
                    prev_kv: p.prev_kv,
                }
            }
            Some(Request::RequestDeleteRange(d)) => {
                let index = match keys(&d.key, &d.range_end) {
                    Keys::Empty => None,
                    Keys::Range(keys) => {
                        branch.ops.push(TxnOp::DeleteRange(keys));
                        Some(branch.ops.len() - 1)
                    }
                };
                Plan::Delete {
                    index,
                    prev_kv: d.prev_kv,
                }
            }
            Some(Request::RequestTxn(_)) => {
                return Err(EtcdError::Unsupported("a txn nested in a txn"));
            }
            None => return Err(EtcdError::KeyNotFound),
        };
        branch.plans.push(plan);
    }
    Ok(branch)
}

/// Every row of `keys` at engine revision `revision`, read by a plain scan; the revision is
/// checked as a top-level Range checks it (`current` is the newest), whatever the keys.
fn read_at(context: &Context, keys: Keys, revision: u64, current: u64) -> EtcdResult<Vec<Row>> {
    range::check_revision(context, revision, current)?;
    let Keys::Range(keys) = keys else {
        return Ok(Vec::new());
    };
    let options = kvstore::ScanOptions {
        revision: Some(revision),
        ..kvstore::ScanOptions::default()
    };
    let rows = context
        .db
        .scan(keys, options)?
        .versioned()
        .collect::<kvstore::error::Result<Vec<Row>>>()?;
    Ok(rows)
}

/// The wire responses of the branch that ran (see the module doc for their revisions).
fn respond(plans: Vec<Plan>, results: Vec<OpResult>, revision: u64) -> Vec<ResponseOp> {
    let wrote = results.iter().any(|r| match r {
        OpResult::Put { .. } => true,
        OpResult::DeleteRange { deleted } => !deleted.is_empty(),
        OpResult::Range { .. } => false,
    });
    let before = if wrote {
        revision.saturating_sub(1)
    } else {
        revision
    };
    let mut results: Vec<Option<OpResult>> = results.into_iter().map(Some).collect();
    let mut take = |index: usize| results.get_mut(index).and_then(Option::take);
    let mut changed = false;
    let header = |revision: u64| {
        Some(ResponseHeader {
            revision: crate::revision::wire(revision),
            ..ResponseHeader::default()
        })
    };
    let mut responses = Vec::with_capacity(plans.len());
    for plan in plans {
        let response = match plan {
            Plan::Range { request, rows } => {
                let rows = match rows {
                    Source::Read(rows) => rows,
                    Source::Engine(index) => match take(index) {
                        Some(OpResult::Range { rows, .. }) => rows,
                        _ => Vec::new(),
                    },
                };
                let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
                let (kvs, more, count) = range::shape(rows, total, &request);
                Response::ResponseRange(RangeResponse {
                    header: header(before + u64::from(changed)),
                    kvs,
                    more,
                    count,
                })
            }
            Plan::Put {
                key,
                index,
                prev_kv,
            } => {
                changed = true;
                let prev = match take(index) {
                    Some(OpResult::Put { prev }) => prev,
                    _ => None,
                };
                Response::ResponsePut(PutResponse {
                    header: header(revision),
                    prev_kv: prev.filter(|_| prev_kv).map(|v| key_value(key, v, false)),
                })
            }
            Plan::Delete { index, prev_kv } => {
                let deleted = match index.and_then(&mut take) {
                    Some(OpResult::DeleteRange { deleted }) => deleted,
                    _ => Vec::new(),
                };
                changed |= !deleted.is_empty();
                Response::ResponseDeleteRange(DeleteRangeResponse {
                    header: header(if changed { revision } else { before }),
                    deleted: wire_i64(u64::try_from(deleted.len()).unwrap_or(u64::MAX)),
                    prev_kvs: prev_kvs(deleted, prev_kv),
                })
            }
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    responses
}

/// An engine compare for a wire compare (etcd's `applyCompare` and `compareKV`).
fn compare(wire: &WireCompare) -> EtcdResult<Compare> {
    let op = match wire.result() {
        CompareResult::Equal => CompareOp::Equal,
        CompareResult::NotEqual => CompareOp::NotEqual,
        CompareResult::Greater => CompareOp::Greater,
        CompareResult::Less => CompareOp::Less,
    };
    // etcd takes the operand only from the union member matching the target, else 0 / empty.
    let int = |member: Option<i64>, make: fn(u64) -> CompareTarget| {
        integer_compare(op, member.unwrap_or(0), make)
    };
    // Create and mod revisions are revisions: the operand is mapped to the engine's.
    let rev = |member: Option<i64>, make: fn(u64) -> CompareTarget| {
        let (op, operand) = crate::revision::compare(op, member.unwrap_or(0));
        (op, make(operand))
    };
    let (op, target) = match (wire.target(), &wire.target_union) {
        (Target::Value, Some(TargetUnion::Value(v))) => (op, CompareTarget::Value(v.clone())),
        (Target::Value, _) => (op, CompareTarget::Value(Vec::new())),
        (Target::Version, Some(TargetUnion::Version(v))) => int(Some(*v), CompareTarget::Version),
        (Target::Version, _) => int(None, CompareTarget::Version),
        (Target::Create, Some(TargetUnion::CreateRevision(v))) => {
            rev(Some(*v), CompareTarget::CreateRevision)
        }
        (Target::Create, _) => rev(None, CompareTarget::CreateRevision),
        (Target::Mod, Some(TargetUnion::ModRevision(v))) => {
            rev(Some(*v), CompareTarget::ModRevision)
        }
        (Target::Mod, _) => rev(None, CompareTarget::ModRevision),
        (Target::Lease, Some(TargetUnion::Lease(v))) => int(Some(*v), CompareTarget::Lease),
        (Target::Lease, _) => int(None, CompareTarget::Lease),
    };
    let range = match keys(&wire.key, &wire.range_end) {
        _ if wire.range_end.is_empty() => None,
        Keys::Range(range) => Some(range),
        // No key: the compare sees a missing key, as etcd's empty range read does.
        Keys::Empty => Some(KeyRange::new(
            Bound::Excluded(wire.key.clone()),
            Bound::Excluded(wire.key.clone()),
        )),
    };
    Ok(Compare {
        key: wire.key.clone(),
        range,
        target,
        op,
    })
}

/// `field op operand` for an integer field (never negative) and an `int64` operand: a negative
/// operand makes the compare constant, expressed against `u64::MAX`, which no field reaches.
fn integer_compare(
    op: CompareOp,
    operand: i64,
    make: fn(u64) -> CompareTarget,
) -> (CompareOp, CompareTarget) {
    match u64::try_from(operand) {
        Ok(operand) => (op, make(operand)),
        Err(_) => {
            let (op, operand) =
                crate::revision::constant(matches!(op, CompareOp::NotEqual | CompareOp::Greater));
            (op, make(operand))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::{DeleteRangeRequest, PutRequest};

    fn put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.as_bytes().to_vec(),
                ..PutRequest::default()
            })),
        }
    }

    fn delete(key: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                range_end: end.as_bytes().to_vec(),
                ..DeleteRangeRequest::default()
            })),
        }
    }

    #[test]
    fn etcds_checks_in_etcds_order() {
        let too_many = TxnRequest {
            success: vec![put("k"); TXN_OPS_MAX + 1],
            ..TxnRequest::default()
        };
        assert!(matches!(check(&too_many), Err(EtcdError::TooManyOps)));
        let empty_op = TxnRequest {
            failure: vec![RequestOp { request: None }],
            ..TxnRequest::default()
        };
        assert!(matches!(check(&empty_op), Err(EtcdError::KeyNotFound)));
        let twice = TxnRequest {
            success: vec![put("a"), put("a")],
            ..TxnRequest::default()
        };
        assert!(matches!(check(&twice), Err(EtcdError::DuplicateKey)));
        let put_in_delete = TxnRequest {
            success: vec![delete("a", "c"), put("b")],
            ..TxnRequest::default()
        };
        assert!(matches!(
            check(&put_in_delete),
            Err(EtcdError::DuplicateKey)
        ));
        let across_branches = TxnRequest {
            success: vec![put("a")],
            failure: vec![put("a"), delete("b", "")],
            ..TxnRequest::default()
        };
        assert!(check(&across_branches).is_ok());
    }

    #[test]
    fn negative_operands_make_constant_compares() {
        let (op, target) = integer_compare(CompareOp::Greater, -1, CompareTarget::Version);
        assert_eq!(
            (op, target),
            (CompareOp::NotEqual, CompareTarget::Version(u64::MAX))
        );
        let (op, _) = integer_compare(CompareOp::Less, -1, CompareTarget::Version);
        assert_eq!(op, CompareOp::Equal);
        let (op, target) = integer_compare(CompareOp::Less, 3, CompareTarget::ModRevision);
        assert_eq!(
            (op, target),
            (CompareOp::Less, CompareTarget::ModRevision(3))
        );
    }

    #[test]
    fn nested_headers_follow_etcd() {
        let plans = vec![
            Plan::Range {
                request: RangeRequest::default(),
                rows: Source::Read(Vec::new()),
            },
            Plan::Delete {
                index: Some(0),
                prev_kv: false,
            },
            Plan::Put {
                key: b"k".to_vec(),
                index: 1,
                prev_kv: false,
            },
            Plan::Range {
                request: RangeRequest::default(),
                rows: Source::Read(Vec::new()),
            },
        ];
        let results = vec![
            OpResult::DeleteRange {
                deleted: Vec::new(),
            },
            OpResult::Put { prev: None },
        ];
        let revisions: Vec<i64> = respond(plans, results, 8)
            .into_iter()
            .map(|r| match r.response {
                Some(Response::ResponseRange(r)) => r.header.map_or(-1, |h| h.revision),
                Some(Response::ResponsePut(r)) => r.header.map_or(-1, |h| h.revision),
                Some(Response::ResponseDeleteRange(r)) => r.header.map_or(-1, |h| h.revision),
                _ => -1,
            })
            .collect();
        // Wire revisions: the engine's plus one.
        assert_eq!(revisions, vec![8, 8, 9, 9]);
    }
}
