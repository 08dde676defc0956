//! [`VersionEdit`]: one change to the set of live files, as the manifest records it.
//!
//! Invariants:
//! - An edit is data only; [`crate::version::Version::apply`] judges it, so a replayed manifest
//!   and a live flush or compaction go through the same checks.
//! - `None` in a scalar field means "unchanged".

use std::sync::Arc;

use super::FileMeta;
pub use crate::format::manifest::LeaseMeta;

/// A file leaving the live set: its level and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemovedFile {
    /// Level the file is at.
    pub level: usize,
    /// Its file number.
    pub number: u64,
}

/// A change to a [`crate::version::Version`]: files added and removed plus counters moved forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// Files that become live (each at its `level`).
    pub add: Vec<FileMeta>,
    /// Files that stop being live.
    pub remove: Vec<RemovedFile>,
    /// New WAL offset below which every record is in some SST (the WAL may be trimmed there).
    pub wal_offset: Option<u64>,
    /// New next file number to allocate.
    pub next_file_number: Option<u64>,
    /// New largest revision that is persisted in SSTs.
    pub last_revision: Option<u64>,
    /// New highest stamp of the WAL records below the new `wal_offset` (set with it by a flush).
    pub last_stamp: Option<u64>,
    /// New history horizon (the oldest revision reads may ask for).
    pub history_horizon: Option<u64>,
    /// The leases as of the new `wal_offset` (set with it by a flush).
    pub leases: Option<Arc<[LeaseMeta]>>,
}
