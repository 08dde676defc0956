//! The Cluster service (etcd v3.4's `ClusterServer`). MemberList: alone, one member, this
//! server, with its name and client URL and no peer URL (there is no peer protocol); in a
//! cluster, every member of raft's membership with its peer URL and what it published (its name
//! and client URLs; empty until it started, as etcd lists an unstarted member). MemberAdd,
//! MemberRemove, MemberUpdate and MemberPromote change a cluster's membership through raft
//! (`kvstore_raft::membership`) and answer the members after the change; alone, there is no
//! membership to change and they answer `UNIMPLEMENTED`.
//!
//! Invariants: the header carries the cluster id, member id and raft term but no revision,
//! exactly as etcd's member calls fill it. A member change is answered only once it is
//! committed (and applied on this member, unless it removed this member).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use crate::replica::Replica;
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

    /// Runs `change` on this server's replica (on the blocking pool), then answers the header
    /// and the members after it.
    async fn change<T, F>(&self, change: F) -> Result<(T, ResponseHeader, Vec<Member>), Status>
    where
        T: Send + 'static,
        F: FnOnce(&Replica) -> EtcdResult<T> + Send + 'static,
    {
        self.context
            .blocking(move |context| {
                let Store::Replicated(replica) = &context.store else {
                    return Err(EtcdError::Unsupported(
                        "changing the membership of a server that is not a cluster member",
                    ));
                };
                let outcome = change(replica)?;
                Ok((
                    outcome,
                    context.identity.header_without_revision(),
                    members(context),
                ))
            })
            .await
    }
}

/// The members as MemberList answers them (see the module doc).
fn members(context: &Context) -> Vec<Member> {
    let identity = &context.identity;
    match &context.store {
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
                client_ur_ls: member.client_urls,
                is_learner: member.is_learner,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let MemberAddRequest {
            peer_ur_ls,
            is_learner,
        } = request.into_inner();
        let urls = peer_ur_ls.clone();
        let (id, header, members) = self
            .change(move |replica| replica.add_member(&urls, is_learner))
            .await?;
        Ok(Response::new(MemberAddResponse {
            header: Some(header),
            member: Some(Member {
                id,
                name: String::new(),
                peer_ur_ls,
                client_ur_ls: Vec::new(),
                is_learner,
            }),
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        let ((), header, members) = self
            .change(move |replica| replica.remove_member(id))
            .await?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(header),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let MemberUpdateRequest { id, peer_ur_ls } = request.into_inner();
        let ((), header, members) = self
            .change(move |replica| replica.update_member(id, &peer_ur_ls))
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(header),
            members,
        }))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: Some(self.context.identity.header_without_revision()),
            members: members(&self.context),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let id = request.into_inner().id;
        let ((), header, members) = self
            .change(move |replica| replica.promote_member(id))
            .await?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(header),
            members,
        }))
    }
}
