//! A three-member cluster: election, replication of every command kind with the same keys and
//! revisions on every member, reads on followers, and a new leader after the old one is killed.

mod common;

use std::ops::Bound;

use common::{Cluster, assert_same_state, config, dump};
use kvstore::KeyRange;
use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore_raft::{Command, Rejection, Response};
use openraft::SnapshotPolicy;

fn put(key: &str, value: &str, lease: u64) -> Command {
    Command::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        lease,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn three_members_replicate_every_command_with_the_same_revisions() {
    let cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    let leader = cluster.leader().await;
    assert!((1..=3).contains(&leader));

    let r1 = cluster.put("a", "1").await;
    let r2 = cluster.put("b", "2").await;
    assert_eq!(r2, r1 + 1, "one revision per put");

    // A txn: create `c` only if absent, twice; the second fails its compare and writes nothing.
    let create = Txn {
        compares: vec![Compare::key(
            b"c",
            CompareOp::Equal,
            CompareTarget::Version(0),
        )],
        success: vec![TxnOp::Put {
            key: b"c".to_vec(),
            value: b"3".to_vec(),
            lease: 0,
        }],
        failure: vec![],
    };
    let (first, _) = cluster.write(Command::Txn(create.clone())).await;
    let Response::Txn(first) = first else {
        panic!("txn answered {first:?}")
    };
    assert!(first.succeeded);
    assert_eq!(first.revision, r2 + 1);
    let (second, _) = cluster.write(Command::Txn(create)).await;
    let Response::Txn(second) = second else {
        panic!("txn answered {second:?}")
    };
    assert!(!second.succeeded);
    assert_eq!(second.revision, r2 + 1, "a failed compare commits nothing");

    // Leases: grant with the proposer's id, attach a key, revoke (deletes it).
    let (granted, _) = cluster
        .write(Command::LeaseGrant {
            id: 77,
            ttl_ms: 60_000,
        })
        .await;
    assert_eq!(granted, Response::LeaseGranted { id: 77 });
    let (again, _) = cluster
        .write(Command::LeaseGrant {
            id: 77,
            ttl_ms: 60_000,
        })
        .await;
    assert_eq!(again, Response::Rejected(Rejection::LeaseExists { id: 77 }));
    let (leased, _) = cluster.write(put("session", "x", 77)).await;
    assert!(matches!(leased, Response::Put { .. }));
    let (missing, _) = cluster.write(put("orphan", "y", 99)).await;
    assert_eq!(
        missing,
        Response::Rejected(Rejection::LeaseNotFound { id: 99 })
    );
    let (revoked, _) = cluster.write(Command::LeaseRevoke { id: 77 }).await;
    assert!(matches!(revoked, Response::LeaseRevoked { .. }));

    // Delete a range, then compact history.
    for i in 0..5 {
        cluster.put(&format!("r/{i}"), "v").await;
    }
    let (deleted, _) = cluster
        .write(Command::DeleteRange(KeyRange::new(
            Bound::Included(b"r/1".to_vec()),
            Bound::Excluded(b"r/4".to_vec()),
        )))
        .await;
    let Response::DeleteRange { revision, deleted } = deleted else {
        panic!("delete range answered {deleted:?}")
    };
    assert_eq!(deleted, 3);
    let (compacted, _) = cluster.write(Command::Compact { revision }).await;
    assert_eq!(compacted, Response::Compacted { revision });

    cluster.settle().await;
    assert_same_state(&cluster, leader);
    let (rows, last_revision) = dump(&cluster.nodes[&leader].db());
    let keys: Vec<&[u8]> = rows.iter().map(|r| r.0.as_slice()).collect();
    assert_eq!(keys, vec![&b"a"[..], b"b", b"c", b"r/0", b"r/4"]);
    assert_eq!(last_revision, revision);
    for node in cluster.nodes.values() {
        assert_eq!(node.db().history_horizon(), revision);
        assert!(node.db().leases().expect("leases").is_empty());
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_write_through_the_leader_is_readable_on_followers_after_apply() {
    let cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    let refused = cluster.nodes[&follower].write(put("k", "v", 0)).await;
    assert!(
        matches!(refused, Err(kvstore_raft::Error::NotLeader { leader: Some(l) }) if l == leader),
        "a follower must refuse a write and name the leader: {refused:?}"
    );
    let (response, index) = cluster.write(put("k", "v", 0)).await;
    let Response::Put { revision } = response else {
        panic!("put answered {response:?}")
    };
    cluster.wait_applied(index).await;
    for (id, node) in &cluster.nodes {
        let got = node.db().get_versioned(b"k").expect("get");
        let got = got.unwrap_or_else(|| panic!("member {id} (leader {leader}) lacks k"));
        assert_eq!((got.value.as_slice(), got.revision), (&b"v"[..], revision));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn killing_the_leader_elects_another_and_writes_continue() {
    let mut cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    for i in 0..10 {
        cluster.put(&format!("k{i}"), "before").await;
    }
    let old = cluster.leader().await;
    cluster.kill(old).await;
    let new = cluster.leader().await;
    assert_ne!(new, old);
    let mut last = 0;
    for i in 0..10 {
        last = cluster.put(&format!("k{i}"), "after").await;
    }
    cluster.settle().await;
    assert_same_state(&cluster, new);
    let (rows, last_revision) = dump(&cluster.nodes[&new].db());
    assert_eq!(last_revision, last);
    assert_eq!(last, 20, "ten puts before, ten after, one revision each");
    assert!(rows.iter().all(|r| r.1 == b"after" && r.4 == 2));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn leases_expire_only_by_the_leaders_proposed_revocation() {
    let cluster = Cluster::new(3, config(SnapshotPolicy::Never, 1000)).await;
    cluster
        .write(Command::LeaseGrant {
            id: 9,
            ttl_ms: 1_000,
        })
        .await;
    cluster.write(put("session", "x", 9)).await;
    cluster.settle().await;
    cluster.clock.advance(5_000);
    // Past the deadline on every member's clock, yet no member revoked it by itself.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for node in cluster.nodes.values() {
        assert_eq!(node.db().leases().expect("leases"), vec![9]);
    }
    let leader = cluster.leader().await;
    for node in cluster.nodes.values().filter(|n| n.id() != leader) {
        let proposed = node.propose_lease_expiries().await.expect("propose");
        assert!(
            proposed.is_empty(),
            "follower {} proposed an expiry",
            node.id()
        );
    }
    let proposed = cluster.nodes[&leader]
        .propose_lease_expiries()
        .await
        .expect("propose");
    assert_eq!(proposed, vec![9]);
    let leader = cluster.leader().await;
    cluster.settle().await;
    assert_same_state(&cluster, leader);
    for node in cluster.nodes.values() {
        assert!(node.db().leases().expect("leases").is_empty());
        assert_eq!(node.db().get(b"session").expect("get"), None);
    }
}
