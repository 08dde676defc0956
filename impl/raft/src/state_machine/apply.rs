//! Applying one [`Command`] to the engine: each writing command is one engine commit stamped
//! with its entry's index (see [`super::stamp`]), and the engine's answer becomes the
//! proposer's [`Response`].
//!
//! Invariants:
//! - One command, at most one engine commit, and that commit carries the entry's index: the
//!   writes and "entry `index` applied" are durable together or not at all.
//! - A refusal the engine decides from the state ([`Rejection`]) is a response; any other engine
//!   error is returned (it is this member's failure, and openraft stops the member). That
//!   includes `StampBelowLast`: the engine already holds a later entry, so applying this one
//!   would apply it twice; the member stops rather than diverge.
//! - A command that commits nothing (a refusal, a txn that only reads, a delete of nothing, a
//!   compaction) leaves no stamp; applying it again after a crash changes nothing, because the
//!   state it is decided against is the same.

use std::time::Duration;

use kvstore::{Db, WriteOptions};

use super::stamp;
use crate::command::{Command, Rejection, Response};

/// Applies `command`, the payload of entry `index`, to `db`.
pub(crate) fn apply_command(
    db: &Db,
    index: u64,
    command: &Command,
) -> Result<Response, kvstore::Error> {
    let answer = match command {
        Command::Put { key, value, lease } => db
            .put_with(key, value, stamp::stamped(index, *lease))
            .map(|revision| Response::Put { revision }),
        Command::DeleteRange(range) => db
            .delete_range_with(range.clone(), stamped(index))
            .map(|(revision, deleted)| Response::DeleteRange { revision, deleted }),
        Command::Txn(txn) => db.txn_with(txn.clone(), stamped(index)).map(Response::Txn),
        Command::LeaseGrant { id, ttl_ms } => {
            stamp::grant(db, *id, Duration::from_millis(*ttl_ms), stamped(index))
                .map(|id| Response::LeaseGranted { id })
        }
        Command::LeaseRevoke { id } => stamp::revoke(db, *id, stamped(index))
            .map(|revision| Response::LeaseRevoked { revision }),
        Command::Compact { revision } => {
            db.compact_history(*revision).map(|()| Response::Compacted {
                revision: *revision,
            })
        }
    };
    match answer {
        Ok(response) => Ok(response),
        Err(error) => Rejection::classify(error).map(Response::Rejected),
    }
}

fn stamped(index: u64) -> WriteOptions {
    stamp::stamped(index, 0)
}
