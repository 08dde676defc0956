//! Scans: the entry-source contract every sorted source (memtable scan, SST scan) meets, the
//! [`Cursor`] form of it that lends its current entry, the k-way [`MergeIter`] that turns several
//! cursors into one user-facing stream, [`HistoryMerge`] that merges every version for flush and
//! compaction, and [`ConcatSource`], one lazily opened source per sorted level.
//!
//! Invariants:
//! - An entry source yields `Result<Entry>` (a [`Cursor`], the same entries lent one at a time)
//!   sorted strictly by key in the scan direction; one for [`MergeIter`] holds at most one entry
//!   per key (the version it holds for the snapshot; an SST scan made by `Table::iter_at` yields
//!   exactly that). A source may yield keys outside
//!   the scan's range; the merge drops them. An `Err` item is final for that scan: the merge
//!   yields it and then ends, so a corrupt block never turns into silently missing keys.
//! - Of the versions of a key offered by the sources, the merge keeps the one with the highest
//!   revision `<= snapshot_rev` (revisions are global, so the highest is the newest); on equal
//!   revisions, the source listed first wins.

mod concat;
mod cursor;
mod history;
mod merge;

pub use concat::ConcatSource;
pub use cursor::{BoxedCursor, Cursor, OwnedCursor, next_owned};
pub use history::HistoryMerge;
pub use merge::MergeIter;

use crate::entry::Entry;
use crate::error::Result;
use crate::range::{Direction, KeyRange};

/// A sorted stream of entries (see the module invariants). Blanket-implemented for every fitting
/// iterator, so an SST reader only needs `impl Iterator<Item = Result<Entry>> + Send`.
pub trait EntrySource: Iterator<Item = Result<Entry>> + Send {}

impl<T: Iterator<Item = Result<Entry>> + Send> EntrySource for T {}

/// An owned, type-erased entry source, as the merge takes them.
pub type BoxedSource = Box<dyn EntrySource>;

/// Whether a merge yields tombstones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tombstones {
    /// Drop them: what a user scan wants (a deleted key is absent).
    Hide,
    /// Yield them: what compaction wants (a tombstone must keep shadowing older levels).
    Keep,
}

/// What one scan covers and how it walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSpec {
    /// Keys to yield.
    pub range: KeyRange,
    /// Order to yield them in.
    pub direction: Direction,
    /// Versions with a larger revision are invisible.
    pub snapshot_rev: u64,
    /// Yield at most this many entries (`None`: no limit).
    pub limit: Option<usize>,
    /// Whether tombstones are yielded.
    pub tombstones: Tombstones,
}

impl ScanSpec {
    /// A user scan: tombstones hidden, no limit.
    pub fn user(range: KeyRange, direction: Direction, snapshot_rev: u64) -> Self {
        ScanSpec {
            range,
            direction,
            snapshot_rev,
            limit: None,
            tombstones: Tombstones::Hide,
        }
    }

    /// The same scan with a limit.
    pub fn with_limit(self, limit: usize) -> Self {
        ScanSpec {
            limit: Some(limit),
            ..self
        }
    }
}

#[cfg(test)]
mod tests;
