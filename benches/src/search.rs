//! The `searchbench` workload (issue 15): the seed's N keys (`k_0000000`..) loaded in batches
//! into a database without the key index and into one with it (the write cost of maintaining
//! the index), the first database reopened with the index (built from a scan), then a contains search for a 3-byte substring through the index against a full
//! scan with the same predicate on the same database, in one run.
//!
//! Invariants: the index's answer equals the scan's, or the run fails; both load the same keys
//! and values in the same batches and durability mode.

use std::path::Path;
use std::time::{Duration, Instant};

use kvstore::{Db, Durability, KeyRange, Options, ScanOptions, WriteBatch};

use crate::BenchResult;
use crate::workload::{BATCH_ENTRIES, key, value};

/// The values' seed.
const SEED: u64 = 42;

/// What one run measured.
#[derive(Debug)]
pub struct SearchReport {
    /// Keys loaded.
    pub keys: u64,
    /// Puts per second into the database without the index.
    pub plain_put_rate: f64,
    /// Puts per second into the database with the index.
    pub indexed_put_rate: f64,
    /// Opening the database loaded without the index with it: the index built from a scan.
    pub build: Duration,
    /// Keys the search found.
    pub found: usize,
    /// The best of the index searches' times.
    pub index_search: Duration,
    /// The best of the full scans' times.
    pub scan_search: Duration,
}

/// Loads `n` keys into a database at `dir` (with the index if `key_index`); returns the time.
fn load(
    dir: &Path,
    n: u64,
    durability: Durability,
    key_index: bool,
) -> BenchResult<(Db, Duration)> {
    let options = Options {
        durability,
        key_index,
        ..Options::default()
    };
    let db = Db::open(dir, options)?;
    let started = Instant::now();
    let mut batch = WriteBatch::new();
    for i in 0..n {
        batch.put(&key(i), &value(SEED, i));
        if batch.len() >= BATCH_ENTRIES {
            db.write(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        db.write(batch)?;
    }
    db.sync()?;
    Ok((db, started.elapsed()))
}

/// The best of `runs` timings of `search`, and its answer.
fn best_of<T>(
    runs: usize,
    mut search: impl FnMut() -> BenchResult<T>,
) -> BenchResult<(T, Duration)> {
    let mut best = Duration::MAX;
    let mut answer = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let found = search()?;
        best = best.min(started.elapsed());
        answer = Some(found);
    }
    let answer = answer.ok_or("no run")?;
    Ok((answer, best))
}

/// Runs the workload in `dir` with `n` keys, searching for `substr`.
pub fn run(dir: &Path, n: u64, durability: Durability, substr: &[u8]) -> BenchResult<SearchReport> {
    let (plain, plain_time) = load(&dir.join("plain"), n, durability, false)?;
    plain.close()?;
    let started = Instant::now();
    let options = Options {
        durability,
        key_index: true,
        ..Options::default()
    };
    Db::open(dir.join("plain"), options)?.close()?;
    let build = started.elapsed();
    let (db, indexed_time) = load(&dir.join("indexed"), n, durability, true)?;
    let (by_index, index_search) = best_of(10, || Ok(db.search_contains(substr, usize::MAX)?))?;
    let (by_scan, scan_search) = best_of(3, || {
        let mut found = Vec::new();
        for key in db.scan(KeyRange::all(), ScanOptions::default())?.keys() {
            let key = key?;
            if key.windows(substr.len()).any(|w| w == substr) {
                found.push(key);
            }
        }
        Ok(found)
    })?;
    if by_index != by_scan {
        return Err(format!(
            "the index found {} keys, the scan {}",
            by_index.len(),
            by_scan.len()
        )
        .into());
    }
    db.close()?;
    let rate = |time: Duration| n as f64 / time.as_secs_f64();
    Ok(SearchReport {
        keys: n,
        plain_put_rate: rate(plain_time),
        indexed_put_rate: rate(indexed_time),
        build,
        found: by_index.len(),
        index_search,
        scan_search,
    })
}
