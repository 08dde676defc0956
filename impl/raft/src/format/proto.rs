//! `spec/raft.proto` as prost derives: the same messages, fields and frozen tags, written by hand
//! so the crate needs no code generator. The test vectors of `spec/FORMAT.md` § 12.6 check that
//! these and the schema agree on the bytes.
//!
//! Invariant: a tag here is the tag in `spec/raft.proto`; neither changes once released.

/// `LogId`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogId {
    /// The proposing leader's term.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// The proposing leader's node id.
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    /// The log index.
    #[prost(uint64, tag = "3")]
    pub index: u64,
}

/// `Vote`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Vote {
    /// The term voted in.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// The candidate voted for.
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    /// Whether a quorum granted it.
    #[prost(bool, tag = "3")]
    pub committed: bool,
}

/// `Node`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    /// Its id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its peer URL.
    #[prost(string, tag = "2")]
    pub addr: String,
    /// Its name; empty until it published it.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Its client URLs; none until it published them.
    #[prost(string, repeated, tag = "4")]
    pub client_urls: Vec<String>,
}

/// `VoterSet`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoterSet {
    /// Voter ids, strictly increasing.
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
}

/// `Membership`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Membership {
    /// One config, two during a joint change.
    #[prost(message, repeated, tag = "1")]
    pub configs: Vec<VoterSet>,
    /// Every node, ids strictly increasing.
    #[prost(message, repeated, tag = "2")]
    pub nodes: Vec<Node>,
}

/// `StoredMembership`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredMembership {
    /// The entry that carried it; absent for the initial one.
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
    /// The membership.
    #[prost(message, optional, tag = "2")]
    pub membership: Option<Membership>,
}

/// `SnapshotMeta`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotMeta {
    /// The last entry the snapshot covers; absent: none.
    #[prost(message, optional, tag = "1")]
    pub last_log_id: Option<LogId>,
    /// Its membership.
    #[prost(message, optional, tag = "2")]
    pub last_membership: Option<StoredMembership>,
    /// Its id.
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
}

/// `Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// Its id.
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
    /// Exactly one payload.
    #[prost(oneof = "EntryPayload", tags = "2, 3, 4")]
    pub payload: Option<EntryPayload>,
}

/// `Entry.payload`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EntryPayload {
    /// A new leader's blank entry.
    #[prost(message, tag = "2")]
    Blank(Blank),
    /// A command for the state machine.
    #[prost(message, tag = "3")]
    Command(Command),
    /// A membership change.
    #[prost(message, tag = "4")]
    Membership(Membership),
}

/// `Blank`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Blank {}

/// `KeyRange`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyRange {
    /// Absent: unbounded.
    #[prost(message, optional, tag = "1")]
    pub start: Option<Bound>,
    /// Absent: unbounded.
    #[prost(message, optional, tag = "2")]
    pub end: Option<Bound>,
}

/// `Bound`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bound {
    /// A [`BoundKind`].
    #[prost(enumeration = "BoundKind", tag = "1")]
    pub kind: i32,
    /// The bounding key.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
}

/// `Bound.Kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BoundKind {
    /// Refused by decoders.
    Unspecified = 0,
    /// The key is in the range.
    Included = 1,
    /// The key is not.
    Excluded = 2,
}

/// `Command`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Command {
    /// Exactly one op.
    #[prost(oneof = "CommandOp", tags = "1, 2, 3, 4, 5, 6")]
    pub op: Option<CommandOp>,
}

/// `Command.op`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CommandOp {
    /// A put.
    #[prost(message, tag = "1")]
    Put(Put),
    /// A delete of a range.
    #[prost(message, tag = "2")]
    DeleteRange(KeyRange),
    /// A txn.
    #[prost(message, tag = "3")]
    Txn(Txn),
    /// A lease grant.
    #[prost(message, tag = "4")]
    LeaseGrant(LeaseGrant),
    /// A lease revocation.
    #[prost(message, tag = "5")]
    LeaseRevoke(LeaseRevoke),
    /// A history compaction.
    #[prost(message, tag = "6")]
    Compact(Compact),
}

/// `Put`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Put {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// The lease (0: none).
    #[prost(uint64, tag = "3")]
    pub lease: u64,
}

/// `LeaseGrant`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseGrant {
    /// The id the proposer chose.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The TTL in milliseconds.
    #[prost(uint64, tag = "2")]
    pub ttl_ms: u64,
}

/// `LeaseRevoke`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseRevoke {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// `Compact`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compact {
    /// The new history horizon.
    #[prost(uint64, tag = "1")]
    pub revision: u64,
}

/// `Txn`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Txn {
    /// All must hold for `success` to run.
    #[prost(message, repeated, tag = "1")]
    pub compares: Vec<Compare>,
    /// Ops run when they do.
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<TxnOp>,
}

/// `Compare`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compare {
    /// The key compared (when `range` is absent).
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Present: every live key of it is compared.
    #[prost(message, optional, tag = "2")]
    pub range: Option<KeyRange>,
    /// A [`CompareOpKind`].
    #[prost(enumeration = "CompareOpKind", tag = "3")]
    pub op: i32,
    /// Exactly one target.
    #[prost(oneof = "CompareTarget", tags = "4, 5, 6, 7, 8")]
    pub target: Option<CompareTarget>,
}

/// `Compare.Op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareOpKind {
    /// `=`
    Equal = 0,
    /// `!=`
    NotEqual = 1,
    /// `<`
    Less = 2,
    /// `>`
    Greater = 3,
}

/// `Compare.target`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CompareTarget {
    /// The value.
    #[prost(bytes = "vec", tag = "4")]
    Value(Vec<u8>),
    /// The version.
    #[prost(uint64, tag = "5")]
    Version(u64),
    /// The create revision.
    #[prost(uint64, tag = "6")]
    CreateRevision(u64),
    /// The mod revision.
    #[prost(uint64, tag = "7")]
    ModRevision(u64),
    /// The lease.
    #[prost(uint64, tag = "8")]
    Lease(u64),
}

/// `TxnOp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnOp {
    /// Exactly one op.
    #[prost(oneof = "TxnOpKind", tags = "1, 2, 3, 4")]
    pub op: Option<TxnOpKind>,
}

/// `TxnOp.op`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum TxnOpKind {
    /// A put.
    #[prost(message, tag = "1")]
    Put(Put),
    /// A delete of a range.
    #[prost(message, tag = "2")]
    DeleteRange(KeyRange),
    /// A read.
    #[prost(message, tag = "3")]
    Range(RangeRequest),
    /// A nested txn.
    #[prost(message, tag = "4")]
    Txn(Box<Txn>),
}

/// `RangeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// The keys read.
    #[prost(message, optional, tag = "1")]
    pub range: Option<KeyRange>,
    /// At most this many rows; absent: all.
    #[prost(uint64, optional, tag = "2")]
    pub limit: Option<u64>,
}

/// `StatePointer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatePointer {
    /// The live state machine generation.
    #[prost(uint64, tag = "1")]
    pub generation: u64,
    /// The snapshot it was installed from; absent: none.
    #[prost(message, optional, tag = "2")]
    pub installed: Option<SnapshotMeta>,
}
