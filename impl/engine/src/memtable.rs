//! The memtable: the newest writes, in memory, readable at any snapshot revision while writers
//! keep inserting.
//!
//! Structure: a lock-free `crossbeam_skiplist::SkipMap` keyed by the internal key (user key
//! ascending, then revision descending), so all versions of a key are adjacent, newest first.
//! Lookups borrow the user key (the map's key borrows as `dyn VersionedKey`, which a
//! `Probe` of borrowed bytes also is), so a read copies nothing until it returns. Inserts
//! never block readers and readers never block inserts. Scans ([`MemTableIter`]) hold an
//! `Arc<MemTable>` and a cursor (the last user key yielded) and re-seek the skip list once per run
//! of keys: no borrow of the map, so an iterator is `'static + Send` and can outlive the
//! memtable's place in the engine (after it is frozen and flushed, a running scan still reads it).
//!
//! Invariants:
//! - Reading at snapshot revision `R` yields, for each key, the version with the largest revision
//!   `<= R`, if any; versions newer than `R` are invisible. A snapshot is consistent provided every
//!   insert with revision `<= R` happened before the snapshot was taken (the engine publishes `R`
//!   only after the commit of `R` is fully inserted).
//! - Tombstones are stored and yielded like values (`value == None`); hiding them is the merge's job.
//! - Entries are never removed; a memtable is dropped whole once flushed and unreferenced.
//! - A version's key and value bytes are immutable once inserted; those of one large commit
//!   share one reference-counted buffer ([`MemTable::insert_commit`]), freed when the last
//!   version (or a scan cursor) holding a piece of it goes.
//! - `prefix_min..=prefix_max` covers the [`key_prefix`] of every key inserted (empty: `MAX..=0`,
//!   covering nothing). Both are widened before the key is inserted, so a reader that can see
//!   the insert (its snapshot was published after it) sees bounds that cover it; a point read
//!   whose key's prefix falls outside them skips the skip-list search. Since `key_prefix` is
//!   monotone, a prefix outside the bounds means a key outside the memtable's key range.
//! - `approximate_size_bytes` is the sum of [`Entry::size_bytes`] of every insert (replaced
//!   versions included), so it only grows.

mod iter;

pub use iter::MemTableIter;

use std::borrow::Borrow;
use std::cmp::Ordering as KeyOrdering;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::entry::{Entry, VersionMeta};
use crate::prefix::key_prefix;
use crate::range::{Direction, KeyRange};

/// Versions a commit must create for their bytes to be packed into one shared buffer: below it,
/// each key and value keeps the allocation it came in (moved, not copied), since packing a
/// handful costs as many allocations (the buffer and its reference count) as it saves.
const PACK_MIN_ENTRIES: usize = 8;

/// A user key and a revision, in the skip list's order: key ascending, then revision descending.
trait VersionedKey {
    fn user_key(&self) -> &[u8];
    fn revision(&self) -> u64;
}

impl PartialEq for dyn VersionedKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == KeyOrdering::Equal
    }
}

impl Eq for dyn VersionedKey + '_ {}

impl PartialOrd for dyn VersionedKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<KeyOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn VersionedKey + '_ {
    fn cmp(&self, other: &Self) -> KeyOrdering {
        self.user_key()
            .cmp(other.user_key())
            .then_with(|| other.revision().cmp(&self.revision()))
    }
}

/// The skip list's key. The key bytes may share one buffer with the rest of its commit's keys
/// and values (see [`MemTable::insert_commit`]).
#[derive(Debug)]
struct InternalKey {
    key: Bytes,
    revision: u64,
}

impl VersionedKey for InternalKey {
    fn user_key(&self) -> &[u8] {
        &self.key
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl<'a> Borrow<dyn VersionedKey + 'a> for InternalKey {
    fn borrow(&self) -> &(dyn VersionedKey + 'a) {
        self
    }
}

// The map's order must be the borrowed form's order (the `Borrow` contract).
impl PartialEq for InternalKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == KeyOrdering::Equal
    }
}

impl Eq for InternalKey {}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<KeyOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> KeyOrdering {
        (self as &dyn VersionedKey).cmp(other as &dyn VersionedKey)
    }
}

/// A lookup key borrowing the user key.
struct Probe<'a> {
    key: &'a [u8],
    revision: u64,
}

impl VersionedKey for Probe<'_> {
    fn user_key(&self) -> &[u8] {
        self.key
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl<'a> Probe<'a> {
    fn new(key: &'a [u8], revision: u64) -> Self {
        Probe { key, revision }
    }

    /// Sorts before every version of `key` (no revision is above `u64::MAX`).
    fn before_versions(key: &'a [u8]) -> Self {
        Probe::new(key, u64::MAX)
    }

    /// Sorts after every version of `key` (no revision is below 0).
    fn after_versions(key: &'a [u8]) -> Self {
        Probe::new(key, 0)
    }

    fn as_dyn(&self) -> &(dyn VersionedKey + 'a) {
        self
    }
}

#[derive(Debug)]
struct Slot {
    value: Option<Bytes>,
    meta: VersionMeta,
    wal_offset: u64,
    created_at_ms: u64,
}

/// An in-memory, concurrently writable, snapshot-readable sorted map of versions.
#[derive(Debug)]
pub struct MemTable {
    map: SkipMap<InternalKey, Slot>,
    size_bytes: AtomicU64,
    max_revision: AtomicU64,
    /// Smallest [`key_prefix`] inserted (`u64::MAX` while empty).
    prefix_min: AtomicU64,
    /// Largest [`key_prefix`] inserted (0 while empty, with `prefix_min` above it).
    prefix_max: AtomicU64,
}

impl Default for MemTable {
    fn default() -> Self {
        MemTable {
            map: SkipMap::new(),
            size_bytes: AtomicU64::new(0),
            max_revision: AtomicU64::new(0),
            prefix_min: AtomicU64::new(u64::MAX),
            prefix_max: AtomicU64::new(0),
        }
    }
}

impl MemTable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether some inserted key may share `key`'s prefix range (see the module invariants).
    fn may_contain(&self, key: &[u8]) -> bool {
        let prefix = key_prefix(key);
        self.prefix_min.load(Ordering::Acquire) <= prefix
            && prefix <= self.prefix_max.load(Ordering::Acquire)
    }

    /// Inserts the versions one commit (or one replayed WAL record) creates. Inserting the same
    /// `(key, revision)` twice keeps the later value (a batch that writes a key twice ends with
    /// its last write).
    ///
    /// A commit of at least [`PACK_MIN_ENTRIES`] versions has its keys and values copied into
    /// one buffer that every version of it shares (reference-counted), instead of keeping one
    /// allocation per key and per value: a batch costs one allocation for its bytes instead of
    /// two per entry, and dropping the memtable frees one buffer per commit. The bounds
    /// (`prefix_min`, `prefix_max`) are widened for the whole commit before its first insert.
    ///
    /// REQUIRES: the keys and values passed [`crate::limits`] checks.
    pub fn insert_commit(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let (mut prefix_lo, mut prefix_hi) = (u64::MAX, 0u64);
        let (mut size, mut revision, mut bytes) = (0u64, 0u64, 0usize);
        for entry in &entries {
            let prefix = key_prefix(&entry.key);
            prefix_lo = prefix_lo.min(prefix);
            prefix_hi = prefix_hi.max(prefix);
            size = size.saturating_add(entry.size_bytes());
            revision = revision.max(entry.revision);
            let value_len = entry.value.as_ref().map_or(0, Vec::len);
            bytes = bytes
                .saturating_add(entry.key.len())
                .saturating_add(value_len);
        }
        self.prefix_min.fetch_min(prefix_lo, Ordering::Release);
        self.prefix_max.fetch_max(prefix_hi, Ordering::Release);
        self.size_bytes.fetch_add(size, Ordering::Relaxed);
        self.max_revision.fetch_max(revision, Ordering::Release);
        if entries.len() < PACK_MIN_ENTRIES {
            for mut entry in entries {
                let key = std::mem::take(&mut entry.key);
                let value = entry.value.take();
                self.insert_version(&entry, key.into(), value.map(Bytes::from));
            }
            return;
        }
        let mut packed = Vec::with_capacity(bytes);
        for entry in &entries {
            packed.extend_from_slice(&entry.key);
            packed.extend_from_slice(entry.value.as_deref().unwrap_or_default());
        }
        let packed = Bytes::from(packed);
        let mut at = 0usize;
        // In bounds: the pieces taken are the lengths summed into `bytes`, in the same order.
        let mut take = |len: usize| {
            let piece = packed.slice(at..at.saturating_add(len));
            at = at.saturating_add(len);
            piece
        };
        for entry in &entries {
            let key = take(entry.key.len());
            let value = entry.value.as_ref().map(|value| take(value.len()));
            self.insert_version(entry, key, value);
        }
    }

    /// Inserts one version (see [`MemTable::insert_commit`]).
    pub fn insert(&self, entry: Entry) {
        self.insert_commit(vec![entry]);
    }

    /// Inserts `entry`'s version with its key and value bytes given apart (the entry's own are
    /// not read). REQUIRES: the bounds and counters already cover it.
    fn insert_version(&self, entry: &Entry, key: Bytes, value: Option<Bytes>) {
        let slot = Slot {
            value,
            meta: entry.meta,
            wal_offset: entry.wal_offset,
            created_at_ms: entry.created_at_ms,
        };
        let key = InternalKey {
            key,
            revision: entry.revision,
        };
        self.map.insert(key, slot);
    }

    /// The newest version of `key` with revision `<= snapshot_rev`, tombstones included, or `None`
    /// if this memtable holds no such version (then older sources must be consulted).
    pub fn get(&self, key: &[u8], snapshot_rev: u64) -> Option<Entry> {
        self.find(key, snapshot_rev, to_entry)
    }

    /// The revision and metadata of the version [`MemTable::get`] finds, without copying its key
    /// or value.
    pub fn get_meta(&self, key: &[u8], snapshot_rev: u64) -> Option<(u64, VersionMeta)> {
        self.find(key, snapshot_rev, |k, slot| (k.revision, slot.meta))
    }

    /// What `take` makes of the version [`MemTable::get`] finds.
    fn find<T>(
        &self,
        key: &[u8],
        snapshot_rev: u64,
        take: impl FnOnce(&InternalKey, &Slot) -> T,
    ) -> Option<T> {
        if !self.may_contain(key) {
            return None;
        }
        let probe = Probe::new(key, snapshot_rev);
        let found = self.map.lower_bound(Bound::Included(probe.as_dyn()))?;
        (found.key().key == key).then(|| take(found.key(), found.value()))
    }

    /// A lazy scan of `range` in `direction` at `snapshot_rev`: one entry per key, tombstones
    /// included. Writers may keep inserting while it runs.
    pub fn scan(
        self: &Arc<Self>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: u64,
    ) -> MemTableIter {
        MemTableIter::new(Arc::clone(self), range, direction, snapshot_rev, false)
    }

    /// A lazy forward scan of every version of every key (newest first within a key), what a
    /// flush writes. REQUIRES: no insert runs meanwhile (the memtable is frozen).
    pub fn history(self: &Arc<Self>) -> MemTableIter {
        self.history_in(KeyRange::all())
    }

    /// Every version of the keys in `range`, in internal-key order (as [`MemTable::history`]).
    pub fn history_in(self: &Arc<Self>, range: KeyRange) -> MemTableIter {
        MemTableIter::new(Arc::clone(self), range, Direction::Forward, u64::MAX, true)
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

    /// The smallest and the largest user key inserted so far (`None` while empty): one seek to
    /// each end of the skip list.
    pub fn key_span(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let smallest = self.map.front()?.key().key.to_vec();
        let largest = self.map.back()?.key().key.to_vec();
        Some((smallest, largest))
    }

    /// The largest revision inserted, or 0 when empty.
    pub fn max_revision(&self) -> u64 {
        self.max_revision.load(Ordering::Acquire)
    }
}

fn to_entry(key: &InternalKey, slot: &Slot) -> Entry {
    Entry {
        key: key.key.to_vec(),
        revision: key.revision,
        value: slot.value.as_deref().map(<[u8]>::to_vec),
        meta: slot.meta,
        wal_offset: slot.wal_offset,
        created_at_ms: slot.created_at_ms,
    }
}

#[cfg(test)]
mod tests;
