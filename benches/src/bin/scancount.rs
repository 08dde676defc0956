//! `scancount`: the scan-only workload callgrind profiles (see `kvstore_benches::scancount`).

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::scancount;

#[derive(Parser, Debug)]
#[command(about = "Writes N seed entries (inline flushes, SimVfs), then scans them once")]
struct Args {
    /// Entries to write and scan.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Take the rows lent through `Scan::visit` instead of iterating owned ones.
    #[arg(long)]
    lend: bool,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    if args.n > kvstore_benches::workload::N_MAX {
        return Err(format!("--n must be at most {}", kvstore_benches::workload::N_MAX).into());
    }
    println!("scanned {}", scancount::run(args.n, args.lend)?);
    Ok(())
}
