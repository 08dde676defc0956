//! What every service shares: the store (the database, alone or replicated), the auth store, the server's identity, its limits
//! and the shutdown signal; and the one way services run blocking engine calls.
//!
//! Invariants:
//! - Engine calls that may block (commits wait for their fsync, reads may read files) run
//!   through [`Context::blocking`], on tokio's blocking pool.

use std::sync::Arc;
use std::time::Duration;

use kvstore::Db;
use tokio::sync::watch;
use tonic::Status;

use crate::auth::AuthStore;
use crate::error::{EtcdError, EtcdResult};
use crate::identity::Identity;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::store::Store;

/// Limits a request is checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// etcd's `--max-request-bytes`: a write request whose encoding is longer is refused
    /// with `etcdserver: request is too large`.
    pub(crate) max_request_bytes: usize,
    /// How often a watch created with `progress_notify` is told the revision when it had no
    /// event (etcd's `--experimental-watch-progress-notify-interval`, 10 minutes by default).
    pub(crate) watch_progress_interval: Duration,
}

/// The state every service holds (see the module doc).
#[derive(Debug)]
pub(crate) struct Context {
    /// Where reads and writes go.
    pub(crate) store: Store,
    /// Users, roles, the enabled flag and the tokens.
    pub(crate) auth: AuthStore,
    pub(crate) identity: Identity,
    pub(crate) limits: Limits,
    /// Becomes `true` when the server shuts down: streams end.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Context {
    /// Runs `work` (blocking engine calls) on the blocking pool and turns its error into the
    /// call's status.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Context) -> EtcdResult<T> + Send + 'static,
    {
        let context = Arc::clone(self);
        match tokio::task::spawn_blocking(move || work(&context)).await {
            Ok(result) => result.map_err(Status::from),
            Err(e) => Err(Status::internal(format!(
                "kvstore: a blocking task failed: {e}"
            ))),
        }
    }

    /// The database reads are served from ([`Store::db`]).
    pub(crate) fn db(&self) -> Db {
        self.store.db()
    }

    /// The store's current revision (etcd's `KV().Rev()`).
    pub(crate) fn current_revision(&self) -> EtcdResult<u64> {
        Ok(self.db().snapshot()?.revision())
    }

    /// A response header at `revision`.
    pub(crate) fn header(&self, revision: u64) -> ResponseHeader {
        self.identity.header(revision)
    }

    /// A response header at the current revision.
    pub(crate) fn current_header(&self) -> EtcdResult<ResponseHeader> {
        Ok(self.header(self.current_revision()?))
    }

    /// Refuses a write request of `encoded_len` bytes over the request size limit (etcd checks
    /// the raft entry the request becomes, a few bytes longer; see the README).
    pub(crate) fn check_size(&self, encoded_len: usize) -> EtcdResult<()> {
        if encoded_len > self.limits.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        Ok(())
    }

    /// Whether the server is shutting down.
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
