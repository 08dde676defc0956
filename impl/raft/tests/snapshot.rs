//! Snapshots: a member that was away while the leader purged its log catches up from a
//! snapshot (the engine's export stream), as does a new member; both then agree with the
//! leader on every key and revision, also after a restart.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, assert_same_state, config, dump};
use kvstore_raft::Command;
use kvstore_raft::Node;
use openraft::SnapshotPolicy;

/// Builds a snapshot on the leader and purges its log up to it; returns the snapshot's index.
async fn snapshot_and_purge(cluster: &Cluster) -> u64 {
    let leader = cluster.leader().await;
    let index = common::snapshot_and_purge(cluster.nodes[&leader].raft(), common::WAIT).await;
    let purged = cluster.nodes[&leader]
        .log()
        .last_purged()
        .expect("read")
        .expect("purged");
    assert!(purged.index >= index);
    assert!(
        cluster.nodes[&leader]
            .log()
            .entries(..=purged.index)
            .expect("read")
            .is_empty()
    );
    index
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_lagging_member_catches_up_from_a_snapshot_after_the_log_is_purged() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 0)).await;
    cluster.put("early", "1").await;
    let leader = cluster.leader().await;
    let away = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.settle().await;
    cluster.kill(away).await;
    let (_, lease_index) = cluster
        .write(Command::LeaseGrant {
            id: 5,
            ttl_ms: 600_000,
        })
        .await;
    assert!(lease_index > 0);
    for i in 0..30 {
        cluster
            .put(&format!("k{:02}", i % 10), &format!("v{i}"))
            .await;
    }
    cluster
        .write(Command::Put {
            key: b"leased".to_vec(),
            value: b"x".to_vec(),
            lease: 5,
        })
        .await;
    cluster.settle().await;
    let snapshot_index = snapshot_and_purge(&cluster).await;

    cluster.start(away).await;
    cluster.put("after", "1").await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    let state = cluster.nodes[&away].state();
    assert_eq!(state.generation(), 1, "installed from a snapshot");
    assert!(
        state
            .durable_applied()
            .expect("applied")
            .expect("some")
            .index
            > snapshot_index
    );
    assert_eq!(cluster.nodes[&away].db().leases().expect("leases"), vec![5]);

    // After a restart the member knows it holds the snapshot and what came after: no entry is
    // applied twice.
    cluster.kill(away).await;
    cluster.start(away).await;
    cluster.put("after", "2").await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    assert_eq!(dump(&cluster.nodes[&away].db()).1, 34);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_new_member_joins_from_a_snapshot() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 0)).await;
    for i in 0..20 {
        cluster.put(&format!("k{i}"), "v").await;
    }
    cluster.settle().await;
    snapshot_and_purge(&cluster).await;
    let leader = cluster.leader().await;

    cluster.start(4).await;
    let raft = cluster.nodes[&leader].raft().clone();
    raft.add_learner(4, Node::new("node-4"), true)
        .await
        .expect("add learner");
    raft.change_membership(BTreeSet::from([1, 2, 3, 4]), false)
        .await
        .expect("promote");
    cluster.put("joined", "4").await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    assert_eq!(cluster.nodes[&4].state().generation(), 1);
    let voters: Vec<u64> = cluster.nodes[&4]
        .raft()
        .metrics()
        .borrow()
        .membership_config
        .voter_ids()
        .collect();
    assert_eq!(voters, vec![1, 2, 3, 4]);

    // The membership the new member applied survives its restart: it is what it starts with,
    // before any leader tells it anything.
    cluster.kill(4).await;
    cluster.router.isolate(4);
    cluster.start(4).await;
    cluster.router.isolate(4);
    let metrics = cluster.nodes[&4]
        .raft()
        .wait(Some(common::WAIT))
        .metrics(
            |m| m.membership_config.log_id().is_some(),
            "membership loaded",
        )
        .await
        .expect("membership");
    let voters: Vec<u64> = metrics.membership_config.voter_ids().collect();
    assert_eq!(voters, vec![1, 2, 3, 4]);
    assert_eq!(cluster.nodes[&4].state().generation(), 1);
    cluster.router.heal();
    cluster.put("joined", "again").await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_snapshot_policy_builds_snapshots_and_purges_the_log_by_itself() {
    let cluster = Cluster::new(3, config(SnapshotPolicy::LogsSinceLast(10), 0)).await;
    for i in 0..35 {
        cluster.put(&format!("k{}", i % 6), &format!("v{i}")).await;
    }
    let last = cluster.settle().await;
    for (id, node) in &cluster.nodes {
        let metrics = node
            .raft()
            .wait(Some(common::WAIT))
            .metrics(
                |m| m.purged.is_some_and(|p| p.index + 10 >= last),
                format!("member {id} purged by itself"),
            )
            .await
            .expect("purged");
        let purged = metrics.purged.expect("purged");
        let stored = node.log().last_purged().expect("read").expect("recorded");
        assert!(stored.index >= purged.index);
        let first = node
            .log()
            .entries(..)
            .expect("read")
            .first()
            .map(|e| e.log_id.index);
        assert!(first.is_none_or(|first| first == stored.index + 1));
    }
    let leader = cluster.leader().await;
    assert_same_state(&cluster, leader);
}
