//! [`Snapshot`]: a consistent view of the database at one revision, for as long as it lives.
//!
//! Invariants:
//! - Every read through a snapshot sees exactly the commits up to [`Snapshot::revision`],
//!   whatever is committed, flushed or compacted meanwhile: the snapshot pins its revision in
//!   the readers' registry, so compaction keeps every version a read at it can see, even after
//!   [`crate::Db::compact_history`] moves the horizon past it.
//! - A snapshot keeps its database open (it holds a handle); reads through it after
//!   [`crate::Db::close`] return [`crate::Error::Closed`].

use crate::error::Result;
use crate::limits::check_key;
use crate::metrics::Counter;
use crate::range::KeyRange;

use super::Db;
use super::read::{Scan, ScanOptions, Versioned};
use super::readers::Pin;

/// See the module doc.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
/// db.put(b"k", b"before")?;
/// let snapshot = db.snapshot()?;
/// let after = db.put(b"k", b"after")?;
/// assert_eq!(snapshot.get(b"k")?, Some(b"before".to_vec()));
/// assert_eq!(db.get(b"k")?, Some(b"after".to_vec()));
/// // The horizon passes the snapshot and a compaction runs: the snapshot still reads its
/// // revision, while new reads at it are refused.
/// db.compact_history(after)?;
/// db.compact_range(kvstore::KeyRange::all())?;
/// assert_eq!(snapshot.get(b"k")?, Some(b"before".to_vec()));
/// assert!(db.get_at(b"k", snapshot.revision()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Snapshot {
    db: Db,
    pin: Pin,
}

impl Snapshot {
    pub(super) fn new(db: Db, pin: Pin) -> Snapshot {
        Snapshot { db, pin }
    }

    /// The revision this snapshot reads at.
    pub fn revision(&self) -> u64 {
        self.pin.revision()
    }

    /// The value of `key` at the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|v| v.value))
    }

    /// The value of `key` at the snapshot with its version's metadata.
    pub fn get_versioned(&self, key: &[u8]) -> Result<Option<Versioned>> {
        let inner = self.db.inner();
        inner.metrics.inc(Counter::Gets);
        check_key(key)?;
        let (view, _pin) = inner.view_pinned(&self.pin)?;
        Ok(inner.entry_in(&view, key)?.and_then(Versioned::of))
    }

    /// A lazy scan of `range` at the snapshot (`opts.revision` is ignored: the snapshot's is
    /// used). The scan keeps the snapshot's revision readable for as long as it runs.
    pub fn scan(&self, range: KeyRange, opts: ScanOptions) -> Result<Scan> {
        let inner = self.db.inner();
        inner.metrics.inc(Counter::Scans);
        let (view, pin) = inner.view_pinned(&self.pin)?;
        inner.scan_view(view, pin, range, opts)
    }

    /// How many live keys `range` holds at the snapshot.
    pub fn count(&self, range: KeyRange) -> Result<u64> {
        self.scan(range, ScanOptions::default())?.count_rows()
    }
}
