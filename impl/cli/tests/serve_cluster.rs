//! Three `kvstore serve --initial-cluster ...` processes on loopback, driven by etcdctl 3.4:
//! a write on any member is read on every member (linearizable reads through followers), the
//! members list each other, endpoint status agrees on the leader, leases granted through a
//! follower are revoked everywhere; SIGKILL of the leader elects another and writes go on; the
//! killed member restarts and catches up; members are added (voters and learners), promoted and
//! removed with etcdctl while a client writes; a cluster over mutual peer TLS replicates, elects
//! and refuses peer connections without its CA's certificate. Negative control:
//! `tests/serve_cluster_sabotage.rs`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// etcd's membership workflow while a client writes: a voter added with `etcdctl member add`
/// and started with `--initial-cluster-state existing` catches up; a learner added, started and
/// promoted; etcd's refusals; a follower and then the leader removed (each process ends by
/// itself); every acknowledged write is on every remaining member.
#[test]
fn members_are_added_promoted_and_removed_while_a_client_writes() {
    let mut cluster = Cluster::start(3, None);
    cluster.etcdctl_ok(0, &["put", "before", "add"]);
    // A client writing through the three first members all along (etcdctl's client moves to
    // another endpoint when the one it uses is removed).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let endpoint = (0..3)
            .map(|i| cluster.endpoint(i))
            .collect::<Vec<_>>()
            .join(",");
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("w{n}");
                let put = Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .args(["--endpoints", &endpoint, "--command-timeout=5s"])
                    .args(["put", &key, "v"])
                    .output()
                    .expect("etcdctl runs");
                if put.status.success() {
                    acknowledged.push(key);
                }
            }
            acknowledged
        })
    };

    // A voter joins through n2 and catches up, including what was written before it joined.
    let n4 = cluster.join("n4", 1, false);
    let deadline = Instant::now() + PATIENCE;
    while value(&cluster, n4, "before", true) != "add" {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A learner joins through n4, and is promoted once in sync.
    let n5 = cluster.join("n5", n4, true);
    let deadline = Instant::now() + PATIENCE;
    let n5_id = loop {
        let list = cluster.etcdctl_ok(0, &["member", "list", "-w", "json"]);
        if let Some(id) = member_id(&list, "n5") {
            break id;
        }
        assert!(Instant::now() < deadline, "n5 never started: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = cluster.etcdctl(0, &["member", "promote", &n5_id]);
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("in sync with leader"), "{err}");
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every member lists five started voters with their client URLs.
    let table = cluster.etcdctl_ok(n5, &["member", "list"]);
    for member in &cluster.members {
        let row = format!(
            "started, {}, http://127.0.0.1:{}, http://127.0.0.1:{}, false",
            member.name, member.peer_port, member.client_port
        );
        assert!(table.contains(&row), "{row} in\n{table}");
    }
    // etcd's refusals, word for word (the last for two peer URLs, which etcd takes and kvstore
    // does not: a member has one).
    let taken = format!("http://127.0.0.1:{}", cluster.members[0].peer_port);
    for (args, error) in [
        (
            vec!["member", "add", "again", "--peer-urls", &taken],
            "etcdserver: Peer URLs already exists",
        ),
        (
            vec!["member", "remove", "1234"],
            "etcdserver: member not found",
        ),
        (
            vec!["member", "promote", &n5_id],
            "etcdserver: can only promote a learner member",
        ),
        (
            vec![
                "member",
                "add",
                "bad",
                "--peer-urls",
                "http://127.0.0.1:1,http://127.0.0.1:2",
            ],
            "etcdserver: given member URLs are invalid",
        ),
    ] {
        let out = cluster.etcdctl(1, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(error),
            "{args:?}: {err}"
        );
    }

    // A follower removed through itself, then the leader through a third member: each ends.
    let leader = cluster.leader(&[0, 1, 2, n4, n5]);
    let follower = [0, 1, n4].into_iter().find(|&i| i != leader).expect("one");
    let other = [0, 1, 2, n4]
        .into_iter()
        .find(|&i| i != leader && i != follower)
        .expect("one");
    for (removed, via) in [(follower, follower), (leader, other)] {
        let list = cluster.etcdctl_ok(via, &["member", "list", "-w", "json"]);
        let id = member_id(&list, &cluster.members[removed].name).expect("listed");
        cluster.etcdctl_ok(via, &["member", "remove", &id]);
        assert_eq!(cluster.wait_exit(removed), Some(0), "{}", cluster.logs());
    }
    cluster.etcdctl_ok(other, &["put", "after", "remove"]);
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.join().expect("writer");
    assert!(!acknowledged.is_empty());
    let remaining: Vec<usize> = (0..cluster.members.len())
        .filter(|&i| i != leader && i != follower)
        .collect();
    assert_eq!(remaining.len(), 3);
    for &i in &remaining {
        let keys = cluster.etcdctl_ok(i, &["get", "w", "--prefix", "--keys-only"]);
        for key in &acknowledged {
            assert!(
                keys.lines().any(|line| line == key),
                "{key} acknowledged, missing on {}",
                cluster.members[i].name
            );
        }
        assert_eq!(value(&cluster, i, "after", false), "remove");
    }
}

/// The hex id of the member named `name` in `member list -w json` output.
fn member_id(json: &str, name: &str) -> Option<String> {
    let at = json.find(&format!("\"name\":\"{name}\""))?;
    let start = json[..at].rfind("\"ID\":")? + 5;
    let id: u64 = json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some(format!("{id:x}"))
}

#[test]
fn members_talk_over_mutual_tls_and_their_peer_ports_take_no_other_client() {
    let mut cluster = Cluster::start_with_peer_tls(3);
    for writer in 0..3 {
        read_everywhere(&cluster, writer, "over-tls", &format!("from-{writer}"))
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    let list = cluster.etcdctl_ok(0, &["member", "list"]);
    for member in &cluster.members {
        assert!(list.contains(&member.peer_url()), "{list}");
    }

    // A peer port completes a handshake only with a client certificate of the peers' CA.
    let certs = cluster.peer_tls.as_ref().expect("peer TLS");
    let port = cluster.members[0].peer_port;
    let handshake = |client: Option<&str>| {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "--max-time", "5", "--cacert"])
            .arg(certs.path("ca.pem"));
        if let Some(name) = client {
            curl.arg("--cert")
                .arg(certs.path(&format!("{name}.pem")))
                .arg("--key")
                .arg(certs.path(&format!("{name}-key.pem")));
        }
        let out = curl
            .arg(format!("https://127.0.0.1:{port}/"))
            .output()
            .expect("curl runs (install curl)");
        out.status.code()
    };
    assert_eq!(handshake(Some("peer")), Some(0), "the peers' certificate");
    assert_ne!(handshake(None), Some(0), "no client certificate");
    assert_ne!(
        handshake(Some("other-peer")),
        Some(0),
        "another CA's certificate"
    );
    let plain = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl runs");
    assert_ne!(plain.status.code(), Some(0), "plain text on the peer port");

    // The leader killed, the other two elect one over TLS and go on.
    let leader = cluster.leader(&[0, 1, 2]);
    cluster.kill(leader);
    let live: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.etcdctl_ok(live[0], &["put", "after", "failover"]);
    assert_eq!(value(&cluster, live[1], "after", false), "failover");
}

#[test]
fn serve_refuses_unusable_peer_tls_files() {
    let certs = cluster::certs::Certs::new();
    let not_a_ca = certs.dir.path().join("not-a-ca.pem");
    std::fs::write(&not_a_ca, "no certificate here\n").expect("write");
    let not_a_ca = not_a_ca.display().to_string();
    let cases = [
        // The certificate given as its own key.
        (
            ("peer.pem", certs.path("peer.pem"), certs.path("ca.pem")),
            "the peer TLS files make no usable client",
        ),
        // A CA bundle without a certificate: it would verify no peer.
        (
            ("peer.pem", certs.path("peer-key.pem"), not_a_ca),
            "cannot read the TLS peer CA",
        ),
    ];
    for ((cert, key, ca), says) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        // Within 20 s: a server that took the files would serve until killed (exit 124).
        let out = Command::new("timeout")
            .arg("20")
            .arg(env!("CARGO_BIN_EXE_kvstore"))
            .arg("--db")
            .arg(dir.path().join("db"))
            .args(["serve", "--listen", "127.0.0.1:0", "--name", "n1"])
            .args([
                "--initial-cluster",
                "n1=https://127.0.0.1:1",
                "--listen-peer",
            ])
            .arg("127.0.0.1:0")
            .arg("--peer-cert-file")
            .arg(certs.path(cert))
            .args(["--peer-key-file", &key, "--peer-trusted-ca-file", &ca])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{says}: {stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
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
        (
            vec![
                "--name",
                "n1",
                "--initial-cluster",
                "n1=https://127.0.0.1:1",
            ],
            "an https:// peer URL needs --peer-cert-file",
        ),
        (
            vec![
                "--name",
                "n1",
                "--initial-cluster",
                "n1=http://127.0.0.1:1",
                "--peer-cert-file",
                "c.pem",
                "--peer-key-file",
                "k.pem",
                "--peer-trusted-ca-file",
                "ca.pem",
            ],
            "this member's peer URL in --initial-cluster is not https://",
        ),
        (
            vec![
                "--name",
                "n1",
                "--initial-cluster",
                "n1=https://127.0.0.1:1",
                "--peer-cert-file",
                "c.pem",
            ],
            "--peer-key-file",
        ),
    ] {
        let out = serve(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
