//! [`WriteBatch`] and [`WriteOptions`]: what a commit carries, and its validation.
//!
//! Invariants:
//! - A body reaches the WAL only after [`validate`] accepted it: every key within
//!   `KEY_LEN_MIN..=KEY_LEN_MAX`, every value within `VALUE_LEN_MAX`, a batch non-empty, at most
//!   `WAL_BATCH_OPS_MAX` ops and small enough to encode, every lease id within `LEASE_ID_MAX`
//!   (whether the lease is granted is the decide stage's to check), so a WAL append can only
//!   fail for I/O reasons (and such a failure is fatal).
//! - [`into_entries`] gives one entry per op (per key of a revocation), in op order.

use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::format::wal::{BatchOp, WAL_BATCH_OPS_MAX, WAL_PAYLOAD_LEN_MAX, WalBody};
use crate::lease::LEASE_ID_MAX;
use crate::limits::{check_key, check_value};
use crate::options::Durability;

/// Bytes of MessagePack framing counted per op when bounding a batch's encoded size (field names,
/// headers): generous, so a batch accepted here always encodes.
const BATCH_OP_OVERHEAD_BYTES: usize = 64;
/// Bytes of the record's own fields (revision, timestamps, map header) when bounding its size.
const RECORD_OVERHEAD_BYTES: usize = 1024;

/// Several puts and deletes committed atomically under one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` at `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.put_with_lease(key, value, 0)
    }

    /// Adds a put of `value` at `key` attached to `lease` (0: none). The batch fails whole with
    /// [`Error::LeaseNotFound`] if the lease is not granted when it commits.
    pub fn put_with_lease(&mut self, key: &[u8], value: &[u8], lease: u64) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
        });
        self
    }

    /// Adds a put of `value` at `key`, taking both as they are instead of copying them (what
    /// [`WriteBatch::put`] does with borrowed bytes): for a caller that already owns them.
    ///
    /// ```
    /// let mut batch = kvstore::WriteBatch::new();
    /// batch.put_owned(b"key".to_vec(), b"value".to_vec());
    /// assert_eq!(batch.len(), 1);
    /// ```
    pub fn put_owned(&mut self, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key,
            value,
            lease: 0,
        });
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.ops.push(BatchOp::Delete { key: key.to_vec() });
        self
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub(crate) fn into_body(self) -> WalBody {
        WalBody::Batch(self.ops)
    }
}

/// Per-write overrides of [`crate::options::Options`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Durability of this write; `None` uses the database's default.
    pub durability: Option<Durability>,
    /// The lease a [`crate::Db::put_with`] attaches its key to (0: none, the default). The put
    /// fails with [`Error::LeaseNotFound`] if the lease is not granted when it commits. Other
    /// writes ignore it (a batch names a lease per put: [`WriteBatch::put_with_lease`]).
    pub lease: u64,
    /// The commit's stamp: an opaque number the caller chooses (a Raft layer: the index of the
    /// log entry the commit applies), logged in the same WAL record as the commit's writes, so
    /// that after a crash [`crate::Db::last_stamp`] is the highest stamp of the commits
    /// recovered. `None` (the default) records nothing and is never refused. A stamp below the
    /// stamp of a commit before it is refused with [`Error::StampBelowLast`] before anything is
    /// logged; an equal one is accepted. `Some(0)` is checked as such but records nothing (0 is
    /// [`crate::Db::last_stamp`] before any stamp). A commit that writes nothing (a txn whose branch only reads, a
    /// `delete_range` or optimistic transaction that finds nothing to delete or write) logs no
    /// record and records no stamp.
    pub stamp: Option<u64>,
}

/// Refuses a lease id the format cannot carry (0 is "no lease", accepted where a put takes one).
pub(crate) fn check_lease_id(lease: u64) -> Result<()> {
    if lease > LEASE_ID_MAX {
        return Err(Error::InvalidArgument(format!(
            "lease id {lease} is above LEASE_ID_MAX = {LEASE_ID_MAX}"
        )));
    }
    Ok(())
}

/// Rejects a body the engine must not log (see the module invariants). Lease records are built
/// by the engine from arguments [`crate::Db::grant`] checked.
pub(crate) fn validate(body: &WalBody) -> Result<()> {
    match body {
        WalBody::Put { key, value, lease } => {
            check_key(key)?;
            check_value(value)?;
            check_lease_id(*lease)
        }
        WalBody::Delete { key } => check_key(key),
        WalBody::LeaseGrant { .. } | WalBody::LeaseRevoke { .. } => Ok(()),
        WalBody::Batch(ops) => {
            if ops.is_empty() {
                return Err(Error::InvalidArgument("empty batch".to_owned()));
            }
            if ops.len() > WAL_BATCH_OPS_MAX {
                return Err(Error::InvalidArgument(format!(
                    "batch has {} ops, more than WAL_BATCH_OPS_MAX = {WAL_BATCH_OPS_MAX}",
                    ops.len()
                )));
            }
            let mut total = RECORD_OVERHEAD_BYTES;
            for op in ops {
                let len = match op {
                    BatchOp::Put { key, value, lease } => {
                        check_key(key)?;
                        check_value(value)?;
                        check_lease_id(*lease)?;
                        key.len().saturating_add(value.len())
                    }
                    BatchOp::Delete { key } => {
                        check_key(key)?;
                        key.len()
                    }
                };
                total = total
                    .saturating_add(len)
                    .saturating_add(BATCH_OP_OVERHEAD_BYTES);
            }
            if total > WAL_PAYLOAD_LEN_MAX {
                return Err(Error::InvalidArgument(format!(
                    "batch encodes to about {total} bytes, more than WAL_PAYLOAD_LEN_MAX = \
                     {WAL_PAYLOAD_LEN_MAX}: split it"
                )));
            }
            Ok(())
        }
    }
}

/// The memtable entries of a commit, taking the keys and values out of `body` (no copy); `metas`
/// holds each op's metadata, in op order, as [`super::decide::metas`] decided it.
pub(crate) fn into_entries(
    body: WalBody,
    revision: u64,
    wal_offset: u64,
    created_at_ms: u64,
    metas: &[VersionMeta],
) -> Vec<Entry> {
    // Sabotage for negative controls (feature `failpoints`): of a multi-op batch, apply (to the
    // memtable, at commit and at WAL replay) only the first op.
    fail::fail_point!(
        "commit::partial_batch",
        matches!(&body, WalBody::Batch(ops) if ops.len() > 1),
        |_| match body.clone() {
            WalBody::Batch(ops) => into_entries(
                WalBody::Batch(ops.into_iter().take(1).collect()),
                revision,
                wal_offset,
                created_at_ms,
                metas
            ),
            _ => Vec::new(),
        }
    );
    let mut metas = metas.iter().copied();
    #[expect(
        clippy::expect_used,
        reason = "decide::metas yields exactly one meta per op of the body"
    )]
    let mut entry = |key: Vec<u8>, value: Option<Vec<u8>>| {
        let meta = metas.next().expect("one meta per op");
        Entry {
            key,
            revision,
            meta,
            value,
            wal_offset,
            created_at_ms,
        }
    };
    match body {
        WalBody::Put { key, value, .. } => vec![entry(key, Some(value))],
        WalBody::Delete { key } => vec![entry(key, None)],
        WalBody::LeaseGrant { .. } => Vec::new(),
        WalBody::LeaseRevoke { keys, .. } => keys.into_iter().map(|key| entry(key, None)).collect(),
        WalBody::Batch(ops) => {
            // Same (key, revision) inserted twice: the memtable keeps the later one.
            ops.into_iter()
                .map(|op| match op {
                    BatchOp::Put { key, value, .. } => entry(key, Some(value)),
                    BatchOp::Delete { key } => entry(key, None),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_batches_and_bad_keys_are_rejected() {
        assert!(validate(&WriteBatch::new().into_body()).is_err());
        let mut b = WriteBatch::new();
        b.put(b"", b"v");
        assert!(validate(&b.into_body()).is_err());
        let mut b = WriteBatch::new();
        b.put(b"k", b"v").delete(b"j");
        assert_eq!(b.len(), 2);
        assert!(validate(&b.into_body()).is_ok());
    }

    #[test]
    fn batch_entries_share_the_revision() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1").delete(b"b");
        let metas = [VersionMeta::after_put(None, 7, 0), VersionMeta::TOMBSTONE];
        let e = into_entries(b.into_body(), 7, 100, 5, &metas);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| e.revision == 7 && e.wal_offset == 100));
        assert!(e[1].is_tombstone());
    }
}
