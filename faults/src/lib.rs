//! # kvstore-faults
//!
//! [`SimVfs`]: an in-memory implementation of [`kvstore::vfs::Vfs`] that crashes at any numbered
//! I/O operation, tears writes, loses unsynced data, reorders it, and lies about fsync,
//! deterministically from a seed. It is test equipment: `spec/SEMANTICS.md` ("What the engine
//! assumes of a filesystem") states the contract it enforces and compares it with what real
//! filesystems do.
//!
//! Invariants:
//! - One seeded PRNG (`ChaCha8Rng`) per disk drives every random choice, in a fixed order: the
//!   same seed and the same workload give the same trace and the same rebooted disk, byte for byte.
//! - Every `Vfs` and `VfsFile` call is one numbered operation and one [`TraceEntry`].
//! - Nothing here panics on bad input: misuse returns an `io::Error`.
//!
//! # The fault model
//! Each file is an inode with **durable** bytes, a list of **pending** (unsynced) writes and
//! length changes, and the **live** bytes reads see. `sync_data` on a handle makes its inode's
//! pending changes durable. Names live in a **live** namespace and a **durable** one; a create,
//! rename or remove changes the live one and is logged until `sync_dir` on its parent directory
//! makes it durable. A file created and synced whose name was never synced may vanish on crash,
//! data and all. Open handles keep working on their inode after a rename or remove, as in POSIX.
//!
//! - **Crash**: [`SimVfs::crash_at`] makes operation `k` and every later one fail with an error
//!   [`is_crash_error`] recognises; [`SimVfs::reboot`] builds the post-crash disk under a
//!   [`PersistenceModel`]: unsynced data all lost; a random prefix of each file's unsynced
//!   changes kept; a random subset kept, out of order; the last write torn at a sector boundary
//!   (512 or 4096 bytes) with the torn sector's tail zeroed or garbage; the size of the last
//!   append kept without its data. Unsynced directory entries are kept or undone independently
//!   of file data (and, with [`FaultConfig::non_atomic_rename`], each half of a rename
//!   independently: the destination may be missing, or both names exist). Files are chosen
//!   independently of each other, so unsynced writes to different files persist in any order.
//! - **Lie** ([`FaultConfig`]): `sync_data` returns `Ok` and persists nothing from some op on;
//!   or fails once with EIO, drops the dirty data (still readable until the crash), and lets a
//!   retry return `Ok` (Linux "fsyncgate").
//! - **Fail**: EIO or ENOSPC at the n-th op, on paths containing a pattern, or with a
//!   probability; ENOSPC when live bytes would pass a capacity.
//! - **Corrupt**: on read, a flipped bit, a zeroed sector, a sector failing with EIO from then on
//!   (a latent sector error, cleared by rewriting it), another sector's bytes (misdirected read); on append, the bytes landing a sector away (misdirected
//!   write) or only a prefix landing before an EIO (short write).
//! - **Trace**: [`SimVfs::trace`] numbers every operation; [`Campaign`] enumerates crash points.
//! - **Value**: [`SimVfs::image`] is a canonical [`DiskImage`] (`Clone + Eq + Hash + Debug`, O(1)
//!   clone, no counters or ids), and [`SimVfs::from_image`] boots a disk from one.
//!
//! Simplifications, each a place a real filesystem can be worse: directories are durable as soon
//! as they are created; bit flips, zeroed and misdirected reads are transient (a re-read
//! succeeds; only sector errors stick, until the sector is rewritten); a crash keeps whole
//! unsynced entries, never a half-written directory block; a misdirected write is visible to
//! reads at once (a real misdirected write may show only after the cache is dropped).
//!
//! # Example: every crash point of a toy writer
//! ```
//! use std::io;
//! use std::path::Path;
//!
//! use kvstore::vfs::Vfs;
//! use kvstore_faults::{Campaign, SimVfs};
//!
//! const RECORD: &[u8] = b"record\n";
//!
//! /// Appends three records, syncing each; returns how many were acknowledged durable.
//! fn toy_writer(vfs: &SimVfs) -> usize {
//!     let mut acked = 0;
//!     let mut run = || -> io::Result<()> {
//!         vfs.create_dir_all(Path::new("/db"))?;
//!         let mut log = vfs.create(Path::new("/db/log"))?;
//!         vfs.sync_dir(Path::new("/db"))?;
//!         for _ in 0..3 {
//!             log.append(RECORD)?;
//!             log.sync_data()?;
//!             acked += 1;
//!         }
//!         Ok(())
//!     };
//!     let _crashed_or_done = run();
//!     acked
//! }
//!
//! let report = Campaign::new(7)
//!     .run(toy_writer, |_point, acked, rebooted| {
//!         // Everything acknowledged must have survived, whatever the crash kept beyond it.
//!         let bytes = rebooted.peek(Path::new("/db/log")).unwrap_or_default();
//!         if bytes.starts_with(&RECORD.repeat(acked)) {
//!             Ok(())
//!         } else {
//!             Err(format!("{acked} records acknowledged, disk holds {bytes:?}"))
//!         }
//!     })
//!     .unwrap_or_else(|failure| panic!("{failure}"));
//! // create_dir_all, create, sync_dir, then 3 x (append, sync_data).
//! assert_eq!(report.ops, 9);
//! // Crash before each op and after the last, under each of the 9 persistence models.
//! assert_eq!(report.crash_points, 10 * 9);
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod crash_points;
mod disk;
mod faults;
mod persistence;
mod rng;
mod sim;
mod trace;

pub use crash_points::{
    CAMPAIGN_OPS_MAX, Campaign, CampaignFailure, CampaignReport, CrashPoint, for_each_crash_point,
};
pub use disk::DiskImage;
pub use faults::{Failure, FaultConfig, PathFault, ReadFault, SECTOR_BYTES_DEFAULT, WriteFault};
pub use persistence::{Fill, PersistenceModel};
pub use sim::{SimVfs, SimulatedCrash, TRACE_ENTRIES_MAX, is_crash_error};
pub use trace::{OpKind, Outcome, TraceEntry, format_trace};
