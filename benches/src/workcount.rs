//! The small fixed workload the CI regression check counts instructions of (`ci/bench-check.sh`
//! runs the `workcount` binary under callgrind): [`PUTS`] puts in batches of [`BATCH_ENTRIES`],
//! [`GETS`] point gets in a seeded shuffled order (every value checked), one prefix scan, close.
//!
//! It runs on `SimVfs` (no disk, no page cache, no timing noise) through a
//! [`CountingVfs`], with every source of nondeterminism the engine offers pinned:
//! `BackgroundMode::Inline` (no worker thread: flushes and compactions happen at fixed points),
//! `Durability::Buffered`, a `FixedClock`, a fixed seed. The memtable is small (256 KiB) so the
//! workload flushes and compacts several times: those paths are counted too.
//!
//! Invariants: the same binary gives the same [`Figures`] on every run (the bytes exactly; the
//! instruction count up to the allocator and hash-seed noise the check's threshold absorbs).

use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::{BackgroundMode, Db, Durability, Options, ScanOptions, WriteBatch};
use kvstore_faults::SimVfs;

use crate::BenchResult;
use crate::counting::CountingVfs;
use crate::workload::{self, KEY_PREFIX};

/// Entries written.
pub const PUTS: u64 = 20_000;
/// Point gets.
pub const GETS: u64 = 20_000;
/// Entries per batch.
pub const BATCH_ENTRIES: u64 = 100;
/// Seed of the values and of the get order.
pub const SEED: u64 = 0xC0FF_EE00;
/// Memtable size: small, so 20k entries (5.3 MB) flush ~20 times and trigger compactions.
pub const MEMTABLE_SIZE_BYTES: u64 = 256 * 1024;

/// What one run of the workload measured (the instruction count is callgrind's, not ours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    /// Keys plus values written.
    pub user_bytes: u64,
    /// Bytes appended through the Vfs (WAL, SSTs, manifest), open to close.
    pub vfs_written_bytes: u64,
    /// `sync_data` plus `sync_dir` calls.
    pub syncs: u64,
    /// Pairs the scan streamed.
    pub scanned: u64,
}

impl Figures {
    /// Bytes written per user byte, in thousandths (integer, so the baseline compares exactly).
    pub fn write_amp_milli(&self) -> u64 {
        self.vfs_written_bytes * 1000 / self.user_bytes.max(1)
    }
}

/// The engine options of the workload.
pub fn options() -> Options {
    Options {
        background: BackgroundMode::Inline,
        durability: Durability::Buffered,
        memtable_size_bytes: MEMTABLE_SIZE_BYTES,
        clock: SharedClock::new(FixedClock(1_700_000_000_000)),
        ..Options::default()
    }
}

/// Runs the workload with `puts` entries and `gets` gets (the binary uses [`PUTS`], [`GETS`]).
pub fn run(puts: u64, gets: u64) -> BenchResult<Figures> {
    let vfs = CountingVfs::new(Arc::new(SimVfs::new(SEED)));
    let counters = vfs.counters();
    let db = Db::open_with_vfs(Arc::new(vfs), Path::new("/db"), options())?;
    let mut start = 0;
    while start < puts {
        let end = (start + BATCH_ENTRIES).min(puts);
        let mut batch = WriteBatch::new();
        for i in start..end {
            batch.put(&workload::key(i), &workload::value(SEED, i));
        }
        db.write(batch)?;
        start = end;
    }
    let order = workload::shuffled(puts, SEED);
    for &i in order.iter().cycle().take(gets as usize) {
        if db.get(&workload::key(i))?.as_deref() != Some(&workload::value(SEED, i)[..]) {
            return Err(format!("workcount: wrong value for entry {i}").into());
        }
    }
    let mut scanned = 0;
    for item in db.scan_prefix(KEY_PREFIX, ScanOptions::default())? {
        item?;
        scanned += 1;
    }
    if scanned != puts {
        return Err(
            format!("workcount: the scan streamed {scanned} pairs, expected {puts}").into(),
        );
    }
    db.close()?;
    Ok(Figures {
        user_bytes: workload::user_bytes(puts),
        vfs_written_bytes: counters.appended_bytes(),
        syncs: counters.syncs(),
        scanned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_and_checks_itself() {
        let a = run(3000, 1000).unwrap();
        assert_eq!(a, run(3000, 1000).unwrap());
        assert_eq!(a.scanned, 3000);
        assert!(a.write_amp_milli() >= 1000, "{a:?}");
    }
}
