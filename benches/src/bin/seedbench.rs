//! `seedbench`: the seed's workload (write N in batches of 1,000, get all in order and shuffled,
//! one prefix scan) on kvstore and its peers, with a Markdown table of peer / kvstore ratios.
//!
//! ```sh
//! cargo run --release -p kvstore-benches --features peers --bin seedbench -- --engine all --mode both --n 1000000
//! ```
//!
//! With `--engine all` (or `--mode both`) every (engine, mode) runs in its own child process (this
//! binary re-executed with `--child`), so each peak RSS figure is that engine's alone, and the
//! machine's dirty pages are written back (`sync(1)`) before each child starts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Parser;
use kvstore_benches::engine::SyncMode;
use kvstore_benches::peers::{self, ENGINES};
use kvstore_benches::seed::{self, Report};
use kvstore_benches::{BenchResult, table};

#[derive(Parser, Debug)]
#[command(about = "The seed workload on kvstore and its peers")]
struct Args {
    /// kvstore, fjall, redb, sled, heed, rocksdb, or all (every engine in this build).
    #[arg(long, default_value = "kvstore")]
    engine: String,
    /// sync (each batch durable before the next), nosync (one sync at the end), or both.
    #[arg(long, default_value = "nosync")]
    mode: String,
    /// Entries to write and read.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Directory under which each run makes (and then removes) its database directory.
    /// Default: $TMPDIR. Use a real disk, not a tmpfs.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// kvstore's SST block size in bytes (`Options::sst_block_size_bytes`; default: kvstore's
    /// default). Smaller blocks make random point reads cheaper and scans dearer.
    #[arg(long)]
    kvstore_block_size: Option<u64>,
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

fn engines(engine: &str) -> BenchResult<Vec<&'static str>> {
    if engine == "all" {
        return Ok(ENGINES
            .iter()
            .copied()
            .filter(|e| peers::is_built(e))
            .collect());
    }
    match ENGINES.iter().find(|e| **e == engine) {
        Some(e) => Ok(vec![*e]),
        None => Err(format!(
            "unknown engine {engine}; known: {}, all",
            ENGINES.join(", ")
        )
        .into()),
    }
}

/// Runs one engine and mode in this process, in a fresh directory that is removed afterwards.
fn run_here(args: &Args, engine: &str, mode: SyncMode) -> BenchResult<Report> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix(&format!("seedbench-{engine}-"))
        .tempdir_in(base)?;
    seed::run(engine, mode, args.n, dir.path(), args.kvstore_block_size)
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

/// Runs one engine and mode in a child process and parses its report line.
fn run_child(args: &Args, engine: &str, mode: SyncMode) -> BenchResult<Report> {
    settle_disk()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", "--engine", engine, "--mode", mode.name()])
        .args(["--n", &args.n.to_string()]);
    if let Some(dir) = &args.dir {
        cmd.arg("--dir").arg(dir);
    }
    if let Some(bytes) = args.kvstore_block_size {
        cmd.args(["--kvstore-block-size", &bytes.to_string()]);
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{engine} {} failed ({}): {stdout}", mode.name(), out.status).into());
    }
    stdout
        .lines()
        .find_map(Report::from_line)
        .ok_or_else(|| format!("{engine} {}: no report line in {stdout:?}", mode.name()).into())
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let modes = modes(&args.mode)?;
    let engines = engines(&args.engine)?;
    if args.child {
        let (&[engine], &[mode]) = (&engines[..], &modes[..]) else {
            return Err("--child runs exactly one engine and one mode".into());
        };
        println!("{}", run_here(&args, engine, mode)?.to_line());
        return Ok(());
    }
    let isolate = engines.len() > 1 || modes.len() > 1;
    eprintln!(
        "seedbench: n = {}, engines {:?}, modes {:?}{}",
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
        let mut reports = Vec::new();
        for &engine in &engines {
            let report = if isolate {
                run_child(&args, engine, mode)?
            } else {
                run_here(&args, engine, mode)?
            };
            reports.push(report);
        }
        all.extend(reports.clone());
        println!("\n{}", table::throughput(&reports));
    }
    println!("{}", table::detail(&all));
    Ok(())
}
