//! The Cluster service's MemberList (etcd v3.4's `ClusterServer.MemberList`): alone, one
//! member, this server, with its name and client URL and no peer URL (there is no peer
//! protocol); in a cluster, every member of raft's membership with its name and peer URL, and
//! the client URL of this one only (members do not tell each other theirs).
//!
//! Invariants: the header carries the cluster id, member id and raft term but no revision,
//! exactly as etcd's member calls fill it.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{Member, MemberListRequest, MemberListResponse};
use crate::store::Store;

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
        let members = match &self.context.store {
            Store::Single(_) => vec![Member {
                id: identity.member_id,
                name: identity.name.clone(),
                peer_ur_ls: Vec::new(),
                client_ur_ls: identity.client_urls.clone(),
                is_learner: false,
            }],
            Store::Replicated(replica) => replica
                .members()
                .into_iter()
                .map(|member| Member {
                    id: member.id,
                    name: member.name,
                    peer_ur_ls: vec![member.peer_url],
                    client_ur_ls: if member.id == identity.member_id {
                        identity.client_urls.clone()
                    } else {
                        Vec::new()
                    },
                    is_learner: member.is_learner,
                })
                .collect(),
        };
        Ok(Response::new(MemberListResponse {
            header: Some(identity.header_without_revision()),
            members,
        }))
    }
}
