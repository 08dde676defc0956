//! Transactions: etcd's [`Txn`] (compare, then the success or the failure branch, atomically)
//! and optimistic interactive transactions ([`crate::Transaction`]).
//!
//! Both are decided in the commit pipeline's decide stage by pure functions of a read view:
//! [`evaluate`] runs a `Txn` (compares, then the branch's ops, in order) and [`conflict`] checks
//! an optimistic transaction's reads. Neither does I/O of its own; the view is what reads.
//!
//! Invariants:
//! - A `Txn` is seen whole or not at all: its writes share one revision, taken only if it writes
//!   something (a txn that only reads, or whose deletes find nothing, commits no revision, as
//!   etcd).
//! - A branch never writes one key twice: two puts of a key, or a put inside a delete range of
//!   the same branch, are refused as etcd refuses them ("duplicate key given in txn request").
//! - Reads inside a branch see the branch's earlier writes (etcd's txn reads its own writes).

mod evaluate;
mod types;

pub use evaluate::{StateView, conflict, evaluate};
pub use types::{
    Compare, CompareOp, CompareTarget, OpResult, RangeRequest, TXN_OPS_MAX, Txn, TxnOp, TxnResponse,
};
