//! The peer transport: openraft's RPCs and the relay calls between members in separate
//! processes, over gRPC (tonic) as the service `kvstore.raft.v1.Peer` (`spec/raft_peer.proto`,
//! `spec/FORMAT.md` § 12.7).
//!
//! - [`access`]: [`PeerAccess`], the cluster id every call carries (and the check that refuses
//!   another cluster's calls) and the TLS of calls to `https://` members.
//! - [`client`]: [`PeerNetwork`], openraft's network factory, and the lazily connected channels
//!   it and the relays share.
//! - [`service`]: [`PeerService`], the server side, and [`peer_server`] to mount it.
//!
//! Invariants:
//! - Every message either way is at most [`PEER_MESSAGE_LEN_MAX`] bytes (both sides' gRPC
//!   decoders are set to it); a snapshot travels as chunks of at most
//!   [`SNAPSHOT_CHUNK_LEN_MAX`] bytes, and a receiver accepts at most [`SNAPSHOT_LEN_MAX`] in all.
//! - A message that decodes but breaks a rule of § 12.7 is refused with the gRPC status
//!   `INVALID_ARGUMENT` naming the [`FormatError`](crate::format::FormatError), and reaches no
//!   raft; what a member's raft or engine answers travels in the reply message, never as a
//!   status, so a caller tells "the call failed" from "the member said no".
//! - A call that cannot reach its target (an unusable address, no connection) is openraft's
//!   `Unreachable`; no answer within openraft's hard TTL, or an answer that is not a valid
//!   reply, is a `NetworkError`; a remote raft's failure is a `RemoteError`.
//!
//! [`PEER_MESSAGE_LEN_MAX`]: crate::format::peer::PEER_MESSAGE_LEN_MAX
//! [`SNAPSHOT_CHUNK_LEN_MAX`]: crate::format::peer::SNAPSHOT_CHUNK_LEN_MAX
//! [`SNAPSHOT_LEN_MAX`]: crate::format::peer::SNAPSHOT_LEN_MAX

pub mod access;
pub mod client;
pub mod service;

pub use access::{CLUSTER_ID_METADATA, PeerAccess};
pub use client::{PeerLink, PeerNetwork};
pub use service::{PeerService, peer_server};

/// The generated gRPC client and server of `kvstore.raft.v1.Peer` (`build.rs`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod rpc {
    include!(concat!(env!("OUT_DIR"), "/kvstore.raft.v1.Peer.rs"));
}
