//! `shortscan`: the short-scan workload callgrind profiles (see `kvstore_benches::shortscan`).

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::shortscan;

#[derive(Parser, Debug)]
#[command(about = "Loads YCSB records (inline flushes, SimVfs), then runs checked short scans")]
struct Args {
    /// Records to load.
    #[arg(long, default_value_t = 50_000)]
    records: u64,
    /// Scans to run, each of a length uniform in 1..=100 from a scrambled-zipfian record.
    #[arg(long, default_value_t = 2_000)]
    scans: u64,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    println!("rows {}", shortscan::run(args.records, args.scans)?);
    Ok(())
}
