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
    #[error("database at {} is locked by another handle{}", path.display(), holder_text(*holder))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process holding it, when a writer does and wrote its pid in the file
        /// (`spec/FORMAT.md` § 5.3); `None` for read-only holders or when unknown.
        holder: Option<u32>,
    },
    /// A write (put, delete, txn, lease change, flush, compaction, history compaction, and the
    /// checkpoint and backup that flush first) on a database opened with
    /// [`crate::Options::read_only`].
    #[error("database is open read-only")]
    ReadOnly,
    /// The caller passed an argument the engine rejects (too long a key, an empty batch...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The database was closed ([`crate::Db::close`], on this handle or a clone of it).
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
    /// A watcher fell further behind than its buffer holds: it delivered every event before
    /// `resume_from` and ended; a new watch from `resume_from` continues with no gap.
    #[error("watcher fell behind its buffer; resume from revision {resume_from}")]
    WatcherLagged {
        /// The revision of the first event not delivered.
        resume_from: u64,
    },
    /// No lease with this id is granted (never granted, revoked, or expired: etcd's
    /// `ErrLeaseNotFound`).
    #[error("lease {id} not found")]
    LeaseNotFound {
        /// The lease asked for.
        id: u64,
    },
    /// A grant asked for an id a granted lease already has (etcd's `ErrLeaseExists`).
    #[error("lease {id} already exists")]
    LeaseExists {
        /// The id asked for.
        id: u64,
    },
    /// Every revision up to `u64::MAX` is used: no further commit can be numbered.
    #[error("revision counter exhausted")]
    RevisionsExhausted,
    /// A commit's stamp ([`crate::WriteOptions::stamp`]) is below the stamp of a commit applied
    /// before it: stamps never decrease in commit order. Nothing of the commit was logged.
    #[error("commit stamp {stamp} is below the last stamp {last_stamp}")]
    StampBelowLast {
        /// The stamp the commit carried.
        stamp: u64,
        /// The highest stamp of a commit applied before it (at least [`crate::Db::last_stamp`]).
        last_stamp: u64,
    },
    /// The database (or the [`crate::wal::WalWriter`]) refuses writes until it is reopened,
    /// because an earlier call met a fatal error: a failed WAL append or sync, a failed flush or
    /// compaction. The call that met it returned `cause` itself; every later write returns this,
    /// so a caller matches one variant while an operator still sees what went wrong. Reads keep
    /// working. Reopening recovers from what is durable (`spec/SEMANTICS.md`).
    #[error("database refuses writes until reopened, after an earlier fatal error: {cause}")]
    Poisoned {
        /// The first fatal error (never itself a `Poisoned`).
        #[source]
        cause: Box<Error>,
    },
    /// Writing the key index failed: searches refuse to answer until the database is reopened,
    /// which catches the index up (or rebuilds it) from the main database (`spec/SEMANTICS.md`,
    /// "Key index"). Writes to the main database are not affected.
    #[error("the key index refuses searches until reopened, after a failed write: {cause}")]
    KeyIndex {
        /// The failed index write's error.
        #[source]
        cause: Box<Error>,
    },
}

/// How [`Error::Locked`] names its holder.
fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!(" (process {pid})"),
        None => String::new(),
    }
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
            Self::Locked { path, holder } => Self::Locked {
                path: path.clone(),
                holder: *holder,
            },
            Self::InvalidArgument(s) => Self::InvalidArgument(s.clone()),
            Self::Closed => Self::Closed,
            Self::ReadOnly => Self::ReadOnly,
            Self::Compacted { requested, horizon } => Self::Compacted {
                requested: *requested,
                horizon: *horizon,
            },
            Self::FutureRevision { requested, current } => Self::FutureRevision {
                requested: *requested,
                current: *current,
            },
            Self::Conflict { key } => Self::Conflict { key: key.clone() },
            Self::WatcherLagged { resume_from } => Self::WatcherLagged {
                resume_from: *resume_from,
            },
            Self::LeaseNotFound { id } => Self::LeaseNotFound { id: *id },
            Self::LeaseExists { id } => Self::LeaseExists { id: *id },
            Self::RevisionsExhausted => Self::RevisionsExhausted,
            Self::StampBelowLast { stamp, last_stamp } => Self::StampBelowLast {
                stamp: *stamp,
                last_stamp: *last_stamp,
            },
            Self::Poisoned { cause } => Self::Poisoned {
                cause: Box::new(cause.duplicate()),
            },
            Self::KeyIndex { cause } => Self::KeyIndex {
                cause: Box::new(cause.duplicate()),
            },
        }
    }

    /// The [`Error::Poisoned`] a write gets after the fatal error `cause` (a copy of it); a
    /// `cause` that is itself `Poisoned` is copied as is, so causes never nest.
    pub fn poisoned(cause: &Error) -> Self {
        match cause {
            Self::Poisoned { .. } => cause.duplicate(),
            other => Self::Poisoned {
                cause: Box::new(other.duplicate()),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_carries_the_first_cause_and_never_nests() {
        let io = Error::io(
            "sync_data",
            std::path::Path::new("wal"),
            std::io::Error::other("eio"),
        );
        let once = Error::poisoned(&io);
        let twice = Error::poisoned(&once);
        for e in [&once, &twice] {
            let Error::Poisoned { cause } = e else {
                panic!("not poisoned: {e:?}");
            };
            assert!(matches!(
                **cause,
                Error::Io {
                    op: "sync_data",
                    ..
                }
            ));
            assert!(e.to_string().contains("sync_data on wal: eio"), "{e}");
            assert!(std::error::Error::source(e).is_some());
        }
    }
}
