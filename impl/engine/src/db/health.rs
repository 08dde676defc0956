//! [`Health`]: whether the database may still be used, and why not.
//!
//! Invariants:
//! - `closed` goes from false to true once (at [`crate::Db::close`] or the last handle's drop)
//!   and never back.
//! - `failed` holds the first fatal error (a failed WAL append or sync, a failed flush or
//!   compaction) and is never cleared: the call that met it returns the error itself, every later
//!   write [`Error::Poisoned`] carrying it, until the database is reopened. Reads keep working.
//! - The `failed` lock is a leaf: nothing else is locked while it is held.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

use super::inner::lock;

/// See the module doc.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failed: Mutex<Option<Error>>,
    closed: AtomicBool,
}

impl Health {
    /// `Err(Closed)` if the database is closed, `Err(Poisoned { cause })` if an earlier fatal
    /// error poisoned it.
    pub(crate) fn check_usable(&self) -> Result<()> {
        self.check_open()?;
        match lock(&self.failed).as_ref() {
            Some(e) => Err(Error::poisoned(e)),
            None => Ok(()),
        }
    }

    /// `Err(Closed)` once the database is closed (reads keep working on a poisoned database).
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether the database is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the database closed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Records `error` as fatal (the first one wins) and returns a copy of it.
    pub(crate) fn poison(&self, error: Error) -> Error {
        let mut failed = lock(&self.failed);
        let copy = error.duplicate();
        if failed.is_none() {
            tracing::error!(%error, "database poisoned: writes refused until reopened");
            *failed = Some(error);
        }
        copy
    }
}
