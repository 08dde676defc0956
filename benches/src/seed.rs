//! The seed workload's phases on one [`Engine`](crate::engine::Engine), and the [`Report`] they produce.
//!
//! Phases, in order (`spec` of issue #6):
//! 1. write N entries in atomic batches of [`BATCH_ENTRIES`]; `sync` mode makes each batch durable
//!    before the next, `nosync` syncs once at the end (that sync is timed);
//! 2. point-get all N in key order, then 3. in a seeded shuffled order, checking every value;
//! 4. one prefix scan over `k_` streaming all N, checking the count.
//!
//! Only engine calls are timed: generating keys and expected values happens outside the timers,
//! so it costs every engine the same nothing.
//!
//! Invariants: a wrong value, a missing key or a wrong scan count is an error; no figure is
//! reported for a run that read back anything but what it wrote.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::BenchResult;
use crate::engine::{KvstoreTuning, SyncMode};
use crate::peers;
use crate::process;
use crate::report_line;
use crate::workload::{self, BATCH_ENTRIES, KEY_PREFIX, Latencies};

/// Seed of the values and of the shuffled read order.
pub const SEED: u64 = 0x5EED_2026;
/// Progress bars advance once per this many operations (an atomic add per get would show up).
const PROGRESS_STEP_OPS: u64 = 1000;

/// Figures of one timed phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Phase {
    /// Seconds spent in engine calls.
    pub secs: f64,
    /// Operations (entries written, gets, or entries scanned) per second.
    pub ops_per_sec: f64,
    /// Median latency of one batch (write) or one get, microseconds; 0 for the scan.
    pub p50_us: f64,
    /// 99th-percentile latency, microseconds; 0 for the scan.
    pub p99_us: f64,
}

/// Everything one engine run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Engine name.
    pub engine: String,
    /// `sync` or `nosync`.
    pub mode: String,
    /// Entries written and read.
    pub n: u64,
    /// The write phase (ops = entries).
    pub write: Phase,
    /// Point gets in key order.
    pub get_in_order: Phase,
    /// Point gets in shuffled order.
    pub get_shuffled: Phase,
    /// The prefix scan (ops = entries streamed).
    pub scan: Phase,
    /// Peak resident set size of the process, bytes (0 if unknown).
    pub peak_rss_bytes: u64,
    /// Bytes in the database directory after the write phase (synced).
    pub disk_after_write_bytes: u64,
    /// Bytes in the database directory after close.
    pub disk_after_close_bytes: u64,
    /// Bytes the engine wrote through its I/O layer (kvstore's counting Vfs); 0 if not counted.
    pub counted_write_bytes: u64,
    /// Bytes the process caused to be written to storage (`/proc/self/io`), open to close.
    pub os_write_bytes: u64,
    /// Keys plus values written by the workload.
    pub user_bytes: u64,
}

impl Report {
    /// Write amplification: counted Vfs bytes / user bytes when the engine counts them, else the
    /// OS's bytes written / user bytes.
    pub fn write_amp(&self) -> f64 {
        let written = if self.counted_write_bytes > 0 {
            self.counted_write_bytes
        } else {
            self.os_write_bytes
        };
        written as f64 / self.user_bytes.max(1) as f64
    }

    /// One line of `key=value` pairs, what a child process prints for its parent.
    pub fn to_line(&self) -> String {
        let p = |name: &str, ph: &Phase| {
            format!(
                "{name}_secs={} {name}_ops={} {name}_p50={} {name}_p99={}",
                ph.secs, ph.ops_per_sec, ph.p50_us, ph.p99_us
            )
        };
        format!(
            "@report engine={} mode={} n={} {} {} {} {} rss={} disk_write={} disk_close={} counted={} os={} user={}",
            self.engine,
            self.mode,
            self.n,
            p("write", &self.write),
            p("get_in_order", &self.get_in_order),
            p("get_shuffled", &self.get_shuffled),
            p("scan", &self.scan),
            self.peak_rss_bytes,
            self.disk_after_write_bytes,
            self.disk_after_close_bytes,
            self.counted_write_bytes,
            self.os_write_bytes,
            self.user_bytes,
        )
    }

    /// Parses a line made by [`Report::to_line`]; `None` if it is not one.
    pub fn from_line(line: &str) -> Option<Report> {
        let mut r = Report::default();
        for (k, v) in report_line::fields(line, "@report ")? {
            match k {
                "engine" => r.engine = v.text(),
                "mode" => r.mode = v.text(),
                "n" => r.n = v.u64()?,
                "rss" => r.peak_rss_bytes = v.u64()?,
                "disk_write" => r.disk_after_write_bytes = v.u64()?,
                "disk_close" => r.disk_after_close_bytes = v.u64()?,
                "counted" => r.counted_write_bytes = v.u64()?,
                "os" => r.os_write_bytes = v.u64()?,
                "user" => r.user_bytes = v.u64()?,
                _ => {
                    let (phase, field) = k.rsplit_once('_')?;
                    let ph = match phase {
                        "write" => &mut r.write,
                        "get_in_order" => &mut r.get_in_order,
                        "get_shuffled" => &mut r.get_shuffled,
                        "scan" => &mut r.scan,
                        _ => return None,
                    };
                    match field {
                        "secs" => ph.secs = v.f64()?,
                        "ops" => ph.ops_per_sec = v.f64()?,
                        "p50" => ph.p50_us = v.f64()?,
                        "p99" => ph.p99_us = v.f64()?,
                        _ => return None,
                    }
                }
            }
        }
        Some(r)
    }
}

/// A progress bar on a terminal, a plain line at the end of the phase otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
}

impl Progress {
    fn new(label: String, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.clone());
            bar
        });
        Progress { bar, label }
    }

    fn inc(&self, delta: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(delta);
        }
    }

    fn finish(self, phase: &Phase) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{:>28}: {:8.3} s {:>12.0} ops/s  p50 {:9.1} us  p99 {:9.1} us",
            self.label, phase.secs, phase.ops_per_sec, phase.p50_us, phase.p99_us
        );
    }
}

/// The figures of `ops` operations that took `total`, with latency samples `lat`.
pub fn phase(ops: u64, total: Duration, lat: &mut Latencies) -> Phase {
    let secs = total.as_secs_f64();
    Phase {
        secs,
        ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        p50_us: lat.percentile_us(0.50),
        p99_us: lat.percentile_us(0.99),
    }
}

/// Replaces `keys` and `values` with batch `b` of the `n` entries the write phase writes (the
/// `b`-th run of [`BATCH_ENTRIES`], the last one shorter); returns how many it holds.
pub fn fill_batch(
    b: u64,
    n: u64,
    keys: &mut Vec<[u8; workload::KEY_LEN_BYTES]>,
    values: &mut Vec<[u8; workload::VALUE_LEN_BYTES]>,
) -> u64 {
    let start = b * BATCH_ENTRIES as u64;
    let end = (start + BATCH_ENTRIES as u64).min(n);
    keys.clear();
    values.clear();
    for i in start..end {
        keys.push(workload::key(i));
        values.push(workload::value(SEED, i));
    }
    end - start
}

/// Runs the seed workload on engine `name` in the empty directory `dir` (kvstore with
/// `kvstore`'s options where it sets them).
/// REQUIRES: `n <= workload::N_MAX`.
pub fn run(
    name: &str,
    mode: SyncMode,
    n: u64,
    dir: &Path,
    kvstore: KvstoreTuning,
) -> BenchResult<Report> {
    if n == 0 || n > workload::N_MAX {
        return Err(format!("--n must be in 1..={}", workload::N_MAX).into());
    }
    let label = |what: &str| format!("{name} {} {what}", mode.name());
    let os_before = process::storage_write_bytes().unwrap_or(0);
    let engine = peers::open(name, dir, mode, kvstore)?;

    // 1. Write.
    let batches = n.div_ceil(BATCH_ENTRIES as u64);
    let mut lat = Latencies::with_capacity(batches as usize + 1);
    let mut total = Duration::ZERO;
    let progress = Progress::new(label("write"), n);
    let mut keys = Vec::with_capacity(BATCH_ENTRIES);
    let mut values = Vec::with_capacity(BATCH_ENTRIES);
    for b in 0..batches {
        let taken = fill_batch(b, n, &mut keys, &mut values);
        let entries: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        let t = Instant::now();
        engine.write_batch(&entries, mode)?;
        let took = t.elapsed();
        lat.record(took);
        total += took;
        progress.inc(taken);
    }
    let t = Instant::now();
    engine.sync()?;
    total += t.elapsed();
    let write = phase(n, total, &mut lat);
    progress.finish(&write);
    let disk_after_write_bytes = process::dir_bytes(dir)?;

    // 2, 3. Point gets, in key order and shuffled.
    let in_order: Vec<u64> = (0..n).collect();
    let get_in_order = gets(engine.as_ref(), &in_order, label("get in order"))?;
    drop(in_order);
    let order = workload::shuffled(n, SEED);
    let get_shuffled = gets(engine.as_ref(), &order, label("get shuffled"))?;
    drop(order);

    // 4. One prefix scan.
    let progress = Progress::new(label("scan"), n);
    let mut streamed = 0u64;
    let mut bad_keys = 0u64;
    let t = Instant::now();
    let count = engine.scan_prefix(KEY_PREFIX, &mut |k, _v| {
        streamed += 1;
        bad_keys += u64::from(!k.starts_with(KEY_PREFIX));
        if streamed.is_multiple_of(PROGRESS_STEP_OPS) {
            progress.inc(PROGRESS_STEP_OPS);
        }
    })?;
    let took = t.elapsed();
    if count != n || streamed != n || bad_keys != 0 {
        return Err(format!(
            "{name}: the scan streamed {streamed} pairs ({count} counted, {bad_keys} outside the prefix), expected {n}"
        )
        .into());
    }
    let scan = phase(n, took, &mut Latencies::default());
    progress.finish(&scan);

    let counters = engine.write_counters();
    engine.close()?;
    let counted_write_bytes = counters.map_or(0, |c| c.appended_bytes());
    let os_write_bytes = process::storage_write_bytes()
        .unwrap_or(0)
        .saturating_sub(os_before);
    Ok(Report {
        engine: name.to_owned(),
        mode: mode.name().to_owned(),
        n,
        write,
        get_in_order,
        get_shuffled,
        scan,
        peak_rss_bytes: process::peak_rss_bytes().unwrap_or(0),
        disk_after_write_bytes,
        disk_after_close_bytes: process::dir_bytes(dir)?,
        counted_write_bytes,
        os_write_bytes,
        user_bytes: workload::user_bytes(n),
    })
}

fn gets(engine: &dyn crate::engine::Engine, order: &[u64], label: String) -> BenchResult<Phase> {
    let mut lat = Latencies::with_capacity(order.len());
    let mut total = Duration::ZERO;
    let progress = Progress::new(label, order.len() as u64);
    for (done, &i) in order.iter().enumerate() {
        let key = workload::key(i);
        let expected = workload::value(SEED, i);
        let t = Instant::now();
        let ok = engine.get_eq(&key, &expected)?;
        let took = t.elapsed();
        if !ok {
            return Err(format!(
                "get {} returned a wrong or missing value",
                String::from_utf8_lossy(&key)
            )
            .into());
        }
        lat.record(took);
        total += took;
        if (done as u64 + 1).is_multiple_of(PROGRESS_STEP_OPS) {
            progress.inc(PROGRESS_STEP_OPS);
        }
    }
    let result = phase(order.len() as u64, total, &mut lat);
    progress.finish(&result);
    Ok(result)
}
