//! The disk's own limit for the seed workload's write phase (`seedbench --workload disk`, issue
//! 16's "sync-mode writes within 1.3x of the disk's own limit"): the same entries in the same
//! batches of [`BATCH_ENTRIES`], each batch's keys and values appended back to back to one file,
//! with one `fdatasync` after every batch (`sync`) or one at the end (`nosync`). No engine: no
//! index, no checksum, no framing, no memtable, no second file. A store that logs its writes
//! before acknowledging them writes at least these bytes with at least these syncs, so its
//! `sync` write column cannot beat this one on the same disk; the ratio between the two is
//! what the engine costs.
//!
//! Invariants: the file grows by every batch (as a write-ahead log does, so each `fdatasync`
//! also commits the file's new size), the phase is timed as [`crate::seed`] times its write
//! phase (batches plus the final sync), and the file is read back and compared before the
//! figures are returned, so a run that lost or reordered bytes fails instead of reporting.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::BenchResult;
use crate::engine::SyncMode;
use crate::seed::{Phase, fill_batch, phase};
use crate::workload::{self, BATCH_ENTRIES, Latencies};

/// What one run of the disk-limit workload measured.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskLimit {
    /// `sync` or `nosync`.
    pub mode: SyncMode,
    /// Entries written.
    pub n: u64,
    /// The write phase (ops = entries).
    pub write: Phase,
    /// `fdatasync` calls made.
    pub syncs: u64,
    /// Bytes appended (the entries' keys and values).
    pub bytes: u64,
}

/// Appends the seed's `n` entries to a new file in `dir` in `mode` (see the module doc).
pub fn run(mode: SyncMode, n: u64, dir: &Path) -> BenchResult<DiskLimit> {
    if n == 0 || n > workload::N_MAX {
        return Err(format!("--n must be in 1..={}", workload::N_MAX).into());
    }
    let path = dir.join("disk-limit.log");
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    let batches = n.div_ceil(BATCH_ENTRIES as u64);
    let mut lat = Latencies::with_capacity(batches as usize + 1);
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    let mut buffer = Vec::new();
    let (mut total, mut syncs, mut bytes) = (Duration::ZERO, 0u64, 0u64);
    for b in 0..batches {
        fill_batch(b, n, &mut keys, &mut values);
        buffer.clear();
        append_batch(&mut buffer, &keys, &values);
        let t = Instant::now();
        file.write_all(&buffer)?;
        if mode == SyncMode::Each {
            file.sync_data()?;
            syncs += 1;
        }
        let took = t.elapsed();
        lat.record(took);
        total += took;
        bytes += buffer.len() as u64;
    }
    let t = Instant::now();
    file.sync_data()?;
    total += t.elapsed();
    syncs += 1;
    let write = phase(n, total, &mut lat);
    drop(file);
    check_file(&path, n)?;
    Ok(DiskLimit {
        mode,
        n,
        write,
        syncs,
        bytes,
    })
}

/// Appends a batch's keys and values to `out`, back to back, in order.
fn append_batch(out: &mut Vec<u8>, keys: &[impl AsRef<[u8]>], values: &[impl AsRef<[u8]>]) {
    for (key, value) in keys.iter().zip(values) {
        out.extend_from_slice(key.as_ref());
        out.extend_from_slice(value.as_ref());
    }
}

/// Fails unless the file at `path` holds exactly the `n` entries' keys and values, in order.
fn check_file(path: &Path, n: u64) -> BenchResult<()> {
    let mut written = Vec::new();
    File::open(path)?.read_to_end(&mut written)?;
    let mut expected = Vec::with_capacity(written.len());
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for b in 0..n.div_ceil(BATCH_ENTRIES as u64) {
        fill_batch(b, n, &mut keys, &mut values);
        append_batch(&mut expected, &keys, &values);
    }
    if written != expected {
        return Err(format!(
            "the disk-limit file holds {} bytes that differ from the {} written",
            written.len(),
            expected.len()
        )
        .into());
    }
    Ok(())
}

/// The runs as a Markdown table.
pub fn table(runs: &[DiskLimit]) -> String {
    let mut out = String::from(
        "| no engine | N | write kops/s | batch p50/p99 ms | fdatasyncs | MB appended |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        out.push_str(&format!(
            "| disk limit, {} | {} | {:.0} | {:.2} / {:.2} | {} | {:.1} |\n",
            run.mode.name(),
            run.n,
            run.write.ops_per_sec / 1000.0,
            run.write.p50_us / 1000.0,
            run.write.p99_us / 1000.0,
            run.syncs,
            run.bytes as f64 / 1e6,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sync run makes one fdatasync per batch plus the final one, appends every key and value,
    /// and reads them back equal (the check would fail on a lost or reordered batch).
    #[test]
    fn a_sync_run_appends_every_entry_with_one_sync_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * BATCH_ENTRIES as u64 + 5;
        let run = run(SyncMode::Each, n, dir.path()).unwrap();
        assert_eq!(run.syncs, 3 + 1);
        let entry = (workload::KEY_LEN_BYTES + workload::VALUE_LEN_BYTES) as u64;
        assert_eq!(run.bytes, n * entry);
        assert!(table(&[run]).contains("| disk limit, sync | 2005 |"));
    }

    #[test]
    fn a_file_missing_its_last_byte_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        run(SyncMode::End, 10, dir.path()).unwrap();
        let path = dir.path().join("disk-limit.log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        assert!(check_file(&path, 10).is_err());
    }
}
