//! The memtable: the newest writes, in memory, readable at any snapshot revision while writers
//! keep inserting.
//!
//! Structure: a lock-free `crossbeam_skiplist::SkipMap` keyed by the internal key
//! `(user key, Reverse(revision))`, so all versions of a key are adjacent, newest first. Inserts
//! never block readers and readers never block inserts. Scans ([`MemTableIter`]) hold an
//! `Arc<MemTable>` and a cursor (the last user key yielded) and re-seek the skip list for each step:
//! O(log n) a step, but no borrow of the map, so an iterator is `'static + Send` and can outlive the
//! memtable's place in the engine (after it is frozen and flushed, a running scan still reads it).
//!
//! Invariants:
//! - Reading at snapshot revision `R` yields, for each key, the version with the largest revision
//!   `<= R`, if any; versions newer than `R` are invisible. A snapshot is consistent provided every
//!   insert with revision `<= R` happened before the snapshot was taken (the engine publishes `R`
//!   only after the commit of `R` is fully inserted).
//! - Tombstones are stored and yielded like values (`value == None`); hiding them is the merge's job.
//! - Entries are never removed; a memtable is dropped whole once flushed and unreferenced.
//! - `approximate_size_bytes` is the sum of [`Entry::size_bytes`] of every insert (replaced
//!   versions included), so it only grows.

mod iter;

pub use iter::MemTableIter;

use std::cmp::Reverse;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_skiplist::SkipMap;

use crate::entry::Entry;
use crate::range::{Direction, KeyRange};

/// A key's position in the skip list: user key ascending, then revision descending.
type InternalKey = (Vec<u8>, Reverse<u64>);

/// What the skip list holds per version besides its key.
#[derive(Debug)]
struct Slot {
    value: Option<Vec<u8>>,
    wal_offset: u64,
    created_at_ms: u64,
}

/// An in-memory, concurrently writable, snapshot-readable sorted map of versions.
#[derive(Debug, Default)]
pub struct MemTable {
    map: SkipMap<InternalKey, Slot>,
    size_bytes: AtomicU64,
    max_revision: AtomicU64,
}

impl MemTable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts one version. Inserting the same `(key, revision)` twice keeps the later value (a
    /// batch that writes a key twice ends with its last write).
    ///
    /// REQUIRES: the key and value passed [`crate::limits`] checks.
    pub fn insert(&self, entry: Entry) {
        self.size_bytes
            .fetch_add(entry.size_bytes(), Ordering::Relaxed);
        self.max_revision
            .fetch_max(entry.revision, Ordering::Release);
        let slot = Slot {
            value: entry.value,
            wal_offset: entry.wal_offset,
            created_at_ms: entry.created_at_ms,
        };
        self.map.insert((entry.key, Reverse(entry.revision)), slot);
    }

    /// The newest version of `key` with revision `<= snapshot_rev`, tombstones included, or `None`
    /// if this memtable holds no such version (then older sources must be consulted).
    pub fn get(&self, key: &[u8], snapshot_rev: u64) -> Option<Entry> {
        let probe = (key.to_vec(), Reverse(snapshot_rev));
        let found = self.map.lower_bound(Bound::Included(&probe))?;
        (found.key().0.as_slice() == key).then(|| to_entry(found.key(), found.value()))
    }

    /// A lazy scan of `range` in `direction` at `snapshot_rev`: one entry per key, tombstones
    /// included. Writers may keep inserting while it runs.
    pub fn scan(
        self: &Arc<Self>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: u64,
    ) -> MemTableIter {
        MemTableIter::new(Arc::clone(self), range, direction, snapshot_rev)
    }

    /// Sum of the sizes of every version inserted so far.
    pub fn approximate_size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The largest revision inserted, or 0 when empty.
    pub fn max_revision(&self) -> u64 {
        self.max_revision.load(Ordering::Acquire)
    }
}

fn to_entry(key: &InternalKey, slot: &Slot) -> Entry {
    Entry {
        key: key.0.clone(),
        revision: key.1.0,
        value: slot.value.clone(),
        wal_offset: slot.wal_offset,
        created_at_ms: slot.created_at_ms,
    }
}

#[cfg(test)]
mod tests;
