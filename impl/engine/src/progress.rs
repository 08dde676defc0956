//! [`Progress`]: how long work tells its caller how far it has got, so a tool can draw a bar.
//! The work that reports: [`crate::Db::backup_with_progress`] and
//! [`crate::backup::restore_with_progress`] (table bytes copied or checked), and an open that
//! rebuilds the key index ([`crate::Options::progress`]; keys posted).
//!
//! Invariants:
//! - Reporting never changes what the work does or writes: a reporter only observes.
//! - [`Progress::start`] is called once, before any [`Progress::advance`], from the thread
//!   doing the work; the units advanced sum to at most the total `start` announced, when it
//!   announced one.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use kvstore::progress::Progress;
//! use kvstore::{Db, Options};
//!
//! #[derive(Debug, Default)]
//! struct Bytes(AtomicU64);
//! impl Progress for Bytes {
//!     fn start(&self, _total: Option<u64>) {}
//!     fn advance(&self, units: u64) {
//!         self.0.fetch_add(units, Ordering::Relaxed);
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path().join("db"), Options::default())?;
//! db.put(b"k", b"v")?;
//! let copied = Bytes::default();
//! let summary = db.backup_with_progress(dir.path().join("backups"), &copied)?;
//! assert_eq!(copied.0.load(Ordering::Relaxed), summary.info.table_bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

/// A receiver of one piece of work's progress (see the module doc).
pub trait Progress: Send + Sync + fmt::Debug {
    /// The work begins: `total` units, when known before it starts.
    fn start(&self, total: Option<u64>);
    /// `units` more units are done.
    fn advance(&self, units: u64);
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: Option<u64>) {}
    fn advance(&self, _units: u64) {}
}

/// A shared reporter as [`crate::Options`] holds it. Two handles are equal iff they share the
/// same reporter.
#[derive(Clone, Debug)]
pub struct SharedProgress(pub Arc<dyn Progress>);

impl SharedProgress {
    /// Wraps `progress`.
    pub fn new(progress: impl Progress + 'static) -> Self {
        SharedProgress(Arc::new(progress))
    }
}

impl Default for SharedProgress {
    fn default() -> Self {
        SharedProgress::new(NoProgress)
    }
}

impl PartialEq for SharedProgress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedProgress {}
