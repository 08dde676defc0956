//! Auth through the generated gRPC client, for what etcdctl cannot show: Authenticate and the
//! `token` metadata, missing and bad tokens, every key of a txn checked (compares, both
//! branches, nested txns) with nothing written when refused, watch creates refused (also on a
//! stream whose token names no user; compared with etcd 3.4's answers), Maintenance admin
//! calls, tokens dropped by a password change and by disabling auth, and the refusals of
//! Range, Txn, LeaseGrant, UserList and UserGet as a user, with a bad token and with none,
//! compared with etcd 3.4's.

mod common;

use common::grpc::{authenticate, with_token};
use common::{Etcd, TestServer};
use kvstore_server::proto::authpb::Permission;
use kvstore_server::proto::authpb::permission::Type as PermissionType;
use kvstore_server::proto::etcdserverpb::auth_client::AuthClient;
use kvstore_server::proto::etcdserverpb::kv_client::KvClient;
use kvstore_server::proto::etcdserverpb::lease_client::LeaseClient;
use kvstore_server::proto::etcdserverpb::request_op::Request as Op;
use kvstore_server::proto::etcdserverpb::watch_client::WatchClient;
use kvstore_server::proto::etcdserverpb::watch_request::RequestUnion;
use kvstore_server::proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest,
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserGrantRoleRequest,
    AuthenticateRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

fn put(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(PutRequest {
            key: key.into(),
            value: b"txn".to_vec(),
            ..PutRequest::default()
        })),
    }
}

fn range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestRange(RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        })),
    }
}

fn delete(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
            key: key.into(),
            ..DeleteRangeRequest::default()
        })),
    }
}

/// A compare that holds for a key that never existed.
fn absent(key: &str) -> Compare {
    Compare {
        key: key.into(),
        target: 0, // VERSION
        result: 0, // EQUAL
        ..Compare::default()
    }
}

/// root (holding root) and alice (READWRITE on [a, c), READ on x) with auth enabled.
async fn set_up(auth: &mut AuthClient<Channel>) {
    for (name, password) in [("root", "rootpw"), ("alice", "alicepw")] {
        auth.user_add(AuthUserAddRequest {
            name: name.into(),
            password: password.into(),
            options: None,
        })
        .await
        .expect("user add");
    }
    auth.user_grant_role(AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    })
    .await
    .expect("grant root");
    auth.role_add(AuthRoleAddRequest { name: "r".into() })
        .await
        .expect("role add");
    for (key, range_end, access) in [
        ("a", "c", PermissionType::Readwrite),
        ("x", "", PermissionType::Read),
    ] {
        auth.role_grant_permission(AuthRoleGrantPermissionRequest {
            name: "r".into(),
            perm: Some(Permission {
                perm_type: access.into(),
                key: key.into(),
                range_end: range_end.into(),
            }),
        })
        .await
        .expect("grant permission");
    }
    auth.user_grant_role(AuthUserGrantRoleRequest {
        user: "alice".into(),
        role: "r".into(),
    })
    .await
    .expect("grant r");
    auth.auth_enable(AuthEnableRequest {})
        .await
        .expect("enable");
}

#[test]
fn tokens_and_every_txn_key_are_checked() {
    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut auth = AuthClient::connect(server.endpoint())
            .await
            .expect("connect");
        let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
        set_up(&mut auth).await;

        let refused = auth
            .authenticate(AuthenticateRequest {
                name: "alice".into(),
                password: "wrong".into(),
            })
            .await
            .expect_err("a wrong password is refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(
            refused.message(),
            "etcdserver: authentication failed, invalid user ID or password"
        );
        let root = authenticate(&mut auth, "root", "rootpw").await;
        let alice = authenticate(&mut auth, "alice", "alicepw").await;
        assert_ne!(root, alice);
        let (letters, _) = alice.split_once('.').expect("letters.index");
        assert_eq!(letters.len(), 16);

        let get_a = || RangeRequest {
            key: b"a".to_vec(),
            ..RangeRequest::default()
        };
        let missing = kv.range(with_token(get_a(), None)).await.unwrap_err();
        assert_eq!(missing.code(), Code::InvalidArgument);
        assert_eq!(missing.message(), "etcdserver: user name is empty");
        let bad = kv
            .range(with_token(get_a(), Some("nope.1")))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::Unauthenticated);
        assert_eq!(bad.message(), "etcdserver: invalid auth token");
        // A grant is not checked, but its token must name a user, as in etcd.
        let mut lease = LeaseClient::connect(server.endpoint())
            .await
            .expect("connect");
        let grant = || LeaseGrantRequest { ttl: 60, id: 0 };
        let bad = lease
            .lease_grant(with_token(grant(), Some("nope.1")))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::Unauthenticated);
        lease
            .lease_grant(with_token(grant(), None))
            .await
            .expect("anyone may grant a lease");
        kv.range(with_token(get_a(), Some(&alice)))
            .await
            .expect("alice reads a");

        // Each txn has exactly one key alice may not use; each is refused whole.
        let txns = [
            ("a compare", vec![absent("d")], vec![put("a")], vec![]),
            (
                "a success put",
                vec![absent("a")],
                vec![put("a"), put("d")],
                vec![],
            ),
            (
                "a failure put",
                vec![absent("a")],
                vec![put("a")],
                vec![put("x")],
            ),
            (
                "a failure range",
                vec![absent("a")],
                vec![put("a")],
                vec![range("d")],
            ),
            (
                "a failure delete",
                vec![absent("a")],
                vec![put("b")],
                vec![delete("x")],
            ),
            (
                "a nested put",
                vec![],
                vec![put("a")],
                vec![RequestOp {
                    request: Some(Op::RequestTxn(TxnRequest {
                        success: vec![put("d")],
                        ..TxnRequest::default()
                    })),
                }],
            ),
        ];
        for (what, compare, success, failure) in txns {
            let txn = TxnRequest {
                compare,
                success,
                failure,
            };
            let refused = kv.txn(with_token(txn, Some(&alice))).await.unwrap_err();
            assert_eq!(refused.code(), Code::PermissionDenied, "{what}");
            assert_eq!(refused.message(), "etcdserver: permission denied", "{what}");
        }
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..RangeRequest::default()
        };
        let written = kv
            .range(with_token(all.clone(), Some(&root)))
            .await
            .expect("root reads everything")
            .into_inner();
        assert_eq!(written.count, 0, "refused txns wrote nothing");
        let allowed = TxnRequest {
            compare: vec![absent("a")],
            success: vec![put("a"), range("x")],
            failure: vec![range("b")],
        };
        let done = kv
            .txn(with_token(allowed, Some(&alice)))
            .await
            .expect("a txn inside alice's permissions")
            .into_inner();
        assert!(done.succeeded);

        // A password change drops alice's tokens; disabling auth drops every token.
        auth.user_change_password(with_token(
            AuthUserChangePasswordRequest {
                name: "alice".into(),
                password: "new".into(),
            },
            Some(&root),
        ))
        .await
        .expect("root changes alice's password");
        let dropped = kv
            .range(with_token(get_a(), Some(&alice)))
            .await
            .unwrap_err();
        assert_eq!(dropped.code(), Code::Unauthenticated);
        auth.auth_disable(with_token(AuthDisableRequest {}, Some(&root)))
            .await
            .expect("root disables auth");
        let dropped = kv
            .range(with_token(get_a(), Some(&root)))
            .await
            .unwrap_err();
        assert_eq!(dropped.message(), "etcdserver: invalid auth token");
        let now = kv
            .range(with_token(all, None))
            .await
            .expect("no token needed once disabled")
            .into_inner();
        assert_eq!(now.count, 1);
    });
}

/// (watch id, canceled, reason) of a `created` response.
type Answer = (i64, bool, String);

/// What a watch stream as alice answers to creates on [d], [a, c), [a, d), [x] and from x on,
/// then what a stream with an unknown token and one without a token answer to a create on [a].
async fn watch_answers(endpoint: String) -> Vec<Answer> {
    let mut auth = AuthClient::connect(endpoint.clone())
        .await
        .expect("connect");
    set_up(&mut auth).await;
    let alice = authenticate(&mut auth, "alice", "alicepw").await;
    let mut watch = WatchClient::connect(endpoint).await.expect("connect");
    let create = |id: i64, key: &str, range_end: &str| WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            watch_id: id,
            ..WatchCreateRequest::default()
        })),
    };
    let creates = [
        create(7, "d", ""),    // outside
        create(8, "a", "c"),   // inside
        create(9, "a", "d"),   // partly outside
        create(10, "x", ""),   // inside (read only)
        create(11, "x", "\0"), // from x on: outside but for x
    ];
    let mut responses = watch
        .watch(with_token(tokio_stream::iter(creates), Some(&alice)))
        .await
        .expect("watch stream")
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let response = responses
            .next()
            .await
            .expect("a response")
            .expect("not an error");
        assert!(response.created);
        seen.push((response.watch_id, response.canceled, response.cancel_reason));
    }
    // A stream whose token names no user, or without a token, opens and refuses creates.
    for token in [Some("nope.1"), None] {
        let mut responses = watch
            .watch(with_token(tokio_stream::iter([create(1, "a", "")]), token))
            .await
            .expect("the stream opens")
            .into_inner();
        let response = responses
            .next()
            .await
            .expect("a response")
            .expect("not an error");
        assert!(response.created);
        seen.push((response.watch_id, response.canceled, response.cancel_reason));
    }
    seen
}

#[test]
fn watches_outside_the_permissions_are_refused_as_etcd_refuses_them() {
    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    let etcd = Etcd::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kvstore, etcd) = runtime.block_on(async {
        (
            watch_answers(server.endpoint()).await,
            watch_answers(etcd.endpoint.clone()).await,
        )
    });
    let refused = |reason: &str| (-1, true, format!("rpc error: code = {reason}"));
    let denied = || refused("PermissionDenied desc = etcdserver: permission denied");
    assert_eq!(
        kvstore,
        vec![
            denied(),
            (8, false, String::new()),
            denied(),
            (10, false, String::new()),
            denied(),
            refused("Unauthenticated desc = etcdserver: invalid auth token"),
            refused("InvalidArgument desc = etcdserver: user name is empty"),
        ]
    );
    // The one known difference (SEMANTICS, "Auth and RBAC"): etcd 3.4 checks a watch from a
    // key on as if it watched that key alone, and lets it through.
    let (mut kvstore, mut etcd) = (kvstore, etcd);
    assert_eq!(etcd.remove(4), (11, false, String::new()));
    kvstore.remove(4);
    assert_eq!(
        kvstore, etcd,
        "kvstore, then etcd 3.4, but for the from-key watch"
    );
}

#[test]
fn maintenance_admin_calls_need_root() {
    use kvstore_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;
    use kvstore_server::proto::etcdserverpb::{HashKvRequest, SnapshotRequest, StatusRequest};

    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut auth = AuthClient::connect(server.endpoint())
            .await
            .expect("connect");
        set_up(&mut auth).await;
        let alice = authenticate(&mut auth, "alice", "alicepw").await;
        let root = authenticate(&mut auth, "root", "rootpw").await;
        let mut maintenance = MaintenanceClient::connect(server.endpoint())
            .await
            .expect("connect");
        // etcd answers these with its auth package's errors, untranslated.
        let refused = maintenance
            .snapshot(with_token(SnapshotRequest {}, Some(&alice)))
            .await
            .expect_err("alice may not take a snapshot");
        assert_eq!(refused.code(), Code::Unknown);
        assert_eq!(refused.message(), "auth: permission denied");
        let refused = maintenance
            .hash_kv(with_token(HashKvRequest { revision: 0 }, None))
            .await
            .expect_err("no user may not hash");
        assert_eq!(refused.message(), "auth: user name is empty");
        maintenance
            .hash_kv(with_token(HashKvRequest { revision: 0 }, Some(&root)))
            .await
            .expect("root hashes");
        maintenance
            .status(with_token(StatusRequest {}, None))
            .await
            .expect("Status is not checked");
    });
}

/// The (code, message) of each call below as alice, with a bad token and with none, after
/// `set_up`: the same refusals etcd 3.4 makes, compared by `refusals_match_etcd`.
async fn refusals(endpoint: String) -> Vec<(Code, String)> {
    let mut auth = AuthClient::connect(endpoint.clone())
        .await
        .expect("connect");
    set_up(&mut auth).await;
    let alice = authenticate(&mut auth, "alice", "alicepw").await;
    let mut kv = KvClient::connect(endpoint.clone()).await.expect("connect");
    let mut lease = LeaseClient::connect(endpoint).await.expect("connect");
    let mut answers = Vec::new();
    let mut note = |result: Result<(), tonic::Status>| {
        answers.push(result.map_or_else(
            |e| (e.code(), e.message().to_owned()),
            |()| (Code::Ok, String::new()),
        ));
    };
    for token in [Some(alice.as_str()), Some("nope.1"), None] {
        let range = RangeRequest {
            key: b"d".to_vec(),
            ..RangeRequest::default()
        };
        note(kv.range(with_token(range, token)).await.map(drop));
        let txn = TxnRequest {
            compare: vec![absent("a")],
            success: vec![put("a")],
            failure: vec![delete("x")],
        };
        note(kv.txn(with_token(txn, token)).await.map(drop));
        let grant = LeaseGrantRequest { ttl: 60, id: 0 };
        note(lease.lease_grant(with_token(grant, token)).await.map(drop));
        let list = kvstore_server::proto::etcdserverpb::AuthUserListRequest {};
        note(auth.user_list(with_token(list, token)).await.map(drop));
        let get = kvstore_server::proto::etcdserverpb::AuthUserGetRequest {
            name: "alice".into(),
        };
        note(auth.user_get(with_token(get, token)).await.map(drop));
    }
    answers
}

#[test]
fn refusals_match_etcd() {
    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    let etcd = Etcd::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kvstore, etcd) = runtime.block_on(async {
        (
            refusals(server.endpoint()).await,
            refusals(etcd.endpoint.clone()).await,
        )
    });
    assert_eq!(kvstore, etcd, "kvstore, then etcd 3.4");
    assert_eq!(
        kvstore.first(),
        Some(&(
            Code::PermissionDenied,
            "etcdserver: permission denied".to_owned()
        ))
    );
}
