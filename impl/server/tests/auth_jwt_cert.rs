//! etcd's two other ways to say who calls, each run in lockstep against `kvstore-server` and
//! etcd 3.4 started with the same flags, and compared:
//! - JWT tokens (`--auth-token jwt,...`, RS256 keys made by `openssl`): etcdctl sessions as a
//!   user; then, through the generated gRPC client and the gateway, what etcdctl hides (it
//!   authenticates again whenever a token is refused): the claims a token carries, a forged
//!   token, a token made old by an auth change (refused for keys, still good for root's admin
//!   calls, as etcd's `IsAdminPermitted` does not look at the revision), an expired token; and
//!   verify-only servers (public key only), which refuse to issue tokens and check the other
//!   implementation's (a Range refuses a token from a newer auth revision, as etcd's).
//! - The client certificate's common name as the user (mutual TLS): etcdctl with a certificate
//!   whose CN is a user with a role on a prefix reads and writes inside it, is refused outside
//!   it and for admin calls, watches inside it, loses access when the role is revoked; a
//!   token wins over the certificate; the gateway ignores the certificate.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::certs::Certs;
use common::grpc::{authenticate, with_token};
use common::{Ctl, Etcd, TestServer, curl};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kvstore_server::proto::etcdserverpb::auth_client::AuthClient;
use kvstore_server::proto::etcdserverpb::kv_client::KvClient;
use kvstore_server::proto::etcdserverpb::{AuthUserListRequest, RangeRequest};
use tonic::Code;

/// bcrypt's lowest cost, on both servers: etcd's default 10 would only slow the tests.
const BCRYPT_COST: u32 = 4;
/// The JWT lifetime of the main session: long enough for the steps before the expiry check.
const TTL_SECS: u64 = 5;

/// A kvstore server and an etcd started alike, and etcdctl for each.
struct Pair {
    kvstore: TestServer,
    etcd: Etcd,
    ctl_flags: Vec<String>,
}

impl Pair {
    /// `kvstore` configured by `configure`, etcd with `etcd_flags` over `scheme`.
    fn start(
        configure: impl FnOnce(&mut kvstore_server::ServerConfig),
        scheme: &str,
        etcd_flags: &[String],
        ctl_flags: &[&str],
    ) -> Pair {
        let kvstore = TestServer::start_with(|config| {
            config.bcrypt_cost = BCRYPT_COST;
            configure(config);
        });
        let mut flags = vec![format!("--bcrypt-cost={BCRYPT_COST}")];
        flags.extend_from_slice(etcd_flags);
        let etcd = Etcd::start_with(scheme, &flags, ctl_flags);
        Pair {
            kvstore,
            etcd,
            ctl_flags: ctl_flags.iter().map(|&f| f.to_owned()).collect(),
        }
    }

    /// The endpoints, kvstore's first.
    fn endpoints(&self, scheme: &str) -> [String; 2] {
        [
            format!("{scheme}://{}", self.kvstore.addr),
            self.etcd.endpoint.clone(),
        ]
    }

    /// etcdctl for each, kvstore's first.
    fn ctls(&self, scheme: &str) -> [Ctl; 2] {
        let flags: Vec<&str> = self.ctl_flags.iter().map(String::as_str).collect();
        self.endpoints(scheme)
            .map(|endpoint| Ctl::new(endpoint).with_flags(&flags))
    }

    /// What `etcdctl ARGS` prints on each (stdout, or the `Error:` line when it fails; the
    /// retry interceptor's log lines carry times and are left out); asserts they are equal.
    fn same(&self, scheme: &str, args: &[&str]) -> String {
        let [kvstore, etcd] = self.ctls(scheme).map(|ctl| outcome(&ctl, args));
        assert_eq!(kvstore, etcd, "etcdctl {args:?}: kvstore, then etcd");
        kvstore
    }
}

/// stdout of a success, else the `Error:` line.
fn outcome(ctl: &Ctl, args: &[&str]) -> String {
    let output = ctl.run(args);
    if output.status.success() {
        return String::from_utf8(output.stdout).expect("utf-8");
    }
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    stderr
        .lines()
        .rfind(|line| line.starts_with("Error:"))
        .unwrap_or_else(|| panic!("etcdctl {args:?} failed without an Error line: {stderr}"))
        .to_owned()
}

/// root (holding root), role `app` with READWRITE on `app/`, `user` holding `app`, the keys
/// `app/x` and `other`; then auth enabled.
fn set_up(pair: &Pair, scheme: &str, user: &str) {
    for args in [
        vec!["user", "add", "root:rootpw"],
        vec!["user", "grant-role", "root", "root"],
        vec!["role", "add", "app"],
        vec![
            "role",
            "grant-permission",
            "app",
            "--prefix",
            "readwrite",
            "app/",
        ],
        vec!["user", "add", &format!("{user}:{user}pw")],
        vec!["user", "grant-role", user, "app"],
        vec!["put", "app/x", "1"],
        vec!["put", "other", "1"],
        vec!["auth", "enable"],
    ] {
        pair.same(scheme, &args);
    }
}

/// Makes an RSA key pair with openssl in `dir`: `priv.pem` (PKCS#8) and `pub.pem`.
fn rsa_keys(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (install openssl)");
        assert!(status.status.success(), "openssl {args:?}: {status:?}");
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "priv.pem",
    ]);
    run(&["pkey", "-in", "priv.pem", "-pubout", "-out", "pub.pem"]);
}

/// The claims of a JWT, its signature unchecked.
fn claims(token: &str) -> serde_json::Value {
    let mut unchecked = Validation::new(Algorithm::RS256);
    unchecked.insecure_disable_signature_validation();
    unchecked.validate_exp = false;
    unchecked.required_spec_claims.clear();
    jsonwebtoken::decode(token, &DecodingKey::from_secret(b""), &unchecked)
        .expect("a JWT")
        .claims
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Range of `key` with `token` on each endpoint: Ok(count) or the refusal's code and text.
async fn ranges(
    endpoints: &[String],
    tokens: &[String],
    key: &str,
) -> Vec<Result<i64, (Code, String)>> {
    let mut answers = Vec::new();
    for (endpoint, token) in endpoints.iter().zip(tokens) {
        let mut kv = KvClient::connect(endpoint.clone()).await.expect("connect");
        let request = RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        };
        answers.push(
            kv.range(with_token(request, Some(token)))
                .await
                .map(|r| r.into_inner().count)
                .map_err(|s| (s.code(), s.message().to_owned())),
        );
    }
    answers
}

/// Authenticate as `name` on each endpoint.
async fn tokens(endpoints: &[String], name: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for endpoint in endpoints {
        let mut auth = AuthClient::connect(endpoint.clone())
            .await
            .expect("connect");
        tokens.push(authenticate(&mut auth, name, &format!("{name}pw")).await);
    }
    tokens
}

/// A gateway Range of `app/x` with curl's `flags`: the HTTP status, and the error's gRPC code
/// and message.
fn gateway_range(endpoint: &str, flags: &[&str]) -> (u16, serde_json::Value) {
    let url = format!("{endpoint}/v3/kv/range");
    let mut args = flags.to_vec();
    args.extend_from_slice(&["-X", "POST", &url, "-d", r#"{"key":"YXBwL3g="}"#]);
    let (status, body) = curl(&args);
    let json: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{endpoint}: HTTP {status}, not JSON ({e}): {body:?}"));
    (status, serde_json::json!([json["code"], json["message"]]))
}

fn refused(code: Code, message: &str) -> Result<i64, (Code, String)> {
    Err((code, message.to_owned()))
}

#[test]
fn jwt_tokens_are_issued_checked_aged_and_expired_as_etcds() {
    let keys = tempfile::tempdir().unwrap();
    rsa_keys(keys.path());
    let key = |name: &str| keys.path().join(name).display().to_string();
    let flag = format!(
        "jwt,pub-key={},priv-key={},sign-method=RS256,ttl={TTL_SECS}s",
        key("pub.pem"),
        key("priv.pem")
    );
    let pair = Pair::start(
        |config| config.auth_token = flag.parse().expect("a valid --auth-token"),
        "http",
        &[format!("--auth-token={flag}")],
        &[],
    );
    set_up(&pair, "http", "alice");
    let alice = |args: &[&'static str]| {
        let mut all = vec!["--user", "alice:alicepw"];
        all.extend_from_slice(args);
        all
    };
    assert_eq!(pair.same("http", &alice(&["put", "app/y", "2"])), "OK\n");
    assert_eq!(pair.same("http", &alice(&["get", "app/x"])), "app/x\n1\n");
    assert_eq!(
        pair.same("http", &alice(&["get", "other"])),
        "Error: etcdserver: permission denied"
    );

    let endpoints = pair.endpoints("http");
    let old = refused(
        Code::InvalidArgument,
        "etcdserver: revision of auth store is old",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let first = tokens(&endpoints, "alice").await;
        let root = tokens(&endpoints, "root").await;
        let [kvstore, etcd] = [claims(&first[0]), claims(&first[1])];
        assert_eq!(kvstore["username"], "alice");
        assert_eq!(kvstore["username"], etcd["username"]);
        assert_eq!(kvstore["revision"], etcd["revision"], "{kvstore} vs {etcd}");
        let exp = kvstore["exp"].as_u64().expect("exp");
        assert!(exp.abs_diff(now_secs() + TTL_SECS) <= 2, "{kvstore}");
        assert_eq!(ranges(&endpoints, &first, "app/x").await, [Ok(1), Ok(1)]);

        // root's claims under alice's signature: a forgery.
        let forged: Vec<String> = first
            .iter()
            .zip(&root)
            .map(|(alice, root)| {
                let alice: Vec<&str> = alice.split('.').collect();
                let root: Vec<&str> = root.split('.').collect();
                format!("{}.{}.{}", alice[0], root[1], alice[2])
            })
            .collect();
        let invalid = refused(Code::Unauthenticated, "etcdserver: invalid auth token");
        assert_eq!(
            ranges(&endpoints, &forged, "other").await,
            [invalid.clone(), invalid.clone()]
        );

        // An auth change makes every token issued before it old for key checks...
        pair.same("http", &["--user", "root:rootpw", "role", "add", "other"]);
        assert_eq!(
            ranges(&endpoints, &first, "app/x").await,
            [old.clone(), old.clone()]
        );
        // ...but not for admin calls.
        for (endpoint, token) in endpoints.iter().zip(&root) {
            let mut auth = AuthClient::connect(endpoint.clone()).await.unwrap();
            let users = auth
                .user_list(with_token(AuthUserListRequest {}, Some(token)))
                .await
                .expect("an old root token still lists users")
                .into_inner()
                .users;
            assert_eq!(users, ["alice", "root"]);
        }
        let second = tokens(&endpoints, "alice").await;
        assert_eq!(ranges(&endpoints, &second, "app/x").await, [Ok(1), Ok(1)]);

        // Expired: exp is in whole seconds and checked against whole seconds.
        tokio::time::sleep(Duration::from_secs(TTL_SECS + 2)).await;
        assert_eq!(
            ranges(&endpoints, &second, "app/x").await,
            [invalid.clone(), invalid]
        );
        let gateway: Vec<(u16, serde_json::Value)> = endpoints
            .iter()
            .zip(&second)
            .map(|(endpoint, token)| {
                gateway_range(endpoint, &["-H", &format!("Authorization: {token}")])
            })
            .collect();
        assert_eq!(gateway[0], gateway[1], "the gateway: kvstore, then etcd");
        assert_eq!(gateway[0].0, 401);
    });

    // Verify-only servers refuse to issue tokens.
    let verify_only = format!("jwt,pub-key={},sign-method=RS256", key("pub.pem"));
    let checking = Pair::start(
        |config| config.auth_token = verify_only.parse().expect("a valid --auth-token"),
        "http",
        &[format!("--auth-token={verify_only}")],
        &[],
    );
    set_up(&checking, "http", "alice");
    assert_eq!(
        checking.same("http", &alice(&["get", "app/x"])),
        "Error: rpc error: code = Unknown desc = auth: token signing attempted with verify-only key"
    );
    // A Range takes a token only at the store's own revision: etcd's doSerialize refuses a
    // newer one too (here the full servers are one revision ahead: `role add other`).
    runtime.block_on(async {
        let mut issued = tokens(&endpoints, "alice").await;
        issued.reverse();
        let answers = ranges(&checking.endpoints("http"), &issued, "app/x").await;
        assert_eq!(answers, [old.clone(), old]);
    });
}

#[test]
fn a_client_certificate_names_the_user_as_in_etcd() {
    let certs = Certs::new();
    let ca = format!("--cacert={}", certs.path("ca.pem"));
    let cert = format!("--cert={}", certs.path("client.pem"));
    let key = format!("--key={}", certs.path("client-key.pem"));
    let pair = Pair::start(
        |config| config.tls = Some(certs.server_config(true)),
        "https",
        &[
            format!("--cert-file={}", certs.path("server.pem")),
            format!("--key-file={}", certs.path("server-key.pem")),
            format!("--trusted-ca-file={}", certs.path("ca.pem")),
            "--client-cert-auth".to_owned(),
        ],
        &[&ca, &cert, &key],
    );
    // The client certificate's common name is `client`.
    set_up(&pair, "https", "client");
    assert_eq!(pair.same("https", &["get", "app/x"]), "app/x\n1\n");
    assert_eq!(pair.same("https", &["put", "app/y", "2"]), "OK\n");
    let denied = "Error: etcdserver: permission denied";
    assert_eq!(pair.same("https", &["get", "other"]), denied);
    assert_eq!(pair.same("https", &["put", "other", "2"]), denied);
    assert_eq!(pair.same("https", &["user", "list"]), denied);
    // A token wins over the certificate.
    let root = ["--user", "root:rootpw"];
    assert_eq!(
        pair.same("https", &[&root[..], &["get", "other"]].concat()),
        "other\n1\n"
    );

    // A watch stream is the certificate's user's too.
    for ctl in pair.ctls("https") {
        let mut watch = ctl.spawn_lines(&["watch", "--prefix", "app/"]);
        std::thread::sleep(Duration::from_millis(500));
        ctl.ok(&["put", "app/z", "3"]);
        assert_eq!(watch.take(3), ["PUT", "app/z", "3"]);
    }

    // The gateway takes no user from the certificate: etcd refuses a request whose certificate
    // names one while auth is enabled.
    let (ca, cert, key) = (
        certs.path("ca.pem"),
        certs.path("client.pem"),
        certs.path("client-key.pem"),
    );
    let gateway: Vec<(u16, String)> = pair
        .endpoints("https")
        .iter()
        .map(|endpoint| {
            let url = format!("{endpoint}/v3/kv/range");
            let flags = [
                "--cacert", &ca, "--cert", &cert, "--key", &key, "-X", "POST", &url,
            ];
            curl(&[&flags[..], &["-d", r#"{"key":"YXBwL3g="}"#]].concat())
        })
        .collect();
    assert_eq!(gateway[0], gateway[1], "the gateway: kvstore, then etcd");
    assert_eq!(
        gateway[0],
        (
            400,
            "CommonName of client sending a request against gateway will be ignored and not \
             used as expected\n"
                .to_owned()
        )
    );

    // The certificate's user is checked at the store's current revision: a revoked role
    // is a refusal, not an old revision.
    pair.same(
        "https",
        &[&root[..], &["user", "revoke-role", "client", "app"]].concat(),
    );
    assert_eq!(pair.same("https", &["get", "app/x"]), denied);
}
