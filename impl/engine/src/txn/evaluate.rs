//! The decide stage's pure functions for transactions: [`evaluate`] runs an etcd [`Txn`] against
//! a [`StateView`], [`conflict`] validates an optimistic transaction's reads.
//!
//! Invariants:
//! - Both only read, through the view, at the view's revision; what they return (the writes to
//!   log, the results, the conflicting key) is a function of the view and their arguments.
//! - [`evaluate`] returns the writes in op order, each key once (a delete range becomes one
//!   delete per live key it covers); no write means no commit.
//! - Every compare, a nested txn's included, is evaluated against the view (the database before
//!   the txn), never against the writes of the txn's earlier ops, as etcd's `compareToPath`
//!   decides the whole path before any op runs. A nested txn's ops share their enclosing
//!   branch's writes: they see the writes before them, and a key written twice anywhere in the
//!   txn is refused.

use std::collections::BTreeMap;

use crate::db::Versioned;
use crate::entry::VersionMeta;
use crate::error::{Error, Result};
use crate::format::wal::BatchOp;
use crate::range::KeyRange;

use super::types::{Compare, CompareOp, CompareTarget, OpResult, Txn, TxnOp};

/// The database as the decide stage reads it: one revision, every commit up to it.
pub trait StateView {
    /// The revision read at.
    fn revision(&self) -> u64;
    /// The live version of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>>;
    /// Every live key of `range` with its version, in key order.
    fn range(&self, range: &KeyRange) -> Result<Vec<(Vec<u8>, Versioned)>>;
    /// The revision of the newest version of `key`, a deletion included.
    fn newest_revision(&self, key: &[u8]) -> Result<Option<u64>>;
    /// The first key of `range` (in key order) whose newest version, a deletion included, has a
    /// revision above `since`.
    fn first_written_since(&self, range: &KeyRange, since: u64) -> Result<Option<Vec<u8>>>;
}

/// Runs `txn` against `view`: the compares, then the chosen branch's ops in order. Returns
/// whether the compares held, the writes to commit (empty: nothing to commit) and each op's
/// result. `revision` and `created_at_ms` are the revision and time the writes will get (what
/// reads of the txn's own writes report).
pub fn evaluate(
    txn: &Txn,
    view: &dyn StateView,
    revision: u64,
    created_at_ms: u64,
) -> Result<(bool, Vec<BatchOp>, Vec<OpResult>)> {
    let mut branch = Branch::default();
    let (succeeded, results) = branch.run_txn(txn, view, (revision, created_at_ms))?;
    Ok((succeeded, branch.writes, results))
}

/// The keys of `reads` and the ranges of `scans` an optimistic transaction read at `snapshot`:
/// the first one written (put or deleted) after it, if any.
pub fn conflict(
    view: &dyn StateView,
    snapshot: u64,
    reads: &[Vec<u8>],
    scans: &[KeyRange],
) -> Result<Option<Vec<u8>>> {
    for key in reads {
        // A point read: one lookup, however many versions the key has.
        if view.newest_revision(key)?.is_some_and(|r| r > snapshot) {
            return Ok(Some(key.clone()));
        }
    }
    for range in scans {
        if let Some(found) = view.first_written_since(range, snapshot)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Whether `compare` holds in `view` (etcd's rules: a missing key has version, revisions and
/// lease 0 and no value, and a value compare on it is false; a range compare must hold for every
/// live key of the range, and an empty range compares a missing key).
fn holds(compare: &Compare, view: &dyn StateView) -> Result<bool> {
    let versions: Vec<Option<Versioned>> = match &compare.range {
        None => vec![view.get(&compare.key)?],
        Some(range) => {
            let rows = view.range(range)?;
            if rows.is_empty() {
                vec![None]
            } else {
                rows.into_iter().map(|(_, v)| Some(v)).collect()
            }
        }
    };
    Ok(versions.iter().all(|v| holds_on(compare, v.as_ref())))
}

fn holds_on(compare: &Compare, version: Option<&Versioned>) -> bool {
    let ordering = match (&compare.target, version) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(operand), Some(v)) => v.value.as_slice().cmp(operand.as_slice()),
        (CompareTarget::Version(operand), v) => v.map_or(0, |v| v.version).cmp(operand),
        (CompareTarget::CreateRevision(operand), v) => {
            v.map_or(0, |v| v.create_revision).cmp(operand)
        }
        (CompareTarget::ModRevision(operand), v) => v.map_or(0, |v| v.revision).cmp(operand),
        (CompareTarget::Lease(operand), v) => v.map_or(0, |v| v.lease).cmp(operand),
    };
    match compare.op {
        CompareOp::Equal => ordering.is_eq(),
        CompareOp::NotEqual => ordering.is_ne(),
        CompareOp::Less => ordering.is_lt(),
        CompareOp::Greater => ordering.is_gt(),
    }
}

/// The state of the branch being run: its writes so far, and what its reads see of them.
#[derive(Default)]
struct Branch {
    writes: Vec<BatchOp>,
    /// Each key written so far: its new version, or `None` if the branch deleted it.
    own: BTreeMap<Vec<u8>, Option<Versioned>>,
    /// The ranges deleted so far.
    deleted: Vec<KeyRange>,
}

impl Branch {
    fn duplicate() -> Error {
        Error::InvalidArgument("duplicate key given in txn request".to_owned())
    }

    /// The live version of `key` as the branch sees it.
    fn get(&self, key: &[u8], view: &dyn StateView) -> Result<Option<Versioned>> {
        match self.own.get(key) {
            Some(own) => Ok(own.clone()),
            None => view.get(key),
        }
    }

    /// Every live key of `range` as the branch sees it, in key order.
    fn range(&self, range: &KeyRange, view: &dyn StateView) -> Result<Vec<(Vec<u8>, Versioned)>> {
        let mut rows: BTreeMap<Vec<u8>, Versioned> = view.range(range)?.into_iter().collect();
        for (key, own) in self.own.iter().filter(|(k, _)| range.contains(k)) {
            match own {
                Some(version) => rows.insert(key.clone(), version.clone()),
                None => rows.remove(key),
            };
        }
        Ok(rows.into_iter().collect())
    }

    /// Runs `txn` as part of this branch: its compares against `view`, then the ops of the
    /// branch they choose, in order. Returns whether the compares held and each op's result.
    fn run_txn(
        &mut self,
        txn: &Txn,
        view: &dyn StateView,
        commit: (u64, u64),
    ) -> Result<(bool, Vec<OpResult>)> {
        let mut succeeded = true;
        for compare in &txn.compares {
            if !holds(compare, view)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(self.run(op, view, commit)?);
        }
        Ok((succeeded, results))
    }

    fn run(&mut self, op: &TxnOp, view: &dyn StateView, commit: (u64, u64)) -> Result<OpResult> {
        let (revision, created_at_ms) = commit;
        match op {
            TxnOp::Txn(nested) => {
                let (succeeded, results) = self.run_txn(nested, view, commit)?;
                Ok(OpResult::Txn { succeeded, results })
            }
            TxnOp::Put { key, value, lease } => {
                if self.own.contains_key(key) || self.deleted.iter().any(|r| r.contains(key)) {
                    return Err(Self::duplicate());
                }
                let prev = self.get(key, view)?;
                let prev_meta = prev.as_ref().map(Versioned::meta);
                let meta = VersionMeta::after_put(prev_meta.as_ref(), revision, *lease);
                let version = Versioned {
                    value: value.clone(),
                    revision,
                    created_at_ms,
                    create_revision: meta.create_revision,
                    version: meta.version,
                    lease: meta.lease,
                };
                self.own.insert(key.clone(), Some(version));
                self.writes.push(BatchOp::Put {
                    key: key.clone(),
                    value: value.clone(),
                    lease: *lease,
                });
                Ok(OpResult::Put { prev })
            }
            TxnOp::DeleteRange(range) => {
                if self
                    .own
                    .iter()
                    .any(|(k, v)| v.is_some() && range.contains(k))
                {
                    return Err(Self::duplicate());
                }
                let deleted = self.range(range, view)?;
                for (key, _) in &deleted {
                    self.own.insert(key.clone(), None);
                    self.writes.push(BatchOp::Delete { key: key.clone() });
                }
                self.deleted.push(range.clone());
                Ok(OpResult::DeleteRange { deleted })
            }
            TxnOp::Range(request) => {
                let mut rows = self.range(&request.range, view)?;
                let more = request.limit.is_some_and(|limit| rows.len() > limit);
                if let Some(limit) = request.limit {
                    rows.truncate(limit);
                }
                Ok(OpResult::Range { rows, more })
            }
        }
    }
}

#[cfg(test)]
mod tests;
