//! [`Transaction`]: an optimistic interactive transaction, as fjall's optimistic transactions and
//! RocksDB's `OptimisticTransactionDB`.
//!
//! Invariants:
//! - Reads see the snapshot the transaction started at, plus its own writes (read your writes);
//!   the snapshot's revision is pinned for as long as the transaction lives.
//! - Every key it read and every range it scanned is recorded; at commit the decide stage
//!   refuses it with [`crate::Error::Conflict`] if any of them was written (put or deleted)
//!   after the snapshot, so a committed transaction is serializable: it behaves as if it ran
//!   alone at its commit revision. Keys it only wrote (blind writes) do not conflict.
//! - It commits all of its writes under one revision or nothing; a transaction that wrote
//!   nothing commits no revision.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::format::wal::{BatchOp, WalBody};
use crate::limits::{check_key, check_value};
use crate::range::KeyRange;

use super::batch::validate;
use super::commit::Proposal;
use super::read::ScanOptions;
use super::snapshot::Snapshot;
use super::{Db, WriteOptions};

/// See the module doc.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
/// db.put(b"counter", b"1")?;
/// let mut tx = db.transaction()?;
/// let n: u64 = String::from_utf8(tx.get(b"counter")?.unwrap_or_default())?.parse()?;
/// tx.put(b"counter", (n + 1).to_string().as_bytes())?;
/// db.put(b"counter", b"10")?; // a write after the transaction's snapshot ...
/// assert!(matches!(tx.commit(), Err(kvstore::Error::Conflict { .. }))); // ... makes it conflict
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Transaction {
    db: Db,
    snapshot: Snapshot,
    /// Each key written: its value, or `None` for a delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    reads: Vec<Vec<u8>>,
    scans: Vec<KeyRange>,
}

impl Transaction {
    pub(super) fn new(db: Db, snapshot: Snapshot) -> Transaction {
        Transaction {
            db,
            snapshot,
            writes: BTreeMap::new(),
            reads: Vec::new(),
            scans: Vec::new(),
        }
    }

    /// The revision the transaction reads at.
    pub fn revision(&self) -> u64 {
        self.snapshot.revision()
    }

    /// The value of `key`: this transaction's own write, else the snapshot's.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        if let Some(own) = self.writes.get(key) {
            return Ok(own.clone());
        }
        self.reads.push(key.to_vec());
        self.snapshot.get(key)
    }

    /// Every live key of `range` with its value, in key order: the snapshot's, with this
    /// transaction's own writes applied.
    pub fn scan(&mut self, range: KeyRange) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for row in self.snapshot.scan(range.clone(), ScanOptions::default())? {
            let (key, value) = row?;
            rows.insert(key, value);
        }
        for (key, own) in self.writes.iter().filter(|(k, _)| range.contains(k)) {
            match own {
                Some(value) => rows.insert(key.clone(), value.clone()),
                None => rows.remove(key),
            };
        }
        self.scans.push(range);
        Ok(rows.into_iter().collect())
    }

    /// Buffers a put of `value` at `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    /// Commits every write under one revision, in the database's durability mode; see
    /// [`Transaction::commit_with`].
    pub fn commit(self) -> Result<u64> {
        self.commit_with(WriteOptions::default())
    }

    /// Commits every write under one revision and returns it (or, if it wrote nothing, the
    /// revision it read at); `Err(Conflict)` if a key or range it read was written after its
    /// snapshot, and then nothing is committed.
    pub fn commit_with(self, opts: WriteOptions) -> Result<u64> {
        let ops: Vec<BatchOp> = self
            .writes
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => BatchOp::Put {
                    key,
                    value,
                    lease: 0,
                },
                None => BatchOp::Delete { key },
            })
            .collect();
        let writes = if ops.is_empty() {
            None
        } else {
            let body = WalBody::Batch(ops);
            validate(&body)?;
            Some(body)
        };
        let proposal = Proposal::Optimistic {
            snapshot: self.snapshot.revision(),
            reads: self.reads,
            scans: self.scans,
            writes,
        };
        let mode = self.db.mode(opts);
        self.db.inner().propose(proposal, mode)?.into_revision()
    }
}
