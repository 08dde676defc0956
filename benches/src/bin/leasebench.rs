//! `leasebench`: lease churn (issue 13). N one-key leases granted with their keys, kept alive
//! once and expired, beside the same keys put without leases; see `kvstore_benches::lease`.
//! Prints a Markdown table row per thread count.
//!
//! ```sh
//! cargo run --release -p kvstore-benches --bin leasebench -- --leases 100000
//! ```

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::lease;

#[derive(Parser, Debug)]
#[command(about = "Lease churn: grant + put, keep alive, expire")]
struct Args {
    /// Leases (one key each).
    #[arg(long, default_value_t = 100_000)]
    leases: u64,
    /// Writer thread counts to run, comma-separated.
    #[arg(long, default_value = "1,8")]
    threads: String,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let counts: Vec<usize> = args
        .threads
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()?;
    println!(
        "| leases | writers | plain puts/s | grant + put/s | vs plain puts | keep-alives/s | \
         expiry: revocations/s | expiry time |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for threads in counts {
        let dir = tempfile::tempdir()?;
        let r = lease::run(dir.path(), args.leases, threads)?;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.2} s |",
            r.leases,
            r.threads,
            r.put_rate,
            r.grant_put_rate,
            r.grant_put_rate / r.put_rate,
            r.keep_alive_rate,
            r.revoke_rate,
            r.expiry.as_secs_f64()
        );
    }
    Ok(())
}
