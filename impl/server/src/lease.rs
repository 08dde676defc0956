//! The Lease service: LeaseGrant, LeaseRevoke, the LeaseKeepAlive stream, LeaseTimeToLive and
//! LeaseLeases, over the engine's leases (etcd v3.4's `LeaseServer` and `lessor`).
//!
//! etcd's rules kept here: TTLs are whole seconds; a TTL below [`LEASE_TTL_MIN_SECS`] is
//! raised to it (etcd's minimum with its default heartbeat and election timeout, 1.5 s rounded
//! up), one above [`LEASE_TTL_MAX_SECS`] is `too large lease TTL`; ID 0 lets the server choose
//! (the engine's next free id, where etcd picks a random one); a keep-alive of a lease that is
//! not granted answers TTL 0, a time-to-live of one answers TTL -1, and neither is an error;
//! LeaseLeases lists the leases soonest expiry first.
//!
//! With auth enabled, a revocation needs WRITE on every key attached to the lease (as etcd
//! 3.4); the other calls are not checked (etcd 3.4 checks none of them), but a grant, a raft
//! request in etcd, refuses a token that names no user.
//!
//! Invariants:
//! - A grant or revocation is answered once the engine committed it (durable as the database's
//!   mode promises); the header's revision is the store's revision after it (a grant takes no
//!   revision, a revocation takes one if it deleted keys).
//! - A keep-alive response's header is read before the renewal (etcd's order), so it never
//!   names a revision after one that revoked the lease.
//! - A keep-alive stream ends when the client ends it, when the client goes away, or at
//!   shutdown; an engine failure ends it with the error.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::identity::wire_i64;
use crate::keys::lease_id;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

/// Smallest TTL granted, seconds: etcd's `minLeaseTTL` with its default timing
/// (`ceil(3/2 * election timeout 1 s)`); a shorter TTL asked for is raised to it.
pub const LEASE_TTL_MIN_SECS: i64 = 2;

/// Largest TTL granted, seconds (etcd's `MaxLeaseTTL`).
pub const LEASE_TTL_MAX_SECS: i64 = 9_000_000_000;

/// Keep-alive responses buffered per stream before the server waits for the client to read.
const KEEP_ALIVE_SEND_BUFFER: usize = 16;

/// The Lease service over a [`Context`].
#[derive(Debug)]
pub(crate) struct LeaseService {
    context: Arc<Context>,
}

impl LeaseService {
    pub(crate) fn new(context: Arc<Context>) -> LeaseService {
        LeaseService { context }
    }

    /// Answers one keep-alive stream reading the client's requests from `inbound`: the gRPC
    /// call's stream, or the JSON gateway's decoded body.
    pub(crate) fn open_keep_alive(
        &self,
        inbound: impl Stream<Item = Result<LeaseKeepAliveRequest, Status>> + Unpin + Send + 'static,
    ) -> ReceiverStream<Result<LeaseKeepAliveResponse, Status>> {
        let (sender, receiver) = mpsc::channel(KEEP_ALIVE_SEND_BUFFER);
        tokio::spawn(keep_alive_stream(
            Arc::clone(&self.context),
            inbound,
            sender,
        ));
        ReceiverStream::new(receiver)
    }
}

/// The TTL etcd grants for `asked` seconds.
fn granted_ttl(asked: i64) -> EtcdResult<i64> {
    if asked > LEASE_TTL_MAX_SECS {
        return Err(EtcdError::LeaseTtlTooLarge);
    }
    Ok(asked.max(LEASE_TTL_MIN_SECS))
}

fn seconds(ttl: i64) -> Duration {
    Duration::from_secs(u64::try_from(ttl).unwrap_or(0))
}

fn grant(context: &Context, request: &LeaseGrantRequest) -> EtcdResult<LeaseGrantResponse> {
    let ttl = granted_ttl(request.ttl)?;
    let id = match request.id {
        0 => context.store.grant(None, seconds(ttl))?,
        id => match lease_id(id) {
            Some(id) => context.store.grant(Some(id), seconds(ttl))?,
            None => {
                return Err(EtcdError::Invalid(format!(
                    "lease ID {id} is negative: kvstore's lease IDs are 1..=2^63-1"
                )));
            }
        },
    };
    Ok(LeaseGrantResponse {
        header: Some(context.current_header()?),
        id: wire_i64(id),
        ttl,
        error: String::new(),
    })
}

fn revoke(context: &Context, request: &LeaseRevokeRequest) -> EtcdResult<LeaseRevokeResponse> {
    let id = lease_id(request.id).ok_or(EtcdError::LeaseNotFound)?;
    context.store.revoke(id)?;
    Ok(LeaseRevokeResponse {
        header: Some(context.current_header()?),
    })
}

fn time_to_live(
    context: &Context,
    request: &LeaseTimeToLiveRequest,
) -> EtcdResult<LeaseTimeToLiveResponse> {
    let status = match lease_id(request.id) {
        Some(id) => context.db().time_to_live(id)?,
        None => None,
    };
    let header = Some(context.current_header()?);
    Ok(match status {
        None => LeaseTimeToLiveResponse {
            header,
            id: request.id,
            ttl: -1,
            granted_ttl: 0,
            keys: Vec::new(),
        },
        Some(status) => LeaseTimeToLiveResponse {
            header,
            id: request.id,
            ttl: wire_i64(status.remaining.as_secs()),
            granted_ttl: wire_i64(status.granted_ttl.as_secs()),
            keys: if request.keys {
                status.keys
            } else {
                Vec::new()
            },
        },
    })
}

fn leases(context: &Context) -> EtcdResult<LeaseLeasesResponse> {
    let mut by_expiry = Vec::new();
    for id in context.db().leases()? {
        // A lease revoked between the two reads is left out.
        if let Some(status) = context.db().time_to_live(id)? {
            by_expiry.push((status.remaining, id));
        }
    }
    by_expiry.sort();
    Ok(LeaseLeasesResponse {
        header: Some(context.current_header()?),
        leases: by_expiry
            .into_iter()
            .map(|(_, id)| LeaseStatus { id: wire_i64(id) })
            .collect(),
    })
}

fn keep_alive(context: &Context, id: i64) -> EtcdResult<LeaseKeepAliveResponse> {
    let header = Some(context.current_header()?);
    let ttl = match lease_id(id).map(|lease| context.store.keep_alive(lease)) {
        None | Some(Err(EtcdError::LeaseNotFound)) => 0,
        Some(Ok(ttl)) => wire_i64(ttl.as_secs()),
        Some(Err(e)) => return Err(e),
    };
    Ok(LeaseKeepAliveResponse { header, id, ttl })
}

/// Answers one keep-alive stream until it ends (see the module doc).
async fn keep_alive_stream(
    context: Arc<Context>,
    mut inbound: impl Stream<Item = Result<LeaseKeepAliveRequest, Status>> + Unpin,
    responses: mpsc::Sender<Result<LeaseKeepAliveResponse, Status>>,
) {
    let mut shutdown = context.shutdown.clone();
    loop {
        if context.is_shutting_down() {
            return;
        }
        let request = tokio::select! {
            request = inbound.next() => request,
            _ = shutdown.changed() => return,
            () = responses.closed() => return,
        };
        let id = match request {
            Some(Ok(request)) => request.id,
            Some(Err(_)) | None => return,
        };
        let response = context
            .blocking(move |context| keep_alive(context, id))
            .await;
        let failed = response.is_err();
        if responses.send(response).await.is_err() || failed {
            return;
        }
    }
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        // Any caller may grant, but a token must name a user (a raft request in etcd).
        self.context.auth.caller(&request)?;
        let request = request.into_inner();
        self.context.check_size(request.encoded_len())?;
        self.context
            .blocking(move |context| grant(context, &request))
            .await
            .map(Response::new)
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let caller = self.context.auth.caller(&request)?;
        let request = request.into_inner();
        self.context
            .blocking(move |context| {
                caller.check_lease_keys(context, request.id)?;
                revoke(context, &request)
            })
            .await
            .map(Response::new)
    }

    type LeaseKeepAliveStream = ReceiverStream<Result<LeaseKeepAliveResponse, Status>>;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        Ok(Response::new(self.open_keep_alive(request.into_inner())))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let request = request.into_inner();
        self.context
            .blocking(move |context| time_to_live(context, &request))
            .await
            .map(Response::new)
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.context.blocking(leases).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_follow_etcd() {
        assert_eq!(granted_ttl(1).ok(), Some(LEASE_TTL_MIN_SECS));
        assert_eq!(granted_ttl(-4).ok(), Some(LEASE_TTL_MIN_SECS));
        assert_eq!(granted_ttl(60).ok(), Some(60));
        assert!(matches!(
            granted_ttl(LEASE_TTL_MAX_SECS + 1),
            Err(EtcdError::LeaseTtlTooLarge)
        ));
    }
}
