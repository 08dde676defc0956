//! Three `kvstore serve --initial-cluster ...` processes on loopback, driven by etcdctl 3.4:
//! a write on any member is read on every member (linearizable reads through followers), the
//! members list each other, endpoint status agrees on the leader, leases granted through a
//! follower are revoked everywhere; SIGKILL of the leader elects another and writes go on; the
//! killed member restarts and catches up. Negative control: `tests/serve_cluster_sabotage.rs`.

use std::process::Command;
use std::time::{Duration, Instant};

mod cluster;
mod net;

use cluster::{Cluster, PATIENCE, read_everywhere, value};

#[test]
fn three_members_replicate_and_survive_the_leader_killed() {
    let mut cluster = Cluster::start(3, None);
    // A linearizable read on every member sees a write acknowledged by any of them.
    for writer in 0..3 {
        read_everywhere(&cluster, writer, "greeting", "hello")
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    // Writes through each member get one revision sequence: the header revisions agree.
    cluster.etcdctl_ok(1, &["put", "k1", "v1"]);
    cluster.etcdctl_ok(2, &["put", "k2", "v2"]);
    let revisions: Vec<String> = (0..3)
        .map(|i| {
            let json = cluster.etcdctl_ok(i, &["get", "k", "--prefix", "-w", "json"]);
            let at = json.find("\"revision\":").expect("revision") + 11;
            json[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })
        .collect();
    assert_eq!(revisions, vec!["6".to_owned(); 3], "{}", cluster.logs());
    // Every member lists the three, by name and peer URL.
    let list = cluster.etcdctl_ok(2, &["member", "list"]);
    for member in &cluster.members {
        assert!(
            list.contains(&format!(
                "{}, http://127.0.0.1:{}",
                member.name, member.peer_port
            )),
            "{list}"
        );
    }
    // A lease granted through a follower, a key on it, revoked through another member.
    let leader = cluster.leader(&[0, 1, 2]);
    let follower = (leader + 1) % 3;
    let granted = cluster.etcdctl_ok(follower, &["lease", "grant", "60"]);
    let lease = granted
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_owned();
    cluster.etcdctl_ok(follower, &["put", "leased", "x", "--lease", &lease]);
    assert_eq!(value(&cluster, leader, "leased", false), "x");
    let ttl = cluster.etcdctl_ok(follower, &["lease", "keep-alive", "--once", &lease]);
    assert!(ttl.contains("TTL(60)"), "{ttl}");
    cluster.etcdctl_ok((leader + 2) % 3, &["lease", "revoke", &lease]);
    for i in 0..3 {
        assert_eq!(value(&cluster, i, "leased", false), "", "member {i}");
    }

    // The leader killed: the two others elect one and go on.
    cluster.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.etcdctl_ok(survivors[0], &["put", "after", "kill"]);
    assert_eq!(value(&cluster, survivors[1], "after", false), "kill");
    let new_leader = cluster.leader(&survivors);
    assert_ne!(new_leader, leader);

    // The killed member restarts and catches up with what it missed.
    cluster.spawn(leader);
    let deadline = Instant::now() + PATIENCE;
    while value(&cluster, leader, "after", true) != "kill" {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(value(&cluster, leader, "greeting", true), "hello");
}

#[test]
fn serve_refuses_a_bad_initial_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kvstore"))
            .arg("--db")
            .arg(dir.path().join("db"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("runs")
    };
    for (args, says) in [
        (
            vec!["--name", "n9", "--initial-cluster", "n1=http://127.0.0.1:1"],
            "`n9` is not in --initial-cluster",
        ),
        (
            vec!["--name", "n1", "--initial-cluster", "n1=127.0.0.1:1"],
            "is not http://host:port",
        ),
        (vec!["--listen-peer", "127.0.0.1:0"], "--initial-cluster"),
    ] {
        let out = serve(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
