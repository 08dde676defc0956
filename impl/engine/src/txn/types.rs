//! The shapes of etcd's `Txn`: compares, ops and results.
//!
//! Invariants: a [`Txn`] has at most [`TXN_OPS_MAX`] ops in each branch and at most as many
//! compares (etcd's `--max-txn-ops` default), checked by [`Txn::validate`] before it is queued.
//! A nested txn ([`TxnOp::Txn`]) gets what its parent leaves of that budget, as in etcd: its
//! largest list (compares, success ops or failure ops) may be at most the parent's budget minus
//! the parent's largest list. So a txn nests at most [`TXN_OPS_MAX`] levels deep, and
//! validating or evaluating one never recurses deeper than that.

use crate::db::Versioned;
use crate::error::{Error, Result};
use crate::limits::check_key;
use crate::range::KeyRange;

/// Most compares, and most ops per branch, in one txn (etcd's default `--max-txn-ops`).
pub const TXN_OPS_MAX: usize = 128;

/// What a compare looks at, and the operand it is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value (bytewise). A compare on a missing key's value is false, as in etcd.
    Value(Vec<u8>),
    /// The version (0 for a missing key).
    Version(u64),
    /// The create revision (0 for a missing key).
    CreateRevision(u64),
    /// The mod revision (0 for a missing key).
    ModRevision(u64),
    /// The lease (0 for none, or a missing key).
    Lease(u64),
}

/// How the key's field is compared with the operand: `field OP operand`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `>`
    Greater,
}

/// One compare: on `key`, or on every key of `range` when it is set (all must hold; an empty
/// range compares a missing key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key compared (ignored when `range` is set).
    pub key: Vec<u8>,
    /// Compare every live key of this range instead of `key`.
    pub range: Option<KeyRange>,
    /// The field and its operand.
    pub target: CompareTarget,
    /// The comparison.
    pub op: CompareOp,
}

impl Compare {
    /// `key`'s `target` field `op` the target's operand.
    pub fn key(key: &[u8], op: CompareOp, target: CompareTarget) -> Compare {
        Compare {
            key: key.to_vec(),
            range: None,
            target,
            op,
        }
    }
}

/// A read inside a txn (etcd's `RangeRequest`, the options the engine serves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    /// The keys read.
    pub range: KeyRange,
    /// At most this many rows (`None`: all); `OpResult::Range::more` says if rows were left.
    pub limit: Option<usize>,
}

/// One op of a txn branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Put `value` at `key`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease to attach the key to (0: none). A lease not granted when the txn is
        /// decided fails the whole txn with [`Error::LeaseNotFound`], as in etcd.
        lease: u64,
    },
    /// Delete every live key of `range` (a single key: [`KeyRange::key`]).
    DeleteRange(KeyRange),
    /// Read a range.
    Range(RangeRequest),
    /// A txn nested in this branch (etcd's `RequestOp_RequestTxn`). Its compares are evaluated
    /// against the database before the outer txn, like the outer txn's own (etcd's
    /// `compareToPath`); its ops run in their place, seeing the writes of every op before them;
    /// its writes are part of the outer txn's one revision.
    Txn(Txn),
}

/// An etcd `Txn`: if every compare holds, run `success`, else `failure`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// All must hold for `success` to run.
    pub compares: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// Refuses a txn over etcd's limits (the nested budget included, see the module doc) or
    /// with a bad key, lease or value.
    pub fn validate(&self) -> Result<()> {
        self.validate_within(TXN_OPS_MAX)
    }

    /// [`Txn::validate`] with `budget` compares or ops per list at most.
    fn validate_within(&self, budget: usize) -> Result<()> {
        let lists = [
            ("compares", self.compares.len()),
            ("success ops", self.success.len()),
            ("failure ops", self.failure.len()),
        ];
        for (what, len) in lists {
            if len > budget {
                return Err(Error::InvalidArgument(format!(
                    "too many operations in txn request: {len} {what}, at most {budget} \
                     (TXN_OPS_MAX = {TXN_OPS_MAX}, less what enclosing txns use)"
                )));
            }
        }
        let largest = lists.iter().map(|(_, len)| *len).max().unwrap_or(0);
        for compare in &self.compares {
            if compare.range.is_none() {
                check_key(&compare.key)?;
            }
        }
        for op in self.success.iter().chain(&self.failure) {
            match op {
                TxnOp::Put { key, value, lease } => {
                    check_key(key)?;
                    crate::limits::check_value(value)?;
                    if *lease > crate::lease::LEASE_ID_MAX {
                        return Err(Error::InvalidArgument(format!(
                            "lease id {lease} is above LEASE_ID_MAX"
                        )));
                    }
                }
                // `largest >= 1` here (this op is in a list), so the budget shrinks each level.
                TxnOp::Txn(nested) => nested.validate_within(budget.saturating_sub(largest))?,
                TxnOp::DeleteRange(_) | TxnOp::Range(_) => {}
            }
        }
        Ok(())
    }
}

/// The result of one op, in the order of the branch's ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A put: the key's live version before it, if any (etcd's `prev_kv`).
    Put {
        /// The previous live version.
        prev: Option<Versioned>,
    },
    /// A delete range: the versions it deleted, in key order (etcd's `deleted` and `prev_kvs`).
    DeleteRange {
        /// Each deleted key with its last live version.
        deleted: Vec<(Vec<u8>, Versioned)>,
    },
    /// A range read.
    Range {
        /// The rows, in key order.
        rows: Vec<(Vec<u8>, Versioned)>,
        /// Whether the limit left rows out.
        more: bool,
    },
    /// A nested txn: whether its compares held, and one result per op of its branch that ran.
    Txn {
        /// Whether every compare of the nested txn held.
        succeeded: bool,
        /// One result per op of the nested branch that ran.
        results: Vec<OpResult>,
    },
}

/// What a txn did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (the success branch ran).
    pub succeeded: bool,
    /// The revision of the txn's writes, or the revision it read at if it wrote nothing.
    pub revision: u64,
    /// One result per op of the branch that ran.
    pub results: Vec<OpResult>,
}
