//! Generates the gRPC client and server of the peer service `kvstore.raft.v1.Peer`
//! (`spec/raft_peer.proto`, `spec/FORMAT.md` § 12.7) from a Rust description, with tonic-build's
//! `manual` builder: no protoc. The messages are `src/format/peer_proto.rs`, written by hand as
//! the rest of `format::proto` is, and coded by prost.

use tonic_build::manual::{Builder, Method, Service};

/// (method name, route name, request type, reply type (paths under `crate::format`, in
/// `peer_proto` unless a module is named), client streaming)
const METHODS: [(&str, &str, &str, &str, bool); 7] = [
    (
        "append_entries",
        "AppendEntries",
        "AppendEntriesRequest",
        "AppendEntriesReply",
        false,
    ),
    ("vote", "Vote", "VoteRequest", "VoteReply", false),
    (
        "install_snapshot",
        "InstallSnapshot",
        "SnapshotChunk",
        "InstallSnapshotReply",
        true,
    ),
    (
        "propose",
        "Propose",
        "ProposeRequest",
        "ProposeReply",
        false,
    ),
    (
        "read_index",
        "ReadIndex",
        "ReadIndexRequest",
        "ReadIndexReply",
        false,
    ),
    (
        "lease_keep_alive",
        "LeaseKeepAlive",
        "LeaseKeepAliveRequest",
        "LeaseKeepAliveReply",
        false,
    ),
    (
        "change_members",
        "ChangeMembers",
        "peer_members::ChangeMembersRequest",
        "peer_members::ChangeMembersReply",
        false,
    ),
];

/// The Rust path of message `name` (see [`METHODS`]).
fn message_path(name: &str) -> String {
    if name.contains("::") {
        format!("crate::format::{name}")
    } else {
        format!("crate::format::peer_proto::{name}")
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let mut service = Service::builder()
        .name("Peer")
        .package("kvstore.raft.v1")
        .comment("What members of a kvstore cluster ask each other (spec/FORMAT.md § 12.7).");
    for (name, route, request, reply, streaming) in METHODS {
        let mut method = Method::builder()
            .name(name)
            .route_name(route)
            .input_type(message_path(request))
            .output_type(message_path(reply))
            .codec_path("tonic_prost::ProstCodec");
        if streaming {
            method = method.client_streaming();
        }
        service = service.method(method.build());
    }
    Builder::new().compile(&[service.build()]);
}
