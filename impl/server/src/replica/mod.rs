//! The server as a member of a raft cluster (crate `kvstore-raft`): every write becomes a
//! command proposed through raft and answered once its entry is committed and applied here;
//! linearizable reads wait for this member to catch up with the leader's commit index; leases
//! are kept alive and expired by the leader's clock only.
//!
//! Invariants:
//! - A write is answered from the response its entry's apply produced on this member, so its
//!   revision is the one every member gave it.
//! - A lease grant without an id gets a random one chosen here (the command carries it, so
//!   every member grants the same id); a collision is retried with another.
//! - The methods block: they run on the blocking pool and wait on the server's runtime.

pub mod members;
mod start;

use std::sync::Arc;
use std::time::Duration;

use kvstore::Db;
use kvstore::txn::{Txn, TxnResponse};
use kvstore_raft::{Command, MemberChange, MemberRefusal, Node, RaftNode, Rejection, Response};
use rand::Rng;
use tokio::runtime::Handle;

use crate::error::{EtcdError, EtcdResult};

pub use members::{InitialCluster, InitialClusterError, InitialMember};
pub use start::{ClusterConfig, PeerTlsConfig};
pub(crate) use start::{Member, Published};

/// How many random lease ids a grant without one tries before it gives up.
const LEASE_ID_TRIES: usize = 8;

/// Raft's figures a Status call reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RaftStatus {
    pub(crate) leader: u64,
    pub(crate) term: u64,
    pub(crate) index: u64,
    pub(crate) applied: u64,
}

/// A member as MemberList reports it.
#[derive(Clone, Debug)]
pub(crate) struct MemberInfo {
    pub(crate) id: u64,
    /// Its name; empty until it published it (etcd's "unstarted").
    pub(crate) name: String,
    pub(crate) peer_url: String,
    /// Its client URLs; none until it published them.
    pub(crate) client_urls: Vec<String>,
    pub(crate) is_learner: bool,
}

/// This server's raft member (see the module doc).
pub(crate) struct Replica {
    node: Arc<RaftNode>,
    /// The initial members and the token (the ids of members added later).
    cluster: InitialCluster,
    runtime: Handle,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// The member `node` of `cluster`, whose futures run on `runtime`.
    pub(crate) fn new(node: Arc<RaftNode>, cluster: InitialCluster, runtime: Handle) -> Replica {
        Replica {
            node,
            cluster,
            runtime,
        }
    }

    /// The members this member's membership holds now, voters and learners, with what each
    /// published.
    pub(crate) fn members(&self) -> Vec<MemberInfo> {
        let metrics = self.node.raft().metrics().borrow().clone();
        let membership = &metrics.membership_config;
        let voters: Vec<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(&id, node)| MemberInfo {
                id,
                name: node.name.clone(),
                peer_url: node.addr.clone(),
                client_urls: node.client_urls.clone(),
                is_learner: !voters.contains(&id),
            })
            .collect()
    }

    /// Adds a member at `peer_urls` (exactly one `http://host:port`), a learner if `learner`;
    /// returns its id (derived from the URL and the cluster token, as a joining member derives
    /// its own).
    pub(crate) fn add_member(&self, peer_urls: &[String], learner: bool) -> EtcdResult<u64> {
        let [peer_url] = peer_urls else {
            return Err(EtcdError::MemberBadUrls);
        };
        members::check_url(peer_url).map_err(|_| EtcdError::MemberBadUrls)?;
        let id = self.cluster.member_id(peer_url);
        self.change(MemberChange::Add {
            id,
            node: Node::new(peer_url),
            learner,
        })?;
        Ok(id)
    }

    /// Removes member `id`.
    pub(crate) fn remove_member(&self, id: u64) -> EtcdResult<()> {
        self.change(MemberChange::Remove { id })
    }

    /// Moves member `id` to `peer_urls` (exactly one).
    pub(crate) fn update_member(&self, id: u64, peer_urls: &[String]) -> EtcdResult<()> {
        let [peer_url] = peer_urls else {
            return Err(EtcdError::MemberBadUrls);
        };
        members::check_url(peer_url).map_err(|_| EtcdError::MemberBadUrls)?;
        self.change(MemberChange::UpdatePeerUrl {
            id,
            addr: peer_url.clone(),
        })
    }

    /// Makes learner `id` a voter.
    pub(crate) fn promote_member(&self, id: u64) -> EtcdResult<()> {
        self.change(MemberChange::Promote { id })
    }

    fn change(&self, change: MemberChange) -> EtcdResult<()> {
        self.runtime
            .block_on(self.node.change_members(change))
            .map_err(replication_error)
    }

    /// Raft's figures for Status: the leader (0: none known), the term, the last log index
    /// and the last applied index.
    pub(crate) fn raft_status(&self) -> RaftStatus {
        let metrics = self.node.raft().metrics().borrow().clone();
        RaftStatus {
            leader: metrics.current_leader.unwrap_or(0),
            term: metrics.current_term,
            index: metrics.last_log_index.unwrap_or(0),
            applied: metrics.last_applied.map_or(0, |id| id.index),
        }
    }

    /// The state machine's live database.
    pub(crate) fn db(&self) -> Db {
        self.node.db()
    }

    /// Proposes `command` and waits for what applying it answered; a rejection is its etcd
    /// error.
    fn propose(&self, command: Command) -> EtcdResult<Response> {
        // Sabotage for the cluster test's negative control (feature `failpoints`).
        fail::fail_point!("replica::commit_locally", |_| self.commit_locally(&command));
        match self.runtime.block_on(self.node.propose(command)) {
            Ok(Response::Rejected(rejection)) => Err(rejected(rejection)),
            Ok(response) => Ok(response),
            Err(e) => Err(replication_error(e)),
        }
    }

    pub(crate) fn txn(&self, txn: Txn) -> EtcdResult<TxnResponse> {
        match self.propose(Command::Txn(txn))? {
            Response::Txn(response) => Ok(response),
            other => Err(unexpected("txn", &other)),
        }
    }

    pub(crate) fn grant(&self, id: Option<u64>, ttl: Duration) -> EtcdResult<u64> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let tries = if id.is_some() { 1 } else { LEASE_ID_TRIES };
        for _ in 0..tries {
            let id =
                id.unwrap_or_else(|| rand::rng().random_range(1..=kvstore::lease::LEASE_ID_MAX));
            match self.propose(Command::LeaseGrant { id, ttl_ms }) {
                Ok(Response::LeaseGranted { id }) => return Ok(id),
                Ok(other) => return Err(unexpected("lease grant", &other)),
                Err(EtcdError::LeaseExists) if tries > 1 => {}
                Err(e) => return Err(e),
            }
        }
        Err(EtcdError::LeaseExists)
    }

    pub(crate) fn revoke(&self, id: u64) -> EtcdResult<()> {
        match self.propose(Command::LeaseRevoke { id })? {
            Response::LeaseRevoked { .. } => Ok(()),
            other => Err(unexpected("lease revoke", &other)),
        }
    }

    pub(crate) fn compact(&self, revision: u64) -> EtcdResult<()> {
        match self.propose(Command::Compact { revision })? {
            Response::Compacted { .. } => Ok(()),
            other => Err(unexpected("compaction", &other)),
        }
    }

    pub(crate) fn keep_alive(&self, id: u64) -> EtcdResult<Duration> {
        self.runtime
            .block_on(self.node.keep_alive(id))
            .map_err(replication_error)?
            .ok_or(EtcdError::LeaseNotFound)
    }

    pub(crate) fn read_barrier(&self) -> EtcdResult<()> {
        self.runtime
            .block_on(self.node.read_barrier())
            .map_err(replication_error)
    }
}

/// A planted bug (failpoint `replica::commit_locally`): a txn committed to this member's
/// engine alone and acknowledged, never proposed: what acknowledging before a quorum has the
/// entry looks like to clients. Other commands are proposed as usual.
#[cfg(feature = "failpoints")]
impl Replica {
    fn commit_locally(&self, command: &Command) -> EtcdResult<Response> {
        match command {
            Command::Txn(txn) => Ok(Response::Txn(self.db().txn(txn.clone())?)),
            other => match self.runtime.block_on(self.node.propose(other.clone())) {
                Ok(response) => Ok(response),
                Err(e) => Err(replication_error(e)),
            },
        }
    }
}

/// A command every member refused, as etcd's error.
fn rejected(rejection: Rejection) -> EtcdError {
    match rejection {
        Rejection::LeaseNotFound { .. } => EtcdError::LeaseNotFound,
        Rejection::LeaseExists { .. } => EtcdError::LeaseExists,
        Rejection::Compacted { .. } => EtcdError::Compacted,
        Rejection::FutureRevision { .. } => EtcdError::FutureRev,
        // Through the engine's mapping: its txn checks say etcd's words.
        Rejection::InvalidArgument(what) => kvstore::Error::InvalidArgument(what).into(),
        other => EtcdError::Invalid(other.to_string()),
    }
}

/// A raft failure (no leader, shut down, this member's storage) as the call's error.
fn replication_error(error: kvstore_raft::Error) -> EtcdError {
    match error {
        kvstore_raft::Error::Engine(e) => e.into(),
        kvstore_raft::Error::NotLeader { .. } | kvstore_raft::Error::NoLeader { .. } => {
            EtcdError::NoLeader
        }
        kvstore_raft::Error::Timeout { .. } => EtcdError::Timeout,
        kvstore_raft::Error::MemberRefused(refusal) => match refusal {
            MemberRefusal::Exists { .. } => EtcdError::MemberExist,
            MemberRefusal::PeerUrlExists { .. } => EtcdError::PeerUrlExist,
            MemberRefusal::NotFound { .. } => EtcdError::MemberNotFound,
            MemberRefusal::NotLearner { .. } => EtcdError::MemberNotLearner,
            MemberRefusal::LearnerNotReady { .. } => EtcdError::LearnerNotReady,
            MemberRefusal::TooManyLearners => EtcdError::TooManyLearners,
            MemberRefusal::NotEnoughStarted => EtcdError::NotEnoughStartedMembers,
            MemberRefusal::Invalid(what) => EtcdError::Invalid(what),
        },
        other => EtcdError::Replication(other.to_string()),
    }
}

/// A response of the wrong kind for the command (a bug, never the client's).
fn unexpected(what: &str, response: &Response) -> EtcdError {
    EtcdError::Replication(format!("a {what} was answered {response:?}"))
}
