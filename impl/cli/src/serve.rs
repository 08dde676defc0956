//! `kvstore --db DIR serve [--listen ADDR] [--durability sync|group-commit] [--tls-cert FILE
//! --tls-key FILE [--tls-ca FILE]] [--auth-token simple|jwt,OPTIONS] [--name NAME
//! --initial-cluster NAME=URL,... [--initial-cluster-token T] [--listen-peer ADDR]
//! [--peer-cert-file FILE --peer-key-file FILE --peer-trusted-ca-file FILE
//! [--peer-client-cert-auth]]]`:
//! serves etcd v3.4's gRPC API, auth and RBAC included (users and roles kept in `DIR/auth/`),
//! its JSON gateway, `/health`, `/version` and `/metrics` on one port, in plain text or over
//! TLS (mutual TLS with `--tls-ca`), over the database (crate `kvstore-server`) until SIGTERM
//! or Ctrl-C (with `--initial-cluster`, as a member of a raft cluster: crate `kvstore-raft`,
//! peers on `--listen-peer`, over TLS with `--peer-cert-file`), then ends every stream, lets
//! the calls in flight finish and closes the database. Logs go to stderr through `tracing`: as text, or with `--log-format json` one JSON object a
//! line (tracing-subscriber's JSON formatter: `timestamp`, `level`, `fields` with `message`,
//! `target`); filtered by `--log-level` (an `EnvFilter` directive such as `debug` or
//! `info,kvstore_server=debug`), else `RUST_LOG`, else `info`. Exit code 0 after a clean
//! shutdown, 2 without `--db` or with a malformed flag (a bad `--auth-token` included), 3 if
//! the directory holds no database (and `--create` was not given), the server could not start
//! (a JWT key file that cannot be read or holds no usable key included) or the database did
//! not close cleanly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kvstore_server::replica::{ClusterConfig, InitialCluster, PeerTlsConfig, members};
use kvstore_server::{
    AuthToken, BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN, MAX_REQUEST_BYTES_DEFAULT,
    Server, ServerConfig, TlsConfig,
};
use tracing_subscriber::EnvFilter;

/// The arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to serve gRPC and HTTP on (etcd's client port by default).
    #[arg(long, default_value = "127.0.0.1:2379")]
    listen: SocketAddr,
    /// The member name MemberList reports (etcd's `--name`).
    #[arg(long, default_value = "default")]
    name: String,
    /// The largest write request accepted, in bytes (etcd's `--max-request-bytes`).
    #[arg(long, default_value_t = MAX_REQUEST_BYTES_DEFAULT)]
    max_request_bytes: usize,
    /// Serve TLS with this certificate chain (PEM; etcd's `--cert-file`).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM; etcd's `--key-file`).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates that this CA bundle (PEM) verifies (etcd's
    /// `--trusted-ca-file` with `--client-cert-auth`). With auth enabled, a gRPC request
    /// without a token is then made as the user its certificate's common name names.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The bcrypt cost of the password hashes `user add` and `user passwd` make, 4 to 31
    /// (etcd's `--bcrypt-cost`): each step doubles the time a hash and a login take.
    #[arg(
        long,
        default_value_t = BCRYPT_COST_DEFAULT,
        value_parser = clap::value_parser!(u32)
            .range(i64::from(BCRYPT_COST_MIN)..=i64::from(BCRYPT_COST_MAX))
    )]
    bcrypt_cost: u32,
    /// The tokens Authenticate hands out (etcd's `--auth-token`): `simple`, or
    /// `jwt,sign-method=M,pub-key=FILE,priv-key=FILE[,ttl=DURATION]` with M one of RS256,
    /// RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256, HS384, HS512 (PEM keys; for HS*,
    /// `priv-key` holds the secret), ttl a Go duration (default 5m). With `pub-key` alone the
    /// server checks tokens but cannot issue them.
    #[arg(long, default_value = "simple", value_name = "TYPE[,OPTIONS]")]
    auth_token: AuthToken,
    /// How log lines are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Which logs are written: a level (`error`, `warn`, `info`, `debug`, `trace`) or an
    /// `EnvFilter` directive list (`info,kvstore_server=debug`). Overrides `RUST_LOG`; the
    /// default is `RUST_LOG`, else `info`.
    #[arg(long, value_name = "FILTER", value_parser = parse_log_level)]
    log_level: Option<String>,
    /// Serve as a member of a raft cluster of these members, `name=http://host:port,...`
    /// (peer URLs; etcd's `--initial-cluster`), this one named by `--name`. The directory then
    /// holds the member's raft log and state (made on the first start, no `--create`
    /// needed); every member is started with the same list.
    #[arg(long, value_name = "NAME=URL,...")]
    initial_cluster: Option<String>,
    /// The cluster's token (etcd's `--initial-cluster-token`): member and cluster ids derive
    /// from it and the peer URLs.
    #[arg(long, default_value = "etcd-cluster", requires = "initial_cluster")]
    initial_cluster_token: String,
    /// `new`: the members of `--initial-cluster` form a new cluster on their first start;
    /// `existing`: this member joins a running cluster that added it (`etcdctl member add`),
    /// and `--initial-cluster` lists it and the members it can reach (etcd's
    /// `--initial-cluster-state`).
    #[arg(long, value_enum, default_value_t = ClusterState::New, requires = "initial_cluster")]
    initial_cluster_state: ClusterState,
    /// Where this member listens for its peers (default: the port of its own URL in
    /// `--initial-cluster`, on all interfaces of that host).
    #[arg(long, value_name = "ADDR", requires = "initial_cluster")]
    listen_peer: Option<SocketAddr>,
    /// Peer TLS: this member's certificate chain (PEM; etcd's `--peer-cert-file`), served on
    /// the peer port and presented on its calls to the others. The members' peer URLs are then
    /// `https://`.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["initial_cluster", "peer_key_file", "peer_trusted_ca_file"]
    )]
    peer_cert_file: Option<PathBuf>,
    /// The private key of `--peer-cert-file` (PEM; etcd's `--peer-key-file`).
    #[arg(long, value_name = "FILE", requires = "peer_cert_file")]
    peer_key_file: Option<PathBuf>,
    /// The CA bundle (PEM) the other members' certificates must verify against (etcd's
    /// `--peer-trusted-ca-file`).
    #[arg(long, value_name = "FILE", requires = "peer_cert_file")]
    peer_trusted_ca_file: Option<PathBuf>,
    /// Mutual peer TLS: the peer port refuses a connection without a client certificate
    /// that `--peer-trusted-ca-file` verifies (etcd's `--peer-client-cert-auth`).
    #[arg(long, requires = "peer_cert_file")]
    peer_client_cert_auth: bool,
    /// When a write is acknowledged: `sync` (its WAL record synced first, as etcd) or
    /// `group-commit` (the same promise, writers arriving during a sync share the next one).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    durability: DurabilityArg,
}

/// Whether a member forms a new cluster or joins a running one (etcd's
/// `--initial-cluster-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterState {
    /// Form a new cluster with the other members of `--initial-cluster`.
    New,
    /// Join a running cluster that added this member.
    Existing,
}

/// The durability modes `serve` offers: those that acknowledge a write only once it is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// `kvstore::Durability::Sync`.
    Sync,
    /// `kvstore::Durability::GroupCommit`.
    GroupCommit,
}

/// How `serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    Text,
    /// One JSON object a line.
    Json,
}

/// `--log-level`: accepted if it is a valid `EnvFilter` directive list.
fn parse_log_level(filter: &str) -> Result<String, String> {
    EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| format!("not a log filter: {e}"))
}

/// Installs the stderr log subscriber `format` and `level` (else `RUST_LOG`, else `info`) ask
/// for. A subscriber set already (never, in the binary) is kept.
fn init_logs(format: LogFormat, level: Option<&str>) {
    let filter = match level {
        // Validated by `parse_log_level`; `info` should it fail anyway.
        Some(level) => EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

/// Runs `serve` on the database in `db` (made if missing when `create`).
pub fn run(db: Option<&Path>, create: bool, args: ServeArgs) -> ExitCode {
    let Some(db) = db else {
        eprintln!("kvstore: serve needs --db DIR");
        return ExitCode::from(2);
    };
    let cluster = match cluster_config(&args) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("kvstore: serve: {e}");
            return ExitCode::from(2);
        }
    };
    if cluster.is_none() && !create && !crate::db_cmd::holds_database(db) {
        eprintln!(
            "kvstore: no database at {} (pass --create to make one)",
            db.display()
        );
        return ExitCode::from(crate::db_cmd::EXIT_ERROR);
    }
    init_logs(args.log_format, args.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvstore-serve")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kvstore: cannot start the async runtime: {e}");
            return ExitCode::from(crate::db_cmd::EXIT_ERROR);
        }
    };
    let mut config = ServerConfig::new(db, args.listen);
    config.name = args.name;
    config.max_request_bytes = args.max_request_bytes;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig {
            cert,
            key,
            client_ca: args.tls_ca,
        });
    }
    config.cluster = cluster;
    config.bcrypt_cost = args.bcrypt_cost;
    config.auth_token = args.auth_token;
    config.options.durability = match args.durability {
        DurabilityArg::Sync => kvstore::Durability::Sync,
        DurabilityArg::GroupCommit => kvstore::Durability::GroupCommit,
    };
    // Failpoints from the FAILPOINTS environment variable (feature `failpoints` only).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let served = runtime.block_on(async move {
        let signal = shutdown_signal();
        let server = Server::bind(config).await?;
        server.serve_until(signal).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "kvstore serve failed");
            eprintln!("kvstore: serve: {e}");
            ExitCode::from(crate::db_cmd::EXIT_ERROR)
        }
    }
}

/// The cluster `--initial-cluster` asks for (`None`: serve alone), with this member's peer
/// address (`--listen-peer`, else its URL's).
fn cluster_config(args: &ServeArgs) -> Result<Option<ClusterConfig>, String> {
    let Some(list) = &args.initial_cluster else {
        return Ok(None);
    };
    let initial_cluster = InitialCluster::parse(list, &args.initial_cluster_token)
        .map_err(|e| format!("--initial-cluster: {e}"))?;
    let id = initial_cluster
        .id_of(&args.name)
        .map_err(|e| format!("--initial-cluster: {e}"))?;
    let listen_peer = match args.listen_peer {
        Some(addr) => addr,
        None => initial_cluster
            .members()
            .get(&id)
            .and_then(|m| members::host_port(&m.peer_url))
            .and_then(|host_port| host_port.parse().ok())
            .ok_or_else(|| {
                "--listen-peer: this member's peer URL names no IP address to listen on; \
                 give --listen-peer ADDR"
                    .to_owned()
            })?,
    };
    let own_url = initial_cluster
        .members()
        .get(&id)
        .map_or("", |m| m.peer_url.as_str());
    match (
        own_url.starts_with("https://"),
        args.peer_cert_file.is_some(),
    ) {
        (true, false) => {
            return Err(
                "an https:// peer URL needs --peer-cert-file, --peer-key-file and \
                        --peer-trusted-ca-file"
                    .to_owned(),
            );
        }
        (false, true) => {
            return Err(
                "--peer-cert-file: this member's peer URL in --initial-cluster is not https://"
                    .to_owned(),
            );
        }
        _ => {}
    }
    let peer_tls = match (
        &args.peer_cert_file,
        &args.peer_key_file,
        &args.peer_trusted_ca_file,
    ) {
        (Some(cert), Some(key), Some(trusted_ca)) => Some(PeerTlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            trusted_ca: trusted_ca.clone(),
            client_cert_auth: args.peer_client_cert_auth,
        }),
        _ => None,
    };
    Ok(Some(ClusterConfig {
        initial_cluster,
        listen_peer,
        existing: args.initial_cluster_state == ClusterState::Existing,
        peer_tls,
    }))
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from now on (on Unix: so that a signal that comes
/// while the server starts still shuts it down cleanly once it serves), and returns the future
/// that completes on the first. REQUIRES: called inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        let (ctrl_c, terminate) = (received(interrupt), received(terminate));
        #[cfg(not(unix))]
        let (ctrl_c, terminate) = (
            async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            },
            std::future::pending::<()>(),
        );
        tokio::select! {
            () = ctrl_c => tracing::info!("Ctrl-C received"),
            () = terminate => tracing::info!("SIGTERM received"),
        }
    }
}

/// Completes when `signal` is received; never if it could not be listened for.
#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
