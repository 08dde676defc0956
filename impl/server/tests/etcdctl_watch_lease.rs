//! etcdctl 3.4 against `kvstore-server`: watch (prefix, from a revision, prev-kv, a compacted
//! revision, live events), the lease commands (grant, put --lease, timetolive --keys, list,
//! keep-alive once and streaming, revoke, expiry), and a watch session compared with etcd's.

mod common;

use std::time::{Duration, Instant};

use common::{Etcd, TestServer};

#[test]
fn watch_history_then_live() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "k1", "v1"]);
    ctl.ok(&["put", "other", "x"]);
    ctl.ok(&["put", "k2", "v2"]);
    let mut watch = ctl.spawn_lines(&["watch", "--prefix", "k", "--rev=2"]);
    assert_eq!(watch.take(6), ["PUT", "k1", "v1", "PUT", "k2", "v2"]);
    ctl.ok(&["del", "k1"]);
    ctl.ok(&["put", "nope", "x"]);
    ctl.ok(&["put", "k3", "v3"]);
    assert_eq!(watch.take(6), ["DELETE", "k1", "", "PUT", "k3", "v3"]);
}

#[test]
fn watch_prev_kv_and_a_key() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "k", "old"]);
    let mut watch = ctl.spawn_lines(&["watch", "k", "--prev-kv", "--rev=3"]);
    ctl.ok(&["put", "k", "new"]);
    ctl.ok(&["put", "k2", "not watched"]);
    ctl.ok(&["del", "k"]);
    // Each event: its type, the previous key-value, then the new one.
    assert_eq!(
        watch.take(10),
        ["PUT", "k", "old", "k", "new", "DELETE", "k", "new", "k", ""]
    );
}

#[test]
fn watch_of_a_compacted_revision_is_canceled() {
    let server = TestServer::start();
    let ctl = server.ctl();
    for i in 0..4 {
        ctl.ok(&["put", "k", &format!("v{i}")]);
    }
    ctl.ok(&["compaction", "4"]);
    let watch = ctl.spawn_lines(&["watch", "k", "--rev=2"]);
    let (status, stderr) = watch.exit();
    assert!(!status.success());
    assert!(
        stderr.starts_with(
            "watch was canceled (etcdserver: mvcc: required revision has been compacted)\n"
        ),
        "{stderr}"
    );
}

#[test]
fn watch_from_now_sees_only_later_writes() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "k", "before"]);
    let mut watch = ctl.spawn_lines(&["watch", "k"]);
    // The watch starts when etcdctl's create request arrives: write until it sees one.
    let deadline = Instant::now() + common::WAIT_MAX;
    let mut seen = Vec::new();
    for i in 0.. {
        assert!(Instant::now() < deadline, "no event in time");
        ctl.ok(&["put", "k", &format!("after{i}")]);
        seen = watch.quiet_for(Duration::from_millis(200));
        if !seen.is_empty() {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("PUT"));
    assert!(!seen.iter().any(|l| l == "before"), "{seen:?}");
}

#[test]
fn lease_commands() {
    let server = TestServer::start();
    let ctl = server.ctl();
    let granted = ctl.ok(&["lease", "grant", "60"]);
    let id = granted.split_whitespace().nth(1).expect("an id").to_owned();
    assert_eq!(granted, format!("lease {id} granted with TTL(60s)\n"));
    ctl.ok(&["put", "a", "1", &format!("--lease={id}")]);
    ctl.ok(&["put", "b", "2", &format!("--lease={id}")]);
    let ttl = ctl.ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(60s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.ends_with("attached keys([a b])\n"), "{ttl}");
    assert_eq!(
        ctl.ok(&["lease", "list"]),
        format!("found 1 leases\n{id}\n")
    );
    assert_eq!(
        ctl.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(60)\n")
    );
    assert_eq!(
        ctl.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(ctl.ok(&["get", "", "--prefix"]), "");
    assert_eq!(
        ctl.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    let revoked = ctl.fails(&["lease", "revoke", &id]);
    assert!(
        revoked.contains("etcdserver: requested lease not found"),
        "{revoked}"
    );
}

#[test]
fn keep_alive_stream_and_expiry() {
    let server = TestServer::start();
    let ctl = server.ctl();
    let kept = ctl.ok(&["lease", "grant", "3"]);
    let kept = kept.split_whitespace().nth(1).expect("an id").to_owned();
    let expiring = ctl.ok(&["lease", "grant", "2"]);
    let expiring = expiring
        .split_whitespace()
        .nth(1)
        .expect("an id")
        .to_owned();
    ctl.ok(&["put", "kept", "v", &format!("--lease={kept}")]);
    ctl.ok(&["put", "expiring", "v", &format!("--lease={expiring}")]);
    // etcdctl renews every TTL/3 over one stream.
    let mut keep_alive = ctl.spawn_lines(&["lease", "keep-alive", &kept]);
    let line = format!("lease {kept} keepalived with TTL(3)");
    assert_eq!(keep_alive.take(3), [line.clone(), line.clone(), line]);
    let deadline = Instant::now() + common::WAIT_MAX;
    while !ctl.ok(&["get", "expiring"]).is_empty() {
        assert!(Instant::now() < deadline, "the lease did not expire");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The kept lease outlived its TTL through the keep-alives.
    assert_eq!(ctl.ok(&["get", "kept"]), "kept\nv\n");
}

/// A watch over history and live writes, against etcd and kvstore: the same JSON lines (each
/// line one watch response), cluster and member ids and the raft term masked.
#[test]
fn watch_session_matches_etcd() {
    fn session(ctl: &common::Ctl) -> Vec<String> {
        ctl.ok(&["put", "a", "1"]);
        ctl.ok(&["put", "b", "2"]);
        ctl.run_stdin(&["txn"], "\n\nput c 3\nput d 4\ndel a\n\n");
        ctl.ok(&["del", "b", "--prefix"]);
        let mut watch = ctl.spawn_lines(&[
            "watch",
            "-w",
            "json",
            "--prefix",
            "",
            "--rev=2",
            "--prev-kv",
        ]);
        let mut lines = watch.take(1);
        ctl.ok(&["put", "c", "33"]);
        lines.extend(watch.take(1));
        ctl.ok(&["del", "", "--prefix"]);
        lines.extend(watch.take(1));
        lines
            .into_iter()
            .map(|line| {
                let mut value: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if let Some(header) = value.get_mut("Header").and_then(|h| h.as_object_mut()) {
                    for masked in ["cluster_id", "member_id", "raft_term"] {
                        header.remove(masked);
                    }
                }
                value.to_string()
            })
            .collect()
    }
    let etcd = Etcd::start();
    let server = TestServer::start();
    assert_eq!(session(&server.ctl()), session(&etcd.ctl()));
}
