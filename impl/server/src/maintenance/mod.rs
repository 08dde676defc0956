//! The Maintenance service (etcd v3.4's `maintenanceServer`): Status, Alarm and Defragment
//! here; Hash and HashKV in `hash`, Snapshot in `snapshot`.
//!
//! Status reports one member that leads itself: `leader` is the member id, `raftTerm` is
//! [`crate::RAFT_TERM`], `raftIndex` and `raftAppliedIndex` are the store's (wire) revision (there is no
//! raft log; the revision grows with every write as etcd's index does), `dbSize` and
//! `dbSizeInUse` are the bytes of the database's tables plus the WAL not yet in a table, and
//! `version` is [`crate::ETCD_API_VERSION`] with kvstore's version as build metadata.
//!
//! Alarm: kvstore raises no alarm (no space quota, no corruption check across members), so a
//! GET lists none; ACTIVATE and DEACTIVATE keep nothing and answer the same empty list.
//!
//! Defragment, which rewrites etcd's bolt file without its free pages, is a full compaction
//! here: every table is merged down to the last level, dropping what the history horizon and
//! deletions left unreachable. It answers when the compaction is done.
//!
//! Auth: with auth enabled, Defragment, Hash, HashKV and Snapshot need the root role (etcd
//! 3.4's `authMaintenanceServer`), refused with etcd's untranslated auth errors (`auth:
//! permission denied`, code `UNKNOWN`); Status and Alarm are not checked, as in etcd 3.4 (but Alarm, a
//! raft request there, refuses a token that names no user).
//!
//! Invariants: the header is the current revision, as etcd's `header.fill`.

mod hash;
mod snapshot;

use std::sync::Arc;

use kvstore::KeyRange;
use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::identity::{Identity, RAFT_TERM, wire_i64};
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, SnapshotRequest, StatusRequest, StatusResponse,
};
use crate::replica::RaftStatus;
use crate::store::Store;

/// The Maintenance service over a [`Context`].
#[derive(Debug)]
pub(crate) struct MaintenanceService {
    context: Arc<Context>,
}

impl MaintenanceService {
    pub(crate) fn new(context: Arc<Context>) -> MaintenanceService {
        MaintenanceService { context }
    }

    /// Refuses the call unless its caller may make admin calls (see the module doc), with
    /// the untranslated errors etcd's Maintenance service answers.
    fn check_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.context
            .auth
            .caller(request)
            .and_then(|caller| caller.check_admin())
            .map_err(EtcdError::untranslated)
    }
}

fn status(context: &Context) -> EtcdResult<StatusResponse> {
    let revision = context.current_revision()?;
    let stats = context.db().stats();
    let tables: u64 = stats.bytes_per_level.iter().sum();
    let size = wire_i64(tables.saturating_add(stats.wal_bytes));
    let raft = match &context.store {
        // Alone: always the leader, term 1, and the revision for the indexes.
        Store::Single(_) => RaftStatus {
            leader: context.identity.member_id,
            term: RAFT_TERM,
            index: crate::revision::wire(revision).unsigned_abs(),
            applied: crate::revision::wire(revision).unsigned_abs(),
        },
        Store::Replicated(replica) => replica.raft_status(),
    };
    Ok(StatusResponse {
        header: Some(context.header(revision)),
        version: Identity::version(),
        db_size: size,
        leader: raft.leader,
        raft_index: raft.index,
        raft_term: raft.term,
        raft_applied_index: raft.applied,
        errors: Vec::new(),
        db_size_in_use: size,
        is_learner: false,
    })
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        // Any caller may ask, but a token must name a user (a raft request in etcd).
        self.context.auth.caller(&request)?;
        self.context
            .blocking(|context| {
                Ok(AlarmResponse {
                    header: Some(context.current_header()?),
                    alarms: Vec::new(),
                })
            })
            .await
            .map(Response::new)
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.context.blocking(status).await.map(Response::new)
    }

    async fn defragment(
        &self,
        request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.check_admin(&request)?;
        self.context
            .blocking(|context| {
                context.db().compact_range(KeyRange::all())?;
                Ok(DefragmentResponse {
                    header: Some(context.current_header()?),
                })
            })
            .await
            .map(Response::new)
    }

    async fn hash(&self, request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.check_admin(&request)?;
        let request = request.into_inner();
        self.context
            .blocking(move |context| hash::hash(context, &request))
            .await
            .map(Response::new)
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.check_admin(&request)?;
        let request = request.into_inner();
        self.context
            .blocking(move |context| hash::hash_kv(context, &request))
            .await
            .map(Response::new)
    }

    type SnapshotStream = snapshot::SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.check_admin(&request)?;
        Ok(Response::new(snapshot::snapshot(&self.context)))
    }
}
