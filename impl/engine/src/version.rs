//! [`Version`]: the immutable set of live SST files per level, and the pure function that moves
//! it forward by a [`VersionEdit`].
//!
//! Invariants (checked by [`Version::apply`], which rejects an edit that would break one):
//! - Every file number is unique across levels and below `next_file_number`; every file has
//!   `smallest_key <= largest_key`, sits at the level it names, a level `< num_levels`, and has
//!   `max_revision <= last_revision`.
//! - L0 is ordered newest first: by file number descending. The manifest does not store a file's
//!   `max_revision`, so recency must follow from something it does store: every flush allocates a
//!   larger number than any earlier flush, and L0 files are only ever written by flushes (an L0
//!   compaction moves all of L0 at once to L1), so a larger L0 number is always newer data. L0
//!   files may overlap each other.
//! - Levels >= 1 are sorted by key and do not overlap: each file's `largest_key` is strictly
//!   below the next file's `smallest_key`.
//! - `wal_offset`, `next_file_number`, `last_revision`, `last_stamp` and `history_horizon` never
//!   decrease. (The
//!   horizon may pass `last_revision`, the SSTs' newest revision: it is bounded by the revisions
//!   committed, which the engine checks, and those may still be only in the WAL.)
//! - A `Version` is never mutated: readers hold an `Arc<Version>` for as long as they read.

mod edit;

pub use edit::{LeaseMeta, RemovedFile, VersionEdit};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::prefix::KeyPrefixes;
use crate::range::{KeyRange, Position};

/// Metadata of one SST file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (the file is named after it).
    pub number: u64,
    /// Level the file lives at.
    pub level: usize,
    /// Smallest key in the file.
    pub smallest_key: Vec<u8>,
    /// Largest key in the file.
    pub largest_key: Vec<u8>,
    /// File size on disk.
    pub size_bytes: u64,
    /// WAL offset of the newest record the file holds.
    pub wal_offset: u64,
    /// When the file was written, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Largest revision of any entry in the file.
    pub max_revision: u64,
}

impl FileMeta {
    /// Whether `key` is within the file's key span.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.smallest_key.as_slice() <= key && key <= self.largest_key.as_slice()
    }
}

/// The live files of a database at one point, by level (index 0 is L0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    levels: Vec<Vec<Arc<FileMeta>>>,
    /// Per level, the prefixes of the files' largest keys (rebuilt with the levels), so a point
    /// read finds its file without chasing every `FileMeta`.
    largest: Vec<KeyPrefixes>,
    wal_offset: u64,
    next_file_number: u64,
    last_revision: u64,
    /// The highest stamp of the WAL records below `wal_offset` (0 if none).
    last_stamp: u64,
    history_horizon: u64,
    /// The leases the WAL below `wal_offset` left granted, by id.
    leases: Arc<[LeaseMeta]>,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument(format!("version edit rejected: {what}"))
}

impl Version {
    /// An empty version with `num_levels` levels (L0 included) and file numbers starting at 1.
    pub fn new(num_levels: usize) -> Self {
        Version {
            levels: vec![Vec::new(); num_levels],
            largest: vec![KeyPrefixes::default(); num_levels],
            wal_offset: 0,
            next_file_number: 1,
            last_revision: 0,
            last_stamp: 0,
            history_horizon: 0,
            leases: Arc::from([]),
        }
    }

    /// Number of levels, L0 included.
    pub fn num_levels(&self) -> usize {
        self.levels.len()
    }

    /// The files of `level` (L0 newest first, deeper levels by key); empty past the last level.
    pub fn files(&self, level: usize) -> &[Arc<FileMeta>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Total size of the files of `level`.
    pub fn level_size_bytes(&self, level: usize) -> u64 {
        self.files(level)
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.size_bytes))
    }

    /// WAL offset below which every record is in some SST.
    pub fn wal_offset(&self) -> u64 {
        self.wal_offset
    }

    /// Next file number to allocate.
    pub fn next_file_number(&self) -> u64 {
        self.next_file_number
    }

    /// Largest revision persisted in SSTs.
    pub fn last_revision(&self) -> u64 {
        self.last_revision
    }

    /// The highest commit stamp of the WAL records below [`Version::wal_offset`] (0 if none).
    pub fn last_stamp(&self) -> u64 {
        self.last_stamp
    }

    /// The oldest revision reads may ask for: versions only older reads could see are gone or
    /// going (etcd's compacted revision).
    pub fn history_horizon(&self) -> u64 {
        self.history_horizon
    }

    /// The leases granted and not revoked by the WAL records below [`Version::wal_offset`], by
    /// id (the WAL from there on grants and revokes more).
    pub fn leases(&self) -> &Arc<[LeaseMeta]> {
        &self.leases
    }

    /// The files that may hold `key`, in the order a point read must consult them (newest first):
    /// overlapping L0 files newest first, then at most one file per deeper level.
    pub fn files_for_key<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a Arc<FileMeta>> {
        let l0 = self.files(0).iter().filter(move |f| f.may_contain(key));
        let deeper =
            self.levels
                .iter()
                .zip(&self.largest)
                .skip(1)
                .filter_map(move |(files, largest)| {
                    let largest_key = |i: usize| files.get(i).map_or(&[][..], |f| &f.largest_key);
                    let i = largest.count_below(key, false, largest_key);
                    files.get(i).filter(|f| f.may_contain(key))
                });
        l0.chain(deeper)
    }

    /// The files of `level` whose key span overlaps `range`, in the level's order.
    pub fn overlapping(&self, level: usize, range: &KeyRange) -> Vec<Arc<FileMeta>> {
        self.files(level)
            .iter()
            .filter(|f| range.overlaps(&f.smallest_key, &f.largest_key))
            .cloned()
            .collect()
    }

    /// The positions in `level` (a sorted level, >= 1) of its files whose key span overlaps
    /// `range`: the same files as [`Version::overlapping`], found by two binary searches instead
    /// of a pass over the level (a short scan of a level of thousands of files).
    pub fn overlapping_span(&self, level: usize, range: &KeyRange) -> std::ops::Range<usize> {
        debug_assert!(level >= 1, "REQUIRES: a sorted level");
        let files = self.files(level);
        // Sorted and disjoint: the files below the range come first, those above it last.
        let first = files.partition_point(|f| range.position(&f.largest_key) == Position::Below);
        let end = files.partition_point(|f| range.position(&f.smallest_key) != Position::Above);
        first..end.max(first)
    }

    /// The version after `edit`, or an error naming the first broken invariant (then `self` is the
    /// state to keep).
    pub fn apply(&self, edit: &VersionEdit) -> Result<Version> {
        let mut next = self.clone();
        if let Some(n) = edit.next_file_number {
            if n < self.next_file_number {
                return Err(invalid(format!(
                    "next_file_number {n} below {}",
                    self.next_file_number
                )));
            }
            next.next_file_number = n;
        }
        if let Some(r) = edit.last_revision {
            if r < self.last_revision {
                return Err(invalid(format!(
                    "last_revision {r} below {}",
                    self.last_revision
                )));
            }
            next.last_revision = r;
        }
        if let Some(s) = edit.last_stamp {
            if s < self.last_stamp {
                return Err(invalid(format!("last_stamp {s} below {}", self.last_stamp)));
            }
            next.last_stamp = s;
        }
        if let Some(h) = edit.history_horizon {
            if h < self.history_horizon {
                return Err(invalid(format!(
                    "history_horizon {h} below {}",
                    self.history_horizon
                )));
            }
            next.history_horizon = h;
        }
        if let Some(leases) = &edit.leases {
            next.leases = Arc::clone(leases);
        }
        if let Some(w) = edit.wal_offset {
            if w < self.wal_offset {
                return Err(invalid(format!("wal_offset {w} below {}", self.wal_offset)));
            }
            next.wal_offset = w;
        }
        for removed in &edit.remove {
            let files = next
                .levels
                .get_mut(removed.level)
                .ok_or_else(|| invalid(format!("remove from level {} of none", removed.level)))?;
            let before = files.len();
            files.retain(|f| f.number != removed.number);
            if files.len() == before {
                return Err(invalid(format!(
                    "file {} is not at level {}",
                    removed.number, removed.level
                )));
            }
        }
        for meta in &edit.add {
            next.check_new_file(meta)?;
            let files = next.levels.get_mut(meta.level).ok_or_else(|| {
                invalid(format!(
                    "file {} at level {} of none",
                    meta.number, meta.level
                ))
            })?;
            files.push(Arc::new(meta.clone()));
        }
        next.sort_and_check_levels()?;
        Ok(next)
    }

    /// Checks a file about to be added against the fields that do not depend on its neighbours.
    fn check_new_file(&self, meta: &FileMeta) -> Result<()> {
        if meta.level >= self.num_levels() {
            return Err(invalid(format!(
                "file {} at level {} of {}",
                meta.number,
                meta.level,
                self.num_levels()
            )));
        }
        if meta.number >= self.next_file_number {
            return Err(invalid(format!(
                "file number {} not below next_file_number {}",
                meta.number, self.next_file_number
            )));
        }
        if self
            .levels
            .iter()
            .flatten()
            .any(|f| f.number == meta.number)
        {
            return Err(invalid(format!("file number {} already live", meta.number)));
        }
        if meta.smallest_key > meta.largest_key {
            return Err(invalid(format!(
                "file {} has smallest_key > largest_key",
                meta.number
            )));
        }
        if meta.max_revision > self.last_revision {
            return Err(invalid(format!(
                "file {} max_revision {} above last_revision {}",
                meta.number, meta.max_revision, self.last_revision
            )));
        }
        Ok(())
    }

    /// Restores the level orders and rejects overlapping files in levels >= 1.
    fn sort_and_check_levels(&mut self) -> Result<()> {
        for (level, files) in self.levels.iter_mut().enumerate() {
            if level == 0 {
                files.sort_by_key(|f| std::cmp::Reverse(f.number));
                continue;
            }
            files.sort_by(|a, b| a.smallest_key.cmp(&b.smallest_key));
            for pair in files.windows(2) {
                if let [a, b] = pair
                    && a.largest_key >= b.smallest_key
                {
                    return Err(invalid(format!(
                        "files {} and {} overlap at level {level}",
                        a.number, b.number
                    )));
                }
            }
        }
        // L0 is ordered by number, not key, and is never searched: it gets no prefixes.
        self.largest = self
            .levels
            .iter()
            .enumerate()
            .map(|(level, files)| match level {
                0 => KeyPrefixes::default(),
                _ => KeyPrefixes::new(files.iter().map(|f| f.largest_key.as_slice())),
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
