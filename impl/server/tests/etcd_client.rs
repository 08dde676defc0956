//! A real client nobody here wrote: the `etcd-client` crate (tonic 0.14, as ours) against
//! kvstore and against etcd 3.4 itself. Each session runs the same requests on both, asserts
//! the values it expects from each, and records a transcript with the ids a server picks for
//! itself (lease ids, member ids, cluster ids, raft terms) left out: the two transcripts must be
//! equal line for line.
//!
//! Sessions: KV (put, get with prefix, limit, revision, sort, keys-only, count-only; delete
//! with prev_kv; txn compares on value, version, create and mod revision, both branches;
//! compaction and the compacted read), Watch (prefix, start revision, prev_kv, cancel, a
//! compacted start), Lease (grant, keep-alive, time-to-live, leases, revoke, expiry), the
//! Maintenance and Cluster calls (status, snapshot, member list) and Auth (users, roles,
//! permissions, auth enable, a user session through `ConnectOptions::with_user`, denials).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{Etcd, TestServer, WAIT_MAX};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, Error, EventType, GetOptions,
    KeyValue, LeaseTimeToLiveOptions, Permission, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    TxnOpResponse, WatchOptions, WatchStream,
};
use sha2::{Digest, Sha256};

/// A session's record of what a server answered, ids left out.
type Transcript = Vec<String>;

/// Runs `session` against a fresh kvstore and a fresh etcd 3.4 and requires equal transcripts.
fn same_on_both<F, Fut>(session: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = TestServer::start();
    let ours = runtime.block_on(session(server.endpoint()));
    let etcd = Etcd::start();
    let theirs = runtime.block_on(session(etcd.endpoint.clone()));
    assert!(!ours.is_empty(), "the session recorded nothing");
    for (line, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a, b,
            "line {line}: kvstore (left) and etcd 3.4 (right) differ"
        );
    }
    assert_eq!(ours.len(), theirs.len(), "transcript lengths differ");
}

async fn connect(endpoint: &str) -> Client {
    Client::connect([endpoint], None).await.expect("connect")
}

/// A key-value as a line: key=value, create/mod revision, version, whether leased.
fn kv(kv: &KeyValue) -> String {
    format!(
        "{}={} c{} m{} v{}{}",
        String::from_utf8_lossy(kv.key()),
        String::from_utf8_lossy(kv.value()),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        if kv.lease() == 0 { "" } else { " leased" }
    )
}

fn kvs(list: &[KeyValue]) -> String {
    list.iter().map(kv).collect::<Vec<_>>().join(", ")
}

/// The gRPC code and message of a refused request (any other error fails the test).
fn refusal(e: Error) -> String {
    match e {
        Error::GRpcStatus(status) => format!("{:?}: {}", status.code(), status.message()),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

fn values(list: &[KeyValue]) -> Vec<&[u8]> {
    list.iter().map(KeyValue::value).collect()
}

#[test]
fn kv_session_matches_etcd() {
    same_on_both(|endpoint| async move {
        let mut c = connect(&endpoint).await;
        let mut t = Transcript::new();
        let mut revs = Vec::new();
        for (k, v) in [("a/1", "x"), ("a/2", "zz"), ("a/3", "y"), ("b/1", "1")] {
            let put = c.put(k, v, None).await.expect("put");
            revs.push(put.header().expect("header").revision());
        }
        // Every put is one revision, in order.
        assert!(revs.windows(2).all(|w| w[1] == w[0] + 1), "{revs:?}");
        t.push(format!("put revisions {revs:?}"));
        let put = c
            .put("a/1", "x2", Some(PutOptions::new().with_prev_key()))
            .await
            .expect("put");
        assert_eq!(put.prev_key().map(KeyValue::value), Some(&b"x"[..]));
        t.push(format!(
            "prev {}",
            put.prev_key().map(kv).unwrap_or_default()
        ));

        let all = c
            .get("a/", Some(GetOptions::new().with_prefix()))
            .await
            .expect("get");
        assert_eq!(values(all.kvs()), [&b"x2"[..], b"zz", b"y"]);
        assert_eq!((all.count(), all.more()), (3, false));
        t.push(format!("prefix {} count {}", kvs(all.kvs()), all.count()));

        let limited = c
            .get("a/", Some(GetOptions::new().with_prefix().with_limit(2)))
            .await
            .expect("get");
        assert_eq!(
            (limited.kvs().len(), limited.count(), limited.more()),
            (2, 3, true)
        );
        t.push(format!(
            "limit {} more {}",
            kvs(limited.kvs()),
            limited.more()
        ));

        let old = c
            .get("a/1", Some(GetOptions::new().with_revision(revs[0])))
            .await
            .expect("get");
        assert_eq!(values(old.kvs()), [&b"x"[..]]);
        t.push(format!("at {} {}", revs[0], kvs(old.kvs())));

        for (target, order) in [
            (SortTarget::Value, SortOrder::Descend),
            (SortTarget::Key, SortOrder::Descend),
            (SortTarget::Mod, SortOrder::Ascend),
            (SortTarget::Version, SortOrder::Descend),
        ] {
            let sorted = c
                .get(
                    "a/",
                    Some(GetOptions::new().with_prefix().with_sort(target, order)),
                )
                .await
                .expect("get");
            t.push(format!("sort {target:?} {order:?} {}", kvs(sorted.kvs())));
        }
        let by_value = c
            .get(
                "a/",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Value, SortOrder::Descend),
                ),
            )
            .await
            .expect("get");
        assert_eq!(values(by_value.kvs()), [&b"zz"[..], b"y", b"x2"]);

        let keys = c
            .get("a/", Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .expect("get");
        assert!(keys.kvs().iter().all(|kv| kv.value().is_empty()));
        assert_eq!(keys.kvs().len(), 3);
        t.push(format!("keys-only {}", kvs(keys.kvs())));
        let counted = c
            .get(
                "a/",
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .expect("get");
        assert_eq!((counted.kvs().len(), counted.count()), (0, 3));
        t.push(format!(
            "count-only {} {}",
            counted.count(),
            counted.kvs().len()
        ));

        let deleted = c
            .delete("a/2", Some(DeleteOptions::new().with_prev_key()))
            .await
            .expect("delete");
        assert_eq!(deleted.deleted(), 1);
        assert_eq!(values(deleted.prev_kvs()), [&b"zz"[..]]);
        t.push(format!(
            "deleted {} prev {}",
            deleted.deleted(),
            kvs(deleted.prev_kvs())
        ));
        let none = c.delete("a/2", None).await.expect("delete");
        assert_eq!(none.deleted(), 0);
        t.push(format!(
            "deleted again {} at {}",
            none.deleted(),
            none.header().expect("header").revision()
        ));

        txn_session(&mut c, &mut t).await;

        // Compaction: reads below it are refused, reads at it still answer.
        let head = c.get("b/1", None).await.expect("get");
        let head_rev = head.header().expect("header").revision();
        c.compact(revs[3], None).await.expect("compact");
        let refused = c
            .get("a/1", Some(GetOptions::new().with_revision(revs[0])))
            .await
            .expect_err("a read below the compaction is refused");
        t.push(format!("compacted read: {}", refusal(refused)));
        let kept = c
            .get(
                "a/",
                Some(GetOptions::new().with_prefix().with_revision(revs[3])),
            )
            .await
            .expect("a read at the compaction answers");
        assert_eq!(values(kept.kvs()), [&b"x"[..], b"zz", b"y"]);
        t.push(format!("at compaction {}", kvs(kept.kvs())));
        let again = c
            .compact(revs[2], None)
            .await
            .expect_err("compacted already");
        t.push(format!("compact again: {}", refusal(again)));
        let future = c.compact(head_rev + 100, None).await.expect_err("future");
        t.push(format!("compact future: {}", refusal(future)));
        let future_read = c
            .get("a/1", Some(GetOptions::new().with_revision(head_rev + 100)))
            .await
            .expect_err("future");
        t.push(format!("future read: {}", refusal(future_read)));
        t
    });
}

/// Txns on `b/1` (value 1, version 1): each compare kind, the success and the failure branch.
async fn txn_session(c: &mut Client, t: &mut Transcript) {
    let b1 = c.get("b/1", None).await.expect("get");
    let created = b1.kvs()[0].create_revision();
    let cases = [
        ("value", Compare::value("b/1", CompareOp::Equal, "1"), true),
        (
            "version",
            Compare::version("b/1", CompareOp::Greater, 5),
            false,
        ),
        (
            "create",
            Compare::create_revision("b/1", CompareOp::Equal, created),
            true,
        ),
        (
            "mod",
            Compare::mod_revision("b/1", CompareOp::Less, created),
            false,
        ),
        (
            "absent",
            Compare::version("b/none", CompareOp::Equal, 0),
            true,
        ),
    ];
    for (name, compare, expected) in cases {
        let txn = Txn::new()
            .when([compare])
            .and_then([
                TxnOp::put("b/1", format!("then-{name}"), None),
                TxnOp::get("b/", Some(GetOptions::new().with_prefix())),
            ])
            .or_else([
                TxnOp::get("b/1", None),
                TxnOp::delete("b/none", Some(DeleteOptions::new().with_prev_key())),
            ]);
        let response = c.txn(txn).await.expect("txn");
        assert_eq!(response.succeeded(), expected, "compare {name}");
        let mut line = format!(
            "txn {name} succeeded {} at {}:",
            response.succeeded(),
            response.header().expect("header").revision()
        );
        for op in response.op_responses() {
            line.push_str(&match op {
                TxnOpResponse::Put(p) => format!(" put {}", p.header().map_or(0, |h| h.revision())),
                TxnOpResponse::Get(g) => format!(" get [{}]", kvs(g.kvs())),
                TxnOpResponse::Delete(d) => format!(" delete {}", d.deleted()),
                TxnOpResponse::Txn(_) => " txn".to_owned(),
            });
        }
        t.push(line);
    }
    let b1 = c.get("b/1", None).await.expect("get");
    // Three successful branches each put once: version 1 + 3.
    assert_eq!(b1.kvs()[0].value(), b"then-absent");
    assert_eq!(b1.kvs()[0].version(), 4);
    t.push(format!("after txns {}", kvs(b1.kvs())));
}

/// The events of `stream` until `n` have come (waiting at most [`WAIT_MAX`]), as lines.
async fn events(stream: &mut WatchStream, n: usize, t: &mut Transcript) {
    let mut seen = 0;
    while seen < n {
        let message = tokio::time::timeout(WAIT_MAX, stream.message())
            .await
            .expect("events arrive in time")
            .expect("watch stream")
            .expect("stream open");
        for e in message.events() {
            let kind = match e.event_type() {
                EventType::Put => "PUT",
                EventType::Delete => "DELETE",
            };
            let prev = e
                .prev_kv()
                .map_or_else(String::new, |p| format!(" prev {}", kv(p)));
            t.push(format!("event {kind} {}{prev}", kv(e.kv().expect("kv"))));
            seen += 1;
        }
    }
    assert_eq!(seen, n, "more events than expected in one response");
}

#[test]
fn watch_session_matches_etcd() {
    same_on_both(|endpoint| async move {
        let mut c = connect(&endpoint).await;
        let mut t = Transcript::new();
        let first = c.put("w/a", "1", None).await.expect("put");
        let first_rev = first.header().expect("header").revision();
        c.put("other", "x", None).await.expect("put");
        c.put("w/b", "2", None).await.expect("put");
        // History from the first put, with prev_kv; then live events.
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(first_rev)
            .with_prev_key();
        let mut stream = c.watch("w/", Some(options)).await.expect("watch");
        let created = stream.message().await.expect("created").expect("open");
        assert!(created.created());
        t.push(format!("created {}", created.created()));
        events(&mut stream, 2, &mut t).await;
        c.put("w/a", "3", None).await.expect("put");
        c.delete("w/", Some(DeleteOptions::new().with_prefix()))
            .await
            .expect("delete");
        events(&mut stream, 3, &mut t).await;
        let watch_id = created.watch_id();
        stream.cancel(watch_id).await.expect("cancel");
        let canceled = tokio::time::timeout(WAIT_MAX, stream.message())
            .await
            .expect("cancel answered")
            .expect("stream")
            .expect("open");
        assert!(canceled.canceled());
        assert_eq!(canceled.watch_id(), watch_id);
        t.push(format!("canceled {}", canceled.canceled()));
        // A put after the cancel is not delivered: a new watch on the same stream sees only
        // what comes after it.
        c.put("w/late", "4", None).await.expect("put");
        stream
            .watch("w/", Some(WatchOptions::new().with_prefix()))
            .await
            .expect("watch");
        let created = stream.message().await.expect("created").expect("open");
        assert!(created.created() && created.watch_id() != watch_id);
        c.put("w/new", "5", None).await.expect("put");
        events(&mut stream, 1, &mut t).await;
        assert!(t.last().is_some_and(|l| l.contains("w/new=5")), "{t:?}");

        // A watch from below the compaction is canceled with the compaction's revision.
        let head = c.put("w/z", "6", None).await.expect("put");
        let head_rev = head.header().expect("header").revision();
        c.compact(head_rev, None).await.expect("compact");
        let mut old = c
            .watch(
                "w/",
                Some(WatchOptions::new().with_start_revision(first_rev)),
            )
            .await
            .expect("watch");
        let mut refused = old.message().await.expect("answer").expect("open");
        if refused.created() && !refused.canceled() {
            refused = old.message().await.expect("answer").expect("open");
        }
        assert!(refused.canceled());
        assert_eq!(refused.compact_revision(), head_rev);
        t.push(format!(
            "compacted watch canceled {} compact_revision {}",
            refused.canceled(),
            refused.compact_revision()
        ));
        t
    });
}

#[test]
fn lease_session_matches_etcd() {
    same_on_both(|endpoint| async move {
        let mut c = connect(&endpoint).await;
        let mut t = Transcript::new();
        let lease = c.lease_grant(60, None).await.expect("grant");
        assert_eq!(lease.ttl(), 60);
        let id = lease.id();
        c.put("l/k", "v", Some(PutOptions::new().with_lease(id)))
            .await
            .expect("put");
        let ttl = c
            .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
            .await
            .expect("ttl");
        assert!((55..=60).contains(&ttl.ttl()), "{}", ttl.ttl());
        assert_eq!(ttl.keys(), [b"l/k".to_vec()]);
        t.push(format!(
            "ttl granted {} keys {:?}",
            ttl.granted_ttl(),
            ttl.keys()
        ));
        let (mut keeper, mut answers) = c.lease_keep_alive(id).await.expect("keep-alive");
        keeper.keep_alive().await.expect("keep-alive sent");
        let answer = answers.message().await.expect("answer").expect("open");
        assert_eq!((answer.id(), answer.ttl()), (id, 60));
        t.push(format!("kept alive ttl {}", answer.ttl()));
        let leases = c.leases().await.expect("leases");
        assert_eq!(
            leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>(),
            [id]
        );
        t.push(format!("leases {}", leases.leases().len()));
        let stored = c.get("l/k", None).await.expect("get");
        t.push(format!("leased key {}", kvs(stored.kvs())));
        c.lease_revoke(id).await.expect("revoke");
        let gone = c.get("l/k", None).await.expect("get");
        assert!(gone.kvs().is_empty(), "the revoked lease's key is deleted");
        t.push(format!("after revoke {}", gone.count()));
        let revoked = c.lease_time_to_live(id, None).await.expect("ttl");
        assert_eq!(revoked.ttl(), -1);
        t.push(format!("revoked ttl {}", revoked.ttl()));
        let again = c.lease_revoke(id).await.expect_err("revoked already");
        t.push(format!("revoke again: {}", refusal(again)));

        // A TTL below etcd's minimum is raised to it; the key goes when the lease expires.
        let short = c.lease_grant(1, None).await.expect("grant");
        t.push(format!("short ttl {}", short.ttl()));
        c.put(
            "l/short",
            "v",
            Some(PutOptions::new().with_lease(short.id())),
        )
        .await
        .expect("put");
        let granted = Instant::now();
        loop {
            let left = c.get("l/short", None).await.expect("get");
            if left.kvs().is_empty() {
                break;
            }
            assert!(
                granted.elapsed() < WAIT_MAX,
                "the leased key outlived its lease"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let lived = granted.elapsed();
        assert!(lived >= Duration::from_secs(1), "expired after {lived:?}");
        t.push("short lease expired".to_owned());
        t
    });
}

#[test]
fn maintenance_and_cluster_calls_answer_as_etcd() {
    same_on_both(|endpoint| async move {
        let mut c = connect(&endpoint).await;
        let mut t = Transcript::new();
        c.put("m/k", "v", None).await.expect("put");
        let status = c.status().await.expect("status");
        let member = status.header().expect("header").member_id();
        assert!(status.version().starts_with("3.4."), "{}", status.version());
        assert!(status.db_size() > 0);
        assert_eq!(status.leader(), member);
        t.push(format!(
            "status 3.4 leader-is-self {} learner {}",
            status.leader() == member,
            status.is_learner()
        ));

        // The snapshot stream: the database, then its SHA-256, as etcdctl checks it.
        let mut stream = c.snapshot().await.expect("snapshot");
        let mut blob = Vec::new();
        let mut last_remaining = None;
        while let Some(part) = stream.message().await.expect("snapshot part") {
            blob.extend_from_slice(part.blob());
            last_remaining = Some(part.remaining_bytes());
        }
        assert_eq!(last_remaining, Some(0));
        let split = blob.len().checked_sub(32).expect("a snapshot has a digest");
        let (data, digest) = blob.split_at(split);
        assert!(!data.is_empty());
        assert_eq!(Sha256::digest(data).as_slice(), digest);
        t.push("snapshot ends with its sha256".to_owned());

        let members = c.member_list().await.expect("member list");
        assert_eq!(members.members().len(), 1);
        let me = &members.members()[0];
        assert_eq!(me.id(), member);
        assert_eq!(me.name(), "default");
        assert_eq!(me.client_urls(), std::slice::from_ref(&endpoint));
        t.push(format!(
            "members 1 name {} self {}",
            me.name(),
            me.id() == member
        ));
        t
    });
}

#[test]
fn auth_session_matches_etcd() {
    same_on_both(|endpoint| async move {
        let mut c = connect(&endpoint).await;
        let mut t = Transcript::new();
        c.put("app/x", "0", None).await.expect("put");
        c.put("secret", "s", None).await.expect("put");
        c.user_add("root", "rootpw", None).await.expect("user add");
        c.user_grant_role("root", "root").await.expect("grant root");
        c.role_add("app").await.expect("role add");
        let permission = Permission::read_write("app/").with_prefix();
        c.role_grant_permission("app", permission)
            .await
            .expect("grant permission");
        c.user_add("alice", "alicepw", None)
            .await
            .expect("user add");
        c.user_grant_role("alice", "app").await.expect("grant role");
        let role = c.role_get("app").await.expect("role get");
        t.push(format!(
            "role app {:?}",
            role.permissions()
                .iter()
                .map(|p| (p.get_type(), p.key().to_vec(), p.range_end().to_vec()))
                .collect::<Vec<_>>()
        ));
        let alice = c.user_get("alice").await.expect("user get");
        assert_eq!(alice.roles(), ["app"]);
        t.push(format!("alice roles {:?}", alice.roles()));
        let users = c.user_list().await.expect("user list");
        t.push(format!("users {:?}", users.users()));
        c.auth_enable().await.expect("auth enable");

        let unauthenticated = c.get("app/x", None).await.expect_err("auth is on");
        t.push(format!("no token: {}", refusal(unauthenticated)));
        let as_user = |name: &str, password: &str| {
            let options = ConnectOptions::new().with_user(name, password);
            let endpoint = endpoint.clone();
            async move { Client::connect([endpoint], Some(options)).await }
        };
        let wrong = as_user("alice", "nope")
            .await
            .err()
            .expect("bad password refused");
        t.push(format!("wrong password: {}", refusal(wrong)));
        let mut alice = as_user("alice", "alicepw").await.expect("alice connects");
        alice
            .put("app/x", "1", None)
            .await
            .expect("alice may write app/");
        let read = alice.get("app/x", None).await.expect("alice may read app/");
        assert_eq!(values(read.kvs()), [&b"1"[..]]);
        t.push(format!("alice reads {}", kvs(read.kvs())));
        let denied = alice.get("secret", None).await.expect_err("denied");
        t.push(format!("alice reads secret: {}", refusal(denied)));
        let denied = alice.put("secret", "x", None).await.expect_err("denied");
        t.push(format!("alice writes secret: {}", refusal(denied)));
        let denied = alice.user_list().await.expect_err("not root");
        t.push(format!("alice lists users: {}", refusal(denied)));

        let mut root = as_user("root", "rootpw").await.expect("root connects");
        let secret = root.get("secret", None).await.expect("root reads all");
        assert_eq!(values(secret.kvs()), [&b"s"[..]]);
        root.auth_disable().await.expect("auth disable");
        let open = c.get("secret", None).await.expect("auth is off");
        t.push(format!("after disable {}", kvs(open.kvs())));
        t
    });
}
