//! # kvstore-server
//!
//! kvstore's network server: etcd v3.4's gRPC API (package `etcdserverpb`, the protos in
//! `proto/`) over one [`kvstore::Db`], so that `etcdctl` and etcd's client libraries work
//! against it unchanged. [`Server::bind`] opens the database and the listener;
//! [`Server::serve_until`] answers until its shutdown future completes, then ends every stream
//! and closes the database.
//!
//! Modules, one concept each:
//! - `proto`: the code generated from `proto/` (messages, service traits).
//! - `error`: [`ServeError`] (starting and stopping) and `EtcdError`, what a call answers with
//!   etcd's gRPC code and message.
//! - `identity`: the cluster, member and raft numbers every response header carries.
//! - `revision`: revisions on the wire are the engine's plus one, as etcd's store starts at 1.
//! - `keys`: etcd's key/range_end rules and the conversion of versions to `mvccpb::KeyValue`.
//! - `context`: what every service shares (the database, the identity, the limits, the
//!   shutdown signal) and running blocking engine calls off the async threads.
//! - `auth`: etcd's auth and RBAC: the auth store (users, roles, the enabled flag, kept in a
//!   second engine database under the database directory), simple tokens and JWTs, the client
//!   certificate's common name as the user, the permission checks every service makes, and
//!   the Auth service.
//! - `kv`: the KV service (`range`, `write`, `txn`).
//! - `lease`, `watch`, `maintenance`, `cluster`: the other services.
//! - `server`: binding, serving and shutting down; `authority`: the repair of the invalid
//!   HTTP/2 `:authority` etcd 3.4's clients send on connections to one endpoint.
//! - `http`: one port, two protocols: gRPC by content type, everything else to the plain HTTP
//!   side (`/health`, `/version`).
//! - `listener`: accepting connections, with TLS or mutual TLS when configured.
//! - `gateway`: etcd's HTTP/JSON gateway (`/v3/...`), calling the same services.
//! - `metrics`: `/metrics`, per-method gRPC counters and latencies and the engine's figures.
//!
//! Invariants kept crate-wide:
//! - Nothing a client sends panics the server: every decode, conversion and limit is checked
//!   and answered with an error status. `unwrap`, `expect`, indexing and `panic!` are denied.
//! - Every engine call that may block (I/O, fsync, waiting for a commit) runs on tokio's
//!   blocking pool, never on an async worker thread.
//! - A response header's revision is the store's revision as etcd reports it for that call
//!   (see each service's module doc).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod auth;
mod authority;
mod cluster;
mod context;
mod error;
mod gateway;
mod http;
mod identity;
mod keys;
mod kv;
mod lease;
mod listener;
mod maintenance;
mod metrics;
pub mod proto;
pub mod replica;
mod revision;
mod server;
mod store;
mod watch;

pub use auth::{
    AuthToken, AuthTokenError, BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN,
    JWT_TTL_DEFAULT, JwtKeyError, JwtOptions, SignMethod,
};
pub use error::ServeError;
pub use identity::{ETCD_API_VERSION, ETCD_CLUSTER_VERSION, RAFT_TERM};
pub use listener::{HANDSHAKE_TIMEOUT, TlsConfig};
pub use server::{
    LEASE_TTL_MIN_SECS, MAX_REQUEST_BYTES_DEFAULT, SHUTDOWN_GRACE, Server, ServerConfig,
    WATCH_PROGRESS_INTERVAL_DEFAULT,
};
