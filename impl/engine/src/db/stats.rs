//! [`Stats`]: a point-in-time summary of an open database, for operators and tests.
//!
//! Invariants: computed from one snapshot of the tree plus counters; never blocks writers for
//! longer than a lock acquisition.

/// Counters and sizes of an open database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of SST files at each level (index 0 is L0).
    pub files_per_level: Vec<usize>,
    /// Total SST bytes at each level.
    pub bytes_per_level: Vec<u64>,
    /// Approximate bytes held by the active and frozen memtables.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for their flush.
    pub frozen_memtables: usize,
    /// Last revision visible to reads.
    pub last_revision: u64,
    /// Block cache hits.
    pub cache_hits: u64,
    /// Block cache misses.
    pub cache_misses: u64,
    /// Table readers the table cache keeps open (at most `Options::max_open_tables`).
    pub open_tables: usize,
    /// WAL bytes not yet covered by SSTs (end offset minus the manifest's `walOffset`).
    pub wal_bytes: u64,
    /// WAL logical end offset.
    pub wal_end_offset: u64,
    /// WAL logical offset known durable.
    pub wal_synced_offset: u64,
    /// Commits acknowledged since open.
    pub commits: u64,
    /// WAL syncs the commit pipeline issued since open (fewer than `commits` when group commit
    /// shared them).
    pub commit_syncs: u64,
}
