//! `serverbench`: kvstore's server against etcd 3.4 on the same machine in one run, both
//! driven by the same client code (the `etcd-client` crate), both syncing every write.
//!
//! - [`peer`]: starting `kvstore serve` and etcd as child processes on loopback ports, alone
//!   or as clusters.
//! - [`load`]: the put, range, txn and watch workloads at C clients.
//! - [`check_perf`]: `etcdctl check perf` and its verdict.
//! - [`report`]: the Markdown tables, every row with its ratio kvstore/etcd.
//!
//! Invariants:
//! - Both servers run at once and each row is measured on kvstore, then at once on etcd, so a
//!   ratio compares figures taken moments apart under the same machine load.
//! - Both servers get the same keys and values; `range` and `txn` read the same preload.

pub mod check_perf;
pub mod load;
pub mod peer;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BenchResult;
use load::{Load, Workload};
use peer::{Kind, Peer};
use report::Row;

/// What one run measures.
#[derive(Clone, Debug)]
pub struct Plan {
    pub kvstore: PathBuf,
    pub etcd: PathBuf,
    pub workloads: Vec<Workload>,
    pub clients: Vec<usize>,
    /// Operations per row, shared among its clients (at least one each).
    pub ops: u64,
    /// Keys preloaded for `range` and `txn`.
    pub keys: u64,
    /// Where the servers' temporary directories go.
    pub dir: PathBuf,
    /// Members of each server's cluster (1: alone).
    pub members: usize,
}

/// Runs every workload of `plan` at every client count on both servers; `progress` is told of
/// each row as it completes.
pub async fn compare(plan: &Plan, progress: impl Fn(&Row)) -> BenchResult<Vec<Row>> {
    let ours = Peer::start_cluster(
        &Kind::Kvstore(plan.kvstore.clone()),
        &plan.dir,
        plan.members,
    )
    .await?;
    let etcd = Peer::start_cluster(&Kind::Etcd(plan.etcd.clone()), &plan.dir, plan.members).await?;
    if plan.workloads.iter().any(|w| w.needs_preload()) {
        load::preload(&ours.endpoint, plan.keys).await?;
        load::preload(&etcd.endpoint, plan.keys).await?;
    }
    let mut rows = Vec::new();
    for &workload in &plan.workloads {
        for &clients in &plan.clients {
            let load = Load {
                workload,
                clients,
                ops_per_client: (plan.ops / clients as u64).max(1),
                keys: plan.keys,
            };
            let row = Row {
                workload: workload.name(),
                clients,
                kvstore: load::run(&ours.endpoints, load).await?,
                etcd: load::run(&etcd.endpoints, load).await?,
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `etcdctl check perf --load=LOAD` on a fresh kvstore, then on a fresh etcd.
pub async fn check_perf_both(
    plan: &Plan,
    etcdctl: &Path,
    load: &str,
) -> BenchResult<(check_perf::Verdict, check_perf::Verdict)> {
    let mut verdicts = Vec::new();
    for kind in [
        Kind::Kvstore(plan.kvstore.clone()),
        Kind::Etcd(plan.etcd.clone()),
    ] {
        let peer = Peer::start(&kind, &plan.dir).await?;
        let (etcdctl, endpoint, load) =
            (etcdctl.to_owned(), peer.endpoint.clone(), load.to_owned());
        let verdict =
            tokio::task::spawn_blocking(move || check_perf::run(&etcdctl, &endpoint, &load))
                .await??;
        verdicts.push(verdict);
    }
    let etcd = verdicts.pop().ok_or("no etcd verdict")?;
    let kvstore = verdicts.pop().ok_or("no kvstore verdict")?;
    Ok((kvstore, etcd))
}

/// On a fresh cluster of each server (`plan.members`, at least 3): SIGKILL the leader, then
/// time the first successful put through another member. (kvstore's, etcd's).
pub async fn failover_both(plan: &Plan) -> BenchResult<(Duration, Duration)> {
    let mut times = Vec::new();
    for kind in [
        Kind::Kvstore(plan.kvstore.clone()),
        Kind::Etcd(plan.etcd.clone()),
    ] {
        let mut peer = Peer::start_cluster(&kind, &plan.dir, plan.members.max(3)).await?;
        load::preload(&peer.endpoint, 100).await?;
        let other = peer.kill_leader().await?;
        times.push(load::first_write_after(&other).await?);
    }
    let etcd = times.pop().ok_or("no etcd time")?;
    let kvstore = times.pop().ok_or("no kvstore time")?;
    Ok((kvstore, etcd))
}
