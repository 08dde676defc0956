//! The serving side: [`PeerService`] answers the peer service's calls from one member's
//! [`RaftNode`]; [`peer_server`] wraps it for a `tonic::transport::Server` or an axum router.
//!
//! Invariants:
//! - A call that does not carry this member's cluster id is refused before anything else
//!   ([`ClusterCheck`]).
//! - A request is decoded and checked (`format::peer`) before the raft or the engine sees it;
//!   a bad one is answered `INVALID_ARGUMENT` and changes nothing.
//! - A snapshot stream is accepted only as one head then data chunks of at most
//!   [`SNAPSHOT_CHUNK_LEN_MAX`] bytes adding up to exactly the head's length (at most
//!   [`SNAPSHOT_LEN_MAX`]); only then is it installed, whole.
//! - What the raft or engine answers, failures included, is the reply message's; a status other
//!   than `OK` means the call itself failed.

use crate::format::peer_members::{
    ChangeMembersReply, ChangeMembersRequest, change_members_reply_to_proto,
    change_members_request_from_proto,
};
use std::io::Cursor;
use std::sync::Arc;

use openraft::Snapshot;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};

use super::access::ClusterCheck;
use super::rpc::peer_server::{Peer, PeerServer};
use crate::format::FormatError;
use crate::format::peer::{
    PEER_MESSAGE_LEN_MAX, SNAPSHOT_CHUNK_LEN_MAX, SNAPSHOT_LEN_MAX, append_entries_from_proto,
    append_entries_reply_to_proto, install_snapshot_reply_to_proto, keep_alive_reply_to_proto,
    propose_reply_to_proto, propose_request_from_proto, read_index_reply_to_proto,
    snapshot_head_from_proto, vote_reply_to_proto, vote_request_from_proto,
};
use crate::format::peer_proto::{
    AppendEntriesReply, AppendEntriesRequest, InstallSnapshotReply, LeaseKeepAliveReply,
    LeaseKeepAliveRequest, ProposeReply, ProposeRequest, ReadIndexReply, ReadIndexRequest,
    SnapshotChunk, SnapshotPart, VoteReply, VoteRequest,
};
use crate::node::RaftNode;

/// The peer service of one member.
#[derive(Clone, Debug)]
pub struct PeerService {
    node: Arc<RaftNode>,
}

impl PeerService {
    /// The service answering from `node`.
    pub fn new(node: Arc<RaftNode>) -> PeerService {
        PeerService { node }
    }
}

/// `node`'s peer service, ready to add to a `tonic::transport::Server` (or an axum router
/// through tonic's `Routes`): it answers calls from `node`'s cluster only (the cluster id of
/// its [`PeerAccess`](super::PeerAccess)), its decoder and encoder bounded by
/// [`PEER_MESSAGE_LEN_MAX`].
pub fn peer_server(
    node: Arc<RaftNode>,
) -> InterceptedService<PeerServer<PeerService>, ClusterCheck> {
    let check = ClusterCheck::new(node.peers().access().cluster_id);
    let server = PeerServer::new(PeerService::new(node))
        .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
        .max_encoding_message_size(PEER_MESSAGE_LEN_MAX);
    InterceptedService::new(server, check)
}

fn invalid(e: FormatError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Reads a snapshot stream (see the module doc) into the snapshot it carries.
async fn receive_snapshot(
    stream: &mut Streaming<SnapshotChunk>,
) -> Result<(openraft::Vote<u64>, Snapshot<crate::TypeConfig>), Status> {
    const S: &str = "SnapshotChunk";
    let head = match stream.message().await?.and_then(|chunk| chunk.part) {
        Some(SnapshotPart::Head(head)) => head,
        _ => {
            return Err(invalid(FormatError::invalid(
                S,
                "part",
                "the first chunk is not a head",
            )));
        }
    };
    let (vote, meta, len) = snapshot_head_from_proto(&head).map_err(invalid)?;
    debug_assert!(len <= SNAPSHOT_LEN_MAX);
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await? {
        let bytes = match chunk.part {
            Some(SnapshotPart::Data(bytes)) => bytes,
            Some(SnapshotPart::Head(_)) => {
                return Err(invalid(FormatError::invalid(S, "head", "a second head")));
            }
            None => return Err(invalid(FormatError::missing(S, "part"))),
        };
        if bytes.len() > SNAPSHOT_CHUNK_LEN_MAX {
            return Err(invalid(FormatError::TooLong {
                structure: S,
                len: bytes.len(),
                max: SNAPSHOT_CHUNK_LEN_MAX,
            }));
        }
        let total = (data.len() as u64).saturating_add(bytes.len() as u64);
        if total > len {
            return Err(invalid(FormatError::invalid(
                S,
                "data",
                format!("more than the {len} bytes the head announced"),
            )));
        }
        data.extend_from_slice(&bytes);
    }
    if data.len() as u64 != len {
        return Err(invalid(FormatError::invalid(
            S,
            "data",
            format!("{} bytes, the head announced {len}", data.len()),
        )));
    }
    Ok((
        vote,
        Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        },
    ))
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(
        &self,
        request: Request<AppendEntriesRequest>,
    ) -> Result<Response<AppendEntriesReply>, Status> {
        let rpc = append_entries_from_proto(request.get_ref()).map_err(invalid)?;
        let reply = self.node.raft().append_entries(rpc).await;
        Ok(Response::new(append_entries_reply_to_proto(&reply)))
    }

    async fn vote(&self, request: Request<VoteRequest>) -> Result<Response<VoteReply>, Status> {
        let rpc = vote_request_from_proto(request.get_ref()).map_err(invalid)?;
        let reply = self.node.raft().vote(rpc).await;
        Ok(Response::new(vote_reply_to_proto(&reply)))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<InstallSnapshotReply>, Status> {
        let (vote, snapshot) = receive_snapshot(&mut request.into_inner()).await?;
        let reply = self.node.raft().install_full_snapshot(vote, snapshot).await;
        Ok(Response::new(install_snapshot_reply_to_proto(&reply)))
    }

    async fn propose(
        &self,
        request: Request<ProposeRequest>,
    ) -> Result<Response<ProposeReply>, Status> {
        let command = propose_request_from_proto(request.get_ref()).map_err(invalid)?;
        let reply = self.node.propose_here(command).await;
        Ok(Response::new(propose_reply_to_proto(&reply)))
    }

    async fn read_index(
        &self,
        _request: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        let reply = self.node.read_index_here().await;
        Ok(Response::new(read_index_reply_to_proto(&reply)))
    }

    async fn lease_keep_alive(
        &self,
        request: Request<LeaseKeepAliveRequest>,
    ) -> Result<Response<LeaseKeepAliveReply>, Status> {
        let reply = self.node.keep_alive_here(request.get_ref().id).await;
        Ok(Response::new(keep_alive_reply_to_proto(&reply)))
    }

    async fn change_members(
        &self,
        request: Request<ChangeMembersRequest>,
    ) -> Result<Response<ChangeMembersReply>, Status> {
        let change = change_members_request_from_proto(request.get_ref()).map_err(invalid)?;
        let reply = self.node.change_members_here(change).await;
        Ok(Response::new(change_members_reply_to_proto(&reply)))
    }
}
