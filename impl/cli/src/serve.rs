//! `kvstore --db DIR serve [--listen ADDR] [--durability sync|group-commit] [--tls-cert FILE
//! --tls-key FILE [--tls-ca FILE]]`:
//! serves etcd v3.4's gRPC API, auth and RBAC included (users and roles kept in `DIR/auth/`),
//! its JSON gateway, `/health`, `/version` and `/metrics` on one port, in plain text or over
//! TLS (mutual TLS with `--tls-ca`), over the database (crate `kvstore-server`) until SIGTERM
//! or Ctrl-C, then ends every stream, lets the calls in flight finish and closes the database.
//! Logs go to stderr through `tracing` (filter with
//! `RUST_LOG`, default `info`). Exit code 0 after a clean shutdown, 2 without `--db`, 3 if the
//! directory holds no database (and `--create` was not given), the server could not start or
//! the database did not close cleanly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kvstore_server::{
    BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN, MAX_REQUEST_BYTES_DEFAULT, Server,
    ServerConfig, TlsConfig,
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
    /// `--trusted-ca-file` with `--client-cert-auth`).
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
    /// When a write is acknowledged: `sync` (its WAL record synced first, as etcd) or
    /// `group-commit` (the same promise, writers arriving during a sync share the next one).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    durability: DurabilityArg,
}

/// The durability modes `serve` offers: those that acknowledge a write only once it is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// `kvstore::Durability::Sync`.
    Sync,
    /// `kvstore::Durability::GroupCommit`.
    GroupCommit,
}

/// Runs `serve` on the database in `db` (made if missing when `create`).
pub fn run(db: Option<&Path>, create: bool, args: ServeArgs) -> ExitCode {
    let Some(db) = db else {
        eprintln!("kvstore: serve needs --db DIR");
        return ExitCode::from(2);
    };
    if !create && !crate::db_cmd::holds_database(db) {
        eprintln!(
            "kvstore: no database at {} (pass --create to make one)",
            db.display()
        );
        return ExitCode::from(crate::db_cmd::EXIT_ERROR);
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A subscriber set already (never, in the binary) is kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
    config.bcrypt_cost = args.bcrypt_cost;
    config.options.durability = match args.durability {
        DurabilityArg::Sync => kvstore::Durability::Sync,
        DurabilityArg::GroupCommit => kvstore::Durability::GroupCommit,
    };
    // Failpoints from the FAILPOINTS environment variable (feature `failpoints` only).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let served = runtime.block_on(async move {
        let server = Server::bind(config).await?;
        server.serve_until(shutdown_signal()).await
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

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
