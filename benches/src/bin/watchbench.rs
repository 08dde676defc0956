//! `watchbench`: watch fan-out (issue 13). W watchers (0, 1, 100, 10,000 by default) on
//! overlapping prefixes while P puts commit in `Sync` batches of 100; see
//! `kvstore_benches::watch`. Prints a Markdown table; W = 0 is the baseline the commit rate is
//! compared with.
//!
//! ```sh
//! cargo run --release -p kvstore-benches --bin watchbench -- --puts 100000
//! ```

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::watch;

#[derive(Parser, Debug)]
#[command(about = "Watch fan-out: watchers on overlapping prefixes while puts commit")]
struct Args {
    /// Puts to commit.
    #[arg(long, default_value_t = 100_000)]
    puts: u64,
    /// Watcher counts to run, comma-separated.
    #[arg(long, default_value = "0,1,100,10000")]
    watchers: String,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let counts: Vec<usize> = args
        .watchers
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()?;
    println!("| watchers | puts/s | vs no watchers | events | events/s | latency p50 / p99 us |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut baseline = None;
    for watchers in counts {
        let dir = tempfile::tempdir()?;
        let report = watch::run(dir.path(), watchers, args.puts)?;
        let base = *baseline.get_or_insert(report.commit_rate);
        println!(
            "| {} | {:.0} | {:.2}x | {} | {:.0} | {:.0} / {:.0} |",
            report.watchers,
            report.commit_rate,
            report.commit_rate / base,
            report.events,
            report.event_rate,
            report.latency_us.0,
            report.latency_us.1
        );
    }
    Ok(())
}
