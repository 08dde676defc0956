//! The JSON gateway, differentially: the same `curl` requests against a real etcd 3.4 and
//! against kvstore, each on a fresh store, must answer the same status and the same JSON once
//! what is per-process is masked (cluster and member ids, the raft term) and a lease's
//! remaining TTL (a clock reading) is dropped. Lease ids are chosen by the requests.
//! Revisions are compared exactly. Status and member list differ by design (versions, sizes,
//! URLs) and are checked on kvstore alone.

mod common;

use common::{Etcd, TestServer, curl, curl_lines};
use serde_json::Value;

/// One request: its path under the endpoint and its body.
const SESSION: &[(&str, &str)] = &[
    ("/v3/kv/range", r#"{"key":""}"#),
    ("/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
    ("/v3/kv/range", r#"{"key":"Zm9v"}"#),
    ("/v3/kv/range", r#"{"key":"Zm9v"#),
    ("/v3/kv/range", ""),
    (
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"MQ==","prev_kv":true,"unknown":1}"#,
    ),
    (
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"Mg==","prev_kv":true}"#,
    ),
    (
        "/v3/kv/range",
        r#"{"key":"YQ==","range_end":"Zw==","sort_order":"DESCEND","limit":"1"}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],
            "success":[{"request_put":{"key":"Zm9v","value":"YmF6","prev_kv":true}}],
            "failure":[{"request_range":{"key":"Zm9v"}}]}"#,
    ),
    (
        "/v3/kv/txn",
        r#"{"compare":[{"key":"Zm9v","target":"VERSION","result":"GREATER","version":"5"}],
            "failure":[{"request_range":{"key":"Zm9v"}},{"request_delete_range":{"key":"YQ=="}}]}"#,
    ),
    ("/v3/kv/deleterange", r#"{"key":"Zm9v","prev_kv":true}"#),
    ("/v3/kv/deleterange", r#"{"key":"bm9uZQ=="}"#),
    ("/v3/kv/compaction", r#"{"revision":"3"}"#),
    ("/v3/kv/compaction", r#"{"revision":3}"#),
    ("/v3/kv/range", r#"{"key":"Zm9v","revision":"2"}"#),
    ("/v3/kv/range", r#"{"key":"Zm9v","revision":"100"}"#),
    ("/v3/lease/grant", r#"{"TTL":60,"ID":7}"#),
    ("/v3/lease/grant", r#"{"TTL":"60","ID":"7"}"#),
    (
        "/v3/kv/put",
        r#"{"key":"bGVhc2Vk","value":"eA==","lease":"7"}"#,
    ),
    ("/v3/lease/leases", "{}"),
    ("/v3/kv/lease/leases", ""),
    ("/v3/lease/timetolive", r#"{"ID":"7","keys":true}"#),
    ("/v3/kv/lease/timetolive", r#"{"ID":"8"}"#),
    ("/v3/kv/lease/revoke", r#"{"ID":"7"}"#),
    ("/v3/lease/revoke", r#"{"ID":"7"}"#),
    ("/v3beta/kv/range", r#"{"key":"bGVhc2Vk"}"#),
    ("/v3beta/kv/range", r#"{"key":"YQ==","count_only":true}"#),
];

/// `body` with what differs between two processes masked (see the module doc).
fn normalised(path: &str, body: &str) -> Value {
    let Ok(mut value) = serde_json::from_str::<Value>(body) else {
        return Value::String(body.to_owned());
    };
    mask(&mut value);
    if let (true, Some(object)) = (path.ends_with("/timetolive"), value.as_object_mut()) {
        object.remove("TTL");
    }
    value
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                if matches!(key.as_str(), "cluster_id" | "member_id" | "raft_term") {
                    *field = Value::String("<masked>".to_owned());
                } else {
                    mask(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

fn post(endpoint: &str, path: &str, body: &str) -> (u16, String) {
    curl(&["-X", "POST", "-d", body, &format!("{endpoint}{path}")])
}

#[test]
fn unary_calls_answer_as_etcds_gateway() {
    let server = TestServer::start();
    let etcd = Etcd::start();
    for (step, (path, body)) in SESSION.iter().enumerate() {
        let (status, answer) = post(&server.endpoint(), path, body);
        let (expected_status, expected) = post(&etcd.endpoint, path, body);
        assert_eq!(
            (status, normalised(path, &answer)),
            (expected_status, normalised(path, &expected)),
            "step {step}: {path} {body}\nkvstore: {answer}\netcd:    {expected}"
        );
    }
}

/// A watch and a keep-alive, streamed: the first lines of each, normalised.
fn streams(endpoint: &str) -> Vec<Value> {
    let mut watch = curl_lines(&[
        "-X",
        "POST",
        "-d",
        r#"{"create_request":{"key":"dw==","prev_kv":true}}"#,
        &format!("{endpoint}/v3/watch"),
    ]);
    let mut lines = watch.take(1);
    post(endpoint, "/v3/kv/put", r#"{"key":"dw==","value":"MQ=="}"#);
    post(endpoint, "/v3/kv/put", r#"{"key":"dw==","value":"Mg=="}"#);
    post(endpoint, "/v3/kv/deleterange", r#"{"key":"dw=="}"#);
    lines.extend(watch.take(3));
    post(endpoint, "/v3/lease/grant", r#"{"TTL":60,"ID":9}"#);
    let mut keep_alive = curl_lines(&[
        "-X",
        "POST",
        "-d",
        r#"{"ID":"9"} {"ID":"10"}"#,
        &format!("{endpoint}/v3/lease/keepalive"),
    ]);
    lines.extend(keep_alive.take(2));
    lines
        .iter()
        .map(|line| normalised("/v3/watch", line))
        .collect()
}

#[test]
fn watch_and_keep_alive_stream_as_etcds_gateway() {
    let server = TestServer::start();
    let etcd = Etcd::start();
    assert_eq!(streams(&server.endpoint()), streams(&etcd.endpoint));
    let truncated = r#"{"create_request":{"key":"dw=="#;
    assert_eq!(
        post(&server.endpoint(), "/v3/watch", truncated),
        post(&etcd.endpoint, "/v3/watch", truncated)
    );
}

#[test]
fn status_and_member_list_describe_kvstore() {
    let server = TestServer::start();
    let (status, body) = post(&server.endpoint(), "/v3/maintenance/status", "{}");
    assert_eq!(status, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert!(
        status["version"]
            .as_str()
            .unwrap()
            .starts_with(kvstore_server::ETCD_API_VERSION)
    );
    assert_eq!(status["leader"], status["header"]["member_id"]);
    let (code, body) = post(&server.endpoint(), "/v3beta/cluster/member/list", "");
    assert_eq!(code, 200, "{body}");
    let members: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(members["members"][0]["name"], "default");
    assert_eq!(members["members"][0]["clientURLs"][0], server.endpoint());
    let (code, body) = post(&server.endpoint(), "/v3/maintenance/alarm", "{}");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        curl(&[&format!("{}/v3/kv/range", server.endpoint())]).0,
        405
    );
}

/// The auth calls and the `Authorization` header through the gateway, against etcd's: users,
/// roles, enable, a refused call without a token, Authenticate, calls with its token, a user
/// refused outside its permission, disable. Tokens differ between the two and are masked.
#[test]
fn auth_through_the_gateway_answers_as_etcds() {
    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    let etcd = Etcd::start();
    let root = r#"{"name":"root","password":"rootpw"}"#;
    let alice = r#"{"name":"alice","password":"alicepw"}"#;
    let before_enable: &[(&str, &str)] = &[
        ("/v3/auth/user/add", root),
        ("/v3/auth/role/add", r#"{"name":"root"}"#),
        ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("/v3/auth/user/add", alice),
        ("/v3/auth/role/add", r#"{"name":"app"}"#),
        // READWRITE on the prefix "app/" ("YXBwLw==" .. "YXBwMA==", base64 of "app/", "app0").
        (
            "/v3/auth/role/grant",
            r#"{"name":"app","perm":{"permType":"READWRITE","key":"YXBwLw==","range_end":"YXBwMA=="}}"#,
        ),
        ("/v3/auth/user/grant", r#"{"user":"alice","role":"app"}"#),
        ("/v3/auth/role/get", r#"{"role":"app"}"#),
        ("/v3/auth/user/list", "{}"),
        ("/v3/auth/enable", "{}"),
        // No token: refused.
        ("/v3/kv/put", r#"{"key":"YXBwL3g=","value":"MQ=="}"#),
        (
            "/v3/auth/authenticate",
            r#"{"name":"alice","password":"wrong"}"#,
        ),
    ];
    let as_user: &[(&str, &str, &str)] = &[
        (
            "alice",
            "/v3/kv/put",
            r#"{"key":"YXBwL3g=","value":"MQ=="}"#,
        ),
        ("alice", "/v3/kv/range", r#"{"key":"YXBwL3g="}"#),
        // "greeting": outside alice's permission.
        (
            "alice",
            "/v3/kv/put",
            r#"{"key":"Z3JlZXRpbmc=","value":"MQ=="}"#,
        ),
        ("alice", "/v3/auth/user/list", "{}"),
        ("root", "/v3/auth/user/list", "{}"),
        ("root", "/v3/auth/disable", "{}"),
    ];
    let mut differences = Vec::new();
    let mut compare = |what: String, ours: (u16, String), theirs: (u16, String)| {
        let (ours, theirs) = (
            (ours.0, normalised("", &ours.1)),
            (theirs.0, normalised("", &theirs.1)),
        );
        if ours != theirs {
            differences.push(format!(
                "{what}\n  kvstore: {ours:?}\n  etcd:    {theirs:?}"
            ));
        }
    };
    for (path, body) in before_enable {
        let ours = post(&server.endpoint(), path, body);
        let theirs = post(&etcd.endpoint, path, body);
        compare(format!("{path} {body}"), ours, theirs);
    }
    let token = |endpoint: &str, credentials: &str| {
        let (status, body) = post(endpoint, "/v3/auth/authenticate", credentials);
        assert_eq!(status, 200, "{body}");
        let value: Value = serde_json::from_str(&body).expect("JSON");
        value["token"].as_str().expect("a token").to_owned()
    };
    let ours = [
        ("alice", token(&server.endpoint(), alice)),
        ("root", token(&server.endpoint(), root)),
    ];
    let theirs = [
        ("alice", token(&etcd.endpoint, alice)),
        ("root", token(&etcd.endpoint, root)),
    ];
    let with_token = |endpoint: &str, token: &str, path: &str, body: &str| {
        curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: {token}"),
            "-d",
            body,
            &format!("{endpoint}{path}"),
        ])
    };
    for (user, path, body) in as_user {
        let pick = |tokens: &[(&str, String); 2]| {
            tokens
                .iter()
                .find(|(name, _)| name == user)
                .map(|(_, token)| token.clone())
                .expect("a token")
        };
        let ours = with_token(&server.endpoint(), &pick(&ours), path, body);
        let theirs = with_token(&etcd.endpoint, &pick(&theirs), path, body);
        compare(format!("as {user}: {path} {body}"), ours, theirs);
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
