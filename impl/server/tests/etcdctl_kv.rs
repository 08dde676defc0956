//! etcdctl 3.4 against `kvstore-server`: put, get (prefix, from-key, limit, rev, sort,
//! keys-only, JSON; etcdctl 3.4 has no --count-only, see grpc_client.rs), del (prefix, prev-kv), txn (etcdctl's stdin syntax),
//! compaction, and etcd's errors for bad requests.

mod common;

use common::TestServer;
use serde_json::Value;

/// The revision in a JSON response's header.
fn revision(response: &Value) -> i64 {
    response["header"]["revision"]
        .as_i64()
        .expect("a header revision")
}

/// The keys of a JSON range response's kvs, decoded.
fn keys(response: &Value) -> Vec<String> {
    decoded(response, "key")
}

fn values(response: &Value) -> Vec<String> {
    decoded(response, "value")
}

fn decoded(response: &Value, field: &str) -> Vec<String> {
    response["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| kv[field].as_str().map_or_else(String::new, base64_decode))
                .collect()
        })
        .unwrap_or_default()
}

/// Standard base64 (etcdctl's JSON encoding of bytes).
fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn put_and_get_like_etcd() {
    let server = TestServer::start();
    let ctl = server.ctl();
    // An empty store is at revision 1, as etcd's.
    assert_eq!(revision(&ctl.json(&["get", "nothing"])), 1);
    assert_eq!(ctl.ok(&["put", "k1", "v1"]), "OK\n");
    assert_eq!(ctl.ok(&["get", "k1"]), "k1\nv1\n");
    assert_eq!(ctl.ok(&["get", "missing"]), "");
    ctl.ok(&["put", "k2", "v2"]);
    ctl.ok(&["put", "k3", "v3"]);
    ctl.ok(&["put", "k1", "v1b"]);
    ctl.ok(&["put", "other", "x"]);

    let all = ctl.json(&["get", "k", "--prefix"]);
    assert_eq!(revision(&all), 6);
    assert_eq!(keys(&all), ["k1", "k2", "k3"]);
    assert_eq!(values(&all), ["v1b", "v2", "v3"]);
    assert_eq!(all["count"], 3);
    let k1 = &all["kvs"][0];
    assert_eq!(
        (&k1["create_revision"], &k1["mod_revision"], &k1["version"]),
        (&Value::from(2), &Value::from(5), &Value::from(2))
    );

    let limited = ctl.json(&["get", "k", "--prefix", "--limit=2"]);
    assert_eq!(keys(&limited), ["k1", "k2"]);
    assert_eq!(limited["more"], true);
    assert_eq!(limited["count"], 3);

    // An older revision: k1 still at v1; the header is the current revision.
    let old = ctl.json(&["get", "k", "--prefix", "--rev=3"]);
    assert_eq!(values(&old), ["v1", "v2"]);
    assert_eq!(revision(&old), 6);

    let by_mod = ctl.json(&[
        "get",
        "k",
        "--prefix",
        "--sort-by=MODIFY",
        "--order=DESCEND",
    ]);
    assert_eq!(keys(&by_mod), ["k1", "k3", "k2"]);
    let by_value = ctl.ok(&["get", "k", "--prefix", "--sort-by=VALUE", "--order=ASCEND"]);
    assert_eq!(by_value, "k1\nv1b\nk2\nv2\nk3\nv3\n");

    assert_eq!(
        ctl.ok(&["get", "k", "--prefix", "--keys-only"]),
        "k1\n\nk2\n\nk3\n\n"
    );
    assert_eq!(
        ctl.ok(&["get", "k2", "--from-key", "--keys-only"]),
        "k2\n\nk3\n\nother\n\n"
    );
    assert_eq!(ctl.ok(&["get", "k1", "k3", "--keys-only"]), "k1\n\nk2\n\n");
    assert_eq!(
        ctl.ok(&["get", "", "--prefix", "--keys-only"]),
        "k1\n\nk2\n\nk3\n\nother\n\n"
    );
}

#[test]
fn put_flags() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "k", "v1"]);
    let put = ctl.json(&["put", "k", "v2", "--prev-kv"]);
    assert_eq!(revision(&put), 3);
    assert_eq!(put["prev_kv"]["value"], "djE=");
    // --ignore-value keeps the value, writes a new version.
    assert_eq!(ctl.ok(&["put", "k", "--ignore-value"]), "OK\n");
    let got = ctl.json(&["get", "k"]);
    assert_eq!(values(&got), ["v2"]);
    assert_eq!(got["kvs"][0]["version"], 3);
    let missing = ctl.fails(&["put", "absent", "--ignore-value"]);
    assert!(missing.contains("etcdserver: key not found"), "{missing}");
}

#[test]
fn delete_like_etcd() {
    let server = TestServer::start();
    let ctl = server.ctl();
    for key in ["a1", "a2", "a3", "b1"] {
        ctl.ok(&["put", key, "v"]);
    }
    assert_eq!(ctl.ok(&["del", "a2"]), "1\n");
    assert_eq!(ctl.ok(&["del", "nothing"]), "0\n");
    // Deleting nothing takes no revision.
    assert_eq!(revision(&ctl.json(&["get", "x"])), 6);
    let deleted = ctl.json(&["del", "a", "--prefix", "--prev-kv"]);
    assert_eq!(deleted["deleted"], 2);
    assert_eq!(
        keys(&serde_json::json!({"kvs": deleted["prev_kvs"]})),
        ["a1", "a3"]
    );
    assert_eq!(revision(&deleted), 7);
    assert_eq!(ctl.ok(&["get", "", "--prefix", "--keys-only"]), "b1\n\n");
    assert_eq!(ctl.ok(&["del", "a", "--from-key"]), "1\n");
}

#[test]
fn txn_from_stdin() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "key1", "1"]);
    // etcdctl's non-interactive txn: compares, blank line, success ops, blank line, failure ops.
    let succeeded = ctl.run_stdin(
        &["txn"],
        "mod(\"key1\") > \"0\"\nval(\"key1\") = \"1\"\n\nput key1 \"overwrote\"\nget key1\n\nput key2 \"failure\"\n\n",
    );
    assert!(succeeded.status.success(), "{succeeded:?}");
    assert_eq!(
        String::from_utf8_lossy(&succeeded.stdout),
        "SUCCESS\n\nOK\n\nkey1\noverwrote\n"
    );
    let failed = ctl.run_stdin(
        &["-w", "json", "txn"],
        "ver(\"key1\") = \"1\"\n\nput key2 \"success\"\n\nput key2 \"failure\"\ndel key1\n\n",
    );
    assert!(failed.status.success(), "{failed:?}");
    let failed: Value = serde_json::from_slice(&failed.stdout).expect("json");
    assert!(failed.get("succeeded").is_none());
    assert_eq!(revision(&failed), 4);
    assert_eq!(ctl.ok(&["get", "key2"]), "key2\nfailure\n");
    assert_eq!(ctl.ok(&["get", "key1"]), "");
    // A compare on a missing key: version 0; create("absent") = "0" holds.
    let created = ctl.run_stdin(
        &["txn"],
        "create(\"absent\") = \"0\"\n\nput absent \"now\"\n\n\n",
    );
    assert_eq!(String::from_utf8_lossy(&created.stdout), "SUCCESS\n\nOK\n");
}

#[test]
fn compaction_like_etcd() {
    let server = TestServer::start();
    let ctl = server.ctl();
    for i in 0..5 {
        ctl.ok(&["put", "k", &format!("v{i}")]);
    }
    assert_eq!(ctl.ok(&["compaction", "4"]), "compacted revision 4\n");
    assert_eq!(ctl.ok(&["get", "k", "--rev=4"]), "k\nv2\n");
    let compacted = ctl.fails(&["get", "k", "--rev=3"]);
    assert!(
        compacted.contains("etcdserver: mvcc: required revision has been compacted"),
        "{compacted}"
    );
    let again = ctl.fails(&["compaction", "4"]);
    assert!(
        again.contains("required revision has been compacted"),
        "{again}"
    );
    let future = ctl.fails(&["get", "k", "--rev=100"]);
    assert!(
        future.contains("etcdserver: mvcc: required revision is a future revision"),
        "{future}"
    );
}

#[test]
fn etcds_errors_for_bad_requests() {
    let server = TestServer::start();
    let ctl = server.ctl();
    // More than 128 ops in a txn.
    let many: String = (0..129).map(|i| format!("put k{i} v\n")).collect();
    let too_many = ctl.run_stdin(&["txn"], &format!("\n{many}\n\n"));
    let stderr = String::from_utf8_lossy(&too_many.stderr);
    assert!(
        stderr.contains("etcdserver: too many operations in txn request"),
        "{stderr}"
    );
    // A value over the 1.5 MiB request limit.
    let big = "x".repeat(1536 * 1024 + 1);
    let too_large = ctl.run_stdin(&["put", "big"], &big);
    let stderr = String::from_utf8_lossy(&too_large.stderr);
    assert!(
        stderr.contains("etcdserver: request is too large"),
        "{stderr}"
    );
    // A lease that was never granted.
    let no_lease = ctl.fails(&["put", "k", "v", "--lease=1234"]);
    assert!(
        no_lease.contains("etcdserver: requested lease not found"),
        "{no_lease}"
    );
    // Nothing was written by any of them.
    assert_eq!(revision(&ctl.json(&["get", "k"])), 1);
}
