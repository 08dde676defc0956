//! The one seam between the state machine and the engine's commit stamps: which options stamp a
//! commit with the index of the entry that made it, and which index the engine's recovered
//! state ends at.
//!
//! Invariant: every engine commit an entry makes carries that entry's index as its stamp, in the
//! same commit as its writes; so [`last_stamp`] is the index of the last entry whose writes are
//! durable, and no entry at or below it is applied again.

use std::time::Duration;

use kvstore::{Db, WriteOptions};

/// Options that commit with `index` as the stamp, durably, attaching a put to `lease`.
pub(crate) fn stamped(index: u64, lease: u64) -> WriteOptions {
    WriteOptions {
        durability: Some(kvstore::Durability::Sync),
        lease,
        stamp: Some(index),
    }
}

/// Grants lease `id` for `ttl` under `opts` (a stamped commit).
pub(crate) fn grant(
    db: &Db,
    id: u64,
    ttl: Duration,
    opts: WriteOptions,
) -> kvstore::error::Result<u64> {
    db.grant_id_with(id, ttl, opts)
}

/// Revokes `lease` under `opts` (a stamped commit).
pub(crate) fn revoke(db: &Db, lease: u64, opts: WriteOptions) -> kvstore::error::Result<u64> {
    db.revoke_with(lease, opts)
}

/// The stamp of the newest recovered commit that carried one (0: none).
pub(crate) fn last_stamp(db: &Db) -> u64 {
    db.last_stamp()
}
