//! What a raft log entry carries to the state machine ([`Command`]), and what applying it
//! answers the proposer ([`Response`]).
//!
//! Invariants:
//! - Applying a command is deterministic: the same command on the same engine state gives the
//!   same writes, revisions and response on every member. So a command carries every choice
//!   (a lease's id is the proposer's, not the engine's).
//! - A command the engine refuses for what it says (a lease not granted, an id taken, a
//!   compacted revision) is a [`Response::Rejected`], not an error: every member refuses it
//!   alike and the log goes on. Only what the world does to one member (I/O) is an error.

use kvstore::KeyRange;
use kvstore::txn::{Txn, TxnResponse};

use crate::format::{VALUE_LEN_MAX, encode_command};

/// Bytes an entry's framing adds to its command's (log id, oneof tags and lengths): a command
/// of at most [`COMMAND_LEN_MAX`] bytes always stores.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Most bytes of an encoded command: what fits in one stored entry.
pub const COMMAND_LEN_MAX: usize = VALUE_LEN_MAX - ENTRY_OVERHEAD_BYTES;

/// One state machine operation: the application data of a raft entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Set `key` to `value`, attached to `lease` (0: none).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease (0: none).
        lease: u64,
    },
    /// Delete every live key of the range, under one revision (none if it deletes nothing).
    DeleteRange(KeyRange),
    /// An etcd-style txn ([`kvstore::Db::txn`]).
    Txn(Txn),
    /// Grant lease `id`, chosen by the proposer, for `ttl_ms` milliseconds.
    LeaseGrant {
        /// The lease id, `1..=LEASE_ID_MAX`.
        id: u64,
        /// Its TTL.
        ttl_ms: u64,
    },
    /// Revoke lease `id`, deleting its keys.
    LeaseRevoke {
        /// The lease.
        id: u64,
    },
    /// Make versions below `revision` unreachable ([`kvstore::Db::compact_history`]).
    Compact {
        /// The new history horizon.
        revision: u64,
    },
}

impl Command {
    /// Refuses a command too large to store in one entry (checked before it is proposed: an
    /// entry the log cannot store would stop the member).
    pub fn check_size(&self) -> Result<(), crate::Error> {
        let len = encode_command(self).len();
        if len > COMMAND_LEN_MAX {
            return Err(crate::Error::CommandTooLarge {
                len,
                max: COMMAND_LEN_MAX,
            });
        }
        Ok(())
    }
}

/// What applying one entry answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// An entry without a command (a leader's blank entry, a membership change).
    Empty,
    /// A put's revision.
    Put {
        /// The commit's revision.
        revision: u64,
    },
    /// A delete range's revision (the current one if it deleted nothing) and count.
    DeleteRange {
        /// The commit's revision.
        revision: u64,
        /// Keys deleted.
        deleted: u64,
    },
    /// A txn's outcome.
    Txn(TxnResponse),
    /// A lease granted.
    LeaseGranted {
        /// Its id.
        id: u64,
    },
    /// A lease revoked, with the revision deleting its keys (the current one if it had none).
    LeaseRevoked {
        /// The revision.
        revision: u64,
    },
    /// History compacted.
    Compacted {
        /// The new horizon.
        revision: u64,
    },
    /// The engine refused the command, on every member alike.
    Rejected(Rejection),
}

/// Why the engine refused a command ([`Response::Rejected`]): etcd's errors of the same names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No lease with this id is granted.
    #[error("lease {id} not found")]
    LeaseNotFound {
        /// The lease.
        id: u64,
    },
    /// A grant named an id already granted.
    #[error("lease {id} already exists")]
    LeaseExists {
        /// The lease.
        id: u64,
    },
    /// The revision is at or below the history horizon.
    #[error("revision {requested} has been compacted (horizon {horizon})")]
    Compacted {
        /// Asked for.
        requested: u64,
        /// The horizon.
        horizon: u64,
    },
    /// The revision is above the newest.
    #[error("revision {requested} is a future revision (current {current})")]
    FutureRevision {
        /// Asked for.
        requested: u64,
        /// The newest.
        current: u64,
    },
    /// A malformed request (a key too long, too many txn ops...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Rejection {
    /// The rejection an engine error is, or the error back if it is not one (I/O, corruption,
    /// a closed or poisoned database: what happened to this member, not to the command).
    pub fn classify(error: kvstore::Error) -> Result<Rejection, kvstore::Error> {
        match error {
            kvstore::Error::LeaseNotFound { id } => Ok(Rejection::LeaseNotFound { id }),
            kvstore::Error::LeaseExists { id } => Ok(Rejection::LeaseExists { id }),
            kvstore::Error::Compacted { requested, horizon } => {
                Ok(Rejection::Compacted { requested, horizon })
            }
            kvstore::Error::FutureRevision { requested, current } => {
                Ok(Rejection::FutureRevision { requested, current })
            }
            kvstore::Error::InvalidArgument(what) => Ok(Rejection::InvalidArgument(what)),
            other => Err(other),
        }
    }
}
