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
//! Modules, one concept each:
//! - [`vfs`]: the filesystem seam and [`vfs::OsVfs`], the only code that touches `std::fs`.
//! - [`format`](mod@format): pure encoders and decoders of every on-disk byte (`spec/FORMAT.md`); no I/O.
//! - [`error`]: the one error type of the crate.
//! - [`limits`]: named bounds on key and value lengths.
//! - [`options`]: every tunable, its default and its validation; durability modes.
//! - [`entry`]: one version of one key, the unit every layer passes around.
//! - [`range`]: key ranges (inclusive/exclusive/unbounded, prefix) and scan direction.
//! - [`memtable`]: the concurrent, snapshot-readable in-memory table of the newest writes.
//! - [`sst`]: SST files on a [`vfs::Vfs`]: the streaming writer, the verified reader, range scans
//!   and the block cache.
//! - [`iter`]: the sorted entry-source contract and the k-way merging scan.
//! - [`version`]: the immutable set of live SST files per level and its pure edits.
//! - [`compaction`]: the pure leveled policy (what to compact, when to stall) and the pure merge.
//! - [`db`]: the [`Db`] handle: recovery, the commit pipeline, reads, flush, compaction.
//! - [`clock`]: where commit timestamps and lease deadlines come from (system, fixed, logical or
//!   manual clock).
//! - [`lease`]: leases' public shapes and the table the commit pipeline keeps.
//! - [`watch`]: watchers of committed changes, delivered in order after they are durable.
//! - [`manifest`]: the manifest store: load, atomic persist, conversion to and from [`version::Version`].
//! - [`wal`]: the write-ahead log's I/O: segments on a [`vfs::Vfs`], append, sync, rotation, recovery.
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

pub mod clock;
pub mod compaction;
pub mod db;
pub mod entry;
pub mod error;
pub mod format;
pub mod iter;
pub mod lease;
pub mod limits;
pub mod manifest;
pub mod memtable;
pub mod options;
pub mod prefix;
pub mod range;
pub mod sst;
pub mod txn;
pub mod version;
pub mod vfs;
pub mod wal;
pub mod watch;

pub use db::{
    CommitObserver, Db, ExportSummary, Scan, ScanOptions, Snapshot, Stats, Transaction, Versioned,
    WriteBatch, WriteOptions,
};
pub use error::Error;
pub use lease::{LeaseExpiry, LeaseStatus};
pub use options::{BackgroundMode, Durability, HistoryRetention, Options};
pub use range::KeyRange;
