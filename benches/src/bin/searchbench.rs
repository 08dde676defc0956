//! `searchbench`: contains search through the 3-gram key index against a full scan with the
//! same predicate, and the write cost of maintaining the index (issue 15); see
//! `kvstore_benches::search`. Prints a Markdown table row.
//!
//! ```sh
//! cargo run --release -p kvstore-benches --bin searchbench -- --n 1000000 --substr 123
//! ```

use clap::{Parser, ValueEnum};
use kvstore::Durability;
use kvstore_benches::BenchResult;
use kvstore_benches::search;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// `Durability::Sync`: every batch synced.
    Sync,
    /// `Durability::Buffered`.
    Nosync,
}

#[derive(Parser, Debug)]
#[command(about = "Contains search: key index vs full scan, and the index's write cost")]
struct Args {
    /// Keys (`k_0000000`..).
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// The substring searched for.
    #[arg(long, default_value = "123")]
    substr: String,
    /// Durability of the loads (batches of 1000 puts).
    #[arg(long, value_enum, default_value = "nosync")]
    mode: Mode,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let durability = match args.mode {
        Mode::Sync => Durability::Sync,
        Mode::Nosync => Durability::Buffered,
    };
    let dir = tempfile::tempdir()?;
    let r = search::run(dir.path(), args.n, durability, args.substr.as_bytes())?;
    println!(
        "| keys | mode | puts/s without index | puts/s with index | write cost | index build | \
         substring | found | index search | full scan | speed-up |"
    );
    println!("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    println!(
        "| {} | {:?} | {:.0} | {:.0} | {:.2}x | {:.1} s | `{}` | {} | {:.2} ms | {:.1} ms | {:.0}x |",
        r.keys,
        args.mode,
        r.plain_put_rate,
        r.indexed_put_rate,
        r.plain_put_rate / r.indexed_put_rate,
        r.build.as_secs_f64(),
        args.substr,
        r.found,
        r.index_search.as_secs_f64() * 1e3,
        r.scan_search.as_secs_f64() * 1e3,
        r.scan_search.as_secs_f64() / r.index_search.as_secs_f64()
    );
    Ok(())
}
