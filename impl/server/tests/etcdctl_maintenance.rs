//! Maintenance through etcdctl 3.4: `snapshot save` (a kvstore export that imports into a
//! database answering like the source), `defrag`, and `endpoint hashkv` (kvstore's own hash,
//! with etcd's rules for revisions, checked against a real etcd). Hash through gRPC.

mod common;

use common::{Etcd, TestServer};
use kvstore::{Db, Options};
use kvstore_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use kvstore_server::proto::etcdserverpb::{HashKvRequest, HashRequest, LeaseGrantRequest};
use serde_json::Value;

/// `etcdctl -w json endpoint hashkv [--rev R]`: the one endpoint's HashKV response.
fn hashkv(ctl: &common::Ctl, revision: Option<i64>) -> Value {
    let rev = revision.map(|r| format!("--rev={r}"));
    let mut args = vec!["endpoint", "hashkv"];
    args.extend(rev.as_deref());
    let out = ctl.json(&args);
    out[0]["HashKV"].clone()
}

fn hash_of(response: &Value) -> u64 {
    response["hash"].as_u64().expect("a hash")
}

/// The last line of etcdctl's error output (`Error: ...`), which names no endpoint.
fn error_line(stderr: &str) -> String {
    stderr.lines().last().unwrap_or_default().to_owned()
}

fn write_history(ctl: &common::Ctl) {
    for (key, value) in [("a", "1"), ("a", "2"), ("b", "3"), ("c", "4")] {
        ctl.ok(&["put", key, value]);
    }
    ctl.ok(&["del", "c"]);
}

#[test]
fn hashkv_follows_etcds_revision_rules() {
    let (server, etcd) = (TestServer::start(), Etcd::start());
    let (ours, theirs) = (server.ctl(), etcd.ctl());
    write_history(&ours);
    write_history(&theirs);
    for ctl in [&ours, &theirs] {
        let response = hashkv(ctl, None);
        assert_eq!(response["header"]["revision"], 6, "{response}");
        assert_eq!(response["compact_revision"], -1, "{response}");
    }
    // The same refusals, word for word.
    let future = ["endpoint", "hashkv", "--rev=100"];
    let refusal = ours.fails(&future);
    assert_eq!(error_line(&refusal), error_line(&theirs.fails(&future)));
    assert!(
        refusal.contains("required revision is a future revision"),
        "{refusal}"
    );
    ours.ok(&["compaction", "3"]);
    theirs.ok(&["compaction", "3"]);
    for args in [
        ["endpoint", "hashkv", "--rev=2"],
        ["endpoint", "hashkv", "--rev=3"],
    ] {
        let (mine, etcds) = (ours.fails(&args), theirs.fails(&args));
        assert_eq!(error_line(&mine), error_line(&etcds));
        assert!(
            mine.contains("required revision has been compacted"),
            "{mine}"
        );
    }
    for ctl in [&ours, &theirs] {
        assert_eq!(hashkv(ctl, Some(4))["compact_revision"], 3);
        assert_eq!(hashkv(ctl, None)["compact_revision"], 3);
    }
}

#[test]
fn hashkv_is_a_function_of_the_state_at_a_revision() {
    let (one, two) = (TestServer::start(), TestServer::start());
    write_history(&one.ctl());
    write_history(&two.ctl());
    let at_six = hash_of(&hashkv(&one.ctl(), None));
    assert_eq!(
        at_six,
        hash_of(&hashkv(&two.ctl(), None)),
        "same history, same hash"
    );
    let at_five = hash_of(&hashkv(&one.ctl(), Some(5)));
    assert_ne!(at_five, at_six, "c is live at revision 5, deleted at 6");

    one.ctl().ok(&["put", "d", "5"]);
    assert_ne!(
        hash_of(&hashkv(&one.ctl(), None)),
        at_six,
        "a put changes the hash"
    );
    assert_eq!(
        hash_of(&hashkv(&one.ctl(), Some(6))),
        at_six,
        "an old revision's stays"
    );
    assert_eq!(hash_of(&hashkv(&one.ctl(), Some(5))), at_five);

    // A value differing in one byte differs in hash.
    two.ctl().ok(&["put", "d", "6"]);
    assert_ne!(
        hash_of(&hashkv(&one.ctl(), None)),
        hash_of(&hashkv(&two.ctl(), None))
    );
}

#[test]
fn defrag_compacts_and_changes_nothing_visible() {
    let server = TestServer::start();
    let ctl = server.ctl();
    write_history(&ctl);
    let before = hashkv(&ctl, None);
    let old_before = hash_of(&hashkv(&ctl, Some(3)));
    let out = ctl.ok(&["defrag"]);
    assert!(
        out.starts_with("Finished defragmenting etcd member["),
        "{out}"
    );
    let after = hashkv(&ctl, None);
    assert_eq!(before["hash"], after["hash"]);
    assert_eq!(before["header"]["revision"], after["header"]["revision"]);
    assert_eq!(
        hash_of(&hashkv(&ctl, Some(3))),
        old_before,
        "history survives a defrag"
    );
    assert_eq!(ctl.ok(&["get", "a", "--print-value-only"]), "2\n");
}

#[test]
fn snapshot_save_writes_an_export_that_imports_into_the_same_store() {
    let server = TestServer::start();
    let ctl = server.ctl();
    write_history(&ctl);
    // Enough data for several 32 KiB chunks.
    let big = "x".repeat(50_000);
    for i in 0..4 {
        ctl.ok(&["put", &format!("big{i}"), &big]);
    }
    let hash = hash_of(&hashkv(&ctl, None));
    let file = server.dir.path().join("snapshot.db");
    let file_arg = file.to_str().expect("utf-8 path");
    let out = ctl.ok(&["snapshot", "save", file_arg]);
    assert!(out.contains("Snapshot saved at"), "{out}");

    let bytes = std::fs::read(&file).expect("the snapshot file");
    assert!(bytes.len() > 200_000, "{} bytes", bytes.len());
    let target = tempfile::tempdir().expect("temp dir");
    let copy_dir = target.path().join("copy");
    let (copy, summary) = Db::import(
        &copy_dir,
        Options::default(),
        &mut bytes.as_slice(),
        "snapshot",
    )
    .expect("the snapshot is an export kvstore imports");
    assert_eq!(summary.revision, 9, "engine revision of wire revision 10");
    assert_eq!(copy.get(b"a").expect("get").expect("a"), b"2");
    assert_eq!(
        copy.get_at(b"a", 1).expect("get").expect("a at 1").value,
        b"1"
    );
    copy.close().expect("close");

    let restored = TestServer::start_with(|config| config.db_dir = copy_dir.clone());
    assert_eq!(hash_of(&hashkv(&restored.ctl(), None)), hash);
    assert_eq!(
        hash_of(&hashkv(&restored.ctl(), Some(3))),
        hash_of(&hashkv(&ctl, Some(3)))
    );
}

#[test]
fn hash_covers_keys_and_leases() {
    let server = TestServer::start();
    write_history(&server.ctl());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let endpoint = server.endpoint();
        let mut maintenance = MaintenanceClient::connect(endpoint.clone())
            .await
            .expect("connect");
        let hash = |response: tonic::Response<
            kvstore_server::proto::etcdserverpb::HashResponse,
        >| { response.into_inner().hash };
        let before = hash(maintenance.hash(HashRequest {}).await.expect("hash"));
        assert_eq!(
            before,
            hash(maintenance.hash(HashRequest {}).await.expect("hash")),
            "nothing changed"
        );
        let mut leases =
            kvstore_server::proto::etcdserverpb::lease_client::LeaseClient::connect(endpoint)
                .await
                .expect("connect");
        leases
            .lease_grant(LeaseGrantRequest { ttl: 600, id: 77 })
            .await
            .expect("grant");
        let after = hash(maintenance.hash(HashRequest {}).await.expect("hash"));
        assert_ne!(before, after, "a grant takes no revision but changes Hash");
        let kv = maintenance
            .hash_kv(HashKvRequest { revision: 0 })
            .await
            .expect("hashkv")
            .into_inner();
        assert_ne!(kv.hash, after, "HashKV leaves the leases out");
    });
}
