//! Who a member talks to: [`PeerAccess`], the cluster id every peer call carries and the TLS
//! its calls to `https://` members use, with the two interceptors that stamp the id on a call
//! ([`ClusterStamp`]) and refuse a call from another cluster ([`ClusterCheck`]).
//!
//! Invariants (`spec/FORMAT.md` § 12.7, "Cluster id"):
//! - Every call a member makes carries the metadata entry [`CLUSTER_ID_METADATA`]: its cluster
//!   id as exactly 16 lowercase hexadecimal digits.
//! - A member answers a call only if that entry is present, well formed and names its own
//!   cluster; any other call is refused with `FAILED_PRECONDITION` before it is decoded, so it
//!   reaches neither the raft nor the engine (etcd's "cluster ID mismatch").

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::ClientTlsConfig;
use tonic::{Request, Status};

/// The gRPC metadata key of the caller's cluster id.
pub const CLUSTER_ID_METADATA: &str = "kvstore-cluster-id";

/// How a member reaches its peers and what it demands of their calls.
#[derive(Clone, Debug)]
pub struct PeerAccess {
    /// The cluster's id: stamped on every call, demanded of every call answered.
    pub cluster_id: u64,
    /// The TLS of calls to `https://` peer URLs (the CA that verifies the peers, and the
    /// certificate this member presents); `None` leaves such URLs unreachable. `http://` URLs
    /// are plain either way.
    pub tls: Option<ClientTlsConfig>,
}

impl PeerAccess {
    /// Plain calls within cluster `cluster_id`.
    pub fn new(cluster_id: u64) -> PeerAccess {
        PeerAccess {
            cluster_id,
            tls: None,
        }
    }

    /// The same, with `tls` for `https://` members.
    #[must_use]
    pub fn with_tls(self, tls: ClientTlsConfig) -> PeerAccess {
        PeerAccess {
            tls: Some(tls),
            ..self
        }
    }
}

/// The metadata value naming `cluster_id`.
#[expect(
    clippy::expect_used,
    reason = "16 hexadecimal digits are visible ASCII, which is all a metadata value needs"
)]
fn encode(cluster_id: u64) -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::try_from(format!("{cluster_id:016x}"))
        .expect("hexadecimal digits are valid metadata")
}

/// The cluster id a metadata value names, if it is exactly 16 lowercase hexadecimal digits.
fn decode(value: &[u8]) -> Option<u64> {
    let lowercase_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if value.len() != 16 || !value.iter().all(lowercase_hex) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(value).ok()?, 16).ok()
}

/// Stamps the caller's cluster id on each call (the client side).
#[derive(Clone, Debug)]
pub struct ClusterStamp {
    value: MetadataValue<tonic::metadata::Ascii>,
}

impl ClusterStamp {
    /// Stamps `cluster_id`.
    pub fn new(cluster_id: u64) -> ClusterStamp {
        ClusterStamp {
            value: encode(cluster_id),
        }
    }
}

impl Interceptor for ClusterStamp {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert(CLUSTER_ID_METADATA, self.value.clone());
        Ok(request)
    }
}

/// Refuses calls that do not name this member's cluster (the serving side).
#[derive(Clone, Debug)]
pub struct ClusterCheck {
    cluster_id: u64,
}

impl ClusterCheck {
    /// Accepts calls naming `cluster_id` only.
    pub fn new(cluster_id: u64) -> ClusterCheck {
        ClusterCheck { cluster_id }
    }
}

impl Interceptor for ClusterCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let theirs = request
            .metadata()
            .get(CLUSTER_ID_METADATA)
            .map(|value| decode(value.as_bytes()));
        let refusal = match theirs {
            Some(Some(id)) if id == self.cluster_id => return Ok(request),
            Some(Some(id)) => format!(
                "cluster ID mismatch: this member's cluster is {:016x}, the call's {id:016x}",
                self.cluster_id
            ),
            Some(None) => format!("malformed {CLUSTER_ID_METADATA} (16 lowercase hex digits)"),
            None => format!("no {CLUSTER_ID_METADATA}"),
        };
        tracing::warn!(%refusal, "refused a peer call");
        Err(Status::failed_precondition(refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(value) = value {
            request.metadata_mut().insert(
                CLUSTER_ID_METADATA,
                MetadataValue::try_from(value).expect("ascii"),
            );
        }
        ClusterCheck::new(0xab)
            .call(request)
            .map(drop)
            .map_err(|status| status.code())
    }

    #[test]
    fn only_a_call_naming_this_cluster_passes() {
        let mut stamped = ClusterStamp::new(0xab)
            .call(Request::new(()))
            .expect("stamp");
        let value = stamped.metadata_mut().remove(CLUSTER_ID_METADATA);
        assert_eq!(
            value.as_ref().map(|v| v.to_str().expect("ascii")),
            Some("00000000000000ab")
        );
        assert_eq!(check(Some("00000000000000ab")), Ok(()));
        let refused = Err(tonic::Code::FailedPrecondition);
        for bad in [
            Some("00000000000000ac"),
            Some("00000000000000AB"),
            Some("ab"),
            Some("000000000000000ab"),
            Some("+0000000000000ab"),
            None,
        ] {
            assert_eq!(check(bad), refused, "{bad:?}");
        }
    }
}
