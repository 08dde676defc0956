//! Reads: point lookups and lazy, consistent scans.
//!
//! Invariants:
//! - A read works on one [`Snapshot`]: the memtables and the tree it pins stay alive (and their
//!   files on disk, since a file goes only with the last tree listing it) for as long as the
//!   read runs, whatever flushes and compactions happen meanwhile; it sees exactly the commits up
//!   to the snapshot's revision.
//! - Sources are consulted newest first: the active memtable, frozen memtables newest first, L0
//!   newest first, then one file per deeper level. A point read stops at the first version found
//!   (a tombstone means absent); a scan merges all sources and keeps the highest revision per key.

use std::ops::Bound;
use std::sync::Arc;

use crate::entry::Entry;
use crate::error::Result;
use crate::iter::{BoxedSource, ConcatSource, MergeIter, Opener, ScanSpec};
use crate::limits::check_key;
use crate::range::{Direction, KeyRange};

use super::inner::{Inner, Snapshot};

/// How a scan walks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Descending key order instead of ascending.
    pub reverse: bool,
    /// Yield at most this many pairs.
    pub limit: Option<usize>,
}

/// A value with the commit that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// Revision of the commit that wrote it.
    pub revision: u64,
    /// Time of that commit, unix milliseconds.
    pub created_at_ms: u64,
}

/// A lazy scan over one consistent snapshot: `(key, value)` pairs in key order (or reverse).
/// After an `Err` item the scan ends.
pub struct Scan {
    merge: MergeIter,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan").field("merge", &self.merge).finish()
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.merge.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            // The merge hides tombstones; a `None` here cannot happen but is skipped safely.
            if let Some(value) = entry.value {
                return Some(Ok((entry.key, value)));
            }
        }
    }
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
    /// The newest visible version of `key`, tombstones included.
    pub(crate) fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        self.check_open()?;
        let snap = self.snapshot();
        for mem in snap.mems.iter() {
            if let Some(entry) = mem.get(key, snap.revision) {
                return Ok(Some(entry));
            }
        }
        for file in snap.tree.version.files_for_key(key) {
            let table = snap.tree.table(&self.dir, file.number)?;
            if let Some(entry) = table.get(key)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// A lazy scan of `range` (see the module doc).
    pub(crate) fn scan(&self, range: KeyRange, opts: ScanOptions) -> Result<Scan> {
        self.check_open()?;
        let snap = self.snapshot();
        let direction = if opts.reverse {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        let sources = self.sources(&snap, &range, direction)?;
        let mut spec = ScanSpec::user(range, direction, snap.revision);
        spec.limit = opts.limit;
        Ok(Scan {
            merge: MergeIter::new(sources, spec),
        })
    }

    /// One source per memtable, per overlapping L0 file and per deeper level, newest first.
    fn sources(
        &self,
        snap: &Snapshot,
        range: &KeyRange,
        direction: Direction,
    ) -> Result<Vec<BoxedSource>> {
        let mut sources: Vec<BoxedSource> = Vec::new();
        for mem in snap.mems.iter() {
            sources.push(Box::new(mem.scan(range.clone(), direction, snap.revision)));
        }
        let version = &snap.tree.version;
        for file in version.overlapping(0, range) {
            let table = snap.tree.table(&self.dir, file.number)?;
            sources.push(Box::new(table.iter(range.clone(), direction)));
        }
        for level in 1..version.num_levels() {
            let mut files = version.overlapping(level, range);
            if files.is_empty() {
                continue;
            }
            if direction == Direction::Reverse {
                files.reverse();
            }
            let mut openers: Vec<Opener> = Vec::with_capacity(files.len());
            for file in files {
                // Opened when the scan reaches it, so a scan holds one table of the level.
                let (tree, dir) = (Arc::clone(&snap.tree), self.dir.clone());
                let range = range.clone();
                openers.push(Box::new(move || {
                    let table = tree.table(&dir, file.number)?;
                    Ok(Box::new(table.iter(range, direction)) as BoxedSource)
                }));
            }
            sources.push(Box::new(ConcatSource::new(openers)));
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
