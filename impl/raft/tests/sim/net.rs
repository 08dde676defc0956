//! The simulated network's faults on top of the [`Router`](kvstore_raft::Router): every call
//! first waits a random delay drawn from the seed (so concurrent calls arrive out of order),
//! and is lost with a seeded probability on its way there or, after the target handled it, on
//! its way back. Partitions and one-way cuts stay the router's.
//!
//! Invariants:
//! - With [`Net::set`]`(0, 0)` a call is exactly the router's.
//! - Every random draw comes from one generator seeded by the run's seed, in the order the
//!   paused current-thread runtime runs the calls.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kvstore_raft::Node;
use kvstore_raft::TypeConfig;
use kvstore_raft::router::{RouterFactory, RouterLink};
use openraft::error::{
    Fatal, InstallSnapshotError, RPCError, RaftError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Snapshot, Vote};

use super::rng::Rng;

/// The loss probability's unit: a call is lost with probability `loss / LOSS_SCALE`.
pub const LOSS_SCALE: u64 = 1000;

struct Faults {
    rng: Rng,
    /// Per [`LOSS_SCALE`], for each direction of a call.
    loss: u64,
    /// The most extra delay of a call.
    jitter_ms_max: u64,
}

/// The faults every member's links share: cheap to clone, clones share them.
#[derive(Clone)]
pub struct Net {
    faults: Arc<Mutex<Faults>>,
}

#[derive(Debug, thiserror::Error)]
#[error("message lost by the simulated network")]
struct Lost;

impl Net {
    /// A network without faults whose draws follow `seed`.
    pub fn new(seed: u64) -> Net {
        Net {
            faults: Arc::new(Mutex::new(Faults {
                rng: Rng::new(seed),
                loss: 0,
                jitter_ms_max: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on each direction of a call is lost with probability `loss / LOSS_SCALE`, and
    /// each call waits an extra `0..=jitter_ms_max` milliseconds.
    pub fn set(&self, loss: u64, jitter_ms_max: u64) {
        let mut faults = self.lock();
        faults.loss = loss;
        faults.jitter_ms_max = jitter_ms_max;
    }

    /// Waits the call's random delay, then loses the request or lets it through.
    async fn send(&self) -> Result<(), Unreachable> {
        let delay_ms = {
            let mut faults = self.lock();
            let max = faults.jitter_ms_max;
            faults.rng.below(max + 1)
        };
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        self.maybe_lose()
    }

    /// Loses the reply or lets it through.
    fn maybe_lose(&self) -> Result<(), Unreachable> {
        let mut faults = self.lock();
        let loss = faults.loss;
        if loss > 0 && faults.rng.below(LOSS_SCALE) < loss {
            return Err(Unreachable::new(&Lost));
        }
        Ok(())
    }

    /// Member `from`'s factory: the router's, with these faults.
    pub fn factory(&self, router: RouterFactory) -> NetFactory {
        NetFactory {
            net: self.clone(),
            router,
        }
    }
}

/// A member's view of the faulty network ([`RaftNetworkFactory`]).
#[derive(Clone)]
pub struct NetFactory {
    net: Net,
    router: RouterFactory,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetLink;

    async fn new_client(&mut self, target: u64, node: &Node) -> NetLink {
        NetLink {
            net: self.net.clone(),
            link: self.router.new_client(target, node).await,
        }
    }
}

/// One member's faulty link to another ([`RaftNetwork`]).
pub struct NetLink {
    net: Net,
    link: RouterLink,
}

impl RaftNetwork<TypeConfig> for NetLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        self.net.send().await?;
        let reply = self.link.append_entries(rpc, option).await;
        self.net.maybe_lose()?;
        reply
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Node, RaftError<u64, InstallSnapshotError>>,
    > {
        self.net.send().await?;
        let reply = self.link.install_snapshot(rpc, option).await;
        self.net.maybe_lose()?;
        reply
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        self.net.send().await?;
        let reply = self.link.vote(rpc, option).await;
        self.net.maybe_lose()?;
        reply
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        self.net.send().await?;
        let reply = self
            .link
            .full_snapshot(vote, snapshot, cancel, option)
            .await;
        self.net.maybe_lose()?;
        reply
    }
}
