//! Arbitrary bytes as each message of the peer service (`spec/raft_peer.proto`,
//! `spec/FORMAT.md` § 12.7): the first byte picks the message, the rest is prost-decoded into it
//! and converted with its `*_from_proto` (or its byte decoder, where one exists). No conversion
//! panics, and whatever converts goes back to a message that converts to the same value.
//!
//! | first byte % 13 | message | conversion |
//! |---|---|---|
//! | 0 | `AppendEntriesRequest` | `decode_append_entries` |
//! | 1 | `AppendEntriesReply` | `append_entries_reply_from_proto` |
//! | 2 | `VoteRequest` | `vote_request_from_proto` |
//! | 3 | `VoteReply` | `vote_reply_from_proto` |
//! | 4 | `SnapshotChunk` | `snapshot_head_from_proto` of a head |
//! | 5 | `InstallSnapshotReply` | `install_snapshot_reply_from_proto` |
//! | 6 | `ProposeRequest` | `propose_request_from_proto` |
//! | 7 | `ProposeReply` | `decode_propose_reply` |
//! | 8 | `ReadIndexReply` | `read_index_reply_from_proto` |
//! | 9 | `LeaseKeepAliveReply` | `keep_alive_reply_from_proto` |
//! | 10 | `LeaseKeepAliveRequest`, `ReadIndexRequest` | prost only (no conversion) |
//! | 11 | `ChangeMembersRequest` | `change_members_request_from_proto` |
//! | 12 | `ChangeMembersReply` | `change_members_reply_from_proto` |
//!
//! A remote failure's description is rewrapped on each pass, so failures compare by kind.
#![no_main]

use std::fmt::Debug;

use kvstore_raft::format::peer::{self, RemoteFailure};
use kvstore_raft::format::peer_members as members;
use kvstore_raft::format::peer_proto as p;
use libfuzzer_sys::fuzz_target;
use openraft::error::{Fatal, RaftError};
use openraft::raft::AppendEntriesResponse;
use prost::Message;

/// Messages this target dispatches to (the first byte modulo this).
const MESSAGES: u8 = 13;

/// Prost-decodes `bytes` as `M` and converts; if that succeeds, converts the value back,
/// encodes, decodes and converts again, and hands both values to `same`.
fn round_trip<M: Message + Default, T>(
    bytes: &[u8],
    from: impl Fn(&M) -> Result<T, kvstore_raft::format::FormatError>,
    to: impl Fn(&T) -> M,
    same: impl Fn(&T, &T),
) {
    let Ok(message) = M::decode(bytes) else {
        return;
    };
    let Ok(x) = from(&message) else { return };
    let again = to(&x).encode_to_vec();
    let message = M::decode(again.as_slice()).expect("prost reads its own bytes");
    let y = from(&message).expect("a converted message's encoding converts");
    same(&x, &y);
}

fn equal<T: PartialEq + Debug>(x: &T, y: &T) {
    assert_eq!(x, y);
}

/// Equal answers, or failures of the same kind.
fn same_outcome<T: PartialEq + Debug>(x: &Result<T, Fatal<u64>>, y: &Result<T, Fatal<u64>>) {
    match (x, y) {
        (Ok(x), Ok(y)) => assert_eq!(x, y),
        (Err(x), Err(y)) => assert_eq!(
            RemoteFailure::from_fatal(x).kind,
            RemoteFailure::from_fatal(y).kind
        ),
        _ => panic!("{x:?} came back as {y:?}"),
    }
}

/// Equal relay answers, or failures of the same kind.
fn same_relayed<T: PartialEq + Debug>(x: &peer::Relayed<T>, y: &peer::Relayed<T>) {
    match (x, y) {
        (peer::Relayed::Failed(x), peer::Relayed::Failed(y)) => assert_eq!(x.kind, y.kind),
        _ => assert_eq!(x, y),
    }
}

/// openraft's reply as the callee reports it (a fatal error is a `RaftError`).
fn as_raft<T: Clone>(x: &Result<T, Fatal<u64>>) -> Result<T, RaftError<u64>> {
    x.clone().map_err(RaftError::Fatal)
}

/// [`as_raft`] for `AppendEntriesResponse`, which is not `Clone`.
fn append_entries_as_raft(
    x: &Result<AppendEntriesResponse<u64>, Fatal<u64>>,
) -> Result<AppendEntriesResponse<u64>, RaftError<u64>> {
    match x {
        Ok(AppendEntriesResponse::Success) => Ok(AppendEntriesResponse::Success),
        Ok(AppendEntriesResponse::PartialSuccess(matching)) => {
            Ok(AppendEntriesResponse::PartialSuccess(*matching))
        }
        Ok(AppendEntriesResponse::Conflict) => Ok(AppendEntriesResponse::Conflict),
        Ok(AppendEntriesResponse::HigherVote(vote)) => Ok(AppendEntriesResponse::HigherVote(*vote)),
        Err(fatal) => Err(RaftError::Fatal(fatal.clone())),
    }
}

/// A prost message decoded, re-encoded and decoded again is equal.
fn prost_only<M: Message + Default + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(x) = M::decode(bytes) {
        assert_eq!(M::decode(x.encode_to_vec().as_slice()).as_ref(), Ok(&x));
    }
}

fn append_entries(bytes: &[u8]) {
    let Ok(x) = peer::decode_append_entries(bytes) else {
        return;
    };
    let again = peer::encode_append_entries(&x);
    let y = peer::decode_append_entries(&again).expect("a decoded request's encoding decodes");
    assert_eq!(x.vote, y.vote);
    assert_eq!(x.prev_log_id, y.prev_log_id);
    assert_eq!(x.entries, y.entries);
    assert_eq!(x.leader_commit, y.leader_commit);
    assert_eq!(peer::encode_append_entries(&y), again);
}

fn snapshot_chunk(bytes: &[u8]) {
    let Ok(chunk) = p::SnapshotChunk::decode(bytes) else {
        return;
    };
    let Some(p::SnapshotPart::Head(head)) = chunk.part else {
        return;
    };
    let head_of = |chunk: p::SnapshotChunk| match chunk.part {
        Some(p::SnapshotPart::Head(head)) => head,
        other => panic!("a head chunk came back as {other:?}"),
    };
    round_trip(
        &head.encode_to_vec(),
        peer::snapshot_head_from_proto,
        |(vote, meta, len)| head_of(peer::snapshot_head_to_proto(vote, meta, *len)),
        equal,
    );
}

fn propose_reply(bytes: &[u8]) {
    let Ok(x) = peer::decode_propose_reply(bytes) else {
        return;
    };
    let again = peer::encode_propose_reply(&x);
    let y = peer::decode_propose_reply(&again).expect("a decoded reply's encoding decodes");
    assert_eq!(x, y);
    assert_eq!(peer::encode_propose_reply(&y), again);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % MESSAGES {
        0 => append_entries(rest),
        1 => round_trip(
            rest,
            peer::append_entries_reply_from_proto,
            |x| peer::append_entries_reply_to_proto(&append_entries_as_raft(x)),
            same_outcome,
        ),
        2 => round_trip(
            rest,
            peer::vote_request_from_proto,
            peer::vote_request_to_proto,
            equal,
        ),
        3 => round_trip(
            rest,
            peer::vote_reply_from_proto,
            |x| peer::vote_reply_to_proto(&as_raft(x)),
            same_outcome,
        ),
        4 => snapshot_chunk(rest),
        5 => round_trip(
            rest,
            peer::install_snapshot_reply_from_proto,
            peer::install_snapshot_reply_to_proto,
            same_outcome,
        ),
        6 => round_trip(
            rest,
            peer::propose_request_from_proto,
            peer::propose_request_to_proto,
            equal,
        ),
        7 => propose_reply(rest),
        8 => round_trip(
            rest,
            peer::read_index_reply_from_proto,
            peer::read_index_reply_to_proto,
            equal,
        ),
        9 => round_trip(
            rest,
            peer::keep_alive_reply_from_proto,
            peer::keep_alive_reply_to_proto,
            equal,
        ),
        10 => {
            prost_only::<p::LeaseKeepAliveRequest>(rest);
            prost_only::<p::ReadIndexRequest>(rest);
        }
        11 => round_trip(
            rest,
            members::change_members_request_from_proto,
            members::change_members_request_to_proto,
            equal,
        ),
        _ => round_trip(
            rest,
            members::change_members_reply_from_proto,
            members::change_members_reply_to_proto,
            same_relayed,
        ),
    }
});
