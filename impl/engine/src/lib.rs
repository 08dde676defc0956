//! # kvstore
//!
//! An embeddable LSM key/value store whose durability is demonstrated, not claimed: the engine does
//! all of its I/O through the [`vfs::Vfs`] trait, so tests run it on a simulated filesystem
//! (`kvstore-faults`) that tears writes, loses unsynced data and crashes at every I/O point.
//!
//! ```
//! use kvstore::{Db, Durability, Options, ScanOptions, WriteBatch};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options { durability: Durability::Sync, ..Options::default() })?;
//! db.put(b"k_0000001", b"v1")?; // durable when it returns (Sync)
//! let mut batch = WriteBatch::new();
//! batch.put(b"k_0000002", b"v2");
//! batch.delete(b"k_0000001");
//! db.write(batch)?; // all or nothing, under one revision
//! let rows: Vec<_> = db.scan_prefix(b"k_", ScanOptions::default())?.collect::<Result<_, _>>()?;
//! assert_eq!(rows, vec![(b"k_0000002".to_vec(), b"v2".to_vec())]);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The embedder's modules:
//! - [`db`]: the [`Db`] handle: recovery, the commit pipeline, reads, transactions, watches,
//!   leases, export and import, checkpoints, flush, compaction.
//! - [`backup`]: incremental backups of a database, and their restore, list and verify.
//! - [`options`]: every tunable, its default and its validation; durability modes.
//! - [`error`]: the one error type of the crate.
//! - [`range`]: key ranges (inclusive/exclusive/unbounded, prefix) and scan direction.
//! - [`txn`]: etcd's `Txn` shapes (compares, ops, results).
//! - [`watch`]: watchers of committed changes, delivered in order after they are durable.
//! - [`lease`]: leases' public shapes.
//! - [`entry`]: one version of one key, as observers get it.
//! - [`clock`]: where commit timestamps and lease deadlines come from (system, fixed, logical or
//!   manual clock).
//! - [`limits`]: named bounds on key and value lengths.
//! - [`progress`]: how long work (a backup, a restore, a key index rebuild) reports how far it
//!   has got.
//! - [`metrics`]: cumulative counters and the WAL sync latency histogram ([`Db::metrics`]).
//! - [`vfs`]: the filesystem seam and [`vfs::OsVfs`], the only code that touches `std::fs`.
//! - [`format`](mod@format): pure encoders and decoders of every on-disk byte (`spec/FORMAT.md`); no I/O.
//!
//! The engine's internals are public only for its tests, campaigns and benchmarks, hidden from
//! these docs and unstable: `memtable` (the concurrent, snapshot-readable in-memory table),
//! `sst` (tables on a `Vfs`: writer, verified reader, block cache), `iter` (sorted sources and the
//! merging scan), `version` (the live files per level and their edits), `compaction` (the pure
//! leveled policy and merge), `manifest` (load and atomic persist), `wal` (the log's segments,
//! append, sync, rotation, recovery) and `prefix`. Private: `index`, the 3-gram key
//! index behind [`Db::search_contains`] and [`Db::search_fuzzy`].
//!
//! Invariants kept crate-wide:
//! - Library code never panics on input or on-disk bytes: it returns [`Error`]. `unwrap`, `expect`,
//!   indexing and slicing are denied outside tests; each exception carries an `#[expect(..., reason)]`.
//! - Nothing outside [`vfs`] performs I/O.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

// The embedder's API: the handle and what it takes and returns, the codecs of the spec, and the
// filesystem seam.
pub mod backup;
pub mod clock;
pub mod db;
pub mod entry;
pub mod error;
pub mod format;
mod index;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod options;
pub mod progress;
pub mod range;
pub mod txn;
pub mod vfs;
pub mod watch;

// The engine's internals: public only for its own tests, the campaigns and the benchmarks, and
// unstable (hidden from the docs; they may change in any release).
#[doc(hidden)]
pub mod compaction;
#[doc(hidden)]
pub mod iter;
#[doc(hidden)]
pub mod manifest;
#[doc(hidden)]
pub mod memtable;
#[doc(hidden)]
pub mod prefix;
#[doc(hidden)]
pub mod sst;
#[doc(hidden)]
pub mod version;
#[doc(hidden)]
pub mod wal;

pub use db::checkpoint_is_complete;
pub use db::{
    CheckpointSummary, CommitObserver, Db, ExportSummary, Scan, ScanOptions, Snapshot, Stats,
    Transaction, Versioned, WriteBatch, WriteOptions,
};
pub use error::Error;
pub use lease::{LeaseExpiry, LeaseStatus};
pub use metrics::{LatencyHistogram, Metrics};
pub use options::{BackgroundMode, Durability, HistoryRetention, Options};
pub use range::KeyRange;
