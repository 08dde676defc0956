//! An in-process network for tests and simulations: every member's [`Raft`] in one map, each
//! RPC a direct call, with links that can be cut one way or both and members that can be
//! removed (killed) and added back. The gRPC transport of a real cluster implements the same
//! [`RaftNetworkFactory`] and replaces this.
//!
//! Invariants:
//! - A call over a cut link, or to a member not in the router, fails with
//!   [`Unreachable`] and reaches nothing; a reply over a cut return link is lost after the
//!   target handled the call (as a real network loses replies).
//! - Each call first waits [`Router::delay`] (virtual time under a paused tokio clock), so a
//!   test's schedule depends on the runtime's timer order, not on wall-clock speed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::Node;
use openraft::error::{
    Fatal, InstallSnapshotError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Raft, Snapshot, Vote};

use crate::TypeConfig;

#[derive(Default)]
struct Links {
    members: BTreeMap<u64, Raft<TypeConfig>>,
    /// Cut one-way links `(from, to)`.
    cut: BTreeSet<(u64, u64)>,
    delay: Duration,
}

/// The in-process network: cheap to clone, clones share it.
#[derive(Clone, Default)]
pub struct Router {
    links: Arc<Mutex<Links>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let links = self.lock();
        f.debug_struct("Router")
            .field("members", &links.members.keys().collect::<Vec<_>>())
            .field("cut", &links.cut)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("link {from} -> {to} is down")]
struct LinkDown {
    from: u64,
    to: u64,
}

impl Router {
    /// An empty network whose calls each take `delay`.
    pub fn new(delay: Duration) -> Router {
        let router = Router::default();
        router.lock().delay = delay;
        router
    }

    fn lock(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects member `id`.
    pub fn add(&self, id: u64, raft: Raft<TypeConfig>) {
        self.lock().members.insert(id, raft);
    }

    /// Disconnects member `id` (a killed member); returns its handle.
    pub fn remove(&self, id: u64) -> Option<Raft<TypeConfig>> {
        self.lock().members.remove(&id)
    }

    /// Cuts the link `from -> to` (one way).
    pub fn cut(&self, from: u64, to: u64) {
        self.lock().cut.insert((from, to));
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&self, id: u64) {
        let mut links = self.lock();
        let others: Vec<u64> = links.members.keys().copied().filter(|&o| o != id).collect();
        for other in others {
            links.cut.insert((id, other));
            links.cut.insert((other, id));
        }
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// The simulated per-call delay.
    pub fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// The factory member `from` uses to reach the others.
    pub fn factory(&self, from: u64) -> RouterFactory {
        RouterFactory {
            router: self.clone(),
            from,
        }
    }

    /// The target's handle if the link `from -> to` is up.
    fn reach(&self, from: u64, to: u64) -> Result<Raft<TypeConfig>, Unreachable> {
        let links = self.lock();
        if links.cut.contains(&(from, to)) {
            return Err(Unreachable::new(&LinkDown { from, to }));
        }
        links
            .members
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&LinkDown { from, to }))
    }

    /// Sends a call `from -> to` and brings its reply back, or fails as the network would.
    async fn call<T, F, Fut>(&self, from: u64, to: u64, f: F) -> Result<T, Unreachable>
    where
        F: FnOnce(Raft<TypeConfig>) -> Fut,
        Fut: Future<Output = T>,
    {
        tokio::time::sleep(self.delay()).await;
        let target = self.reach(from, to)?;
        let reply = f(target).await;
        // The reply travels back over `to -> from`.
        self.reach(to, from)?;
        Ok(reply)
    }
}

/// Member `from`'s view of the network ([`RaftNetworkFactory`]).
#[derive(Clone, Debug)]
pub struct RouterFactory {
    router: Router,
    from: u64,
}

impl RaftNetworkFactory<TypeConfig> for RouterFactory {
    type Network = RouterLink;

    async fn new_client(&mut self, target: u64, _node: &Node) -> RouterLink {
        RouterLink {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

/// One member's link to another ([`RaftNetwork`]).
#[derive(Clone, Debug)]
pub struct RouterLink {
    router: Router,
    from: u64,
    to: u64,
}

impl RaftNetwork<TypeConfig> for RouterLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        let reply = self
            .router
            .call(self.from, self.to, |raft| async move {
                raft.append_entries(rpc).await
            })
            .await?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Node, RaftError<u64, InstallSnapshotError>>,
    > {
        let reply = self
            .router
            .call(self.from, self.to, |raft| async move {
                raft.install_snapshot(rpc).await
            })
            .await?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        let reply = self
            .router
            .call(
                self.from,
                self.to,
                |raft| async move { raft.vote(rpc).await },
            )
            .await?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let reply = self
            .router
            .call(self.from, self.to, |raft| async move {
                raft.install_full_snapshot(vote, snapshot).await
            })
            .await?;
        reply.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.to, e)))
    }
}
