//! A member: its raft log database, its state machine and its openraft [`Raft`], opened from
//! one directory (`<dir>/raft/`, `<dir>/SM_CURRENT`, `<dir>/sm-<generation>/`).
//!
//! Invariant: a member's directory is opened by one [`RaftNode`] at a time (each engine
//! database holds its directory lock), and everything a member must not forget is in it.

use std::path::Path;
use std::sync::Arc;

use crate::Node;
use kvstore::vfs::Vfs;
use kvstore::{Db, Options};
use openraft::network::RaftNetworkFactory;
use openraft::{Config, Raft};

use crate::TypeConfig;
use crate::command::{Command, Response};
use crate::error::Error;
use crate::log_store::LogStore;
use crate::state_machine::{StateHandle, StateMachine};
use crate::transport::PeerAccess;
use crate::transport::client::Channels;

/// One running member.
pub struct RaftNode {
    id: u64,
    raft: Raft<TypeConfig>,
    state: StateHandle,
    log: LogStore,
    /// Channels to the other members, for relayed calls (`crate::relay`).
    peers: Channels,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode").field("id", &self.id).finish()
    }
}

impl RaftNode {
    /// Opens member `id`'s directory `dir` on `vfs` (creating it if new) and starts its raft
    /// with `config` over `network`. `options` are the engine options both databases share;
    /// `access` is how the member's relayed calls reach the others, and what its peer service
    /// ([`peer_server`](crate::peer_server)) demands of theirs.
    pub async fn start<N>(
        id: u64,
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: &Options,
        config: Arc<Config>,
        network: N,
        access: PeerAccess,
    ) -> Result<RaftNode, Error>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        vfs.create_dir_all(dir).map_err(|source| Error::Io {
            op: "create_dir_all",
            path: dir.to_path_buf(),
            source,
        })?;
        let log = LogStore::open(Arc::clone(&vfs), dir, options)?;
        let state_machine = StateMachine::open(vfs, dir, options, log.clone())?;
        let state = state_machine.handle();
        let raft = Raft::new(id, config, network, log.clone(), state_machine)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        Ok(RaftNode {
            id,
            raft,
            state,
            log,
            peers: Channels::new(access),
        })
    }

    /// The member's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its openraft handle.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Its state machine.
    pub fn state(&self) -> &StateHandle {
        &self.state
    }

    /// Its state machine's live database (see [`StateHandle::db`]).
    pub fn db(&self) -> Db {
        self.state.db()
    }

    /// Its channels to the other members.
    pub(crate) fn peers(&self) -> &Channels {
        &self.peers
    }

    /// Its raft log database.
    pub fn log(&self) -> &LogStore {
        &self.log
    }

    /// Proposes `command` through this member (which must be the leader) and waits until it
    /// is committed and applied here; returns what applying it answered.
    pub async fn write(&self, command: Command) -> Result<Response, Error> {
        command.check_size()?;
        match self.raft.client_write(command).await {
            Ok(written) => Ok(written.data),
            Err(e) => Err(match e.forward_to_leader::<Node>() {
                Some(forward) => Error::NotLeader {
                    leader: forward.leader_id,
                },
                None => Error::Raft(e.to_string()),
            }),
        }
    }

    /// On the leader, proposes the revocation of every lease whose deadline has passed by this
    /// member's clock, one entry each; returns the leases those entries revoked. Elsewhere it
    /// does nothing: followers never expire leases by themselves (their engines run with
    /// `LeaseExpiry::Manual`), they apply the leader's revocations. A server calls this
    /// periodically (as the engine's expiry thread would).
    pub async fn propose_lease_expiries(&self) -> Result<Vec<u64>, Error> {
        if self.raft.current_leader().await != Some(self.id) {
            return Ok(Vec::new());
        }
        let db = self.db();
        let mut revoked = Vec::new();
        for id in db.leases()? {
            let expired = db
                .time_to_live(id)?
                .is_some_and(|status| status.remaining.is_zero());
            if expired
                && let Response::LeaseRevoked { .. } =
                    self.write(Command::LeaseRevoke { id }).await?
            {
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    /// Stops the raft and releases the member's databases (once every clone of their handles
    /// is dropped).
    pub async fn shutdown(self) -> Result<(), Error> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Raft(e.to_string()))
    }
}
