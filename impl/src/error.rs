//! The one error type of the engine: what the world does to us (I/O failures, corrupt bytes, a
//! database held by another process, bad arguments). Our own bugs are assertions, not errors.
//!
//! Invariant: every variant says what and where (path, byte offset) so an operator can act on it.

use std::path::PathBuf;

/// Everything a kvstore operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filesystem failed `op` on `path`.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// The operation that failed, e.g. "append" or "sync_data".
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk are not what the format allows; nothing was returned from them.
    #[error("corruption in {} at byte {offset}: {what}", file.display())]
    Corruption {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset in that file where the bad structure starts.
        offset: u64,
        /// What is wrong, naming the structure and field.
        what: String,
    },
    /// Another handle (this process or another) holds the database directory's lock.
    #[error("database at {} is locked by another handle", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The caller passed an argument the engine rejects (too long a key, an empty batch...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The database was closed, or refuses writes after a fatal I/O error until it is reopened.
    #[error("database is closed")]
    Closed,
    /// A read or watch asked for a revision below the history horizon: the versions it would
    /// see may be gone (etcd's `ErrCompacted`).
    #[error("required revision {requested} has been compacted (history horizon {horizon})")]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision still readable.
        horizon: u64,
    },
    /// A read asked for a revision not committed yet (etcd's `ErrFutureRev`).
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: u64,
        /// The newest committed revision.
        current: u64,
    },
    /// An optimistic transaction read `key` (or a range holding it), and a commit after the
    /// transaction's snapshot wrote it: nothing of the transaction was committed.
    #[error("transaction conflict on key {}", hex::encode(key))]
    Conflict {
        /// The first key found written since the snapshot.
        key: Vec<u8>,
    },
    /// Every revision up to `u64::MAX` is used: no further commit can be numbered.
    #[error("revision counter exhausted")]
    RevisionsExhausted,
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`]: the filesystem failed `op` on `path`.
    pub fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The error a failpoint (feature `failpoints`) makes a protocol step return: an
    /// [`Error::Io`] whose path is the failpoint's name.
    pub fn failpoint(name: &'static str) -> Self {
        Self::io(
            "failpoint",
            std::path::Path::new(name),
            std::io::Error::other(format!("failpoint {name}")),
        )
    }

    /// A copy of this error for a second receiver (e.g. every writer of a failed group commit):
    /// same variant, path and offset; an I/O source is copied by kind and message.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Io { op, path, source } => Self::Io {
                op,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Self::Corruption { file, offset, what } => Self::Corruption {
                file: file.clone(),
                offset: *offset,
                what: what.clone(),
            },
            Self::Locked { path } => Self::Locked { path: path.clone() },
            Self::InvalidArgument(s) => Self::InvalidArgument(s.clone()),
            Self::Closed => Self::Closed,
            Self::Compacted { requested, horizon } => Self::Compacted {
                requested: *requested,
                horizon: *horizon,
            },
            Self::FutureRevision { requested, current } => Self::FutureRevision {
                requested: *requested,
                current: *current,
            },
            Self::Conflict { key } => Self::Conflict { key: key.clone() },
            Self::RevisionsExhausted => Self::RevisionsExhausted,
        }
    }

    /// An [`Error::Corruption`] from a decoder's error over bytes that start at `base_offset` of
    /// `file`: the reported offset is the decoder's offset moved to a file offset.
    pub fn corruption(
        file: &std::path::Path,
        base_offset: u64,
        error: &crate::format::FormatError,
    ) -> Self {
        Self::Corruption {
            file: file.to_path_buf(),
            offset: base_offset.saturating_add(error.offset),
            what: error.to_string(),
        }
    }
}
