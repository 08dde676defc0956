//! Where the services' reads and writes go: the server's own database, or (in a cluster) a
//! raft member whose state machine is the database (`crate::replica`).
//!
//! Every write a service makes goes through [`Store`]'s methods: a txn (puts and deletes are
//! one-op txns), a lease grant or revoke, a keep-alive, a compaction. Reads go to
//! [`Store::db`], the database the writes are applied to.
//!
//! Invariants:
//! - A write is acknowledged only once the database that reads are served from holds it (on a
//!   member: once its entry is committed and applied on the member that proposed it).
//! - The methods block (they run on tokio's blocking pool, through `Context::blocking`).

use std::time::Duration;

use kvstore::Db;
use kvstore::txn::{Txn, TxnResponse};

use crate::error::EtcdResult;
use crate::replica::Replica;

/// The server's database, alone or replicated (see the module doc).
#[derive(Debug)]
pub(crate) enum Store {
    /// One database, this process's alone.
    Single(Db),
    /// A member of a raft cluster.
    Replicated(Replica),
}

impl Store {
    /// The database reads are served from (a cheap clone; a member's changes when it
    /// installs a snapshot).
    pub(crate) fn db(&self) -> Db {
        match self {
            Store::Single(db) => db.clone(),
            Store::Replicated(replica) => replica.db(),
        }
    }

    /// Commits `txn`.
    pub(crate) fn txn(&self, txn: Txn) -> EtcdResult<TxnResponse> {
        match self {
            Store::Single(db) => Ok(db.txn(txn)?),
            Store::Replicated(replica) => replica.txn(txn),
        }
    }

    /// Grants a lease of `ttl`, with id `id` or (`None`) one the store picks; returns its id.
    pub(crate) fn grant(&self, id: Option<u64>, ttl: Duration) -> EtcdResult<u64> {
        match self {
            Store::Single(db) => Ok(match id {
                Some(id) => db.grant_id(id, ttl)?,
                None => db.grant(ttl)?,
            }),
            Store::Replicated(replica) => replica.grant(id, ttl),
        }
    }

    /// Revokes lease `id`, deleting its keys.
    pub(crate) fn revoke(&self, id: u64) -> EtcdResult<()> {
        match self {
            Store::Single(db) => {
                db.revoke(id)?;
                Ok(())
            }
            Store::Replicated(replica) => replica.revoke(id),
        }
    }

    /// Renews lease `id` (by the leader's clock in a cluster); returns its TTL.
    pub(crate) fn keep_alive(&self, id: u64) -> EtcdResult<Duration> {
        match self {
            Store::Single(db) => Ok(db.keep_alive(id)?),
            Store::Replicated(replica) => replica.keep_alive(id),
        }
    }

    /// Moves the history horizon to `revision`.
    pub(crate) fn compact(&self, revision: u64) -> EtcdResult<()> {
        match self {
            Store::Single(db) => Ok(db.compact_history(revision)?),
            Store::Replicated(replica) => replica.compact(revision),
        }
    }

    /// Waits until a linearizable read may be served from [`Store::db`]: at once alone; on a
    /// member, once it has applied everything the leader had committed when asked.
    pub(crate) fn read_barrier(&self) -> EtcdResult<()> {
        match self {
            Store::Single(_) => Ok(()),
            Store::Replicated(replica) => replica.read_barrier(),
        }
    }
}
