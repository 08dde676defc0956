//! `spec/raft_peer.proto` as prost derives: the messages of the peer service
//! `kvstore.raft.v1.Peer` (`spec/FORMAT.md` § 12.7), written by hand as [`super::proto`] is; they
//! reuse its `LogId`, `Vote`, `Entry`, `SnapshotMeta` and `Command`.
//!
//! Invariant: a tag here is the tag in `spec/raft_peer.proto`; neither changes once released.

use super::proto::{Command, Entry, LogId, SnapshotMeta, Vote};

/// `Empty`: a variant without fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `Failure`: why a member could not serve a call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Failure {
    /// A [`FailureKind`].
    #[prost(enumeration = "FailureKind", tag = "1")]
    pub kind: i32,
    /// A description for people.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `Failure.Kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FailureKind {
    /// Anything else (openraft refused, the engine failed); read as such when unknown.
    Other = 0,
    /// The member's raft is stopped.
    Stopped = 1,
    /// The member's raft panicked.
    Panicked = 2,
    /// The member's storage failed.
    Storage = 3,
}

/// `NotLeader`: the callee is not the leader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NotLeader {
    /// The leader the callee knows; absent: none.
    #[prost(uint64, optional, tag = "1")]
    pub leader_id: Option<u64>,
}

/// `AppendEntriesRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesRequest {
    /// The leader's vote.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// The entry before `entries`; absent: none.
    #[prost(message, optional, tag = "2")]
    pub prev_log_id: Option<LogId>,
    /// The entries, consecutive.
    #[prost(message, repeated, tag = "3")]
    pub entries: Vec<Entry>,
    /// The leader's committed log id; absent: none.
    #[prost(message, optional, tag = "4")]
    pub leader_commit: Option<LogId>,
}

/// `AppendEntriesReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesReply {
    /// Exactly one result.
    #[prost(oneof = "AppendEntriesResult", tags = "1, 2, 3, 4, 5")]
    pub result: Option<AppendEntriesResult>,
}

/// `AppendEntriesReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AppendEntriesResult {
    /// Every entry is stored.
    #[prost(message, tag = "1")]
    Success(Empty),
    /// Entries up to `matching` are stored.
    #[prost(message, tag = "2")]
    PartialSuccess(PartialSuccess),
    /// `prev_log_id` does not match the callee's log.
    #[prost(message, tag = "3")]
    Conflict(Empty),
    /// The callee holds a higher vote.
    #[prost(message, tag = "4")]
    HigherVote(Vote),
    /// The callee's raft failed.
    #[prost(message, tag = "5")]
    Failure(Failure),
}

/// `PartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialSuccess {
    /// The last matching log id; absent: none.
    #[prost(message, optional, tag = "1")]
    pub matching: Option<LogId>,
}

/// `VoteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteRequest {
    /// The candidate's vote.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// The candidate's last log id; absent: none.
    #[prost(message, optional, tag = "2")]
    pub last_log_id: Option<LogId>,
}

/// `VoteReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteReply {
    /// Exactly one result.
    #[prost(oneof = "VoteResult", tags = "1, 2")]
    pub result: Option<VoteResult>,
}

/// `VoteReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum VoteResult {
    /// The callee's answer.
    #[prost(message, tag = "1")]
    Response(VoteResponse),
    /// The callee's raft failed.
    #[prost(message, tag = "2")]
    Failure(Failure),
}

/// `VoteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteResponse {
    /// The callee's vote after handling the request.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// Whether it granted the vote.
    #[prost(bool, tag = "2")]
    pub vote_granted: bool,
    /// The callee's last log id; absent: none.
    #[prost(message, optional, tag = "3")]
    pub last_log_id: Option<LogId>,
}

/// `SnapshotChunk`: one message of the `InstallSnapshot` stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunk {
    /// Exactly one part: the head first, then data.
    #[prost(oneof = "SnapshotPart", tags = "1, 2")]
    pub part: Option<SnapshotPart>,
}

/// `SnapshotChunk.part`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SnapshotPart {
    /// The first chunk.
    #[prost(message, tag = "1")]
    Head(SnapshotHead),
    /// The next at most `SNAPSHOT_CHUNK_LEN_MAX` bytes of the snapshot.
    #[prost(bytes = "vec", tag = "2")]
    Data(Vec<u8>),
}

/// `SnapshotHead`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotHead {
    /// The leader's vote.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// The snapshot's meta.
    #[prost(message, optional, tag = "2")]
    pub meta: Option<SnapshotMeta>,
    /// Bytes of the snapshot's data that the data chunks carry in all.
    #[prost(uint64, tag = "3")]
    pub len: u64,
}

/// `InstallSnapshotReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstallSnapshotReply {
    /// Exactly one result.
    #[prost(oneof = "InstallSnapshotResult", tags = "1, 2")]
    pub result: Option<InstallSnapshotResult>,
}

/// `InstallSnapshotReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum InstallSnapshotResult {
    /// The callee's vote after handling the snapshot.
    #[prost(message, tag = "1")]
    Vote(Vote),
    /// The callee's raft failed.
    #[prost(message, tag = "2")]
    Failure(Failure),
}

/// `ProposeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposeRequest {
    /// The command to propose.
    #[prost(message, optional, tag = "1")]
    pub command: Option<Command>,
}

/// `ProposeReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposeReply {
    /// Exactly one result.
    #[prost(oneof = "ProposeResult", tags = "1, 2, 3")]
    pub result: Option<ProposeResult>,
}

/// `ProposeReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ProposeResult {
    /// Committed and applied on the leader.
    #[prost(message, tag = "1")]
    Applied(Applied),
    /// The callee is not the leader.
    #[prost(message, tag = "2")]
    NotLeader(NotLeader),
    /// The leader could not commit it.
    #[prost(message, tag = "3")]
    Failure(Failure),
}

/// `Applied`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Applied {
    /// The entry's log id.
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
    /// What applying it answered.
    #[prost(message, optional, tag = "2")]
    pub response: Option<CommandResponse>,
}

/// `ReadIndexRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadIndexRequest {}

/// `ReadIndexReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadIndexReply {
    /// Exactly one result.
    #[prost(oneof = "ReadIndexResult", tags = "1, 2, 3")]
    pub result: Option<ReadIndexResult>,
}

/// `ReadIndexReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ReadIndexResult {
    /// The leader confirmed its leadership; a read must wait for this log id.
    #[prost(message, tag = "1")]
    ReadIndex(ReadIndex),
    /// The callee is not the leader.
    #[prost(message, tag = "2")]
    NotLeader(NotLeader),
    /// The leader could not confirm its leadership.
    #[prost(message, tag = "3")]
    Failure(Failure),
}

/// `ReadIndex`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadIndex {
    /// The log id to have applied before reading; absent: none.
    #[prost(message, optional, tag = "1")]
    pub read_log_id: Option<LogId>,
}

/// `LeaseKeepAliveRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseKeepAliveRequest {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// `LeaseKeepAliveReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseKeepAliveReply {
    /// Exactly one result.
    #[prost(oneof = "LeaseKeepAliveResult", tags = "1, 2, 3, 4")]
    pub result: Option<LeaseKeepAliveResult>,
}

/// `LeaseKeepAliveReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum LeaseKeepAliveResult {
    /// Refreshed: its TTL.
    #[prost(uint64, tag = "1")]
    TtlMs(u64),
    /// No such lease (or its deadline passed).
    #[prost(message, tag = "2")]
    NotFound(Empty),
    /// The callee is not the leader.
    #[prost(message, tag = "3")]
    NotLeader(NotLeader),
    /// The leader's engine failed.
    #[prost(message, tag = "4")]
    Failure(Failure),
}

/// `CommandResponse`: what applying a command answered.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommandResponse {
    /// Exactly one result.
    #[prost(oneof = "CommandResult", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub result: Option<CommandResult>,
}

/// `CommandResponse.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CommandResult {
    /// An entry without a command.
    #[prost(message, tag = "1")]
    Empty(Empty),
    /// A put's revision.
    #[prost(uint64, tag = "2")]
    Put(u64),
    /// A delete range's revision and count.
    #[prost(message, tag = "3")]
    DeleteRange(DeleteRangeResult),
    /// A txn's outcome.
    #[prost(message, tag = "4")]
    Txn(TxnResult),
    /// The lease granted.
    #[prost(uint64, tag = "5")]
    LeaseGranted(u64),
    /// A revocation's revision.
    #[prost(uint64, tag = "6")]
    LeaseRevoked(u64),
    /// The new horizon.
    #[prost(uint64, tag = "7")]
    Compacted(u64),
    /// The engine refused the command.
    #[prost(message, tag = "8")]
    Rejected(Rejection),
}

/// `DeleteRangeResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRangeResult {
    /// The commit's revision.
    #[prost(uint64, tag = "1")]
    pub revision: u64,
    /// Keys deleted.
    #[prost(uint64, tag = "2")]
    pub deleted: u64,
}

/// `TxnResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnResult {
    /// Whether every compare held.
    #[prost(bool, tag = "1")]
    pub succeeded: bool,
    /// The revision of its writes, or the one it read at.
    #[prost(uint64, tag = "2")]
    pub revision: u64,
    /// One result per op of the branch that ran.
    #[prost(message, repeated, tag = "3")]
    pub results: Vec<OpResult>,
}

/// `OpResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpResult {
    /// Exactly one result.
    #[prost(oneof = "OpResultKind", tags = "1, 2, 3, 4")]
    pub result: Option<OpResultKind>,
}

/// `OpResult.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OpResultKind {
    /// A put: the previous live version, if any.
    #[prost(message, tag = "1")]
    Put(PutResult),
    /// A delete range: the versions deleted.
    #[prost(message, tag = "2")]
    DeleteRange(RangeResult),
    /// A read.
    #[prost(message, tag = "3")]
    Range(RangeResult),
    /// A nested txn.
    #[prost(message, tag = "4")]
    Txn(Box<NestedTxnResult>),
}

/// `PutResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResult {
    /// The previous live version; absent: none.
    #[prost(message, optional, tag = "1")]
    pub prev: Option<Version>,
}

/// `RangeResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResult {
    /// The rows, in key order.
    #[prost(message, repeated, tag = "1")]
    pub rows: Vec<KeyVersion>,
    /// Whether a limit left rows out.
    #[prost(bool, tag = "2")]
    pub more: bool,
}

/// `NestedTxnResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NestedTxnResult {
    /// Whether every compare of the nested txn held.
    #[prost(bool, tag = "1")]
    pub succeeded: bool,
    /// One result per op of the nested branch that ran.
    #[prost(message, repeated, tag = "2")]
    pub results: Vec<OpResult>,
}

/// `KeyVersion`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyVersion {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Its version.
    #[prost(message, optional, tag = "2")]
    pub version: Option<Version>,
}

/// `Version`: a key's live version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Version {
    /// The value.
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
    /// The revision that wrote it.
    #[prost(uint64, tag = "2")]
    pub revision: u64,
    /// That commit's time, unix milliseconds.
    #[prost(uint64, tag = "3")]
    pub created_at_ms: u64,
    /// The key's create revision.
    #[prost(uint64, tag = "4")]
    pub create_revision: u64,
    /// Puts since then.
    #[prost(uint64, tag = "5")]
    pub version: u64,
    /// Its lease (0: none).
    #[prost(uint64, tag = "6")]
    pub lease: u64,
}

/// `Rejection`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Rejection {
    /// Exactly one reason.
    #[prost(oneof = "RejectionReason", tags = "1, 2, 3, 4, 5")]
    pub reason: Option<RejectionReason>,
}

/// `Rejection.reason`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RejectionReason {
    /// No such lease.
    #[prost(uint64, tag = "1")]
    LeaseNotFound(u64),
    /// The lease id is taken.
    #[prost(uint64, tag = "2")]
    LeaseExists(u64),
    /// A compacted revision.
    #[prost(message, tag = "3")]
    Compacted(RevisionPair),
    /// A future revision.
    #[prost(message, tag = "4")]
    FutureRevision(RevisionPair),
    /// A malformed request.
    #[prost(string, tag = "5")]
    InvalidArgument(String),
}

/// `RevisionPair`: the revision asked for and the bound it broke (the horizon, the newest).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RevisionPair {
    /// Asked for.
    #[prost(uint64, tag = "1")]
    pub requested: u64,
    /// The horizon or the newest revision.
    #[prost(uint64, tag = "2")]
    pub bound: u64,
}
