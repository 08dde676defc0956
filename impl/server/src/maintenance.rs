//! The Maintenance service's Status and Alarm (etcd v3.4's `maintenanceServer`).
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
//! Invariants: the header is the current revision, as etcd's `header.fill`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::error::EtcdResult;
use crate::identity::{Identity, RAFT_TERM, wire_i64};
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{AlarmRequest, AlarmResponse, StatusRequest, StatusResponse};

/// The Maintenance service over a [`Context`].
#[derive(Debug)]
pub(crate) struct MaintenanceService {
    context: Arc<Context>,
}

impl MaintenanceService {
    pub(crate) fn new(context: Arc<Context>) -> MaintenanceService {
        MaintenanceService { context }
    }
}

fn status(context: &Context) -> EtcdResult<StatusResponse> {
    let revision = context.current_revision()?;
    let stats = context.db.stats();
    let tables: u64 = stats.bytes_per_level.iter().sum();
    let size = wire_i64(tables.saturating_add(stats.wal_bytes));
    Ok(StatusResponse {
        header: Some(context.header(revision)),
        version: Identity::version(),
        db_size: size,
        leader: context.identity.member_id,
        raft_index: crate::revision::wire(revision).unsigned_abs(),
        raft_term: RAFT_TERM,
        raft_applied_index: crate::revision::wire(revision).unsigned_abs(),
        errors: Vec::new(),
        db_size_in_use: size,
        is_learner: false,
    })
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        _request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
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
}
