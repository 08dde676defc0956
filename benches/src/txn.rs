//! The `txn` workload: contended counters under optimistic transactions, on one
//! [`TxnEngine`], and the [`TxnReport`] it produces (issue 12).
//!
//! Steps:
//! 1. write `keys` counters (`k_0000000`.., each a big-endian `u64` 0) in atomic commits of
//!    [`BATCH_ENTRIES`], then sync; not timed;
//! 2. `threads` threads, released together, each make `attempts / threads` attempts (the first
//!    `attempts % threads` threads one more): pick a key uniformly from a PRNG seeded per thread,
//!    then [`increment`](crate::engine::TxnEngine::increment) it (begin, read, write + 1,
//!    commit); a conflict is counted and the same key retried as the thread's next attempt;
//!    `nosync` syncs once after the threads end, and that sync is timed;
//! 3. read every counter back outside a transaction: their sum must equal the commits counted.
//!
//! The number of attempts is fixed, not the number of commits or the time, so every engine does
//! the same bounded work and a run ends however many commits conflict.
//!
//! Invariants: attempts = commits + conflicts; no report for a run whose counters do not add up
//! to its commits (a lost or doubled increment is an error, not a number).

use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use crate::engine::{SyncMode, TxnEngine};
use crate::workload::{self, BATCH_ENTRIES, Latencies, SplitMix64};
use crate::{BenchResult, peers, process, report_line};

/// Seed of the threads' key choices (thread `t` uses `SEED ^ (t + 1) * odd constant`).
pub const SEED: u64 = 0x7E55_2026;

/// Figures of one (engine, mode, threads, keys) run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnReport {
    /// Engine name.
    pub engine: String,
    /// `sync` or `nosync`.
    pub mode: String,
    /// Threads running transactions at once.
    pub threads: u64,
    /// Counters the threads pick from.
    pub keys: u64,
    /// Transactions begun.
    pub attempts: u64,
    /// Transactions committed (= the sum of the counters at the end).
    pub commits: u64,
    /// Transactions refused as conflicts.
    pub conflicts: u64,
    /// Seconds from the threads' release to the last one's end (plus the final sync in `nosync`).
    pub secs: f64,
    /// Median latency of one attempt (begin to commit or conflict), microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency of one attempt, microseconds.
    pub p99_us: f64,
    /// Peak resident set size of the process, bytes (0 if unknown).
    pub peak_rss_bytes: u64,
}

impl TxnReport {
    /// Committed transactions per second.
    pub fn commits_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.commits as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Conflicts / attempts.
    pub fn conflict_rate(&self) -> f64 {
        self.conflicts as f64 / self.attempts.max(1) as f64
    }

    /// One line of `key=value` pairs, what a child process prints for its parent.
    pub fn to_line(&self) -> String {
        format!(
            "@txn engine={} mode={} threads={} keys={} attempts={} commits={} conflicts={} secs={} p50={} p99={} rss={}",
            self.engine,
            self.mode,
            self.threads,
            self.keys,
            self.attempts,
            self.commits,
            self.conflicts,
            self.secs,
            self.p50_us,
            self.p99_us,
            self.peak_rss_bytes,
        )
    }

    /// Parses a line made by [`TxnReport::to_line`]; `None` if it is not one.
    pub fn from_line(line: &str) -> Option<TxnReport> {
        let mut r = TxnReport::default();
        for (k, v) in report_line::fields(line, "@txn ")? {
            match k {
                "engine" => r.engine = v.text(),
                "mode" => r.mode = v.text(),
                "threads" => r.threads = v.u64()?,
                "keys" => r.keys = v.u64()?,
                "attempts" => r.attempts = v.u64()?,
                "commits" => r.commits = v.u64()?,
                "conflicts" => r.conflicts = v.u64()?,
                "secs" => r.secs = v.f64()?,
                "p50" => r.p50_us = v.f64()?,
                "p99" => r.p99_us = v.f64()?,
                "rss" => r.peak_rss_bytes = v.u64()?,
                _ => return None,
            }
        }
        Some(r)
    }
}

/// What one thread did.
struct ThreadResult {
    commits: u64,
    conflicts: u64,
    latencies: Latencies,
}

fn run_thread(
    engine: &dyn TxnEngine,
    mode: SyncMode,
    keys: u64,
    index: u64,
    attempts: u64,
    start: &Barrier,
) -> BenchResult<ThreadResult> {
    let mut rng = SplitMix64::new(SEED ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut latencies = Latencies::with_capacity(attempts as usize);
    let (mut commits, mut conflicts) = (0, 0);
    let mut key = None;
    start.wait();
    for _ in 0..attempts {
        // A conflicted increment is retried on the same key; a committed one picks a new key.
        let k = *key.get_or_insert_with(|| workload::key(rng.below(keys)));
        let t = Instant::now();
        let committed = engine.increment(&k, mode)?;
        latencies.record(t.elapsed());
        if committed {
            commits += 1;
            key = None;
        } else {
            conflicts += 1;
        }
    }
    Ok(ThreadResult {
        commits,
        conflicts,
        latencies,
    })
}

/// Runs the `txn` workload on engine `name` in the empty directory `dir`: `threads` threads
/// making `attempts` attempts in all over `keys` counters.
/// REQUIRES: `threads >= 1`, `1 <= keys <= workload::N_MAX`.
pub fn run(
    name: &str,
    mode: SyncMode,
    threads: u64,
    keys: u64,
    attempts: u64,
    dir: &Path,
) -> BenchResult<TxnReport> {
    if threads == 0 || keys == 0 || keys > workload::N_MAX {
        return Err(format!(
            "--threads must be at least 1 and --keys in 1..={}",
            workload::N_MAX
        )
        .into());
    }
    let engine = peers::open_txn(name, dir)?;

    // 1. Every counter at 0.
    for start in (0..keys).step_by(BATCH_ENTRIES) {
        let end = (start + BATCH_ENTRIES as u64).min(keys);
        let batch: Vec<_> = (start..end).map(workload::key).collect();
        let refs: Vec<&[u8]> = batch.iter().map(|k| &k[..]).collect();
        engine.init(&refs)?;
    }
    engine.sync()?;

    // 2. The threads, released together.
    let start = Barrier::new(threads as usize + 1);
    let (results, took) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (engine, start) = (&*engine, &start);
                let n = workload::thread_share(attempts, threads, i);
                s.spawn(move || run_thread(engine, mode, keys, i, n, start))
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let results: Vec<BenchResult<ThreadResult>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a txn thread panicked".into()))
            })
            .collect();
        (results, t.elapsed())
    });
    let mut total = took;
    if mode == SyncMode::End {
        let t = Instant::now();
        engine.sync()?;
        total += t.elapsed();
    }
    let (mut commits, mut conflicts) = (0, 0);
    let mut latencies = Latencies::with_capacity(attempts as usize);
    for result in results {
        let result = result?;
        commits += result.commits;
        conflicts += result.conflicts;
        latencies.extend(result.latencies);
    }

    // 3. The counters add up to the commits.
    let mut sum = 0u64;
    for i in 0..keys {
        sum += engine.counter(&workload::key(i))?;
    }
    engine.close()?;
    if sum != commits {
        return Err(format!(
            "{name}: the counters sum to {sum}, but {commits} increments committed ({conflicts} conflicts)"
        )
        .into());
    }
    let report = TxnReport {
        engine: name.to_owned(),
        mode: mode.name().to_owned(),
        threads,
        keys,
        attempts: commits + conflicts,
        commits,
        conflicts,
        secs: total.as_secs_f64(),
        p50_us: latencies.percentile_us(0.50),
        p99_us: latencies.percentile_us(0.99),
        peak_rss_bytes: process::peak_rss_bytes().unwrap_or(0),
    };
    eprintln!(
        "{:>28}: {:8.3} s {:>10.0} commits/s  conflicts {:5.1} %  p50 {:8.1} us  p99 {:8.1} us",
        format!("{name} {} {threads}t {keys}k", mode.name()),
        report.secs,
        report.commits_per_sec(),
        100.0 * report.conflict_rate(),
        report.p50_us,
        report.p99_us,
    );
    Ok(report)
}

/// The Markdown table of `reports` (one mode): a row per (keys, threads, engine), commits/s with
/// its ratio to kvstore's in the same (keys, threads) cell, if there is one.
pub fn table(reports: &[TxnReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| keys | threads | engine | mode | commits/s | conflict rate | attempts | attempt p50/p99 us | peak RSS MB |\n|---:|---:|---|---|---:|---:|---:|---:|---:|",
    );
    for r in reports {
        let base = reports.iter().find(|b| {
            b.engine == "kvstore"
                && b.engine != r.engine
                && (b.keys, b.threads) == (r.keys, r.threads)
        });
        let commits = match base {
            Some(b) if b.commits_per_sec() > 0.0 => format!(
                "{:.0} ({:.2}x)",
                r.commits_per_sec(),
                r.commits_per_sec() / b.commits_per_sec()
            ),
            _ => format!("{:.0}", r.commits_per_sec()),
        };
        let _ = write!(
            out,
            "\n| {} | {} | {} | {} | {commits} | {:.1} % | {} | {:.1} / {:.1} | {:.0} |",
            r.keys,
            r.threads,
            r.engine,
            r.mode,
            100.0 * r.conflict_rate(),
            r.attempts,
            r.p50_us,
            r.p99_us,
            r.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_round_trip() {
        let r = TxnReport {
            engine: "kvstore".to_owned(),
            mode: "nosync".to_owned(),
            threads: 4,
            keys: 10,
            attempts: 1000,
            commits: 900,
            conflicts: 100,
            secs: 0.5,
            p50_us: 3.5,
            p99_us: 40.0,
            peak_rss_bytes: 1 << 20,
        };
        assert_eq!(TxnReport::from_line(&r.to_line()), Some(r.clone()));
        assert_eq!(TxnReport::from_line("@report engine=kvstore"), None);
        assert!((r.commits_per_sec() - 1800.0).abs() < 1e-9);
        assert!((r.conflict_rate() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn kvstore_counters_add_up_under_contention() {
        let dir = tempfile::tempdir().unwrap();
        let r = run("kvstore", SyncMode::End, 4, 3, 2000, dir.path()).unwrap();
        assert_eq!(r.attempts, 2000);
        assert_eq!(r.commits + r.conflicts, 2000);
        assert!(r.commits > 0);
    }
}
