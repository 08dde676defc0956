//! The Cluster service's MemberList (etcd v3.4's `ClusterServer.MemberList`): one member, this
//! server, with its name and client URL and no peer URL (there is no peer protocol).
//!
//! Invariants: the header carries the cluster id, member id and raft term but no revision,
//! exactly as etcd's member calls fill it.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{Member, MemberListRequest, MemberListResponse};

/// The Cluster service over a [`Context`].
#[derive(Debug)]
pub(crate) struct ClusterService {
    context: Arc<Context>,
}

impl ClusterService {
    pub(crate) fn new(context: Arc<Context>) -> ClusterService {
        ClusterService { context }
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let identity = &self.context.identity;
        Ok(Response::new(MemberListResponse {
            header: Some(identity.header_without_revision()),
            members: vec![Member {
                id: identity.member_id,
                name: identity.name.clone(),
                peer_ur_ls: Vec::new(),
                client_ur_ls: identity.client_urls.clone(),
                is_learner: false,
            }],
        }))
    }
}
