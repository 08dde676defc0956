//! The peer service's `ChangeMembers` call (`spec/raft_peer.proto`, `spec/FORMAT.md` § 12.7):
//! its messages as prost derives, and [`MemberChange`] and its outcome to and from them.
//!
//! Invariants: decoders check what the schema cannot say (the oneofs set, `AddMember.node`
//! present, every node within [`crate::Node::check`]'s limits) and never panic;
//! decode(encode(x)) == x for every change and outcome.

use prost::Message;

use super::convert::{log_id_from_proto, log_id_to_proto, node_from_proto, node_to_proto};
use super::peer::{
    PEER_MESSAGE_LEN_MAX, Relayed, failure_to_proto, not_leader, remote_failure, required,
};
use super::peer_proto::{Failure, NotLeader};
use super::proto::{LogId, Node};
use super::{FormatError, decode_message};
use crate::membership::{ChangeOutcome, MemberChange, MemberRefusal};

/// `ChangeMembersRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChangeMembersRequest {
    /// Exactly one change.
    #[prost(oneof = "Change", tags = "1, 2, 3, 4, 5")]
    pub change: Option<Change>,
}

/// `ChangeMembersRequest.change`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Change {
    /// Add a member.
    #[prost(message, tag = "1")]
    Add(AddMember),
    /// Remove the member with this id.
    #[prost(uint64, tag = "2")]
    Remove(u64),
    /// Promote the learner with this id.
    #[prost(uint64, tag = "3")]
    Promote(u64),
    /// Move member `id` to `addr` (its name and client URLs are ignored).
    #[prost(message, tag = "4")]
    UpdatePeerUrl(Node),
    /// Member `id` publishes its name and client URLs (its `addr` is ignored).
    #[prost(message, tag = "5")]
    Publish(Node),
}

/// `AddMember`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddMember {
    /// The member (id, peer URL, what it published); required.
    #[prost(message, optional, tag = "1")]
    pub node: Option<Node>,
    /// Whether it joins as a learner.
    #[prost(bool, tag = "2")]
    pub learner: bool,
}

/// `ChangeMembersReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChangeMembersReply {
    /// Exactly one result.
    #[prost(oneof = "ChangeResult", tags = "1, 2, 3, 4")]
    pub result: Option<ChangeResult>,
}

/// `ChangeMembersReply.result`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ChangeResult {
    /// Committed.
    #[prost(message, tag = "1")]
    Changed(Changed),
    /// The leader refused it.
    #[prost(message, tag = "2")]
    Refused(Refused),
    /// The callee is not the leader.
    #[prost(message, tag = "3")]
    NotLeader(NotLeader),
    /// The leader could not commit it.
    #[prost(message, tag = "4")]
    Failure(Failure),
}

/// `Changed`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Changed {
    /// The membership entry holding the change; absent: nothing changed and no membership
    /// entry exists.
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
}

/// `Refused`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Refused {
    /// A [`RefusalReason`].
    #[prost(enumeration = "RefusalReason", tag = "1")]
    pub reason: i32,
    /// The member concerned (EXISTS, NOT_FOUND, NOT_LEARNER, LEARNER_NOT_READY).
    #[prost(uint64, tag = "2")]
    pub id: u64,
    /// The URL (PEER_URL_EXISTS) or the description (INVALID).
    #[prost(string, tag = "3")]
    pub detail: String,
}

/// `Refused.Reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum RefusalReason {
    /// Anything else; read as such when unknown.
    Invalid = 0,
    /// The id is a member's.
    Exists = 1,
    /// The peer URL is a member's.
    PeerUrlExists = 2,
    /// No member has the id.
    NotFound = 3,
    /// The member is not a learner.
    NotLearner = 4,
    /// The learner has not caught up.
    LearnerNotReady = 5,
    /// The cluster has as many learners as it may.
    TooManyLearners = 6,
    /// Too few voters would have started for a quorum after the change.
    NotEnoughStarted = 7,
}

const REQUEST: &str = "ChangeMembersRequest";

/// A change as `ChangeMembersRequest`.
pub fn change_members_request_to_proto(change: &MemberChange) -> ChangeMembersRequest {
    let change = match change {
        MemberChange::Add { id, node, learner } => Change::Add(AddMember {
            node: Some(node_to_proto(*id, node)),
            learner: *learner,
        }),
        MemberChange::Remove { id } => Change::Remove(*id),
        MemberChange::Promote { id } => Change::Promote(*id),
        MemberChange::UpdatePeerUrl { id, addr } => Change::UpdatePeerUrl(Node {
            id: *id,
            addr: addr.clone(),
            ..Node::default()
        }),
        MemberChange::Publish {
            id,
            name,
            client_urls,
        } => Change::Publish(Node {
            id: *id,
            name: name.clone(),
            client_urls: client_urls.clone(),
            ..Node::default()
        }),
    };
    ChangeMembersRequest {
        change: Some(change),
    }
}

/// [`change_members_request_to_proto`]'s inverse.
pub fn change_members_request_from_proto(
    p: &ChangeMembersRequest,
) -> Result<MemberChange, FormatError> {
    Ok(match required(p.change.as_ref(), REQUEST, "change")? {
        Change::Add(add) => {
            let node = required(add.node.as_ref(), "AddMember", "node")?;
            MemberChange::Add {
                id: node.id,
                node: node_from_proto(node)?,
                learner: add.learner,
            }
        }
        Change::Remove(id) => MemberChange::Remove { id: *id },
        Change::Promote(id) => MemberChange::Promote { id: *id },
        Change::UpdatePeerUrl(node) => MemberChange::UpdatePeerUrl {
            id: node.id,
            addr: node_from_proto(node)?.addr,
        },
        Change::Publish(node) => {
            let node_checked = node_from_proto(node)?;
            MemberChange::Publish {
                id: node.id,
                name: node_checked.name,
                client_urls: node_checked.client_urls,
            }
        }
    })
}

/// A `ChangeMembersRequest`'s bytes.
pub fn encode_change_members_request(change: &MemberChange) -> Vec<u8> {
    change_members_request_to_proto(change).encode_to_vec()
}

/// [`encode_change_members_request`]'s inverse, refusing more than [`PEER_MESSAGE_LEN_MAX`]
/// bytes.
pub fn decode_change_members_request(bytes: &[u8]) -> Result<MemberChange, FormatError> {
    let p: ChangeMembersRequest = decode_message(REQUEST, bytes, PEER_MESSAGE_LEN_MAX)?;
    change_members_request_from_proto(&p)
}

fn refused_to_proto(refusal: &MemberRefusal) -> Refused {
    let (reason, id, detail) = match refusal {
        MemberRefusal::Exists { id } => (RefusalReason::Exists, *id, String::new()),
        MemberRefusal::PeerUrlExists { url } => (RefusalReason::PeerUrlExists, 0, url.clone()),
        MemberRefusal::NotFound { id } => (RefusalReason::NotFound, *id, String::new()),
        MemberRefusal::NotLearner { id } => (RefusalReason::NotLearner, *id, String::new()),
        MemberRefusal::LearnerNotReady { id } => {
            (RefusalReason::LearnerNotReady, *id, String::new())
        }
        MemberRefusal::TooManyLearners => (RefusalReason::TooManyLearners, 0, String::new()),
        MemberRefusal::NotEnoughStarted => (RefusalReason::NotEnoughStarted, 0, String::new()),
        MemberRefusal::Invalid(what) => (RefusalReason::Invalid, 0, what.clone()),
    };
    Refused {
        reason: reason as i32,
        id,
        detail,
    }
}

fn refused_from_proto(p: &Refused) -> MemberRefusal {
    let id = p.id;
    match RefusalReason::try_from(p.reason).unwrap_or(RefusalReason::Invalid) {
        RefusalReason::Exists => MemberRefusal::Exists { id },
        RefusalReason::PeerUrlExists => MemberRefusal::PeerUrlExists {
            url: p.detail.clone(),
        },
        RefusalReason::NotFound => MemberRefusal::NotFound { id },
        RefusalReason::NotLearner => MemberRefusal::NotLearner { id },
        RefusalReason::LearnerNotReady => MemberRefusal::LearnerNotReady { id },
        RefusalReason::TooManyLearners => MemberRefusal::TooManyLearners,
        RefusalReason::NotEnoughStarted => MemberRefusal::NotEnoughStarted,
        RefusalReason::Invalid => MemberRefusal::Invalid(p.detail.clone()),
    }
}

/// A change's outcome as `ChangeMembersReply`.
pub fn change_members_reply_to_proto(reply: &Relayed<ChangeOutcome>) -> ChangeMembersReply {
    let result = match reply {
        Relayed::Done(Ok(log_id)) => ChangeResult::Changed(Changed {
            log_id: log_id.as_ref().map(log_id_to_proto),
        }),
        Relayed::Done(Err(refusal)) => ChangeResult::Refused(refused_to_proto(refusal)),
        Relayed::NotLeader(leader) => ChangeResult::NotLeader(not_leader(*leader)),
        Relayed::Failed(f) => ChangeResult::Failure(failure_to_proto(f)),
    };
    ChangeMembersReply {
        result: Some(result),
    }
}

/// [`change_members_reply_to_proto`]'s inverse.
pub fn change_members_reply_from_proto(
    p: &ChangeMembersReply,
) -> Result<Relayed<ChangeOutcome>, FormatError> {
    Ok(
        match required(p.result.as_ref(), "ChangeMembersReply", "result")? {
            ChangeResult::Changed(changed) => {
                Relayed::Done(Ok(changed.log_id.as_ref().map(log_id_from_proto)))
            }
            ChangeResult::Refused(refused) => Relayed::Done(Err(refused_from_proto(refused))),
            ChangeResult::NotLeader(n) => Relayed::NotLeader(n.leader_id),
            ChangeResult::Failure(f) => Relayed::Failed(remote_failure(f)),
        },
    )
}

/// A `ChangeMembersReply`'s bytes.
pub fn encode_change_members_reply(reply: &Relayed<ChangeOutcome>) -> Vec<u8> {
    change_members_reply_to_proto(reply).encode_to_vec()
}

/// [`encode_change_members_reply`]'s inverse, refusing more than [`PEER_MESSAGE_LEN_MAX`]
/// bytes.
pub fn decode_change_members_reply(bytes: &[u8]) -> Result<Relayed<ChangeOutcome>, FormatError> {
    let p: ChangeMembersReply = decode_message("ChangeMembersReply", bytes, PEER_MESSAGE_LEN_MAX)?;
    change_members_reply_from_proto(&p)
}
