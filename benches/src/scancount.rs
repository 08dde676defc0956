//! The scan-only workload that callgrind profiles (`scancount` binary): the seed's N entries
//! written in batches of [`BATCH_ENTRIES`] on `SimVfs` with inline flushes and compactions (so
//! the tree has the same shape on every run: L0 tables, deeper levels and a part-full memtable,
//! the shape a seedbench scan starts from), then one prefix scan over all of them in
//! [`scan_phase`], a function of its own so that callgrind can count it alone; the scan
//! iterates owned rows, or with `--lend` takes them lent through `Scan::visit`:
//!
//! ```sh
//! cargo build --release -p kvstore-benches --bin scancount
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*scan_phase*' \
//!     target/release/scancount --n 1000000 [--lend]
//! ```
//!
//! Invariants: every streamed pair is checked (the key in order, the value's length; the values
//! themselves are compared once, after the measured scan, so regenerating them is not counted),
//! so a scan that is cheaper because it is wrong fails instead of counting.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::{BackgroundMode, Db, Durability, Options, ScanOptions, WriteBatch};
use kvstore_faults::SimVfs;

use crate::BenchResult;
use crate::workload::{self, BATCH_ENTRIES, KEY_PREFIX};

/// Seed of the values.
pub const SEED: u64 = 0x5CA7_0001;

/// The engine options: the defaults (memtable, block and file sizes of a seedbench run) with
/// every source of nondeterminism pinned.
pub fn options() -> Options {
    Options {
        background: BackgroundMode::Inline,
        durability: Durability::Buffered,
        clock: SharedClock::new(FixedClock(1_700_000_000_000)),
        ..Options::default()
    }
}

/// Writes `n` entries, then runs [`scan_phase`] (lent rows if `lend`); returns the pairs it
/// streamed. REQUIRES: `n <= workload::N_MAX`.
pub fn run(n: u64, lend: bool) -> BenchResult<u64> {
    let db = Db::open_with_vfs(Arc::new(SimVfs::new(SEED)), Path::new("/db"), options())?;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH_ENTRIES as u64).min(n);
        let mut batch = WriteBatch::new();
        for i in start..end {
            batch.put(&workload::key(i), &workload::value(SEED, i));
        }
        db.write(batch)?;
        start = end;
    }
    let scanned = scan_phase(&db, lend)?;
    if scanned != n {
        return Err(format!("scancount: the scan streamed {scanned} pairs, expected {n}").into());
    }
    for (i, item) in db
        .scan_prefix(KEY_PREFIX, ScanOptions::default())?
        .enumerate()
    {
        let (_, value) = item?;
        if value != workload::value(SEED, i as u64) {
            return Err(format!("scancount: value {i} is wrong").into());
        }
    }
    db.close()?;
    Ok(scanned)
}

/// The measured part: one prefix scan over every entry, owned or (`lend`) lent rows, each key
/// and value length checked.
#[inline(never)]
pub fn scan_phase(db: &Db, lend: bool) -> BenchResult<u64> {
    let mut i = 0u64;
    let mut right = |key: &[u8], value: &[u8]| {
        let ok = key == workload::key(i) && value.len() == workload::VALUE_LEN_BYTES;
        i += 1;
        ok
    };
    let scan = db.scan_prefix(KEY_PREFIX, ScanOptions::default())?;
    let all_right = if lend {
        scan.visit(|k, v| match right(k, v) {
            true => ControlFlow::Continue(()),
            false => ControlFlow::Break(()),
        })?
        .is_continue()
    } else {
        let mut all_right = true;
        for item in scan {
            let (key, value) = item?;
            if !right(&key, &value) {
                all_right = false;
                break;
            }
        }
        all_right
    };
    if !all_right {
        return Err(format!("scancount: pair {} is wrong", i - 1).into());
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_streams_every_pair() {
        assert_eq!(run(5000, false).unwrap(), 5000);
        assert_eq!(run(5000, true).unwrap(), 5000);
    }
}
