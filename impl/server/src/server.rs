//! Starting, serving and stopping: [`ServerConfig`], [`Server::bind`] (open the database, bind
//! the socket) and [`Server::serve_until`] (answer until the shutdown future completes, or, for
//! a cluster member, until the member is removed from the cluster). One
//! port serves gRPC (HTTP/2) and plain HTTP (HTTP/1.1 or HTTP/2), told apart per request by
//! the `http` module; with [`ServerConfig::tls`], over TLS or mutual TLS (the `listener`
//! module).
//!
//! Shutdown, in order: stop accepting connections; end every watch and keep-alive stream (each
//! stream's task sees the shutdown flag and returns, which ends the response stream); let the
//! calls in flight finish and the clients close their connections, for at most
//! [`ServerConfig::shutdown_grace`]; close the database and the auth store's (flush, sync,
//! release their locks).
//!
//! Invariants:
//! - The database is opened with [`kvstore::HistoryRetention::Manual`] (etcd keeps every
//!   revision until a Compact) unless the caller's [`ServerConfig::options`] say otherwise.
//! - The database is closed exactly once, after the last call that could use it ended (or the
//!   grace period passed), whatever way serving ended.
//! - A request whose encoding exceeds `max_request_bytes` plus etcd's gRPC overhead allowance is
//!   refused by the transport (`RESOURCE_EXHAUSTED`) before it is decoded; a write between
//!   `max_request_bytes` and that is refused by its service (`request is too large`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kvstore::{Db, Durability, HistoryRetention, Options};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tonic::service::Routes;

use crate::auth::{AuthService, AuthStore, AuthToken, BCRYPT_COST_DEFAULT, TokenProvider};
use crate::cluster::ClusterService;
use crate::context::{Context, Limits};
use crate::error::ServeError;
use crate::identity::Identity;
use crate::kv::KvService;
use crate::lease::LeaseService;
use crate::listener::{self, TlsConfig};
use crate::maintenance::MaintenanceService;
use crate::metrics::{Metered, Metrics};
use crate::proto::etcdserverpb::auth_server::AuthServer;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::replica::{ClusterConfig, Member, Published, Replica};
use crate::store::Store;
use crate::watch::WatchService;
use crate::{gateway, http};

pub use crate::lease::LEASE_TTL_MIN_SECS;

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const MAX_REQUEST_BYTES_DEFAULT: usize = 1536 * 1024;

/// What the transport accepts beyond `max_request_bytes` before it refuses a message
/// undecoded (etcd's `grpcOverheadBytes`).
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// etcd's default progress notification interval for watches with `progress_notify`.
pub const WATCH_PROGRESS_INTERVAL_DEFAULT: Duration = Duration::from_secs(10 * 60);

/// How long shutdown waits by default for calls in flight (and clients to close their
/// connections) before it closes the database anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The database directory (created if missing).
    pub db_dir: PathBuf,
    /// The address to listen on (port 0: any free port; see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The member's name, as MemberList reports it (etcd's `--name`, default `default`).
    pub name: String,
    /// The engine's options: [`ServerConfig::new`] takes the defaults with every write synced
    /// (as etcd's) and history kept until a Compact.
    pub options: Options,
    /// etcd's `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// How often watches with `progress_notify` hear the revision when they had no event.
    pub watch_progress_interval: Duration,
    /// How long shutdown waits for calls in flight and open connections.
    pub shutdown_grace: Duration,
    /// Serve TLS (and require client certificates when it names a client CA); plain text when
    /// `None`.
    pub tls: Option<TlsConfig>,
    /// The bcrypt cost of the password hashes UserAdd and UserChangePassword make (etcd's
    /// `--bcrypt-cost`, [`BCRYPT_COST_DEFAULT`] = 10; 4 to 31). Existing hashes keep theirs.
    pub bcrypt_cost: u32,
    /// How Authenticate's tokens are made and checked (etcd's `--auth-token`): simple tokens
    /// by default, or JWTs with the keys it names (read and checked by [`Server::bind`]).
    pub auth_token: AuthToken,
    /// Serve as a member of a raft cluster (`None`: alone). The member's raft log and state
    /// machine live in `db_dir`, which then holds no plain database.
    pub cluster: Option<ClusterConfig>,
}

impl ServerConfig {
    /// A configuration serving `db_dir` on `listen` with etcd's defaults.
    pub fn new(db_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            db_dir: db_dir.into(),
            listen,
            name: "default".to_owned(),
            options: Options {
                durability: Durability::Sync,
                history_retention: HistoryRetention::Manual,
                ..Options::default()
            },
            max_request_bytes: MAX_REQUEST_BYTES_DEFAULT,
            watch_progress_interval: WATCH_PROGRESS_INTERVAL_DEFAULT,
            shutdown_grace: SHUTDOWN_GRACE,
            tls: None,
            bcrypt_cost: BCRYPT_COST_DEFAULT,
            auth_token: AuthToken::Simple,
            cluster: None,
        }
    }
}

/// A bound server with its database open; [`Server::serve_until`] runs it.
pub struct Server {
    context: Arc<Context>,
    /// The raft member, in a cluster.
    member: Option<Member>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `config.listen` and opens the database. Does not serve yet.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        let tls = config
            .tls
            .as_ref()
            .map(listener::tls_acceptor)
            .transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let (dir, options) = (config.db_dir.clone(), config.options.clone());
        let (bcrypt_cost, auth_token) = (config.bcrypt_cost, config.auth_token.clone());
        let auth = tokio::task::spawn_blocking(move || {
            // The keys first: a bad one stops the server before the database is opened.
            let tokens = TokenProvider::load(&auth_token)?;
            // The engine ignores the names it does not own, so the auth store's directory
            // inside the database directory is left alone (spec/FORMAT.md § 5.3).
            AuthStore::open(&dir, bcrypt_cost, tokens)
        })
        .await??;
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let client_url = format!(
            "{}://{local_addr}",
            if tls.is_some() { "https" } else { "http" }
        );
        let (store, identity, member) = match &config.cluster {
            None => {
                let dir = config.db_dir.clone();
                let db = tokio::task::spawn_blocking(move || {
                    Db::open(&dir, options).map_err(|source| ServeError::Open {
                        path: dir.clone(),
                        source,
                    })
                })
                .await??;
                let identity = Identity::new(&config.name, &config.db_dir, client_url);
                (Store::Single(db), identity, None)
            }
            Some(cluster) => {
                let id = cluster.initial_cluster.id_of(&config.name)?;
                let published = Published {
                    name: config.name.clone(),
                    client_urls: vec![client_url.clone()],
                };
                let member = Member::start(
                    id,
                    &config.db_dir,
                    &options,
                    cluster,
                    published,
                    shutdown_receiver.clone(),
                )
                .await?;
                let replica = Replica::new(
                    Arc::clone(&member.node),
                    cluster.initial_cluster.clone(),
                    tokio::runtime::Handle::current(),
                );
                let identity = Identity::member(
                    &config.name,
                    id,
                    cluster.initial_cluster.cluster_id(),
                    client_url,
                );
                (Store::Replicated(replica), identity, Some(member))
            }
        };
        tracing::info!(
            db = %config.db_dir.display(),
            %local_addr,
            member_id = format_args!("{:x}", identity.member_id),
            "database open, listening"
        );
        let context = Arc::new(Context {
            store,
            auth,
            identity,
            limits: Limits {
                max_request_bytes: config.max_request_bytes,
                watch_progress_interval: config
                    .watch_progress_interval
                    .max(Duration::from_millis(1)),
            },
            shutdown: shutdown_receiver,
        });
        Ok(Server {
            context,
            member,
            listener,
            tls,
            local_addr,
            shutdown,
            grace: config.shutdown_grace,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `signal` completes, then shuts down (see the module doc).
    pub async fn serve_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            context,
            member,
            listener,
            tls,
            shutdown,
            grace,
            ..
        } = self;
        let decode_max = context
            .limits
            .max_request_bytes
            .saturating_add(GRPC_OVERHEAD_BYTES);
        let services = gateway::Services {
            kv: Arc::new(KvService::new(Arc::clone(&context))),
            lease: Arc::new(LeaseService::new(Arc::clone(&context))),
            watch: Arc::new(WatchService::new(Arc::clone(&context))),
            maintenance: Arc::new(MaintenanceService::new(Arc::clone(&context))),
            cluster: Arc::new(ClusterService::new(Arc::clone(&context))),
            auth: Arc::new(AuthService::new(Arc::clone(&context))),
        };
        let mut grpc = Routes::builder();
        grpc.add_service(
            KvServer::from_arc(Arc::clone(&services.kv))
                .max_decoding_message_size(decode_max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            WatchServer::from_arc(Arc::clone(&services.watch))
                .max_decoding_message_size(decode_max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            LeaseServer::from_arc(Arc::clone(&services.lease))
                .max_decoding_message_size(decode_max),
        )
        .add_service(ClusterServer::from_arc(Arc::clone(&services.cluster)))
        .add_service(MaintenanceServer::from_arc(Arc::clone(
            &services.maintenance,
        )))
        .add_service(AuthServer::from_arc(Arc::clone(&services.auth)));
        // JSON spells bytes in base64 (4 characters for 3 bytes) and escapes some: twice the
        // gRPC limit holds any request the gRPC side would take.
        let gateway = gateway::router(&services, decode_max.saturating_mul(2));
        let metrics = Arc::new(Metrics::new());
        let grpc = axum::Router::new().fallback_service(Metered {
            inner: grpc.routes().into_axum_router(),
            metrics: Arc::clone(&metrics),
        });
        let routes = Routes::from(http::dispatch(
            grpc,
            http::router(Arc::clone(&context), metrics).merge(gateway),
        ));
        let router = tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes);
        let incoming = listener::incoming(listener, tls);
        let (fired, fired_receiver) = tokio::sync::oneshot::channel::<()>();
        let removed = member.as_ref().map(Member::removed);
        let on_signal = async move {
            match removed {
                Some(removed) => tokio::select! {
                    () = signal => {}
                    () = removed => tracing::warn!("this member was removed from the cluster"),
                },
                None => signal.await,
            }
            tracing::info!("shutting down: ending streams, finishing calls in flight");
            let _ = shutdown.send(true);
            let _ = fired.send(());
        };
        let serving = router.serve_with_incoming_shutdown(incoming, on_signal);
        tokio::pin!(serving);
        let served = tokio::select! {
            served = &mut serving => served.map_err(ServeError::from),
            () = async {
                if fired_receiver.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(?grace, "calls or connections still open after the grace period");
                Ok(())
            }
        };
        let db = context.db();
        let auth_db = context.auth.database();
        drop(context);
        // Raft stops before the state machine's database closes under it.
        let stopped = match member {
            Some(member) => member.stop().await,
            None => Ok(()),
        };
        let closed = tokio::task::spawn_blocking(move || {
            let auth_closed = auth_db.close();
            db.close().and(auth_closed)
        })
        .await;
        tracing::info!("database closed");
        served?;
        stopped?;
        closed?.map_err(ServeError::Close)
    }
}
