//! Reads: point lookups and lazy, consistent scans, at the newest revision or an older one.
//!
//! Invariants:
//! - A read works on one [`ReadView`]: the memtables and the tree it pins stay alive (and their
//!   files on disk, since a file goes only with the last tree listing it) for as long as the
//!   read runs, whatever flushes and compactions happen meanwhile; it sees exactly the commits up
//!   to its revision.
//! - A read at an older revision `r` first checks `horizon <= r <= newest` (else
//!   [`Error::Compacted`] / [`Error::FutureRevision`]) and pins `r` for as long as it runs, so
//!   no compaction drops a version it can see (`super::readers`). A read through a snapshot
//!   shares the snapshot's pin instead, so it works even after the horizon passed the
//!   snapshot's revision.
//! - Sources are consulted newest first: the active memtable, frozen memtables newest first, L0
//!   newest first, then one file per deeper level. A point read stops at the first version at or
//!   below its revision (a tombstone means absent); a scan merges all sources and keeps the
//!   highest such revision per key.

use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::sync::Arc;

use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::iter::{BoxedCursor, ConcatSource, MergeIter, OwnedCursor, ScanSpec};
use crate::limits::check_key;
use crate::metrics::Counter;
use crate::range::{Direction, KeyRange};
use crate::sst::{Table, TableIter};

use super::inner::Inner;
use super::readers::Pin;
use super::versions::{ReadView, Tree};

/// How a scan walks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Descending key order instead of ascending.
    pub reverse: bool,
    /// Yield at most this many pairs.
    pub limit: Option<usize>,
    /// Read as of this revision instead of the newest (etcd's `Range` `revision`); must be at or
    /// above the history horizon and at or below the newest revision.
    pub revision: Option<u64>,
}

/// A value with the commit that wrote it and etcd's metadata of its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// Revision of the commit that wrote it (etcd's `mod_revision`).
    pub revision: u64,
    /// Time of that commit, unix milliseconds.
    pub created_at_ms: u64,
    /// Revision of the commit that created the key (its first put since it last did not exist).
    pub create_revision: u64,
    /// Puts since that creation, 1 for the creating one.
    pub version: u64,
    /// The lease the key is attached to (0: none).
    pub lease: u64,
}

impl Versioned {
    /// Its create revision, version and lease.
    pub fn meta(&self) -> VersionMeta {
        VersionMeta {
            create_revision: self.create_revision,
            version: self.version,
            lease: self.lease,
        }
    }

    /// The live version `entry` holds, or `None` for a tombstone.
    pub(crate) fn of(entry: Entry) -> Option<Versioned> {
        Versioned::keyed(entry).map(|(_, versioned)| versioned)
    }

    /// `entry`'s key and the live version it holds (moved, not copied), or `None` for a
    /// tombstone.
    pub(crate) fn keyed(entry: Entry) -> Option<(Vec<u8>, Versioned)> {
        let Entry {
            key,
            value,
            revision,
            meta,
            created_at_ms,
            ..
        } = entry;
        let versioned = Versioned {
            value: value?,
            revision,
            created_at_ms,
            create_revision: meta.create_revision,
            version: meta.version,
            lease: meta.lease,
        };
        Some((key, versioned))
    }
}

/// A lazy scan over one consistent snapshot: `(key, value)` pairs in key order (or reverse).
/// After an `Err` item the scan ends. [`Scan::versioned`] yields each row's metadata too;
/// [`Scan::visit`] lends each row instead of copying it.
pub struct Scan {
    merge: MergeIter,
    /// Holds the scan's revision while it runs (a scan at an older revision).
    _pin: Option<Pin>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan").field("merge", &self.merge).finish()
    }
}

impl Scan {
    /// The next live version; tombstones are hidden by the merge.
    fn next_live(&mut self) -> Option<Result<(Vec<u8>, Versioned)>> {
        loop {
            let entry = match self.merge.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            // The merge hides tombstones; a `None` here cannot happen but is skipped safely.
            if let Some(row) = Versioned::keyed(entry) {
                return Some(Ok(row));
            }
        }
    }

    /// The same scan yielding each key with its value and metadata.
    pub fn versioned(self) -> impl Iterator<Item = Result<(Vec<u8>, Versioned)>> {
        let mut scan = self;
        std::iter::from_fn(move || scan.next_live())
    }

    /// The same scan yielding keys only.
    pub fn keys(self) -> impl Iterator<Item = Result<Vec<u8>>> {
        self.map(|row| row.map(|(key, _)| key))
    }

    /// Counts the rows the scan yields (its limit applies); the first error ends it.
    pub fn count_rows(mut self) -> Result<u64> {
        let mut count = 0u64;
        while let Some(row) = self.merge.next_ref() {
            row?;
            count = count.saturating_add(1);
        }
        Ok(count)
    }

    /// Calls `visit` with each remaining row's key and value, borrowed from the engine's memory
    /// (a table block or the scan's buffer) for the call only: the same rows, in the same order
    /// and at the same snapshot as iterating the scan, without copying a key or a value.
    /// `ControlFlow::Break(b)` stops the scan and is returned; a scan that runs to its end (or
    /// its limit) returns `Continue(())`. A read error ends the scan with that error (rows
    /// visited before it stay visited).
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// db.put(b"a/1", b"x")?;
    /// db.put(b"a/2", b"yy")?;
    /// db.put(b"b/1", b"zzz")?;
    /// let mut bytes = 0;
    /// let flow = db
    ///     .scan_prefix(b"a/", kvstore::ScanOptions::default())?
    ///     .visit(|_key, value| {
    ///         bytes += value.len();
    ///         ControlFlow::<()>::Continue(())
    ///     })?;
    /// assert_eq!((flow, bytes), (ControlFlow::Continue(()), 3));
    /// // Break stops the scan at the first key it is given back.
    /// let first = db
    ///     .scan(kvstore::KeyRange::all(), kvstore::ScanOptions::default())?
    ///     .visit(|key, _value| ControlFlow::Break(key.to_vec()))?;
    /// assert_eq!(first, ControlFlow::Break(b"a/1".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn visit<B>(
        mut self,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        while let Some(row) = self.merge.next_ref() {
            let row = row?;
            // The merge hides tombstones; a `None` here cannot happen but is skipped safely.
            if let Some(value) = row.value
                && let ControlFlow::Break(b) = visit(row.key, value)
            {
                return Ok(ControlFlow::Break(b));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_live()
            .map(|row| row.map(|(key, versioned)| (key, versioned.value)))
    }
}

/// The revision and metadata of the version of `key` visible at `revision` in the tables of
/// `tree`, without copying its key or value.
pub(crate) fn tree_meta(
    tree: &Tree,
    dir: &Path,
    key: &[u8],
    revision: u64,
) -> Result<Option<(u64, VersionMeta)>> {
    tree_find(tree, dir, key, |table, revision_max| {
        table.get_meta(key, revision, revision_max)
    })
}

/// What `find` returns for the first table of `tree` (of the database in `dir`) that may hold
/// `key` and has a version of it, newest table first; `find` gets the manifest's
/// `lastRevision`, above which a table entry is corruption.
fn tree_find<T>(
    tree: &Tree,
    dir: &Path,
    key: &[u8],
    mut find: impl FnMut(&Table, u64) -> Result<Option<T>>,
) -> Result<Option<T>> {
    for file in tree.version.files_for_key(key) {
        let table = tree.table(dir, file.number)?;
        if let Some(found) = find(&table, tree.version.last_revision())? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Converts a standard range over byte slices into a [`KeyRange`].
pub fn key_range<'a>(range: impl std::ops::RangeBounds<&'a [u8]>) -> KeyRange {
    let own = |b: Bound<&&[u8]>| match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    KeyRange::new(own(range.start_bound()), own(range.end_bound()))
}

impl Inner {
    /// A read view at `revision` (`None`: the newest), with the pin that keeps an older
    /// revision readable; see the module doc.
    pub(crate) fn view_at(&self, revision: Option<u64>) -> Result<(ReadView, Option<Pin>)> {
        self.check_open()?;
        let mut view = self.read_view();
        let Some(requested) = revision else {
            return Ok((view, None));
        };
        if requested > view.revision {
            return Err(Error::FutureRevision {
                requested,
                current: view.revision,
            });
        }
        let pin = self.readers.pin(requested)?;
        view.revision = requested;
        Ok((view, Some(pin)))
    }

    /// A read view at a revision `pin` already holds (a snapshot's, possibly below the horizon
    /// by now), with a second pin for the read.
    pub(crate) fn view_pinned(&self, pin: &Pin) -> Result<(ReadView, Option<Pin>)> {
        self.check_open()?;
        let mut view = self.read_view();
        view.revision = pin.revision();
        Ok((view, Some(pin.duplicate())))
    }

    /// The version of `key` visible at `revision` (`None`: the newest), tombstones included.
    pub(crate) fn get_entry(&self, key: &[u8], revision: Option<u64>) -> Result<Option<Entry>> {
        self.metrics.inc(Counter::Gets);
        check_key(key)?;
        let (view, _pin) = self.view_at(revision)?;
        self.entry_in(&view, key)
    }

    /// The version of `key` visible at `revision`, tombstones included, without the horizon
    /// check. REQUIRES: the caller holds a pin at or below `revision` (so compaction kept what
    /// a read there sees).
    pub(crate) fn entry_held(&self, key: &[u8], revision: u64) -> Result<Option<Entry>> {
        self.check_open()?;
        let mut view = self.read_view();
        view.revision = revision;
        self.entry_in(&view, key)
    }

    /// The version of `key` `view` sees, tombstones included: the first memtable holding one,
    /// else the tables.
    pub(crate) fn entry_in(&self, view: &ReadView, key: &[u8]) -> Result<Option<Entry>> {
        if let Some(entry) = view.mems.iter().find_map(|m| m.get(key, view.revision)) {
            return Ok(Some(entry));
        }
        tree_find(&view.tree, &self.dir, key, |table, revision_max| {
            table.get_checked(key, view.revision, revision_max)
        })
    }

    /// A lazy scan of `range` (see the module doc).
    pub(crate) fn scan(&self, range: KeyRange, opts: ScanOptions) -> Result<Scan> {
        let (view, pin) = self.view_at(opts.revision)?;
        self.scan_view(view, pin, range, opts)
    }

    /// A lazy scan of `range` over `view`, holding `pin` while it runs.
    pub(crate) fn scan_view(
        &self,
        view: ReadView,
        pin: Option<Pin>,
        range: KeyRange,
        opts: ScanOptions,
    ) -> Result<Scan> {
        let direction = if opts.reverse {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        let sources = self.sources(&view, &range, direction)?;
        let mut spec = ScanSpec::user(range, direction, view.revision);
        spec.limit = opts.limit;
        Ok(Scan {
            merge: MergeIter::new(sources, spec),
            _pin: pin,
        })
    }

    /// One source per memtable, per overlapping L0 file and per deeper level, newest first; a
    /// table's versions are narrowed to the one the view sees.
    pub(crate) fn sources(
        &self,
        view: &ReadView,
        range: &KeyRange,
        direction: Direction,
    ) -> Result<Vec<BoxedCursor>> {
        let revision = view.revision;
        let revision_max = view.tree.version.last_revision();
        let mut sources: Vec<BoxedCursor> = Vec::new();
        for mem in view.mems.iter() {
            let scan = mem.scan(range.clone(), direction, revision);
            sources.push(Box::new(OwnedCursor::new(scan)));
        }
        let version = &view.tree.version;
        for file in version.overlapping(0, range) {
            let table = view.tree.table(&self.dir, file.number)?;
            sources.push(Box::new(table.iter_at(
                range.clone(),
                direction,
                revision,
                revision_max,
            )));
        }
        for level in 1..version.num_levels() {
            let span = version.overlapping_span(level, range);
            if span.is_empty() {
                continue;
            }
            // Each file is opened when the scan reaches it, so a scan holds one table of the
            // level and does no work for the files it does not reach.
            let (tree, dir, range) = (Arc::clone(&view.tree), self.dir.clone(), range.clone());
            let open = move |i: usize| -> Result<TableIter> {
                let file = tree.version.files(level).get(i).ok_or_else(|| {
                    Error::InvalidArgument(format!("file {i} of level {level} out of range"))
                })?;
                let table = tree.table(&dir, file.number)?;
                Ok(table.iter_at(range.clone(), direction, revision, revision_max))
            };
            sources.push(match direction {
                Direction::Forward => Box::new(ConcatSource::new(span.map(open))),
                Direction::Reverse => Box::new(ConcatSource::new(span.rev().map(open))),
            });
        }
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_ranges_convert_to_key_ranges() {
        let a: &[u8] = b"a";
        let c: &[u8] = b"c";
        let r = key_range(a..c);
        assert!(r.contains(b"b") && !r.contains(b"c"));
        let r = key_range(a..=c);
        assert!(r.contains(b"c"));
        assert_eq!(key_range(..), KeyRange::all());
    }
}
