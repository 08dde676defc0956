//! The YCSB core workloads A-F (`seedbench --workload ycsb`, issue 16) on one
//! [`Engine`], shared by 1 or more threads.
//!
//! Phases, each on the same database, in one child process per (engine, threads):
//! 1. load: `records` inserts of one record each (keys `user<hash>`, so in random key order; a
//!    record is one 1000-byte value, YCSB's ten 100-byte fields concatenated), split among the
//!    threads;
//! 2. each workload in [`Workload::ORDER`] (A, B, C, F, D, E, as YCSB's documentation runs them
//!    on one load; D's and E's inserts add records for the workloads after them): `ops`
//!    operations from its mix, split among the threads, keys from its [`KeyChooser`].
//!
//! Every write asks for the run's [`SyncMode`]; in `nosync` (the default) each phase ends with
//! one sync, timed. A phase's ops/s is its operations over the wall time from the threads'
//! release to the last one's end plus that sync; its latencies are of single operations (a
//! read-modify-write is one), engine calls only: choosing keys and values is outside the timer
//! but inside the wall time, the same for every engine.
//!
//! Invariants: every read and read-modify-write finds its record with [`RECORD_LEN_BYTES`] bytes
//! and every scan starts at the key it asked for and returns 1..=its length records, or the run
//! is an error, not a number. Thread `t` of phase `p` draws from a ChaCha8 generator seeded with
//! ([`SEED`], `p`, `t`), so with one thread a seed replays a run exactly.

pub mod mix;
pub mod report;
pub mod zipf;

use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::{Engine, KvstoreTuning, SyncMode};
use crate::workload::{self, Latencies};
use crate::{BenchResult, peers, process};
use mix::{Distribution, InsertSequence, KeyChooser, Op, RECORD_LEN_BYTES, Records, Workload};
use report::YcsbReport;

/// Seed of every thread's generator and of the record pool.
pub const SEED: u64 = 0x4C5B_2026;

/// What one child runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Records loaded.
    pub records: u64,
    /// Operations per workload.
    pub ops: u64,
    /// Threads sharing the engine.
    pub threads: u64,
    /// How keys are picked.
    pub distribution: Distribution,
    /// The workloads to run after the load, in order.
    pub workloads: Vec<Workload>,
    /// Durability of each write.
    pub mode: SyncMode,
    /// kvstore's options, where the run sets them.
    pub kvstore: KvstoreTuning,
}

/// The phase a thread runs.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Load,
    Run(Workload),
}

/// What the threads of one phase share.
struct Shared<'a> {
    engine: &'a dyn Engine,
    config: &'a Config,
    records: &'a Records,
    inserts: &'a InsertSequence,
    /// Records readable when the phase starts (sizes the key choosers).
    readable_at_start: u64,
}

/// Runs the load and the workloads of `config` on engine `name` in the empty directory `dir`;
/// one report per phase, load first.
pub fn run(name: &str, config: &Config, dir: &Path) -> BenchResult<Vec<YcsbReport>> {
    if config.records < 2 || config.threads == 0 {
        return Err("ycsb needs --records >= 2 and at least one thread".into());
    }
    let engine = peers::open(name, dir, config.mode, config.kvstore)?;
    let records = Records::new(&mut ChaCha8Rng::seed_from_u64(SEED));
    let inserts = InsertSequence::new(0);
    let phases =
        std::iter::once(Phase::Load).chain(config.workloads.iter().copied().map(Phase::Run));
    let mut reports = Vec::new();
    for (index, phase) in phases.enumerate() {
        let shared = Shared {
            engine: engine.as_ref(),
            config,
            records: &records,
            inserts: &inserts,
            readable_at_start: inserts.readable(),
        };
        let ops = match phase {
            Phase::Load => config.records,
            Phase::Run(_) => config.ops,
        };
        let (secs, mut latencies) = run_phase(&shared, phase, index as u64, ops)?;
        let name_of_phase = match phase {
            Phase::Load => "load",
            Phase::Run(workload) => workload.name(),
        };
        let report = YcsbReport {
            engine: name.to_owned(),
            mode: config.mode.name().to_owned(),
            distribution: config.distribution.name().to_owned(),
            threads: config.threads,
            records: config.records,
            phase: name_of_phase.to_owned(),
            ops,
            secs,
            p50_us: latencies.percentile_us(0.50),
            p99_us: latencies.percentile_us(0.99),
            peak_rss_bytes: 0,
        };
        eprintln!("{}", report.summary());
        reports.push(report);
    }
    engine.close()?;
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
    for report in &mut reports {
        report.peak_rss_bytes = peak_rss_bytes;
    }
    Ok(reports)
}

/// Runs `ops` operations of `phase` (number `index` of the run) on the threads; returns the wall
/// seconds (plus the closing sync in `nosync`) and every operation's latency.
fn run_phase(
    shared: &Shared<'_>,
    phase: Phase,
    index: u64,
    ops: u64,
) -> BenchResult<(f64, Latencies)> {
    let threads = shared.config.threads;
    let release = Barrier::new(threads as usize + 1);
    let (wall, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let share = workload::thread_share(ops, threads, t);
                let release = &release;
                scope.spawn(move || thread_ops(shared, phase, (index, t), share, release))
            })
            .collect();
        release.wait();
        let start = Instant::now();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (start, results)
    });
    let mut latencies = Latencies::with_capacity(ops as usize);
    for result in results {
        latencies.extend(result.map_err(|_| "a ycsb thread panicked")??);
    }
    if shared.config.mode == SyncMode::End {
        shared.engine.sync()?;
    }
    Ok((wall.elapsed().as_secs_f64(), latencies))
}

/// One thread's `ops` operations of `phase`, its generator seeded with `(phase index, thread)`;
/// waits on `release` before the first.
fn thread_ops(
    shared: &Shared<'_>,
    phase: Phase,
    (index, thread): (u64, u64),
    ops: u64,
    release: &Barrier,
) -> BenchResult<Latencies> {
    let Shared {
        engine,
        config,
        records,
        inserts,
        readable_at_start,
    } = *shared;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ (index << 32) ^ thread);
    let mut chooser = match phase {
        Phase::Load => None,
        Phase::Run(workload) => Some(KeyChooser::new(
            workload,
            config.distribution,
            readable_at_start,
            config.ops,
        )),
    };
    let mut latencies = Latencies::with_capacity(ops as usize);
    let mut key = String::new();
    let mut record = Vec::with_capacity(RECORD_LEN_BYTES);
    release.wait();
    for _ in 0..ops {
        let op = match phase {
            Phase::Load => Op::Insert,
            Phase::Run(workload) => workload.next_op(&mut rng),
        };
        let keynum = match (op, &mut chooser) {
            (Op::Insert, _) => inserts.allocate(),
            (_, Some(chooser)) => chooser.next(inserts.readable(), &mut rng),
            (_, None) => unreachable!("the load only inserts"),
        };
        mix::key(keynum, &mut key);
        let value = records.pick(&mut rng);
        let start = Instant::now();
        match op {
            Op::Read => read(engine, &key, None)?,
            Op::Update | Op::Insert => {
                engine.write_batch(&[(key.as_bytes(), value)], config.mode)?
            }
            Op::Scan(len) => scan(engine, &key, len)?,
            Op::ReadModifyWrite => {
                read(engine, &key, Some(&mut record))?;
                records.modify(&mut record, &mut rng);
                engine.write_batch(&[(key.as_bytes(), &record)], config.mode)?;
            }
        }
        latencies.record(start.elapsed());
        if op == Op::Insert {
            inserts.acknowledge(keynum);
        }
    }
    Ok(latencies)
}

/// Reads `key`, copying its value into `copy` if given (a read-modify-write; a plain read only
/// looks at the value, as a lent one costs nothing more); an error unless it is present with
/// [`RECORD_LEN_BYTES`] bytes.
fn read(engine: &dyn Engine, key: &str, mut copy: Option<&mut Vec<u8>>) -> BenchResult<()> {
    let mut len = None;
    engine.get_with(key.as_bytes(), &mut |value| {
        len = Some(value.len());
        if let Some(record) = copy.as_deref_mut() {
            record.clear();
            record.extend_from_slice(value);
        }
    })?;
    match len {
        Some(RECORD_LEN_BYTES) => Ok(()),
        Some(other) => Err(format!("read {key}: {other} bytes, not {RECORD_LEN_BYTES}").into()),
        None => Err(format!("read {key}: missing").into()),
    }
}

/// Scans `len` records from `key`; an error unless the first is `key` itself and there are
/// 1..=`len`.
fn scan(engine: &dyn Engine, key: &str, len: usize) -> BenchResult<()> {
    let mut first_is_start = None;
    let count = engine.scan_from(key.as_bytes(), len, &mut |k, _| {
        first_is_start.get_or_insert(k == key.as_bytes());
    })?;
    if first_is_start != Some(true) || count == 0 || count > len as u64 {
        return Err(format!(
            "scan of {len} from {key}: {count} records, first at the start key: {first_is_start:?}"
        )
        .into());
    }
    Ok(())
}
