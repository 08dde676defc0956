//! Txn: etcd's compare-then-branch transaction (etcd v3.4's `kvServer.Txn` checks and
//! `applierV3backend.Txn`), run as one engine [`kvstore::txn::Txn`].
//!
//! Before the engine sees it, a request passes etcd's checks in etcd's order
//! ([`super::txn_check`]).
//!
//! Each op becomes one engine op, except where the engine has no equivalent:
//! - a range at an older revision (`revision > 0`) is read before the txn, at that revision, by
//!   a plain scan (history below the newest revision never changes, so reading it before or
//!   inside the commit is the same). A read that fails (a compacted or future revision) empties
//!   its branch for the engine: if the engine takes that branch it commits nothing, and the txn
//!   answers the read's error, after etcd's earlier check of the branch's puts' leases; the
//!   other branch runs as usual. So, as etcd, only the branch that runs is checked. Inside a
//!   nested txn such a range is refused as unsupported: emptying a nested branch would still
//!   commit the rest of the txn;
//! - a range or delete whose keys are `[key, range_end)` with `range_end <= key` reads or
//!   deletes nothing, without an engine op;
//! - a put with `ignore_value` or `ignore_lease` is refused as unsupported (the engine's put has
//!   no such flags; see the README).
//!
//! A nested txn is an engine [`TxnOp::Txn`]: its compares are evaluated against the database
//! before the txn, as etcd's `compareToPath` does, and its ops run in their place.
//!
//! The responses inside a txn carry a header with only a revision, as etcd's: a put's is the
//! txn's revision; a range's is the revision before the txn, plus one once an earlier op wrote
//! (in the order the ops ran, nested txns' ops in their place); a delete's is the txn's revision
//! if it or an earlier op wrote, else the revision before. A nested txn's own header is empty
//! (etcd fills in only the outermost). The txn's own header carries the txn's revision (the
//! current one if it wrote nothing).

use std::ops::Bound;

use kvstore::KeyRange;
use kvstore::txn::{
    Compare, CompareOp, CompareTarget, OpResult, RangeRequest as EngineRange, Txn, TxnOp,
};

use super::range::{self, Row};
use super::write::{prev_kvs, put_lease};
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

use super::txn_check::check;

/// How one op of a branch is served.
enum Plan {
    /// A range: the engine op at `index` of the branch, or rows read before the txn.
    Range { request: RangeRequest, rows: Source },
    /// A put of `key` (with `lease`, 0 for none): the engine op at `index`.
    Put {
        key: Vec<u8>,
        lease: u64,
        index: usize,
        prev_kv: bool,
    },
    /// A delete range: the engine op at `index`, or nothing (an empty range).
    Delete { index: Option<usize>, prev_kv: bool },
    /// A nested txn: the engine op at `index`, and how to answer each op of either branch.
    Txn {
        index: usize,
        success: Vec<Plan>,
        failure: Vec<Plan>,
    },
}

/// Whether a branch is a txn's own or a nested txn's (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Outermost,
    Nested,
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
    /// Takes the engine ops to run if the branch is taken. A branch that cannot run gives only
    /// its [`probe`], which writes nothing; its ops stay, unused.
    fn take_engine_ops(&mut self) -> Vec<TxnOp> {
        if self.refused.is_some() {
            probe(&self.ops)
        } else {
            std::mem::take(&mut self.ops)
        }
    }
}

/// What the engine runs for a branch that cannot run: only its nested txns, each with its
/// compares and the probes of its branches. It writes nothing, so the engine commits nothing,
/// and its results say which nested branches the branch would have taken (etcd's path).
fn probe(ops: &[TxnOp]) -> Vec<TxnOp> {
    ops.iter()
        .filter_map(|op| match op {
            TxnOp::Txn(nested) => Some(TxnOp::Txn(Txn {
                compares: nested.compares.clone(),
                success: probe(&nested.success),
                failure: probe(&nested.failure),
            })),
            _ => None,
        })
        .collect()
}

/// The answer of a branch the engine took although it cannot run (nothing was committed;
/// `probed` are the results of its [`probe`]): a missing lease of a put on its path first, as
/// etcd 3.4 checks every put of the path before any range, else `refused`, the read's error.
fn refusal(
    context: &Context,
    plans: &[Plan],
    probed: Vec<OpResult>,
    refused: EtcdError,
) -> EtcdResult<EtcdError> {
    if lease_missing(context, plans, probed)? {
        return Ok(EtcdError::LeaseNotFound);
    }
    Ok(refused)
}

/// Whether a put of `plans`, or of the nested branches the `probed` results say were taken,
/// names a lease that is not granted.
fn lease_missing(context: &Context, plans: &[Plan], probed: Vec<OpResult>) -> EtcdResult<bool> {
    let mut probed = probed.into_iter();
    for plan in plans {
        match plan {
            Plan::Put { lease, .. }
                if *lease != 0 && context.db().time_to_live(*lease)?.is_none() =>
            {
                return Ok(true);
            }
            Plan::Txn {
                success, failure, ..
            } => {
                let Some(OpResult::Txn { succeeded, results }) = probed.next() else {
                    return Err(mismatch("nested txn"));
                };
                let taken = if succeeded { success } else { failure };
                if lease_missing(context, taken, results)? {
                    return Ok(true);
                }
            }
            _ => {}
        }
    }
    Ok(false)
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
    let mut success = translate(context, &request.success, current, Level::Outermost)?;
    let mut failure = translate(context, &request.failure, current, Level::Outermost)?;
    let txn = Txn {
        compares,
        success: success.take_engine_ops(),
        failure: failure.take_engine_ops(),
    };
    let response = context.store.txn(txn)?;
    let mut taken = if response.succeeded { success } else { failure };
    if let Some(refused) = taken.refused.take() {
        return Err(refusal(context, &taken.plans, response.results, refused)?);
    }
    let responses = respond(taken.plans, response.results, response.revision)?;
    Ok(TxnResponse {
        header: Some(context.header(response.revision)),
        succeeded: response.succeeded,
        responses,
    })
}

/// Translates one branch (see the module doc); `current` is the revision before the txn.
fn translate(
    context: &Context,
    ops: &[RequestOp],
    current: u64,
    level: Level,
) -> EtcdResult<Branch> {
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
                    (_, Some(_)) if level == Level::Nested => {
                        return Err(EtcdError::Unsupported(
                            "a range at an older revision inside a nested txn",
                        ));
                    }
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
                let lease = put_lease(p.lease)?;
                branch.ops.push(TxnOp::Put {
                    key: p.key.clone(),
                    value: p.value.clone(),
                    lease,
                });
                Plan::Put {
                    key: p.key.clone(),
                    lease,
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
            Some(Request::RequestTxn(nested)) => {
                let compares = nested
                    .compare
                    .iter()
                    .map(compare)
                    .collect::<EtcdResult<Vec<_>>>()?;
                // A nested branch refuses what it cannot run: it has no `refused`.
                let success = translate(context, &nested.success, current, Level::Nested)?;
                let failure = translate(context, &nested.failure, current, Level::Nested)?;
                branch.ops.push(TxnOp::Txn(Txn {
                    compares,
                    success: success.ops,
                    failure: failure.ops,
                }));
                Plan::Txn {
                    index: branch.ops.len() - 1,
                    success: success.plans,
                    failure: failure.plans,
                }
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
        .db()
        .scan(keys, options)?
        .versioned()
        .collect::<kvstore::error::Result<Vec<Row>>>()?;
    Ok(rows)
}

/// The wire responses of the branch that ran (see the module doc for their revisions).
fn respond(plans: Vec<Plan>, results: Vec<OpResult>, revision: u64) -> EtcdResult<Vec<ResponseOp>> {
    let before = if wrote(&results) {
        revision.saturating_sub(1)
    } else {
        revision
    };
    let mut answer = Answer {
        revision,
        before,
        changed: false,
    };
    answer.ops(plans, results)
}

/// Whether any op of `results`, a nested txn's included, wrote.
fn wrote(results: &[OpResult]) -> bool {
    results.iter().any(|r| match r {
        OpResult::Put { .. } => true,
        OpResult::DeleteRange { deleted } => !deleted.is_empty(),
        OpResult::Range { .. } => false,
        OpResult::Txn { results, .. } => wrote(results),
    })
}

/// The error for an engine result that does not answer its op (the engine answers one result
/// per op, of the op's kind, in order).
fn mismatch(what: &str) -> EtcdError {
    EtcdError::Engine(kvstore::Error::InvalidArgument(format!(
        "the engine's txn results do not match the request: no {what} result where one was due"
    )))
}

/// Answers a txn's ops in the order they ran, nested txns' ops in their place.
struct Answer {
    /// The txn's revision.
    revision: u64,
    /// The revision before the txn.
    before: u64,
    /// Whether an op answered so far wrote.
    changed: bool,
}

impl Answer {
    fn header(revision: u64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision: crate::revision::wire(revision),
            ..ResponseHeader::default()
        })
    }

    /// The responses of `plans`, whose engine ops answered `results`.
    fn ops(&mut self, plans: Vec<Plan>, results: Vec<OpResult>) -> EtcdResult<Vec<ResponseOp>> {
        let mut results: Vec<Option<OpResult>> = results.into_iter().map(Some).collect();
        let mut responses = Vec::with_capacity(plans.len());
        for plan in plans {
            let mut take = |index: usize| results.get_mut(index).and_then(Option::take);
            let response = match plan {
                Plan::Range { request, rows } => {
                    let rows = match rows {
                        Source::Read(rows) => rows,
                        Source::Engine(index) => match take(index) {
                            Some(OpResult::Range { rows, .. }) => rows,
                            _ => return Err(mismatch("range")),
                        },
                    };
                    let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
                    let (kvs, more, count) = range::shape(rows, total, &request);
                    Response::ResponseRange(RangeResponse {
                        header: Self::header(self.before + u64::from(self.changed)),
                        kvs,
                        more,
                        count,
                    })
                }
                Plan::Put {
                    key,
                    index,
                    prev_kv,
                    ..
                } => {
                    self.changed = true;
                    let Some(OpResult::Put { prev }) = take(index) else {
                        return Err(mismatch("put"));
                    };
                    Response::ResponsePut(PutResponse {
                        header: Self::header(self.revision),
                        prev_kv: prev.filter(|_| prev_kv).map(|v| key_value(key, v, false)),
                    })
                }
                Plan::Delete { index, prev_kv } => {
                    let deleted = match index.map(&mut take) {
                        None => Vec::new(),
                        Some(Some(OpResult::DeleteRange { deleted })) => deleted,
                        Some(_) => return Err(mismatch("delete range")),
                    };
                    self.changed |= !deleted.is_empty();
                    let revision = if self.changed {
                        self.revision
                    } else {
                        self.before
                    };
                    Response::ResponseDeleteRange(DeleteRangeResponse {
                        header: Self::header(revision),
                        deleted: wire_i64(u64::try_from(deleted.len()).unwrap_or(u64::MAX)),
                        prev_kvs: prev_kvs(deleted, prev_kv),
                    })
                }
                Plan::Txn {
                    index,
                    success,
                    failure,
                } => {
                    let Some(OpResult::Txn { succeeded, results }) = take(index) else {
                        return Err(mismatch("nested txn"));
                    };
                    let plans = if succeeded { success } else { failure };
                    Response::ResponseTxn(TxnResponse {
                        header: Some(ResponseHeader::default()),
                        succeeded,
                        responses: self.ops(plans, results)?,
                    })
                }
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        Ok(responses)
    }
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
mod tests;
