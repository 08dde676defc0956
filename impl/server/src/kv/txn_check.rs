//! The checks etcd v3.4 makes of a Txn before it applies it (`kvServer.Txn`): `checkTxnRequest`,
//! then `checkIntervals` on each branch, with nested txns checked as etcd checks them.
//!
//! Invariants:
//! - Errors come in etcd's order: the size and key checks of the whole request tree first
//!   (compares, then success ops, then failure ops, depth first), then the success branch's
//!   intervals, then the failure branch's.
//! - A nested txn's lists get what its parent leaves of the `TXN_OPS_MAX` budget (its largest
//!   list at most the parent's budget minus the parent's largest list), so a request that passes
//!   nests at most `TXN_OPS_MAX` levels deep, and these checks never recurse deeper than the
//!   request does.
//! - The interval check is static: it refuses a key put twice, or put inside a range deleted,
//!   anywhere in one branch's tree, whichever nested branches would run, except a key put by both
//!   branches of one nested txn (only one of them runs).

use std::collections::BTreeSet;

use kvstore::txn::TXN_OPS_MAX;

use super::range;
use super::write::check_put;
use crate::error::{EtcdError, EtcdResult};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::{RequestOp, TxnRequest};

/// Refuses a txn etcd refuses before applying it (`checkTxnRequest`, then `checkIntervals`
/// on each branch).
pub(crate) fn check(request: &TxnRequest) -> EtcdResult<()> {
    check_ops(request, TXN_OPS_MAX)?;
    intervals(&request.success)?;
    intervals(&request.failure)?;
    Ok(())
}

/// etcd's `checkTxnRequest` with `budget` as its `maxTxnOps`.
fn check_ops(request: &TxnRequest, budget: usize) -> EtcdResult<()> {
    let largest = request
        .compare
        .len()
        .max(request.success.len())
        .max(request.failure.len());
    if largest > budget {
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
            Some(Request::RequestTxn(nested)) => check_ops(nested, budget.saturating_sub(largest))?,
            None => return Err(EtcdError::KeyNotFound),
        }
    }
    Ok(())
}

/// A delete's `[key, range_end)`, taken literally as etcd does (no range end: the key alone),
/// so a `"\0"` range end covers nothing here; the engine then refuses such a txn itself.
#[derive(Clone, Copy)]
struct Deleted<'a> {
    start: &'a [u8],
    end: Option<&'a [u8]>,
}

impl Deleted<'_> {
    fn covers(&self, key: &[u8]) -> bool {
        match self.end {
            None => self.start == key,
            Some(end) => self.start <= key && key < end,
        }
    }
}

/// The keys a list of ops (nested txns included) may put, and the ranges it may delete.
#[derive(Default)]
struct Writes<'a> {
    puts: BTreeSet<&'a [u8]>,
    deletes: Vec<Deleted<'a>>,
}

impl<'a> Writes<'a> {
    /// Adds a put of `key`, refusing it if it is already put or deleted.
    fn put(&mut self, key: &'a [u8]) -> EtcdResult<()> {
        if self.deleted(key) || !self.puts.insert(key) {
            return Err(EtcdError::DuplicateKey);
        }
        Ok(())
    }

    fn deleted(&self, key: &[u8]) -> bool {
        self.deletes.iter().any(|d| d.covers(key))
    }
}

/// etcd's `checkIntervals` on one list of ops: this level's deletes first, then each nested
/// txn's puts (a key both its branches put counts once) and deletes, then this level's puts.
fn intervals(ops: &[RequestOp]) -> EtcdResult<Writes<'_>> {
    let mut writes = Writes {
        puts: BTreeSet::new(),
        deletes: ops
            .iter()
            .filter_map(|op| match &op.request {
                Some(Request::RequestDeleteRange(d)) => Some(Deleted {
                    start: d.key.as_slice(),
                    end: (!d.range_end.is_empty()).then_some(d.range_end.as_slice()),
                }),
                _ => None,
            })
            .collect(),
    };
    for op in ops {
        let Some(Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let then = intervals(&nested.success)?;
        let otherwise = intervals(&nested.failure)?;
        for &key in &then.puts {
            writes.put(key)?;
        }
        for &key in &otherwise.puts {
            if then.puts.contains(key) {
                // Put by both branches: already added, and only one branch runs.
                continue;
            }
            writes.put(key)?;
        }
        writes.deletes.extend(then.deletes);
        writes.deletes.extend(otherwise.deletes);
    }
    for op in ops {
        if let Some(Request::RequestPut(put)) = &op.request {
            writes.put(&put.key)?;
        }
    }
    Ok(writes)
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

    fn nested(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(TxnRequest {
                success,
                failure,
                ..TxnRequest::default()
            })),
        }
    }

    fn success(ops: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            success: ops,
            ..TxnRequest::default()
        }
    }

    #[test]
    fn etcds_checks_in_etcds_order() {
        let too_many = success(vec![put("k"); TXN_OPS_MAX + 1]);
        assert!(matches!(check(&too_many), Err(EtcdError::TooManyOps)));
        let empty_op = TxnRequest {
            failure: vec![RequestOp { request: None }],
            ..TxnRequest::default()
        };
        assert!(matches!(check(&empty_op), Err(EtcdError::KeyNotFound)));
        let twice = success(vec![put("a"), put("a")]);
        assert!(matches!(check(&twice), Err(EtcdError::DuplicateKey)));
        let put_in_delete = success(vec![delete("a", "c"), put("b")]);
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
    fn a_nested_txn_gets_what_its_parent_leaves_of_the_budget() {
        // The parent's largest list is 2 ops: the nested txn may have 126, not 127.
        let fits = success(vec![nested(vec![put("n"); 126], Vec::new()), put("p")]);
        // (The 126 puts of one key fail the interval check, not the size check.)
        assert!(matches!(check(&fits), Err(EtcdError::DuplicateKey)));
        let over = success(vec![nested(vec![put("n"); 127], Vec::new()), put("p")]);
        assert!(matches!(check(&over), Err(EtcdError::TooManyOps)));
        // Each level takes one: 128 levels of one op each pass, 129 do not.
        let deep = |levels: usize| {
            let mut txn = success(vec![put("leaf")]);
            for _ in 1..levels {
                txn = success(vec![RequestOp {
                    request: Some(Request::RequestTxn(txn)),
                }]);
            }
            txn
        };
        assert!(check(&deep(TXN_OPS_MAX)).is_ok());
        assert!(matches!(
            check(&deep(TXN_OPS_MAX + 1)),
            Err(EtcdError::TooManyOps)
        ));
        let empty_op_deep_down =
            success(vec![nested(Vec::new(), vec![RequestOp { request: None }])]);
        assert!(matches!(
            check(&empty_op_deep_down),
            Err(EtcdError::KeyNotFound)
        ));
    }

    #[test]
    fn nested_puts_and_deletes_follow_etcds_interval_rules() {
        let refused = [
            // A parent's put of a key a nested branch puts.
            vec![nested(vec![put("a")], Vec::new()), put("a")],
            // A nested put inside a range the parent deletes.
            vec![delete("a", "c"), nested(Vec::new(), vec![put("b")])],
            // A parent's put inside a range a nested branch deletes, even one that may not run.
            vec![nested(vec![delete("a", "c")], Vec::new()), put("b")],
            // Two sibling nested txns putting one key.
            vec![
                nested(vec![put("a")], Vec::new()),
                nested(Vec::new(), vec![put("a")]),
            ],
            // The else branch puts a key an earlier sibling's then branch put.
            vec![
                nested(vec![put("x")], Vec::new()),
                nested(vec![put("y")], vec![put("x")]),
            ],
        ];
        for ops in refused {
            assert!(matches!(check(&success(ops)), Err(EtcdError::DuplicateKey)));
        }
        let accepted = [
            // Both branches of one nested txn put the same key.
            vec![nested(vec![put("a")], vec![put("a")]), put("b")],
            // A nested delete beside a parent put outside its range.
            vec![nested(vec![delete("a", "c")], Vec::new()), put("d")],
        ];
        for ops in accepted {
            assert!(check(&success(ops)).is_ok());
        }
    }
}
