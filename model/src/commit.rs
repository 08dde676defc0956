//! [`commit`]: the one place a [`Mutation`] becomes an engine call, shared by every campaign, and
//! [`stamp_for`], the commit stamp a campaign's write carries.
//!
//! Invariants:
//! - Each [`Mutation`] maps to the engine call `spec/SEMANTICS.md` names for it, with the given
//!   [`WriteOptions`] (durability and stamp) for every kind, lease grants and revocations too.
//! - [`stamp_for`] is a function of the model's state alone (no counter), so a search's states
//!   stay as few as before; its stamps never decrease along a history.

use std::ops::Bound;

use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore::{Db, KeyRange, WriteBatch, WriteOptions};

use crate::model::{Expect, Model, Mutation};

/// Sends one commit to `db`: a put, a delete or a batch (the one place a [`Mutation`] becomes an
/// engine call, shared by every campaign).
pub fn commit(db: &Db, mutation: &Mutation, opts: WriteOptions) -> kvstore::error::Result<u64> {
    match mutation {
        Mutation::Put(k, v) => db.put_with(k, v, opts),
        Mutation::Delete(k) => db.delete_with(k, opts),
        Mutation::Batch(ops) => {
            let mut batch = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                };
            }
            db.write_with(batch, opts)
        }
        Mutation::Txn {
            compares,
            success,
            failure,
        } => {
            let compare = |(key, expect): &(Vec<u8>, Expect)| {
                let target = match expect {
                    Expect::Value(v) => CompareTarget::Value(v.clone()),
                    Expect::Absent => CompareTarget::Version(0),
                    Expect::Version(n) => CompareTarget::Version(*n),
                };
                Compare::key(key, CompareOp::Equal, target)
            };
            let ops = |ops: &[crate::model::BatchOp]| -> Vec<TxnOp> {
                ops.iter()
                    .map(|(key, value)| match value {
                        Some(value) => TxnOp::Put {
                            key: key.clone(),
                            value: value.clone(),
                            lease: 0,
                        },
                        None => TxnOp::DeleteRange(KeyRange::key(key)),
                    })
                    .collect()
            };
            let txn = Txn {
                compares: compares.iter().map(compare).collect(),
                success: ops(success),
                failure: ops(failure),
            };
            db.txn_with(txn, opts).map(|response| response.revision)
        }
        Mutation::DeleteRange(start, end) => {
            let range = KeyRange::new(Bound::Included(start.clone()), Bound::Excluded(end.clone()));
            db.delete_range_with(range, opts)
                .map(|(revision, _)| revision)
        }
        Mutation::PutLease(k, v, lease) => db.put_with(
            k,
            v,
            WriteOptions {
                lease: *lease,
                ..opts
            },
        ),
        // A grant takes no revision: it answers the one it read at, the newest.
        Mutation::Grant(id, ttl_ms) => db
            .grant_id_with(*id, std::time::Duration::from_millis(*ttl_ms), opts)
            .map(|_| db.stats().last_revision),
        Mutation::Revoke(id) => db.revoke_with(*id, opts),
    }
}

/// The stamp a campaign's write carries, as a Raft layer's would carry its log index: the
/// revision the write would take (above the stamp of every commit before it, so never refused;
/// equal to the next write's for a grant or a commit that writes nothing). Every third one is
/// left out (`None`), so that records with and without a stamp mix in the log.
pub fn stamp_for(model: &Model) -> Option<u64> {
    let next = model.revision().saturating_add(1);
    (!next.is_multiple_of(3)).then_some(next)
}
