//! The calling side: [`PeerNetwork`] (openraft's [`RaftNetworkFactory`]) and [`PeerLink`]
//! (one member's [`RaftNetwork`] to another), over channels to the members' addresses.
//!
//! Invariants:
//! - A channel is made once per address and connects lazily (first call), with a connect
//!   timeout of [`CONNECT_TIMEOUT`]; tonic reconnects it after a failure. At most
//!   [`CHANNELS_MAX`] addresses are kept. An `https://` address is reached over TLS as
//!   [`PeerAccess::tls`] says (unreachable without it), an `http://` one in plain text.
//! - Every call carries this member's cluster id ([`ClusterStamp`]).
//! - Every call ends within openraft's hard TTL ([`RPCOption::hard_ttl`]; for a snapshot, the
//!   TTL once per chunk and once for the install), else it is a `NetworkError` (retried at
//!   once); only an unusable address or no connection is `Unreachable` (backed off).
//! - A reply is decoded and checked (`format::peer`) before openraft sees it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Node;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Snapshot, Vote};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::access::{ClusterStamp, PeerAccess};
use super::rpc::peer_client::PeerClient;
use crate::TypeConfig;
use crate::format::FormatError;
use crate::format::peer::{
    PEER_MESSAGE_LEN_MAX, SNAPSHOT_CHUNK_LEN_MAX, append_entries_reply_from_proto,
    append_entries_to_proto, install_snapshot_reply_from_proto, snapshot_head_to_proto,
    vote_reply_from_proto, vote_request_to_proto,
};
use crate::format::peer_proto::{SnapshotChunk, SnapshotPart};

/// How long connecting to a member may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Most member addresses with a channel kept; past it, the channels are dropped and remade.
pub const CHANNELS_MAX: usize = crate::format::MEMBERS_MAX;

/// A gRPC client of the peer service, stamping this member's cluster id on every call.
pub type Client = PeerClient<InterceptedService<Channel, ClusterStamp>>;

/// Channels to members by address: cheap to clone, clones share them.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    access: Arc<PeerAccess>,
    /// The stamp of `access.cluster_id`, made once.
    stamp: ClusterStamp,
    by_addr: Arc<Mutex<BTreeMap<String, Channel>>>,
}

/// Why a call failed before any member answered it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The address is not a URL tonic can connect to.
    #[error("bad member address {addr:?}: {reason}")]
    BadAddress {
        /// The address.
        addr: String,
        /// tonic's reason.
        reason: String,
    },
    /// No connection, or the call failed on the wire (the gRPC status).
    #[error("call to {addr} failed: {status}")]
    Status {
        /// The address.
        addr: String,
        /// The status.
        status: tonic::Status,
    },
    /// No answer within the deadline.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout {
        /// The address.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The answer is not a valid reply.
    #[error("bad reply from {addr}: {source}")]
    BadReply {
        /// The address.
        addr: String,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },
}

impl CallError {
    /// Whether the target cannot be reached at all (an unusable address, no connection, or a
    /// member of another cluster that refuses the call), which openraft answers by backing
    /// off; anything else (a timeout, a bad reply, another status) is retried at once. A
    /// timeout must not back off: openraft bounds `AppendEntries` by the heartbeat interval,
    /// and a backoff after one slow call would silence the heartbeats long enough for the
    /// follower to start an election.
    fn is_unreachable(&self) -> bool {
        match self {
            CallError::BadAddress { .. } => true,
            CallError::Status { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::FailedPrecondition
            ),
            CallError::Timeout { .. } | CallError::BadReply { .. } => false,
        }
    }

    fn into_rpc<E: std::error::Error>(self) -> RPCError<u64, Node, E> {
        if self.is_unreachable() {
            RPCError::Unreachable(Unreachable::new(&self))
        } else {
            RPCError::Network(NetworkError::new(&self))
        }
    }

    fn into_streaming(self) -> StreamingError<TypeConfig, Fatal<u64>> {
        if self.is_unreachable() {
            StreamingError::Unreachable(Unreachable::new(&self))
        } else {
            StreamingError::Network(NetworkError::new(&self))
        }
    }
}

impl Channels {
    /// No channel yet; calls will go as `access` says.
    pub(crate) fn new(access: PeerAccess) -> Channels {
        Channels {
            stamp: ClusterStamp::new(access.cluster_id),
            access: Arc::new(access),
            by_addr: Arc::default(),
        }
    }

    /// How calls go.
    pub(crate) fn access(&self) -> &PeerAccess {
        &self.access
    }

    /// A client of the member at `addr` (connecting lazily).
    pub(crate) fn client(&self, addr: &str) -> Result<Client, CallError> {
        let mut by_addr = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match by_addr.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let bad_address = |e: tonic::transport::Error| CallError::BadAddress {
                    addr: addr.to_owned(),
                    reason: e.to_string(),
                };
                let mut endpoint = Endpoint::from_shared(addr.to_owned()).map_err(bad_address)?;
                if let Some(tls) = &self.access.tls {
                    endpoint = endpoint.tls_config(tls.clone()).map_err(bad_address)?;
                }
                let channel = endpoint
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .connect_lazy();
                if by_addr.len() >= CHANNELS_MAX {
                    by_addr.clear();
                }
                by_addr.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(PeerClient::with_interceptor(channel, self.stamp.clone())
            .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
            .max_encoding_message_size(PEER_MESSAGE_LEN_MAX))
    }
}

/// Runs one call to `addr` within `timeout`, then checks its reply with `check`.
pub(crate) async fn call<R, T, Fut>(
    addr: &str,
    timeout: Duration,
    call: Fut,
    check: impl FnOnce(&R) -> Result<T, FormatError>,
) -> Result<T, CallError>
where
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let reply = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => reply.into_inner(),
        Ok(Err(status)) => {
            return Err(CallError::Status {
                addr: addr.to_owned(),
                status,
            });
        }
        Err(_) => {
            return Err(CallError::Timeout {
                addr: addr.to_owned(),
                timeout,
            });
        }
    };
    check(&reply).map_err(|source| CallError::BadReply {
        addr: addr.to_owned(),
        source,
    })
}

/// The network of one member (openraft's [`RaftNetworkFactory`]): cheap to clone, clones
/// share their channels.
#[derive(Clone, Debug)]
pub struct PeerNetwork {
    channels: Channels,
}

impl PeerNetwork {
    /// A network with no channel yet, whose calls go as `access` says.
    pub fn new(access: PeerAccess) -> PeerNetwork {
        PeerNetwork {
            channels: Channels::new(access),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerLink;

    async fn new_client(&mut self, target: u64, node: &Node) -> PeerLink {
        PeerLink {
            target,
            addr: node.addr.clone(),
            client: self.channels.client(&node.addr).map_err(|e| match e {
                CallError::BadAddress { reason, .. } => reason,
                other => other.to_string(),
            }),
        }
    }
}

/// One member's link to another ([`RaftNetwork`]).
#[derive(Debug)]
pub struct PeerLink {
    target: u64,
    addr: String,
    /// The client, or why the address is unusable (reported by every call).
    client: Result<Client, String>,
}

impl PeerLink {
    fn client(&self) -> Result<Client, CallError> {
        match &self.client {
            Ok(client) => Ok(client.clone()),
            Err(reason) => Err(CallError::BadAddress {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }),
        }
    }

    fn remote<E>(&self, fatal: Fatal<u64>) -> RemoteError<u64, Node, E>
    where
        E: std::error::Error + From<Fatal<u64>>,
    {
        RemoteError::new_with_node(self.target, Node::new(&self.addr), E::from(fatal))
    }
}

/// Why [`RaftNetwork::install_snapshot`] is refused: kvstore sends whole snapshots
/// ([`RaftNetwork::full_snapshot`]), which is what openraft's replication calls.
#[derive(Debug, thiserror::Error)]
#[error("chunked InstallSnapshot is not part of kvstore's peer service; snapshots are sent whole")]
struct ChunkedSnapshotUnsupported;

impl RaftNetwork<TypeConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        let request = append_entries_to_proto(&rpc);
        let reply = async {
            let mut client = self.client()?;
            call(
                &self.addr,
                option.hard_ttl(),
                client.append_entries(request),
                append_entries_reply_from_proto,
            )
            .await
        }
        .await
        .map_err(CallError::into_rpc)?;
        reply.map_err(|fatal| RPCError::RemoteError(self.remote(fatal)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Node, RaftError<u64>>> {
        let request = vote_request_to_proto(&rpc);
        let reply = async {
            let mut client = self.client()?;
            call(
                &self.addr,
                option.hard_ttl(),
                client.vote(request),
                vote_reply_from_proto,
            )
            .await
        }
        .await
        .map_err(CallError::into_rpc)?;
        reply.map_err(|fatal| RPCError::RemoteError(self.remote(fatal)))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Node, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(RPCError::Network(NetworkError::new(
            &ChunkedSnapshotUnsupported,
        )))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let data = Arc::new(snapshot.snapshot.into_inner());
        let len = data.len();
        let count = len.div_ceil(SNAPSHOT_CHUNK_LEN_MAX);
        let head = snapshot_head_to_proto(&vote, &snapshot.meta, len as u64);
        let chunks = (0..count).map(move |i| {
            let start = i.saturating_mul(SNAPSHOT_CHUNK_LEN_MAX);
            let end = start.saturating_add(SNAPSHOT_CHUNK_LEN_MAX).min(len);
            SnapshotChunk {
                part: Some(SnapshotPart::Data(
                    data.get(start..end).unwrap_or_default().to_vec(),
                )),
            }
        });
        let stream = tokio_stream::iter(std::iter::once(head).chain(chunks));
        let ttl = option.hard_ttl();
        let timeout =
            ttl.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX).saturating_add(1));
        let send = async {
            let mut client = self.client()?;
            call(
                &self.addr,
                timeout,
                client.install_snapshot(stream),
                install_snapshot_reply_from_proto,
            )
            .await
        };
        let reply = tokio::select! {
            reply = send => reply.map_err(CallError::into_streaming)?,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        reply.map_err(|fatal| StreamingError::RemoteError(self.remote(fatal)))
    }
}
