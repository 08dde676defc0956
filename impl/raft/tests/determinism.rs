//! How reproducible a seeded run is: the same scenario twice with the same seed of openraft's
//! random draws (election timeouts), under a paused current-thread runtime, must give the same
//! trace (who leads in which term, every entry's index and revision, who leads after the leader
//! is killed). tokio's own `select!` order is not seeded (see `kvstore_raft::runtime`); this test
//! shows it does not change these traces.

mod common;

use common::{Cluster, config};
use kvstore_raft::runtime::seed_thread_rng;
use openraft::SnapshotPolicy;

async fn trace(seed: u64) -> Vec<(u64, u64)> {
    seed_thread_rng(seed);
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    let mut trace = Vec::new();
    let leader = cluster.leader().await;
    let term = |c: &Cluster, id: u64| c.nodes[&id].raft().metrics().borrow().current_term;
    trace.push((leader, term(&cluster, leader)));
    for i in 0..5 {
        let (response, index) = cluster
            .write(kvstore_raft::Command::Put {
                key: format!("k{i}").into_bytes(),
                value: b"v".to_vec(),
                lease: 0,
            })
            .await;
        let kvstore_raft::Response::Put { revision } = response else {
            panic!("put answered {response:?}")
        };
        trace.push((index, revision));
    }
    let killed = tokio::time::Instant::now();
    cluster.kill(leader).await;
    let next = cluster.leader().await;
    // Virtual milliseconds until the survivors agree on a new leader: the drawn timeouts.
    let elected_ms = killed.elapsed().as_millis() as u64;
    trace.push((next, term(&cluster, next)));
    trace.push((elected_ms, 0));
    cluster.put("after", "v").await;
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        cluster.kill(id).await;
    }
    trace
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_same_seed_gives_the_same_trace() {
    for seed in [1u64, 2, 3, 0x5eed] {
        let first = trace(seed).await;
        let second = trace(seed).await;
        assert_eq!(first, second, "seed {seed} did not reproduce");
    }
}
