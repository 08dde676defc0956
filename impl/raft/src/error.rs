//! The crate's one error type, and how it becomes openraft's [`StorageError`].
//!
//! Invariant: every failure of the log store or the state machine reaches openraft as a
//! `StorageError` naming its subject (the vote, the logs, the entry being applied, the state
//! machine, the snapshot) and its verb (read, write); openraft then stops the member rather
//! than go on from storage it cannot trust.

use std::path::PathBuf;

use openraft::{ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use crate::format::FormatError;

/// Everything kvstore-raft can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine (the raft log database or the state machine) failed.
    #[error("engine: {0}")]
    Engine(#[from] kvstore::Error),
    /// Stored bytes are not what `spec/FORMAT.md` § 12 allows.
    #[error("corrupt {what} in {}: {source}", path.display())]
    Corrupt {
        /// The database or file holding them.
        path: PathBuf,
        /// The record (e.g. "log entry 12", "vote").
        what: String,
        /// What is wrong.
        #[source]
        source: FormatError,
    },
    /// The filesystem failed outside the engine (the state pointer, generation cleanup).
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },
    /// The log is not what openraft's contract promises (a gap, an entry under another index).
    #[error("raft log inconsistent: {0}")]
    LogInconsistent(String),
    /// A command whose entry would exceed the largest stored value.
    #[error("command of {len} bytes, more than COMMAND_LEN_MAX = {max}")]
    CommandTooLarge {
        /// Its encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A write was proposed to a member that is not the leader; `leader` is the one it knows.
    #[error("not the leader (the leader is {leader:?})")]
    NotLeader {
        /// The leader's id, if known.
        leader: Option<u64>,
    },
    /// No leader was known within the bound a relayed call waits for one.
    #[error("no leader known after waiting {waited:?}")]
    NoLeader {
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// A call relayed to the leader failed on the wire (no connection, no answer in time, a bad
    /// reply): a proposal may or may not have been committed.
    #[error("relaying to leader {leader}: {source}")]
    Relay {
        /// The leader called.
        leader: u64,
        /// What failed.
        #[source]
        source: crate::transport::client::CallError,
    },
    /// The leader answered a relayed call with a failure of its own (its raft refused or
    /// failed, its engine failed).
    #[error("leader {leader}: {failure}")]
    Remote {
        /// The leader.
        leader: u64,
        /// What it reported.
        failure: crate::format::peer::RemoteFailure,
    },
    /// The leader named is not in this member's membership (no address to call).
    #[error("member {id} is not in the membership")]
    UnknownMember {
        /// The member.
        id: u64,
    },
    /// A bounded wait ran out (this member applying a committed entry).
    #[error("timed out waiting until {what}")]
    Timeout {
        /// What was awaited.
        what: String,
    },
    /// The leader refused a membership change.
    #[error("membership change refused: {0}")]
    MemberRefused(crate::membership::MemberRefusal),
    /// openraft refused or failed a request (shut down, a membership change in progress...).
    #[error("raft: {0}")]
    Raft(String),
}

impl Error {
    /// This error as openraft's storage error about `subject`, while doing `verb`.
    pub fn storage(self, subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError<u64> {
        StorageIOError::new(subject, verb, openraft::AnyError::new(&self)).into()
    }
}

/// The error as a read of the logs.
pub(crate) fn read_logs(e: impl Into<Error>) -> StorageError<u64> {
    e.into().storage(ErrorSubject::Logs, ErrorVerb::Read)
}

/// The error as a write of the logs.
pub(crate) fn write_logs(e: impl Into<Error>) -> StorageError<u64> {
    e.into().storage(ErrorSubject::Logs, ErrorVerb::Write)
}

/// The error as a read of the state machine.
pub(crate) fn read_sm(e: impl Into<Error>) -> StorageError<u64> {
    e.into()
        .storage(ErrorSubject::StateMachine, ErrorVerb::Read)
}

/// The error as a write of the state machine.
pub(crate) fn write_sm(e: impl Into<Error>) -> StorageError<u64> {
    e.into()
        .storage(ErrorSubject::StateMachine, ErrorVerb::Write)
}
