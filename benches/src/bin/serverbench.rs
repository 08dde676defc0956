//! `serverbench`: `kvstore serve` against etcd 3.4 on this machine, in one run (issue 14). It
//! starts both (a release `kvstore` binary, by default the one beside this binary, and
//! `/usr/bin/etcd`) on loopback ports over temporary directories, runs the put, range, txn and
//! watch workloads at 1, 16 and 64 clients through the `etcd-client` crate, then
//! `etcdctl check perf --load=s` against a fresh instance of each (60 s each), and prints
//! Markdown tables with the ratio kvstore/etcd of every row. See `kvstore_benches::server`.
//!
//! ```sh
//! cargo build --release -p kvstore-cli -p kvstore-benches --bin kvstore --bin serverbench
//! target/release/serverbench --ops 2000
//! target/release/serverbench --members 3 --workloads put,range --check-perf none
//! ```

use std::path::PathBuf;

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::server::load::Workload;
use kvstore_benches::server::{self, Plan, report};

#[derive(Parser, Debug)]
#[command(about = "kvstore serve against etcd 3.4: put, range, txn and watch at 1-64 clients")]
struct Args {
    /// The `kvstore` binary (default: the one beside this binary).
    #[arg(long)]
    kvstore: Option<PathBuf>,
    /// etcd 3.4's server binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// etcd 3.4's etcdctl, for `check perf`.
    #[arg(long, default_value = "/usr/bin/etcdctl")]
    etcdctl: PathBuf,
    /// Workloads to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "put,range,txn,watch")]
    workloads: Vec<Workload>,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Operations per row (workload and client count), shared among the clients.
    #[arg(long, default_value_t = 2000)]
    ops: u64,
    /// Keys preloaded for range and txn.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// `etcdctl check perf --load` (s, m, l, xl); `none` skips it (it takes 60 s a server).
    #[arg(long, default_value = "s")]
    check_perf: String,
    /// Where the servers' temporary data directories go (a real disk: both sync every write).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Members of each server's cluster: 1 serves alone; 3 or more also times a failover
    /// (the leader SIGKILLed, then the first successful write through another member).
    #[arg(long, default_value_t = 1)]
    members: usize,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    if args.clients.contains(&0) || args.keys == 0 || args.keys > kvstore_benches::workload::N_MAX {
        return Err("--clients must be positive and --keys in 1..=10,000,000".into());
    }
    if args.members == 0 {
        return Err("--members must be positive".into());
    }
    let kvstore = match args.kvstore {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("kvstore"),
    };
    let plan = Plan {
        kvstore,
        etcd: args.etcd,
        workloads: args.workloads,
        clients: args.clients,
        ops: args.ops,
        keys: args.keys,
        dir: args.dir,
        members: args.members,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let rows = server::compare(&plan, |row| {
            eprintln!(
                "{} x{}: kvstore {:.0} ops/s, etcd {:.0} ops/s",
                row.workload, row.clients, row.kvstore.ops_per_sec, row.etcd.ops_per_sec
            );
        })
        .await?;
        println!("{}", report::load_table(&rows));
        if plan.members >= 3 {
            let (ours, etcd) = server::failover_both(&plan).await?;
            println!(
                "\nleader SIGKILLed to the first write through another member: kvstore {} ms, \
                 etcd {} ms",
                ours.as_millis(),
                etcd.as_millis()
            );
        }
        if args.check_perf != "none" {
            let (ours, etcd) =
                server::check_perf_both(&plan, &args.etcdctl, &args.check_perf).await?;
            println!(
                "{}",
                report::check_perf_table(&args.check_perf, &ours, &etcd)
            );
        }
        BenchResult::Ok(())
    })
}
