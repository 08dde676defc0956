//! openraft's RPCs and the relay calls to and from the messages of `spec/raft_peer.proto`
//! (`spec/FORMAT.md` § 12.7), the peer service's wire.
//!
//! Invariants:
//! - Decoders check what the schema cannot say (required fields and oneofs present, at most
//!   [`APPEND_ENTRIES_MAX`] entries, entries consecutive after `prev_log_id`, a snapshot of at
//!   most [`SNAPSHOT_LEN_MAX`] bytes) and return a [`FormatError`] naming the message and field;
//!   none panics. Byte decoders refuse more than [`PEER_MESSAGE_LEN_MAX`] bytes before decoding.
//! - decode(encode(x)) == x for every value the encoders accept.

use std::time::Duration;

use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, ErrorSubject, ErrorVerb, LogId, StorageIOError, Vote};
use prost::Message;

use super::command::{command_from_proto, command_to_proto};
use super::convert::{
    entry_from_proto, entry_to_proto, log_id_from_proto, log_id_to_proto, snapshot_meta_from_proto,
    snapshot_meta_to_proto, vote_from_proto, vote_to_proto,
};
use super::peer_proto::{self as p, FailureKind};
use super::response::{response_from_proto, response_to_proto};
use super::{FormatError, VALUE_LEN_MAX, decode_message};
use crate::command::{Command, Response};
use crate::{SnapshotMeta, TypeConfig};

/// Most bytes of one peer message (either way): room for one entry of the largest value and
/// its framing, with a margin; the gRPC decoders of both sides are set to it.
pub const PEER_MESSAGE_LEN_MAX: usize = VALUE_LEN_MAX * 2;

/// Most entries of one `AppendEntriesRequest` a receiver accepts.
pub const APPEND_ENTRIES_MAX: usize = 65_536;

/// Most data bytes of one `SnapshotChunk`.
pub const SNAPSHOT_CHUNK_LEN_MAX: usize = 1024 * 1024;

/// Most bytes of a snapshot's data a receiver accepts (it holds them in memory).
pub const SNAPSHOT_LEN_MAX: u64 = 16 * 1024 * 1024 * 1024;

const _: () = assert!(PEER_MESSAGE_LEN_MAX >= VALUE_LEN_MAX + SNAPSHOT_CHUNK_LEN_MAX);
const _: () = assert!(SNAPSHOT_CHUNK_LEN_MAX <= PEER_MESSAGE_LEN_MAX / 2);

/// A member's failure as another member reports it (`Failure`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("remote {kind:?}: {message}")]
pub struct RemoteFailure {
    /// Its kind.
    pub kind: FailureKind,
    /// Its description.
    pub message: String,
}

/// What a relay call (`Propose`, `ReadIndex`, `LeaseKeepAlive`) answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relayed<T> {
    /// The leader served it.
    Done(T),
    /// The callee is not the leader; the leader it knows, if any.
    NotLeader(Option<u64>),
    /// The callee failed.
    Failed(RemoteFailure),
}

pub(super) fn required<T>(
    field: Option<T>,
    structure: &'static str,
    name: &'static str,
) -> Result<T, FormatError> {
    field.ok_or_else(|| FormatError::missing(structure, name))
}

impl RemoteFailure {
    /// A fatal raft error as reported.
    pub fn from_fatal(fatal: &Fatal<u64>) -> RemoteFailure {
        let kind = match fatal {
            Fatal::Stopped => FailureKind::Stopped,
            Fatal::Panicked => FailureKind::Panicked,
            Fatal::StorageError(_) => FailureKind::Storage,
        };
        RemoteFailure {
            kind,
            message: fatal.to_string(),
        }
    }

    /// Any other failure (openraft refused, the engine failed) as reported.
    pub fn other(message: impl std::fmt::Display) -> RemoteFailure {
        RemoteFailure {
            kind: FailureKind::Other,
            message: message.to_string(),
        }
    }
}

pub(super) fn failure_to_proto(f: &RemoteFailure) -> p::Failure {
    p::Failure {
        kind: f.kind as i32,
        message: f.message.clone(),
    }
}

pub(super) fn remote_failure(f: &p::Failure) -> RemoteFailure {
    RemoteFailure {
        kind: FailureKind::try_from(f.kind).unwrap_or(FailureKind::Other),
        message: f.message.clone(),
    }
}

/// A `Failure` as the fatal error openraft expects from a remote member: stopped and panicked
/// as such, anything else as a storage error carrying the description.
fn fatal_from_failure(f: &p::Failure) -> Fatal<u64> {
    let failure = remote_failure(f);
    match failure.kind {
        FailureKind::Stopped => Fatal::Stopped,
        FailureKind::Panicked => Fatal::Panicked,
        FailureKind::Storage | FailureKind::Other => Fatal::StorageError(
            StorageIOError::new(
                ErrorSubject::Store,
                ErrorVerb::Write,
                AnyError::new(&failure),
            )
            .into(),
        ),
    }
}

fn raft_failure(e: &RaftError<u64>) -> p::Failure {
    match e {
        RaftError::Fatal(fatal) => failure_to_proto(&RemoteFailure::from_fatal(fatal)),
        RaftError::APIError(never) => match *never {},
    }
}

/// An `AppendEntriesRequest` as sent.
pub fn append_entries_to_proto(rpc: &AppendEntriesRequest<TypeConfig>) -> p::AppendEntriesRequest {
    p::AppendEntriesRequest {
        vote: Some(vote_to_proto(&rpc.vote)),
        prev_log_id: rpc.prev_log_id.as_ref().map(log_id_to_proto),
        entries: rpc.entries.iter().map(entry_to_proto).collect(),
        leader_commit: rpc.leader_commit.as_ref().map(log_id_to_proto),
    }
}

/// [`append_entries_to_proto`]'s inverse.
pub fn append_entries_from_proto(
    p: &p::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<TypeConfig>, FormatError> {
    const S: &str = "AppendEntriesRequest";
    let vote = vote_from_proto(required(p.vote.as_ref(), S, "vote")?);
    if p.entries.len() > APPEND_ENTRIES_MAX {
        return Err(FormatError::invalid(
            S,
            "entries",
            format!(
                "{} entries, more than APPEND_ENTRIES_MAX = {APPEND_ENTRIES_MAX}",
                p.entries.len()
            ),
        ));
    }
    let prev_log_id = p.prev_log_id.as_ref().map(log_id_from_proto);
    let mut expected = prev_log_id.map_or(0, |id| id.index.saturating_add(1));
    let mut entries = Vec::with_capacity(p.entries.len());
    for entry in &p.entries {
        let entry = entry_from_proto(entry)?;
        if entry.log_id.index != expected {
            return Err(FormatError::invalid(
                S,
                "entries",
                format!("entry {} where {expected} was due", entry.log_id.index),
            ));
        }
        expected = expected.saturating_add(1);
        entries.push(entry);
    }
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        entries,
        leader_commit: p.leader_commit.as_ref().map(log_id_from_proto),
    })
}

/// An `AppendEntriesRequest`'s bytes.
pub fn encode_append_entries(rpc: &AppendEntriesRequest<TypeConfig>) -> Vec<u8> {
    append_entries_to_proto(rpc).encode_to_vec()
}

/// [`encode_append_entries`]'s inverse, refusing more than [`PEER_MESSAGE_LEN_MAX`] bytes.
pub fn decode_append_entries(
    bytes: &[u8],
) -> Result<AppendEntriesRequest<TypeConfig>, FormatError> {
    let p: p::AppendEntriesRequest =
        decode_message("AppendEntriesRequest", bytes, PEER_MESSAGE_LEN_MAX)?;
    append_entries_from_proto(&p)
}

/// What the callee's raft answered an `AppendEntries`, as `AppendEntriesReply`.
pub fn append_entries_reply_to_proto(
    reply: &Result<AppendEntriesResponse<u64>, RaftError<u64>>,
) -> p::AppendEntriesReply {
    use p::AppendEntriesResult as R;
    let result = match reply {
        Ok(AppendEntriesResponse::Success) => R::Success(p::Empty {}),
        Ok(AppendEntriesResponse::PartialSuccess(matching)) => {
            R::PartialSuccess(p::PartialSuccess {
                matching: matching.as_ref().map(log_id_to_proto),
            })
        }
        Ok(AppendEntriesResponse::Conflict) => R::Conflict(p::Empty {}),
        Ok(AppendEntriesResponse::HigherVote(vote)) => R::HigherVote(vote_to_proto(vote)),
        Err(e) => R::Failure(raft_failure(e)),
    };
    p::AppendEntriesReply {
        result: Some(result),
    }
}

/// [`append_entries_reply_to_proto`]'s inverse.
pub fn append_entries_reply_from_proto(
    p: &p::AppendEntriesReply,
) -> Result<Result<AppendEntriesResponse<u64>, Fatal<u64>>, FormatError> {
    use p::AppendEntriesResult as R;
    Ok(
        match required(p.result.as_ref(), "AppendEntriesReply", "result")? {
            R::Success(_) => Ok(AppendEntriesResponse::Success),
            R::PartialSuccess(partial) => Ok(AppendEntriesResponse::PartialSuccess(
                partial.matching.as_ref().map(log_id_from_proto),
            )),
            R::Conflict(_) => Ok(AppendEntriesResponse::Conflict),
            R::HigherVote(vote) => Ok(AppendEntriesResponse::HigherVote(vote_from_proto(vote))),
            R::Failure(f) => Err(fatal_from_failure(f)),
        },
    )
}

/// A `VoteRequest` as sent.
pub fn vote_request_to_proto(rpc: &VoteRequest<u64>) -> p::VoteRequest {
    p::VoteRequest {
        vote: Some(vote_to_proto(&rpc.vote)),
        last_log_id: rpc.last_log_id.as_ref().map(log_id_to_proto),
    }
}

/// [`vote_request_to_proto`]'s inverse.
pub fn vote_request_from_proto(p: &p::VoteRequest) -> Result<VoteRequest<u64>, FormatError> {
    Ok(VoteRequest {
        vote: vote_from_proto(required(p.vote.as_ref(), "VoteRequest", "vote")?),
        last_log_id: p.last_log_id.as_ref().map(log_id_from_proto),
    })
}

/// What the callee's raft answered a `Vote`, as `VoteReply`.
pub fn vote_reply_to_proto(reply: &Result<VoteResponse<u64>, RaftError<u64>>) -> p::VoteReply {
    let result = match reply {
        Ok(r) => p::VoteResult::Response(p::VoteResponse {
            vote: Some(vote_to_proto(&r.vote)),
            vote_granted: r.vote_granted,
            last_log_id: r.last_log_id.as_ref().map(log_id_to_proto),
        }),
        Err(e) => p::VoteResult::Failure(raft_failure(e)),
    };
    p::VoteReply {
        result: Some(result),
    }
}

/// [`vote_reply_to_proto`]'s inverse.
pub fn vote_reply_from_proto(
    p: &p::VoteReply,
) -> Result<Result<VoteResponse<u64>, Fatal<u64>>, FormatError> {
    Ok(match required(p.result.as_ref(), "VoteReply", "result")? {
        p::VoteResult::Response(r) => Ok(VoteResponse {
            vote: vote_from_proto(required(r.vote.as_ref(), "VoteResponse", "vote")?),
            vote_granted: r.vote_granted,
            last_log_id: r.last_log_id.as_ref().map(log_id_from_proto),
        }),
        p::VoteResult::Failure(f) => Err(fatal_from_failure(f)),
    })
}

/// The first chunk of an `InstallSnapshot` stream: the vote, the meta and the data's length.
pub fn snapshot_head_to_proto(vote: &Vote<u64>, meta: &SnapshotMeta, len: u64) -> p::SnapshotChunk {
    p::SnapshotChunk {
        part: Some(p::SnapshotPart::Head(p::SnapshotHead {
            vote: Some(vote_to_proto(vote)),
            meta: Some(snapshot_meta_to_proto(meta)),
            len,
        })),
    }
}

/// [`snapshot_head_to_proto`]'s inverse, refusing a length over [`SNAPSHOT_LEN_MAX`].
pub fn snapshot_head_from_proto(
    p: &p::SnapshotHead,
) -> Result<(Vote<u64>, SnapshotMeta, u64), FormatError> {
    const S: &str = "SnapshotHead";
    if p.len > SNAPSHOT_LEN_MAX {
        return Err(FormatError::invalid(
            S,
            "len",
            format!(
                "{} bytes, more than SNAPSHOT_LEN_MAX = {SNAPSHOT_LEN_MAX}",
                p.len
            ),
        ));
    }
    let vote = vote_from_proto(required(p.vote.as_ref(), S, "vote")?);
    let meta = snapshot_meta_from_proto(required(p.meta.as_ref(), S, "meta")?)?;
    Ok((vote, meta, p.len))
}

/// What the callee's raft answered a snapshot, as `InstallSnapshotReply`.
pub fn install_snapshot_reply_to_proto(
    reply: &Result<SnapshotResponse<u64>, Fatal<u64>>,
) -> p::InstallSnapshotReply {
    let result = match reply {
        Ok(r) => p::InstallSnapshotResult::Vote(vote_to_proto(&r.vote)),
        Err(fatal) => {
            p::InstallSnapshotResult::Failure(failure_to_proto(&RemoteFailure::from_fatal(fatal)))
        }
    };
    p::InstallSnapshotReply {
        result: Some(result),
    }
}

/// [`install_snapshot_reply_to_proto`]'s inverse.
pub fn install_snapshot_reply_from_proto(
    p: &p::InstallSnapshotReply,
) -> Result<Result<SnapshotResponse<u64>, Fatal<u64>>, FormatError> {
    Ok(
        match required(p.result.as_ref(), "InstallSnapshotReply", "result")? {
            p::InstallSnapshotResult::Vote(vote) => {
                Ok(SnapshotResponse::new(vote_from_proto(vote)))
            }
            p::InstallSnapshotResult::Failure(f) => Err(fatal_from_failure(f)),
        },
    )
}

/// A `ProposeRequest` for `command`.
pub fn propose_request_to_proto(command: &Command) -> p::ProposeRequest {
    p::ProposeRequest {
        command: Some(command_to_proto(command)),
    }
}

/// [`propose_request_to_proto`]'s inverse.
pub fn propose_request_from_proto(p: &p::ProposeRequest) -> Result<Command, FormatError> {
    command_from_proto(required(p.command.as_ref(), "ProposeRequest", "command")?)
}

pub(super) fn not_leader(leader_id: Option<u64>) -> p::NotLeader {
    p::NotLeader { leader_id }
}

/// A proposal's outcome as `ProposeReply`.
pub fn propose_reply_to_proto(reply: &Relayed<(LogId<u64>, Response)>) -> p::ProposeReply {
    let result = match reply {
        Relayed::Done((log_id, response)) => p::ProposeResult::Applied(p::Applied {
            log_id: Some(log_id_to_proto(log_id)),
            response: Some(response_to_proto(response)),
        }),
        Relayed::NotLeader(leader) => p::ProposeResult::NotLeader(not_leader(*leader)),
        Relayed::Failed(f) => p::ProposeResult::Failure(failure_to_proto(f)),
    };
    p::ProposeReply {
        result: Some(result),
    }
}

/// [`propose_reply_to_proto`]'s inverse.
pub fn propose_reply_from_proto(
    p: &p::ProposeReply,
) -> Result<Relayed<(LogId<u64>, Response)>, FormatError> {
    Ok(
        match required(p.result.as_ref(), "ProposeReply", "result")? {
            p::ProposeResult::Applied(applied) => {
                let log_id =
                    log_id_from_proto(required(applied.log_id.as_ref(), "Applied", "log_id")?);
                let response = response_from_proto(required(
                    applied.response.as_ref(),
                    "Applied",
                    "response",
                )?)?;
                Relayed::Done((log_id, response))
            }
            p::ProposeResult::NotLeader(n) => Relayed::NotLeader(n.leader_id),
            p::ProposeResult::Failure(f) => Relayed::Failed(remote_failure(f)),
        },
    )
}

/// A `ProposeReply`'s bytes.
pub fn encode_propose_reply(reply: &Relayed<(LogId<u64>, Response)>) -> Vec<u8> {
    propose_reply_to_proto(reply).encode_to_vec()
}

/// [`encode_propose_reply`]'s inverse, refusing more than [`PEER_MESSAGE_LEN_MAX`] bytes.
pub fn decode_propose_reply(bytes: &[u8]) -> Result<Relayed<(LogId<u64>, Response)>, FormatError> {
    let p: p::ProposeReply = decode_message("ProposeReply", bytes, PEER_MESSAGE_LEN_MAX)?;
    propose_reply_from_proto(&p)
}

/// A read index (the log id a read must wait for) as `ReadIndexReply`.
pub fn read_index_reply_to_proto(reply: &Relayed<Option<LogId<u64>>>) -> p::ReadIndexReply {
    let result = match reply {
        Relayed::Done(read_log_id) => p::ReadIndexResult::ReadIndex(p::ReadIndex {
            read_log_id: read_log_id.as_ref().map(log_id_to_proto),
        }),
        Relayed::NotLeader(leader) => p::ReadIndexResult::NotLeader(not_leader(*leader)),
        Relayed::Failed(f) => p::ReadIndexResult::Failure(failure_to_proto(f)),
    };
    p::ReadIndexReply {
        result: Some(result),
    }
}

/// [`read_index_reply_to_proto`]'s inverse.
pub fn read_index_reply_from_proto(
    p: &p::ReadIndexReply,
) -> Result<Relayed<Option<LogId<u64>>>, FormatError> {
    Ok(
        match required(p.result.as_ref(), "ReadIndexReply", "result")? {
            p::ReadIndexResult::ReadIndex(r) => {
                Relayed::Done(r.read_log_id.as_ref().map(log_id_from_proto))
            }
            p::ReadIndexResult::NotLeader(n) => Relayed::NotLeader(n.leader_id),
            p::ReadIndexResult::Failure(f) => Relayed::Failed(remote_failure(f)),
        },
    )
}

/// A keep-alive's outcome (the TTL, or `None`: no such lease) as `LeaseKeepAliveReply`; the
/// TTL is sent in whole milliseconds.
pub fn keep_alive_reply_to_proto(reply: &Relayed<Option<Duration>>) -> p::LeaseKeepAliveReply {
    use p::LeaseKeepAliveResult as R;
    let result = match reply {
        Relayed::Done(Some(ttl)) => R::TtlMs(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        Relayed::Done(None) => R::NotFound(p::Empty {}),
        Relayed::NotLeader(leader) => R::NotLeader(not_leader(*leader)),
        Relayed::Failed(f) => R::Failure(failure_to_proto(f)),
    };
    p::LeaseKeepAliveReply {
        result: Some(result),
    }
}

/// [`keep_alive_reply_to_proto`]'s inverse.
pub fn keep_alive_reply_from_proto(
    p: &p::LeaseKeepAliveReply,
) -> Result<Relayed<Option<Duration>>, FormatError> {
    use p::LeaseKeepAliveResult as R;
    Ok(
        match required(p.result.as_ref(), "LeaseKeepAliveReply", "result")? {
            R::TtlMs(ms) => Relayed::Done(Some(Duration::from_millis(*ms))),
            R::NotFound(_) => Relayed::Done(None),
            R::NotLeader(n) => Relayed::NotLeader(n.leader_id),
            R::Failure(f) => Relayed::Failed(remote_failure(f)),
        },
    )
}
