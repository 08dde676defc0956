//! # kvstore-raft
//!
//! kvstore replicated with [openraft](https://docs.rs/openraft/0.9) (0.9, storage v2): the raft
//! log in an engine database of its own, the engine itself as the state machine, snapshots from
//! its export stream, an in-process network for tests and a gRPC one between processes. The
//! server's `serve --initial-cluster` and the Cluster API build on this crate.
//!
//! Modules:
//! - [`command`]: what an entry carries ([`Command`]) and what applying it answers
//!   ([`Response`]).
//! - [`format`](mod@format): the bytes stored (`spec/FORMAT.md` § 12, `spec/raft.proto`).
//! - [`log_store`]: openraft's log storage over the raft log database.
//! - [`member`]: a member as the membership records it ([`Node`]).
//! - [`membership`]: membership changes at run time ([`MemberChange`]), from any member.
//! - [`state_machine`]: openraft's state machine over the engine, generations, snapshots.
//! - [`router`]: the in-process network.
//! - [`transport`]: the gRPC peer transport between processes ([`PeerNetwork`],
//!   [`PeerService`]).
//! - [`relay`]: proposals, read barriers and lease keep-alives from any member, relayed to the
//!   leader.
//! - [`runtime`]: tokio for openraft, with seedable election timeouts.
//! - [`node`]: a member opened from its directory.
//! - [`error`]: the crate's error.
//!
//! Invariants kept crate-wide:
//! - An entry's writes and the record that it was applied are one engine commit (the commit
//!   stamp), so a crash never applies an entry twice or skips one.
//! - Everything openraft must find after a crash (vote, log, committed and purged log ids,
//!   memberships, the installed snapshot's log id) is synced before openraft is told.
//! - Library code never panics on stored bytes: decoders return [`format::FormatError`].
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod command;
pub mod error;
pub mod format;
pub mod log_store;
pub mod member;
pub mod membership;
pub mod node;
pub mod relay;
pub mod router;
pub mod runtime;
pub mod state_machine;
pub mod transport;

use std::io::Cursor;

pub use command::{Command, Rejection, Response};
pub use error::Error;
pub use log_store::LogStore;
pub use member::Node;
pub use membership::{MemberChange, MemberRefusal};
pub use node::RaftNode;
pub use router::Router;
pub use state_machine::{StateHandle, StateMachine};
pub use transport::{PeerAccess, PeerNetwork, PeerService, peer_server};

openraft::declare_raft_types!(
    /// kvstore's raft types: [`Command`] in, [`Response`] out, `u64` node ids, [`Node`]s with
    /// an address, a name and client URLs, snapshots as export streams in memory, on tokio
    /// with seedable random numbers.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = crate::Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = runtime::Runtime,
);

/// A raft log entry of kvstore.
pub type Entry = openraft::Entry<TypeConfig>;
/// A membership of kvstore's cluster.
pub type Membership = openraft::Membership<u64, crate::Node>;
/// A snapshot's meta.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, crate::Node>;
/// A snapshot's bytes while sent or received.
pub type SnapshotData = Cursor<Vec<u8>>;
