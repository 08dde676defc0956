//! The plain HTTP side of the port: `/health`, `/version` and unknown paths answer as a real
//! etcd 3.4's do, over HTTP/1.1 and HTTP/2, while gRPC (etcdctl) works on the same port.

mod common;

use common::{Etcd, TestServer, curl};

/// The same plain HTTP requests to etcd and to kvstore: status and body.
fn both(kvstore: &str, etcd: &str, path: &str, args: &[&str]) -> ((u16, String), (u16, String)) {
    let with = |endpoint: &str| {
        let url = format!("{endpoint}{path}");
        let mut all = args.to_vec();
        all.push(&url);
        curl(&all)
    };
    (with(kvstore), with(etcd))
}

#[test]
fn health_version_and_unknown_paths_answer_as_etcd() {
    let server = TestServer::start();
    let etcd = Etcd::start();
    for (path, args) in [
        ("/health", &[][..]),
        ("/version", &[]),
        ("/no/such/path", &[]),
        ("/health", &["-X", "POST"]),
    ] {
        let (kvstore, expected) = both(&server.endpoint(), &etcd.endpoint, path, args);
        assert_eq!(kvstore, expected, "{path} {args:?}");
    }
    let (status, body) = curl(&[&format!("{}/health", server.endpoint())]);
    assert_eq!((status, body.as_str()), (200, r#"{"health":"true"}"#));
}

#[test]
fn grpc_and_http_share_the_port() {
    let server = TestServer::start();
    let ctl = server.ctl();
    ctl.ok(&["put", "k", "v"]);
    let (status, body) = curl(&[
        "--http2-prior-knowledge",
        &format!("{}/version", server.endpoint()),
    ]);
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["etcdserver"], kvstore_server::ETCD_API_VERSION);
    assert_eq!(ctl.ok(&["get", "k", "--print-value-only"]), "v\n");
    assert_eq!(curl(&[&format!("{}/health", server.endpoint())]).0, 200);
}
