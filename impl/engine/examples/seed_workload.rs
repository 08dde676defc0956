//! The seed's (kvstore-ts) workload: N keys `k_0000000`.. (7 digits), 256-byte values, written in
//! batches of 1000 in Buffered mode with one sync at the end; then N gets in key order verifying
//! each value; then a prefix scan of `k_` counting every key. Prints seconds and ops/s per phase.
//!
//! `cargo run --release --example seed_workload -- --n 100000 [--dir DIR]`

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use kvstore::{Db, Durability, Options, ScanOptions, WriteBatch};

/// Ops per batch, as in the seed.
const BATCH_OPS: u64 = 1000;
/// Value size in bytes, as in the seed.
const VALUE_LEN: usize = 256;

#[derive(Debug, Parser)]
struct Args {
    /// Number of keys.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Database directory (a fresh temporary one when omitted).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn key(i: u64) -> Vec<u8> {
    format!("k_{i:07}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(VALUE_LEN, b'x');
    v
}

fn report(phase: &str, ops: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
    println!("{phase:>6}: {ops} ops in {secs:.3} s = {rate:.0} ops/s");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("db"));
    let options = Options {
        durability: Durability::Buffered,
        ..Options::default()
    };
    let db = Db::open(&dir, options)?;

    let started = Instant::now();
    let mut i = 0;
    while i < args.n {
        let mut batch = WriteBatch::new();
        let end = (i + BATCH_OPS).min(args.n);
        for j in i..end {
            batch.put(&key(j), &value(j));
        }
        db.write(batch)?;
        i = end;
    }
    db.sync()?;
    report("write", args.n, started);

    let started = Instant::now();
    for i in 0..args.n {
        let got = db.get(&key(i))?;
        if got.as_deref() != Some(value(i).as_slice()) {
            return Err(format!("key {i}: wrong value").into());
        }
    }
    report("get", args.n, started);

    let started = Instant::now();
    let mut count = 0u64;
    for item in db.scan_prefix(b"k_", ScanOptions::default())? {
        item?;
        count += 1;
    }
    if count != args.n {
        return Err(format!("scan counted {count}, expected {}", args.n).into());
    }
    report("scan", count, started);
    println!("stats: {:?}", db.stats());
    db.close()?;
    Ok(())
}
