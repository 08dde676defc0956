//! What etcdctl 3.4 cannot ask, asked through the generated gRPC client: count_only, the watch
//! stream's ids, cancel, progress and refusals, requests kvstore refuses as unsupported, Status,
//! MemberList; and the server's shutdown (streams end, the database closes, data survives a
//! restart).

mod common;

use std::time::Duration;

use common::TestServer;
use kvstore_server::proto::etcdserverpb::cluster_client::ClusterClient;
use kvstore_server::proto::etcdserverpb::kv_client::KvClient;
use kvstore_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use kvstore_server::proto::etcdserverpb::request_op::Request as Op;
use kvstore_server::proto::etcdserverpb::response_op::Response;
use kvstore_server::proto::etcdserverpb::watch_client::WatchClient;
use kvstore_server::proto::etcdserverpb::watch_request::RequestUnion;
use kvstore_server::proto::etcdserverpb::{
    MemberListRequest, PutRequest, RangeRequest, RequestOp, StatusRequest, TxnRequest,
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn put(kv: &mut KvClient<Channel>, key: &str, value: &str) -> i64 {
    let response = kv
        .put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        })
        .await
        .expect("put");
    response.into_inner().header.expect("header").revision
}

/// A watch stream: requests go in through `requests`, responses come out of `responses`.
struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    responses: tonic::Streaming<WatchResponse>,
}

impl WatchStream {
    async fn open(endpoint: String) -> WatchStream {
        let mut client = WatchClient::connect(endpoint).await.expect("connect");
        let (requests, receiver) = mpsc::channel(16);
        let responses = client
            .watch(ReceiverStream::new(receiver))
            .await
            .expect("watch")
            .into_inner();
        WatchStream {
            requests,
            responses,
        }
    }

    async fn send(&self, request: RequestUnion) {
        self.requests
            .send(WatchRequest {
                request_union: Some(request),
            })
            .await
            .expect("send");
    }

    async fn create(&self, create: WatchCreateRequest) {
        self.send(RequestUnion::CreateRequest(create)).await;
    }

    async fn next(&mut self) -> WatchResponse {
        tokio::time::timeout(common::WAIT_MAX, self.responses.next())
            .await
            .expect("a response in time")
            .expect("the stream is open")
            .expect("a response")
    }
}

#[test]
fn count_only_nested_txns_and_unsupported_ones() {
    let server = TestServer::start();
    runtime().block_on(async {
        let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
        for key in ["a", "b", "c"] {
            put(&mut kv, key, "v").await;
        }
        let counted = kv
            .range(RangeRequest {
                key: b"a".to_vec(),
                range_end: b"z".to_vec(),
                count_only: true,
                limit: 1,
                ..RangeRequest::default()
            })
            .await
            .expect("range")
            .into_inner();
        assert_eq!(
            (counted.count, counted.kvs.len(), counted.more),
            (3, 0, false)
        );

        // A nested txn is served: its put runs in the outer txn's revision.
        let nested_put = TxnRequest {
            success: vec![RequestOp {
                request: Some(Op::RequestTxn(TxnRequest {
                    success: vec![RequestOp {
                        request: Some(Op::RequestPut(PutRequest {
                            key: b"n".to_vec(),
                            value: b"v".to_vec(),
                            ..PutRequest::default()
                        })),
                    }],
                    ..TxnRequest::default()
                })),
            }],
            ..TxnRequest::default()
        };
        let answered = kv.txn(nested_put).await.expect("nested txn").into_inner();
        let Some(Response::ResponseTxn(inner)) = &answered.responses[0].response else {
            panic!("the nested txn answers a txn response: {answered:?}");
        };
        assert!(inner.succeeded);
        assert_eq!(answered.header.map(|h| h.revision), Some(5));
        // A range at an older revision inside a nested txn is not yet.
        let nested_old_read = TxnRequest {
            success: vec![RequestOp {
                request: Some(Op::RequestTxn(TxnRequest {
                    success: vec![RequestOp {
                        request: Some(Op::RequestRange(RangeRequest {
                            key: b"a".to_vec(),
                            revision: 2,
                            ..RangeRequest::default()
                        })),
                    }],
                    ..TxnRequest::default()
                })),
            }],
            ..TxnRequest::default()
        };
        let refused = kv
            .txn(nested_old_read)
            .await
            .expect_err("a nested range at an older revision is refused");
        assert_eq!(refused.code(), Code::Unimplemented);
        assert!(
            refused
                .message()
                .contains("a range at an older revision inside a nested txn"),
            "{refused:?}"
        );

        let empty_key = kv
            .range(RangeRequest::default())
            .await
            .expect_err("empty key");
        assert_eq!(
            (empty_key.code(), empty_key.message()),
            (Code::InvalidArgument, "etcdserver: key is not provided")
        );
    });
}

#[test]
fn watch_ids_cancel_and_progress() {
    let server = TestServer::start();
    runtime().block_on(async {
        let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
        let mut watch = WatchStream::open(server.endpoint()).await;
        // The server picks ids from 0.
        watch
            .create(WatchCreateRequest {
                key: b"k".to_vec(),
                ..WatchCreateRequest::default()
            })
            .await;
        let created = watch.next().await;
        assert!(created.created && !created.canceled);
        assert_eq!(created.watch_id, 0);
        assert_eq!(created.header.as_ref().map(|h| h.revision), Some(1));
        // A chosen id; the same id again is refused, as is an empty range.
        watch
            .create(WatchCreateRequest {
                key: b"k".to_vec(),
                watch_id: 7,
                progress_notify: true,
                ..WatchCreateRequest::default()
            })
            .await;
        assert_eq!(watch.next().await.watch_id, 7);
        watch
            .create(WatchCreateRequest {
                key: b"k".to_vec(),
                watch_id: 7,
                ..WatchCreateRequest::default()
            })
            .await;
        let duplicate = watch.next().await;
        assert!(duplicate.created && duplicate.canceled);
        assert_eq!(duplicate.watch_id, -1);
        assert_eq!(
            duplicate.cancel_reason,
            "mvcc: duplicate watch ID provided on the WatchStream"
        );
        watch
            .create(WatchCreateRequest {
                key: b"z".to_vec(),
                range_end: b"a".to_vec(),
                ..WatchCreateRequest::default()
            })
            .await;
        assert_eq!(
            watch.next().await.cancel_reason,
            "mvcc: watcher range is empty"
        );

        // One put: an event for each of the two watches of k.
        let revision = put(&mut kv, "k", "v").await;
        let mut ids = Vec::new();
        for _ in 0..2 {
            let event = watch.next().await;
            assert_eq!(event.header.as_ref().map(|h| h.revision), Some(revision));
            assert_eq!(event.events.len(), 1);
            ids.push(event.watch_id);
        }
        ids.sort();
        assert_eq!(ids, [0, 7]);

        // Cancel one; the other still sees the next put.
        watch
            .send(RequestUnion::CancelRequest(WatchCancelRequest {
                watch_id: 0,
            }))
            .await;
        let canceled = watch.next().await;
        assert_eq!((canceled.watch_id, canceled.canceled), (0, true));
        let revision = put(&mut kv, "k", "v2").await;
        let event = watch.next().await;
        assert_eq!(event.watch_id, 7);
        assert_eq!(event.header.map(|h| h.revision), Some(revision));

        // A progress request: watch id -1, the current revision.
        watch
            .send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
            .await;
        let progress = watch.next().await;
        assert_eq!(progress.watch_id, -1);
        assert!(progress.events.is_empty());
        assert_eq!(progress.header.map(|h| h.revision), Some(revision));
    });
}

#[test]
fn periodic_progress_notifications() {
    let server = TestServer::start_with(|config| {
        config.watch_progress_interval = Duration::from_millis(200);
    });
    runtime().block_on(async {
        let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
        let revision = put(&mut kv, "other", "v").await;
        let mut watch = WatchStream::open(server.endpoint()).await;
        watch
            .create(WatchCreateRequest {
                key: b"k".to_vec(),
                progress_notify: true,
                ..WatchCreateRequest::default()
            })
            .await;
        assert!(watch.next().await.created);
        let progress = watch.next().await;
        assert_eq!(progress.watch_id, 0);
        assert!(progress.events.is_empty());
        assert_eq!(progress.header.map(|h| h.revision), Some(revision));
    });
}

#[test]
fn status_and_member_list() {
    let server = TestServer::start();
    runtime().block_on(async {
        let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
        let revision = put(&mut kv, "k", "v").await;
        let mut maintenance = MaintenanceClient::connect(server.endpoint())
            .await
            .expect("connect");
        let status = maintenance
            .status(StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        let header = status.header.expect("header");
        assert_eq!(header.revision, revision);
        assert_eq!(status.leader, header.member_id);
        assert!(status.version.starts_with("3.4."), "{}", status.version);
        assert_eq!(
            status.raft_index,
            u64::try_from(revision).expect("positive")
        );
        let mut cluster = ClusterClient::connect(server.endpoint())
            .await
            .expect("connect");
        let members = cluster
            .member_list(MemberListRequest {})
            .await
            .expect("member list")
            .into_inner();
        assert_eq!(members.members.len(), 1);
        let member = &members.members[0];
        assert_eq!(
            (member.id, member.name.as_str()),
            (header.member_id, "default")
        );
        assert_eq!(member.client_ur_ls, [server.endpoint()]);
    });
    let ctl = server.ctl();
    // etcdctl 3.4 prints the health line on stderr.
    let health = ctl.run(&["endpoint", "health"]);
    let stderr = String::from_utf8_lossy(&health.stderr);
    assert!(health.status.success(), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{} is healthy: successfully committed proposal",
            server.endpoint()
        )),
        "{stderr}"
    );
    // etcdctl dials the endpoint alone for Status, with the endpoint URL as its :authority.
    let status = ctl.ok(&["endpoint", "status"]);
    assert!(
        status.starts_with(&format!("{}, ", server.endpoint())),
        "{status}"
    );
    assert!(status.contains(", 3.4.23+kvstore."), "{status}");
    let status = ctl.json(&["endpoint", "status"]);
    assert_eq!(status[0]["Status"]["raftTerm"], 1);
    let members = ctl.ok(&["member", "list"]);
    assert!(
        members.ends_with(&format!(
            ", started, default, , {}, false\n",
            server.endpoint()
        )),
        "{members}"
    );
}

#[test]
fn shutdown_ends_streams_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dir = dir.path().join("db");
    let server = TestServer::start_with(|config| config.db_dir = db_dir.clone());
    let endpoint = server.endpoint();
    let runtime = runtime();
    let mut watch = runtime.block_on(async {
        let mut kv = KvClient::connect(endpoint.clone()).await.expect("connect");
        put(&mut kv, "k", "durable").await;
        let mut watch = WatchStream::open(endpoint.clone()).await;
        watch
            .create(WatchCreateRequest {
                key: b"k".to_vec(),
                ..WatchCreateRequest::default()
            })
            .await;
        assert!(watch.next().await.created);
        watch
    });
    // Stopping waits for the watch stream to end: the server ends it.
    server.stop().expect("a clean shutdown");
    let ended = runtime
        .block_on(async { tokio::time::timeout(common::WAIT_MAX, watch.responses.next()).await });
    assert!(
        matches!(ended, Ok(None) | Ok(Some(Err(_)))),
        "the watch stream ended: {ended:?}"
    );
    // A new server over the same database sees the write.
    let restarted = TestServer::start_with(|config| config.db_dir = db_dir.clone());
    assert_eq!(restarted.ctl().ok(&["get", "k"]), "k\ndurable\n");
}
