//! Members restarted from their directories: they catch up with no entry applied twice (a
//! double apply would bump revisions, so every member's revisions must equal the leader's), also
//! after a crash between "entry applied" and "openraft told".

mod common;

use common::{Cluster, assert_same_state, config, dump};
use kvstore_raft::Command;
use openraft::SnapshotPolicy;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_restarted_follower_catches_up_without_applying_anything_twice() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    for i in 0..20 {
        cluster
            .put(&format!("k{:02}", i % 7), &format!("v{i}"))
            .await;
    }
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.settle().await;
    cluster.kill(follower).await;
    for i in 0..10 {
        cluster
            .put(&format!("k{:02}", i % 5), &format!("w{i}"))
            .await;
    }
    cluster.start(follower).await;
    let last = cluster.settle().await;
    assert_same_state(&cluster, leader);
    let (_, revision) = dump(&cluster.nodes[&follower].db());
    assert_eq!(
        revision, 30,
        "thirty puts, one revision each, on the restarted member too"
    );
    // What a crash now would recover is what was applied: every command entry's stamp.
    let durable = cluster.nodes[&follower]
        .state()
        .durable_applied()
        .expect("applied")
        .expect("some");
    assert_eq!(durable.index, last);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restarting_every_member_reapplies_nothing() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    for i in 0..15 {
        cluster.put(&format!("k{}", i % 4), "v").await;
    }
    cluster.settle().await;
    let before = dump(&cluster.nodes[&cluster.leader().await].db());
    for id in 1..=3 {
        cluster.kill(id).await;
    }
    for id in 1..=3 {
        cluster.start(id).await;
    }
    let leader = cluster.leader().await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    assert_eq!(dump(&cluster.nodes[&leader].db()), before);
    assert_eq!(cluster.put("k0", "after").await, 16);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_crash_between_apply_and_telling_openraft_reapplies_nothing() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    for i in 0..5 {
        cluster.put(&format!("k{i}"), "v").await;
    }
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    let last = cluster.settle().await;
    // The next entry is `last + 1`: the follower applies it, then "crashes" before openraft
    // hears of it (its raft stops on the storage error).
    cluster.nodes[&follower]
        .state()
        .fail_after_applying(last + 1);
    let (_, index) = cluster
        .write(Command::Put {
            key: b"k0".to_vec(),
            value: b"crash".to_vec(),
            lease: 0,
        })
        .await;
    assert_eq!(index, last + 1);
    let raft = cluster.nodes[&follower].raft().clone();
    raft.wait(Some(common::WAIT))
        .metrics(|m| m.running_state.is_err(), "the follower stops")
        .await
        .expect("stopped");
    let applied_here = cluster.nodes[&follower]
        .db()
        .get_versioned(b"k0")
        .expect("get");
    assert_eq!(applied_here.map(|v| v.value), Some(b"crash".to_vec()));
    cluster.kill(follower).await;
    cluster.start(follower).await;
    cluster.put("k1", "after").await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    assert_eq!(dump(&cluster.nodes[&follower].db()).1, 7);
}
