//! What a member does for a client whichever member it is: [`RaftNode::propose`],
//! [`RaftNode::read_barrier`] and [`RaftNode::keep_alive`] run on the leader, and a follower
//! relays them to the leader over the peer service (`Propose`, `ReadIndex`, `LeaseKeepAlive`).
//!
//! Invariants:
//! - A relayed call is answered only after the leader answered it: a write is acknowledged once
//!   the leader applied it *and* this member applied it too (so a read here after the answer
//!   sees it); a read barrier returns once this member applied the leader's read index.
//! - Every wait is bounded: at most [`RELAY_ATTEMPTS_MAX`] leaders are tried (following each
//!   "not the leader, ask N"), a leader is awaited at most [`LEADER_WAIT_ELECTIONS`] election
//!   timeouts, and a call or an apply at most [`RELAY_TIMEOUT`].
//! - A call that fails on the wire is not retried (a proposal may have been committed): the
//!   caller gets [`Error::Relay`] and decides.

use std::future::Future;
use std::time::Duration;

use crate::Node;
use kvstore::LeaseStatus;
use openraft::LogId;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::metrics::WaitError;

use crate::command::{Command, Response};
use crate::error::Error;
use crate::format::peer::{
    Relayed, RemoteFailure, keep_alive_reply_from_proto, propose_reply_from_proto,
    propose_request_to_proto, read_index_reply_from_proto,
};
use crate::format::peer_proto::{LeaseKeepAliveRequest, ReadIndexRequest};
use crate::node::RaftNode;
use crate::transport::client::{CallError, Client, call};

/// What an openraft write (a proposal or a membership change) that failed answers a relaying
/// member: the leader to go to, if raft names one, else the leader's failure.
pub(crate) fn write_refused<T>(e: &RaftError<u64, ClientWriteError<u64, Node>>) -> Relayed<T> {
    match e.forward_to_leader::<Node>() {
        Some(forward) => Relayed::NotLeader(forward.leader_id),
        None => Relayed::Failed(match e {
            RaftError::Fatal(fatal) => RemoteFailure::from_fatal(fatal),
            RaftError::APIError(api) => RemoteFailure::other(api),
        }),
    }
}

/// Most leaders one call tries.
pub const RELAY_ATTEMPTS_MAX: usize = 5;

/// How many of the config's longest election timeouts a call waits for a leader to be known.
pub const LEADER_WAIT_ELECTIONS: u32 = 3;

/// How long a relayed call may take, and how long this member may take to apply what the
/// leader answered.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

impl RaftNode {
    /// Whether this member is the leader (by its latest metrics).
    pub fn is_leader(&self) -> bool {
        self.raft().metrics().borrow().state.is_leader()
    }

    /// The leader this member knows, if any.
    pub async fn leader(&self) -> Option<u64> {
        self.raft().current_leader().await
    }

    /// Proposes `command` through the leader, relaying it if this member is a follower, and
    /// waits until it is applied here too; returns what applying it answered (a refusal is a
    /// [`Response::Rejected`]). While no leader is known it waits a few election timeouts,
    /// then fails with [`Error::NoLeader`].
    pub async fn propose(&self, command: Command) -> Result<Response, Error> {
        command.check_size()?;
        let (log_id, response) = self
            .relay(
                || self.propose_here(command.clone()),
                |mut client: Client, addr: String| {
                    let request = propose_request_to_proto(&command);
                    async move {
                        call(
                            &addr,
                            RELAY_TIMEOUT,
                            client.propose(request),
                            propose_reply_from_proto,
                        )
                        .await
                    }
                },
            )
            .await?;
        self.wait_applied(log_id.index).await?;
        Ok(response)
    }

    /// A linearizable read barrier: once it returns, a read of this member's engine sees every
    /// write acknowledged before it was called. On the leader, openraft's
    /// `ensure_linearizable`; on a follower, the leader's read index (`ReadIndex`), then a wait
    /// until this member applied it.
    pub async fn read_barrier(&self) -> Result<(), Error> {
        let read_log_id = self
            .relay(
                || self.read_index_here(),
                |mut client: Client, addr: String| async move {
                    call(
                        &addr,
                        RELAY_TIMEOUT,
                        client.read_index(ReadIndexRequest {}),
                        read_index_reply_from_proto,
                    )
                    .await
                },
            )
            .await?;
        if let Some(read_log_id) = read_log_id {
            self.wait_applied(read_log_id.index).await?;
        }
        Ok(())
    }

    /// Refreshes lease `lease` on the leader's engine (whose clock expires leases, see
    /// [`RaftNode::propose_lease_expiries`]), relayed from a follower; returns its TTL, or
    /// `None` if no such lease is granted (or its deadline passed).
    ///
    /// The leader is the one this member's (or the callee's) metrics name: a member deposed a
    /// moment ago may still refresh its own engine's deadline, which no longer expires anything;
    /// the new leader's engine then expires the lease on its own deadline (as etcd's lessor
    /// does across a leader change, where deadlines restart at the new leader).
    pub async fn keep_alive(&self, lease: u64) -> Result<Option<Duration>, Error> {
        self.relay(
            || self.keep_alive_here(lease),
            |mut client: Client, addr: String| async move {
                call(
                    &addr,
                    RELAY_TIMEOUT,
                    client.lease_keep_alive(LeaseKeepAliveRequest { id: lease }),
                    keep_alive_reply_from_proto,
                )
                .await
            },
        )
        .await
    }

    /// The lease's status on this member's engine: on the leader, the one a keep-alive
    /// refreshes (a follower's deadlines are not refreshed and mean nothing).
    pub fn lease_status(&self, lease: u64) -> Result<Option<LeaseStatus>, Error> {
        Ok(self.db().time_to_live(lease)?)
    }

    /// `Propose` served here: commits `command` if this member is the leader.
    pub(crate) async fn propose_here(&self, command: Command) -> Relayed<(LogId<u64>, Response)> {
        if let Err(e) = command.check_size() {
            return Relayed::Failed(RemoteFailure::other(e));
        }
        match self.raft().client_write(command).await {
            Ok(written) => Relayed::Done((written.log_id, written.data)),
            Err(e) => write_refused(&e),
        }
    }

    /// `ReadIndex` served here: confirms this member's leadership with a quorum.
    pub(crate) async fn read_index_here(&self) -> Relayed<Option<LogId<u64>>> {
        match self.raft().ensure_linearizable().await {
            Ok(read_log_id) => Relayed::Done(read_log_id),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Relayed::NotLeader(forward.leader_id)
            }
            Err(RaftError::APIError(e)) => Relayed::Failed(RemoteFailure::other(e)),
            Err(RaftError::Fatal(fatal)) => Relayed::Failed(RemoteFailure::from_fatal(&fatal)),
        }
    }

    /// `LeaseKeepAlive` served here: refreshes the lease if this member is the leader.
    pub(crate) async fn keep_alive_here(&self, lease: u64) -> Relayed<Option<Duration>> {
        if !self.is_leader() {
            return Relayed::NotLeader(self.leader().await);
        }
        match self.db().keep_alive(lease) {
            Ok(ttl) => Relayed::Done(Some(ttl)),
            Err(kvstore::Error::LeaseNotFound { .. }) => Relayed::Done(None),
            Err(e) => Relayed::Failed(RemoteFailure::other(e)),
        }
    }

    /// Runs a call on the leader: `here` if it is this member, else `there` with a client of
    /// the leader's address; follows "not the leader" answers (see the module doc).
    pub(crate) async fn relay<T, Here, HereFut, There, ThereFut>(
        &self,
        here: Here,
        there: There,
    ) -> Result<T, Error>
    where
        Here: Fn() -> HereFut,
        HereFut: Future<Output = Relayed<T>>,
        There: Fn(Client, String) -> ThereFut,
        ThereFut: Future<Output = Result<Relayed<T>, CallError>>,
    {
        let mut named = None;
        for _ in 0..RELAY_ATTEMPTS_MAX {
            let leader = match named.take() {
                Some(leader) => leader,
                None => self.wait_for_leader().await?,
            };
            let outcome = if leader == self.id() {
                here().await
            } else {
                let addr = self
                    .addr_of(leader)
                    .ok_or(Error::UnknownMember { id: leader })?;
                let relay_error = |source| Error::Relay { leader, source };
                let client = self.peers().client(&addr).map_err(relay_error)?;
                there(client, addr).await.map_err(relay_error)?
            };
            match outcome {
                Relayed::Done(t) => return Ok(t),
                Relayed::NotLeader(Some(other)) if other != leader => named = Some(other),
                Relayed::NotLeader(_) => self.wait_for_leader_other_than(leader).await,
                Relayed::Failed(failure) => return Err(Error::Remote { leader, failure }),
            }
        }
        Err(Error::NoLeader {
            waited: self.leader_wait(),
        })
    }

    fn leader_wait(&self) -> Duration {
        Duration::from_millis(self.raft().config().election_timeout_max)
            .saturating_mul(LEADER_WAIT_ELECTIONS)
    }

    /// The leader, once one is known (bounded by [`RaftNode::leader_wait`]).
    async fn wait_for_leader(&self) -> Result<u64, Error> {
        let waited = self.leader_wait();
        match self
            .raft()
            .wait(Some(waited))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
        {
            Ok(metrics) => metrics.current_leader.ok_or(Error::NoLeader { waited }),
            Err(WaitError::Timeout(..)) => Err(Error::NoLeader { waited }),
            Err(WaitError::ShuttingDown) => Err(Error::Raft("shutting down".to_owned())),
        }
    }

    /// Waits (bounded) until this member knows a leader other than `stale`.
    async fn wait_for_leader_other_than(&self, stale: u64) {
        let outcome = self
            .raft()
            .wait(Some(self.leader_wait()))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != stale),
                "another leader is known",
            )
            .await;
        if let Err(error) = outcome {
            tracing::debug!(%error, stale, "no other leader known");
        }
    }

    /// Waits (bounded by [`RELAY_TIMEOUT`]) until this member applied entry `index`.
    pub(crate) async fn wait_applied(&self, index: u64) -> Result<(), Error> {
        let what = format!("member {} applies entry {index}", self.id());
        match self
            .raft()
            .wait(Some(RELAY_TIMEOUT))
            .applied_index_at_least(Some(index), &what)
            .await
        {
            Ok(_) => Ok(()),
            Err(WaitError::Timeout(..)) => Err(Error::Timeout { what }),
            Err(WaitError::ShuttingDown) => Err(Error::Raft("shutting down".to_owned())),
        }
    }

    /// Member `id`'s address in this member's membership.
    fn addr_of(&self, id: u64) -> Option<String> {
        self.raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .map(|node| node.addr.clone())
    }
}
