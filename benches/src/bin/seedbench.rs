//! `seedbench`: the seed's workload (write N in batches of 1,000, get all in order and shuffled,
//! one prefix scan) on kvstore and its peers, with a Markdown table of peer / kvstore ratios;
//! with `--workload txn`, counters incremented by optimistic transactions from 1, 2 and 4 threads
//! over 10 and 100,000 keys, on kvstore, fjall and RocksDB (see `kvstore_benches::txn`); with
//! `--workload ycsb`, the YCSB core workloads A-F on every engine (see `kvstore_benches::ycsb`).
//!
//! ```sh
//! cargo run --release -p kvstore-benches --features peers --bin seedbench -- --engine all --mode both --n 1000000
//! cargo run --release -p kvstore-benches --features peers --bin seedbench -- --workload ycsb --engine all --threads 1,2
//! # the scale sweep: one CSV row per run, drawn by `scaleplot`
//! cargo run --release -p kvstore-benches --features peers --bin seedbench -- --engine all --n 100000,1000000,10000000 --csv benches/plots/scale.csv
//! cargo run --release -p kvstore-benches --features peers --bin seedbench -- --workload txn --engine all --txns 200000
//! ```
//!
//! With `--engine all` (or `--mode both`, or for `txn` several thread or key counts) every run
//! (engine, mode, and for `txn` threads and keys) happens in its own child process (this binary
//! re-executed with `--child`) in a fresh directory, so each peak RSS figure is that run's alone,
//! and the machine's dirty pages are written back (`sync(1)`) before each child starts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Parser;
use kvstore_benches::engine::{KvstoreTuning, SyncMode};
use kvstore_benches::peers::{self, ENGINES, TXN_ENGINES};
use kvstore_benches::seed::{self, Report};
use kvstore_benches::txn::{self, TxnReport};
use kvstore_benches::ycsb::{self, mix::Distribution, mix::Workload, report::YcsbReport};
use kvstore_benches::{BenchResult, disk, scale, table};

#[derive(Parser, Debug)]
#[command(about = "The seed workload (or optimistic transactions) on kvstore and its peers")]
struct Args {
    /// seed (write, get, scan N entries), txn (counters incremented by optimistic transactions),
    /// ycsb (the YCSB core workloads A-F after a load) or disk (the seed's writes appended to a
    /// file with no engine: the disk's own limit; `--engine` is ignored).
    #[arg(long, default_value = "seed")]
    workload: String,
    /// kvstore, fjall, redb, sled, heed, rocksdb, or all (every engine in this build; for txn:
    /// kvstore, fjall, rocksdb).
    #[arg(long, default_value = "kvstore")]
    engine: String,
    /// sync (each batch or commit durable before the next), nosync (one sync at the end), or both.
    #[arg(long, default_value = "nosync")]
    mode: String,
    /// seed: entries to write and read; several, comma-separated, make a scale sweep.
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    n: Vec<u64>,
    /// seed: append one CSV row per run to this file (`kvstore_benches::scale`), for `scaleplot`.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// txn, ycsb: thread counts to run, comma-separated (ycsb: give `--threads 1,2`).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    threads: Vec<u64>,
    /// txn: counter counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100000")]
    keys: Vec<u64>,
    /// txn: transactions attempted per run, split among its threads (conflicts count as attempts).
    #[arg(long, default_value_t = 100_000)]
    txns: u64,
    /// ycsb: records loaded.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// ycsb: operations per workload.
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// ycsb: zipfian (YCSB's scrambled zipfian, latest for D) or uniform.
    #[arg(long, default_value = "zipfian")]
    distribution: String,
    /// ycsb: the workloads to run after the load, in order, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "A,B,C,F,D,E")]
    ycsb_workloads: Vec<String>,
    /// Directory under which each run makes (and then removes) its database directory.
    /// Default: $TMPDIR. Use a real disk, not a tmpfs.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// kvstore's SST block size in bytes (`Options::sst_block_size_bytes`; default: kvstore's
    /// default). Smaller blocks make random point reads cheaper and scans dearer.
    #[arg(long)]
    kvstore_block_size: Option<u64>,
    /// kvstore's block cache in bytes (`Options::block_cache_size_bytes`; default: kvstore's
    /// default, 8 MiB): a kvstore row at a peer's memory (fjall's default cache is 32 MiB).
    #[arg(long)]
    kvstore_cache_bytes: Option<u64>,
    /// Internal: run exactly one engine and mode, print its report line on stdout.
    #[arg(long, hide = true)]
    child: bool,
}

fn modes(mode: &str) -> BenchResult<Vec<SyncMode>> {
    match mode {
        "sync" => Ok(vec![SyncMode::Each]),
        "nosync" => Ok(vec![SyncMode::End]),
        "both" => Ok(vec![SyncMode::End, SyncMode::Each]),
        other => Err(format!("--mode must be sync, nosync or both, not {other}").into()),
    }
}

fn engines(engine: &str, known: &[&'static str]) -> BenchResult<Vec<&'static str>> {
    if engine == "all" {
        return Ok(known
            .iter()
            .copied()
            .filter(|e| peers::is_built(e))
            .collect());
    }
    match known.iter().find(|e| **e == engine) {
        Some(e) => Ok(vec![*e]),
        None => Err(format!(
            "unknown engine {engine} for this workload; known: {}, all",
            known.join(", ")
        )
        .into()),
    }
}

/// A fresh directory for one run, removed when dropped.
fn run_dir(args: &Args, engine: &str) -> BenchResult<tempfile::TempDir> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    Ok(tempfile::Builder::new()
        .prefix(&format!("seedbench-{engine}-"))
        .tempdir_in(base)?)
}

/// Runs one engine, mode and N in this process, in a fresh directory that is removed afterwards.
fn run_here(args: &Args, engine: &str, mode: SyncMode, n: u64) -> BenchResult<Report> {
    let dir = run_dir(args, engine)?;
    seed::run(engine, mode, n, dir.path(), kvstore_tuning(args))
}

/// kvstore's options from the command line.
fn kvstore_tuning(args: &Args) -> KvstoreTuning {
    KvstoreTuning {
        block_size_bytes: args.kvstore_block_size,
        cache_bytes: args.kvstore_cache_bytes,
    }
}

/// Passes the run's kvstore options on to a child.
fn kvstore_child_args(args: &Args, cmd: &mut Command) {
    if let Some(bytes) = args.kvstore_block_size {
        cmd.args(["--kvstore-block-size", &bytes.to_string()]);
    }
    if let Some(bytes) = args.kvstore_cache_bytes {
        cmd.args(["--kvstore-cache-bytes", &bytes.to_string()]);
    }
}

/// Writes back every dirty page of the machine (`sync(1)`), so that a child does not start under
/// the writeback (and, on a `discard` mount, the discards) the previous child left behind. It is
/// hygiene, not a cure for every slow start: a run begun right after a release build still had
/// its first engine write about a third slower than after an idle pause.
fn settle_disk() -> BenchResult<()> {
    let status = Command::new("sync").status()?;
    if !status.success() {
        return Err(format!("sync(1) failed: {status}").into());
    }
    Ok(())
}

/// Runs one engine, mode and N in a child process and parses its report line.
fn run_child(args: &Args, engine: &str, mode: SyncMode, n: u64) -> BenchResult<Report> {
    settle_disk()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", "--engine", engine, "--mode", mode.name()])
        .args(["--n", &n.to_string()]);
    if let Some(dir) = &args.dir {
        cmd.arg("--dir").arg(dir);
    }
    kvstore_child_args(args, &mut cmd);
    child_line(cmd, &format!("{engine} {}", mode.name()), Report::from_line)
}

/// Runs the child `cmd` and parses the report lines it prints with `parse`: at least one.
fn child_lines<R>(
    mut cmd: Command,
    what: &str,
    parse: fn(&str) -> Option<R>,
) -> BenchResult<Vec<R>> {
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {stdout}", out.status).into());
    }
    let reports: Vec<R> = stdout.lines().filter_map(parse).collect();
    if reports.is_empty() {
        return Err(format!("{what}: no report line in {stdout:?}").into());
    }
    Ok(reports)
}

/// Runs the child `cmd` and parses the first report line it prints with `parse`.
fn child_line<R>(cmd: Command, what: &str, parse: fn(&str) -> Option<R>) -> BenchResult<R> {
    let mut reports = child_lines(cmd, what, parse)?;
    Ok(reports.swap_remove(0))
}

/// One run of the txn workload: engine, mode, threads, keys.
type TxnRun = (&'static str, SyncMode, u64, u64);

/// Runs one txn run in this process, in a fresh directory that is removed afterwards.
fn txn_here(args: &Args, (engine, mode, threads, keys): TxnRun) -> BenchResult<TxnReport> {
    let dir = run_dir(args, engine)?;
    txn::run(engine, mode, threads, keys, args.txns, dir.path())
}

/// Runs one txn run in a child process and parses its report line.
fn txn_child(args: &Args, (engine, mode, threads, keys): TxnRun) -> BenchResult<TxnReport> {
    settle_disk()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", "--workload", "txn", "--engine", engine])
        .args(["--mode", mode.name()])
        .args([
            "--threads",
            &threads.to_string(),
            "--keys",
            &keys.to_string(),
        ])
        .args(["--txns", &args.txns.to_string()]);
    if let Some(dir) = &args.dir {
        cmd.arg("--dir").arg(dir);
    }
    let what = format!("{engine} {} {threads} threads {keys} keys", mode.name());
    child_line(cmd, &what, TxnReport::from_line)
}

/// `--workload txn`: every (mode, keys, threads, engine), one table per mode.
fn txn_main(args: &Args, modes: &[SyncMode]) -> BenchResult<()> {
    let engines = engines(&args.engine, TXN_ENGINES)?;
    if args.child {
        let (&[engine], &[mode], &[threads], &[keys]) =
            (&engines[..], modes, &args.threads[..], &args.keys[..])
        else {
            return Err("--child runs exactly one engine, mode, thread count and key count".into());
        };
        println!(
            "{}",
            txn_here(args, (engine, mode, threads, keys))?.to_line()
        );
        return Ok(());
    }
    let runs = engines.len() * modes.len() * args.threads.len() * args.keys.len();
    eprintln!(
        "seedbench txn: {} attempted transactions per run, engines {:?}, modes {:?}, threads {:?}, keys {:?}{}",
        args.txns,
        engines,
        modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        args.threads,
        args.keys,
        if runs > 1 {
            ", one child process each"
        } else {
            ""
        }
    );
    for &mode in modes {
        let mut reports = Vec::new();
        for &keys in &args.keys {
            for &threads in &args.threads {
                for &engine in &engines {
                    let run = (engine, mode, threads, keys);
                    reports.push(if runs > 1 {
                        txn_child(args, run)?
                    } else {
                        txn_here(args, run)?
                    });
                }
            }
        }
        println!("\n{}", txn::table(&reports));
    }
    Ok(())
}

/// The YCSB configuration of `args` for `threads` threads and `mode`.
fn ycsb_config(args: &Args, threads: u64, mode: SyncMode) -> BenchResult<ycsb::Config> {
    let distribution = Distribution::parse(&args.distribution).ok_or_else(|| {
        format!(
            "--distribution must be zipfian or uniform, not {}",
            args.distribution
        )
    })?;
    let workloads = args
        .ycsb_workloads
        .iter()
        .map(|w| Workload::parse(w).ok_or_else(|| format!("unknown YCSB workload {w}")))
        .collect::<Result<_, _>>()?;
    Ok(ycsb::Config {
        records: args.records,
        ops: args.ops,
        threads,
        distribution,
        workloads,
        mode,
        kvstore: kvstore_tuning(args),
    })
}

/// Runs the YCSB phases of one engine, mode and thread count in a child process.
fn ycsb_child(
    args: &Args,
    engine: &str,
    mode: SyncMode,
    threads: u64,
) -> BenchResult<Vec<YcsbReport>> {
    settle_disk()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", "--workload", "ycsb", "--engine", engine])
        .args(["--mode", mode.name(), "--threads", &threads.to_string()])
        .args(["--records", &args.records.to_string()])
        .args(["--ops", &args.ops.to_string()])
        .args(["--distribution", &args.distribution])
        .args(["--ycsb-workloads", &args.ycsb_workloads.join(",")]);
    if let Some(dir) = &args.dir {
        cmd.arg("--dir").arg(dir);
    }
    kvstore_child_args(args, &mut cmd);
    let what = format!("ycsb {engine} {} {threads} threads", mode.name());
    child_lines(cmd, &what, YcsbReport::from_line)
}

/// `--workload ycsb`: every (mode, threads, engine) in its own child process, one pair of tables
/// per mode and thread count.
fn ycsb_main(args: &Args, modes: &[SyncMode]) -> BenchResult<()> {
    let engines = engines(&args.engine, ENGINES)?;
    if args.child {
        let (&[engine], &[mode], &[threads]) = (&engines[..], modes, &args.threads[..]) else {
            return Err("--child runs exactly one engine, mode and thread count".into());
        };
        let dir = run_dir(args, engine)?;
        for report in ycsb::run(engine, &ycsb_config(args, threads, mode)?, dir.path())? {
            println!("{}", report.to_line());
        }
        return Ok(());
    }
    eprintln!(
        "seedbench ycsb: {} records, {} ops per workload {:?}, {} keys, engines {:?}, threads {:?}, one child process each",
        args.records, args.ops, args.ycsb_workloads, args.distribution, engines, args.threads
    );
    for &mode in modes {
        for &threads in &args.threads {
            // Refuse a bad flag here, not in the first child.
            ycsb_config(args, threads, mode)?;
            let mut reports = Vec::new();
            for &engine in &engines {
                reports.extend(ycsb_child(args, engine, mode, threads)?);
            }
            println!(
                "\n{} keys, {} records, {} ops per workload, {}, {threads} threads\n\n{}",
                args.distribution,
                args.records,
                args.ops,
                mode.name(),
                ycsb::report::tables(&reports)
            );
        }
    }
    Ok(())
}

/// `--workload disk`: the disk's own limit for the seed's write phase, each mode and N in this
/// process, in a fresh directory after the machine's dirty pages are written back.
fn disk_main(args: &Args, modes: &[SyncMode]) -> BenchResult<()> {
    let mut runs = Vec::new();
    for &mode in modes {
        for &n in &args.n {
            settle_disk()?;
            let dir = run_dir(args, "disk")?;
            runs.push(disk::run(mode, n, dir.path())?);
        }
    }
    println!("{}", disk::table(&runs));
    Ok(())
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let modes = modes(&args.mode)?;
    match args.workload.as_str() {
        "seed" => {}
        "txn" => return txn_main(&args, &modes),
        "disk" => return disk_main(&args, &modes),
        "ycsb" => return ycsb_main(&args, &modes),
        other => {
            return Err(format!("--workload must be seed, txn, ycsb or disk, not {other}").into());
        }
    }
    let engines = engines(&args.engine, ENGINES)?;
    if args.child {
        let (&[engine], &[mode], &[n]) = (&engines[..], &modes[..], &args.n[..]) else {
            return Err("--child runs exactly one engine, one mode and one N".into());
        };
        println!("{}", run_here(&args, engine, mode, n)?.to_line());
        return Ok(());
    }
    let isolate = engines.len() > 1 || modes.len() > 1 || args.n.len() > 1;
    eprintln!(
        "seedbench: n = {:?}, engines {:?}, modes {:?}{}",
        args.n,
        engines,
        modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        if isolate {
            ", one child process each"
        } else {
            ""
        }
    );
    let mut all = Vec::new();
    for &mode in &modes {
        for &n in &args.n {
            let mut reports = Vec::new();
            for &engine in &engines {
                let report = if isolate {
                    run_child(&args, engine, mode, n)?
                } else {
                    run_here(&args, engine, mode, n)?
                };
                if let Some(path) = &args.csv {
                    scale::append(path, &report)?;
                }
                reports.push(report);
            }
            all.extend(reports.clone());
            println!("\nN = {n}\n\n{}", table::throughput(&reports));
        }
    }
    println!("{}", table::detail(&all));
    Ok(())
}
