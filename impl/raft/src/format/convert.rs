//! openraft's types and the state pointer to and from the messages of `spec/raft.proto`
//! (`spec/FORMAT.md` § 12.3-12.5).
//!
//! Invariants: decoders check what the schema cannot say (required fields present, ids strictly
//! increasing, at most [`MEMBERS_MAX`] nodes, an entry's index is the one its key names — the
//! caller checks that last) and never panic.

use std::collections::{BTreeMap, BTreeSet};

use crate::Node;
use openraft::{EntryPayload, LogId, StoredMembership, Vote};
use prost::Message;

use super::command::{command_from_proto, command_to_proto};
use super::{
    FormatError, MEMBERS_MAX, MEMBERSHIP_CONFIGS_MAX, STATE_POINTER_HEAD_LEN,
    STATE_POINTER_LEN_MAX, STATE_POINTER_MAGIC, STATE_POINTER_VERSION, VALUE_LEN_MAX,
    decode_message, proto,
};
use crate::{Entry, Membership, SnapshotMeta};

pub(super) fn log_id_to_proto(log_id: &LogId<u64>) -> proto::LogId {
    proto::LogId {
        term: log_id.leader_id.term,
        node_id: log_id.leader_id.node_id,
        index: log_id.index,
    }
}

pub(super) fn log_id_from_proto(p: &proto::LogId) -> LogId<u64> {
    LogId::new(openraft::CommittedLeaderId::new(p.term, p.node_id), p.index)
}

fn membership_to_proto(m: &Membership) -> proto::Membership {
    proto::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|ids| proto::VoterSet {
                ids: ids.iter().copied().collect(),
            })
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, node)| node_to_proto(*id, node))
            .collect(),
    }
}

const MEMBERSHIP: &str = "Membership";

/// Strictly increasing ids, at most [`MEMBERS_MAX`].
fn check_ids(field: &'static str, ids: impl Iterator<Item = u64>) -> Result<(), FormatError> {
    let mut last: Option<u64> = None;
    for (n, id) in ids.enumerate() {
        if n >= MEMBERS_MAX {
            return Err(FormatError::invalid(
                MEMBERSHIP,
                field,
                format!("more than MEMBERS_MAX = {MEMBERS_MAX}"),
            ));
        }
        if last.is_some_and(|last| last >= id) {
            return Err(FormatError::invalid(
                MEMBERSHIP,
                field,
                format!("id {id} after {last:?}: not strictly increasing"),
            ));
        }
        last = Some(id);
    }
    Ok(())
}

/// Node `id` as a `Node` message.
pub(super) fn node_to_proto(id: u64, node: &Node) -> proto::Node {
    proto::Node {
        id,
        addr: node.addr.clone(),
        name: node.name.clone(),
        client_urls: node.client_urls.clone(),
    }
}

/// A `Node` message within the limits of [`Node::check`] (its id is the caller's).
pub(super) fn node_from_proto(n: &proto::Node) -> Result<Node, FormatError> {
    let node = Node {
        addr: n.addr.clone(),
        name: n.name.clone(),
        client_urls: n.client_urls.clone(),
    };
    node.check()?;
    Ok(node)
}

fn membership_from_proto(p: &proto::Membership) -> Result<Membership, FormatError> {
    if p.configs.is_empty() || p.configs.len() > MEMBERSHIP_CONFIGS_MAX {
        return Err(FormatError::invalid(
            MEMBERSHIP,
            "configs",
            format!(
                "{} configs, not 1..={MEMBERSHIP_CONFIGS_MAX}",
                p.configs.len()
            ),
        ));
    }
    check_ids("nodes", p.nodes.iter().map(|n| n.id))?;
    let nodes = p
        .nodes
        .iter()
        .map(|n| Ok((n.id, node_from_proto(n)?)))
        .collect::<Result<BTreeMap<u64, Node>, FormatError>>()?;
    let mut configs = Vec::with_capacity(p.configs.len());
    for config in &p.configs {
        check_ids("configs.ids", config.ids.iter().copied())?;
        if let Some(stray) = config.ids.iter().find(|id| !nodes.contains_key(id)) {
            return Err(FormatError::invalid(
                MEMBERSHIP,
                "configs.ids",
                format!("voter {stray} is not among the nodes"),
            ));
        }
        configs.push(config.ids.iter().copied().collect::<BTreeSet<u64>>());
    }
    Ok(Membership::new(configs, nodes))
}

fn stored_membership_to_proto(m: &StoredMembership<u64, Node>) -> proto::StoredMembership {
    proto::StoredMembership {
        log_id: m.log_id().as_ref().map(log_id_to_proto),
        membership: Some(membership_to_proto(m.membership())),
    }
}

fn stored_membership_from_proto(
    p: &proto::StoredMembership,
) -> Result<StoredMembership<u64, Node>, FormatError> {
    let membership = match &p.membership {
        Some(m) => membership_from_proto(m)?,
        None => return Err(FormatError::missing("StoredMembership", "membership")),
    };
    Ok(StoredMembership::new(
        p.log_id.as_ref().map(log_id_from_proto),
        membership,
    ))
}

pub(super) fn snapshot_meta_to_proto(meta: &SnapshotMeta) -> proto::SnapshotMeta {
    proto::SnapshotMeta {
        last_log_id: meta.last_log_id.as_ref().map(log_id_to_proto),
        last_membership: Some(stored_membership_to_proto(&meta.last_membership)),
        snapshot_id: meta.snapshot_id.clone(),
    }
}

pub(super) fn snapshot_meta_from_proto(
    p: &proto::SnapshotMeta,
) -> Result<SnapshotMeta, FormatError> {
    let last_membership = match &p.last_membership {
        Some(m) => stored_membership_from_proto(m)?,
        None => return Err(FormatError::missing("SnapshotMeta", "last_membership")),
    };
    Ok(SnapshotMeta {
        last_log_id: p.last_log_id.as_ref().map(log_id_from_proto),
        last_membership,
        snapshot_id: p.snapshot_id.clone(),
    })
}

/// A log id's value bytes (the committed and the last purged log id).
pub fn encode_log_id(log_id: &LogId<u64>) -> Vec<u8> {
    log_id_to_proto(log_id).encode_to_vec()
}

/// [`encode_log_id`]'s inverse.
pub fn decode_log_id(bytes: &[u8]) -> Result<LogId<u64>, FormatError> {
    let p: proto::LogId = decode_message("LogId", bytes, VALUE_LEN_MAX)?;
    Ok(log_id_from_proto(&p))
}

pub(super) fn vote_to_proto(vote: &Vote<u64>) -> proto::Vote {
    proto::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

pub(super) fn vote_from_proto(p: &proto::Vote) -> Vote<u64> {
    if p.committed {
        Vote::new_committed(p.term, p.node_id)
    } else {
        Vote::new(p.term, p.node_id)
    }
}

/// The vote's value bytes.
pub fn encode_vote(vote: &Vote<u64>) -> Vec<u8> {
    vote_to_proto(vote).encode_to_vec()
}

/// [`encode_vote`]'s inverse.
pub fn decode_vote(bytes: &[u8]) -> Result<Vote<u64>, FormatError> {
    let p: proto::Vote = decode_message("Vote", bytes, VALUE_LEN_MAX)?;
    Ok(vote_from_proto(&p))
}

/// The last applied membership's value bytes.
pub fn encode_stored_membership(m: &StoredMembership<u64, Node>) -> Vec<u8> {
    stored_membership_to_proto(m).encode_to_vec()
}

/// [`encode_stored_membership`]'s inverse.
pub fn decode_stored_membership(bytes: &[u8]) -> Result<StoredMembership<u64, Node>, FormatError> {
    let p: proto::StoredMembership = decode_message("StoredMembership", bytes, VALUE_LEN_MAX)?;
    stored_membership_from_proto(&p)
}

/// A log entry's value bytes.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    entry_to_proto(entry).encode_to_vec()
}

pub(super) fn entry_to_proto(entry: &Entry) -> proto::Entry {
    let payload = match &entry.payload {
        EntryPayload::Blank => proto::EntryPayload::Blank(proto::Blank {}),
        EntryPayload::Normal(command) => proto::EntryPayload::Command(command_to_proto(command)),
        EntryPayload::Membership(m) => proto::EntryPayload::Membership(membership_to_proto(m)),
    };
    proto::Entry {
        log_id: Some(log_id_to_proto(&entry.log_id)),
        payload: Some(payload),
    }
}

/// [`encode_entry`]'s inverse.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, FormatError> {
    let p: proto::Entry = decode_message("Entry", bytes, VALUE_LEN_MAX)?;
    entry_from_proto(&p)
}

pub(super) fn entry_from_proto(p: &proto::Entry) -> Result<Entry, FormatError> {
    let log_id = match &p.log_id {
        Some(id) => log_id_from_proto(id),
        None => return Err(FormatError::missing("Entry", "log_id")),
    };
    let payload = match &p.payload {
        Some(proto::EntryPayload::Blank(_)) => EntryPayload::Blank,
        Some(proto::EntryPayload::Command(c)) => EntryPayload::Normal(command_from_proto(c)?),
        Some(proto::EntryPayload::Membership(m)) => {
            EntryPayload::Membership(membership_from_proto(m)?)
        }
        None => return Err(FormatError::missing("Entry", "payload")),
    };
    Ok(Entry { log_id, payload })
}

/// What `SM_CURRENT` says: the live state machine generation and the snapshot it was installed
/// from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatePointer {
    /// The generation: the state machine's engine lives in `sm-<generation:020>/`.
    pub generation: u64,
    /// The snapshot that generation was installed from, if any.
    pub installed: Option<SnapshotMeta>,
}

/// The whole `SM_CURRENT` file: head (magic, version, reserved, length, CRC32C) and message.
pub fn encode_state_pointer(pointer: &StatePointer) -> Vec<u8> {
    let message = proto::StatePointer {
        generation: pointer.generation,
        installed: pointer.installed.as_ref().map(snapshot_meta_to_proto),
    }
    .encode_to_vec();
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(STATE_POINTER_HEAD_LEN + message.len());
    out.extend_from_slice(&STATE_POINTER_MAGIC);
    out.push(STATE_POINTER_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&message).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

const POINTER: &str = "SM_CURRENT";

/// [`encode_state_pointer`]'s inverse, checking every head field and the CRC.
pub fn decode_state_pointer(bytes: &[u8]) -> Result<StatePointer, FormatError> {
    let (head, message) = bytes
        .split_at_checked(STATE_POINTER_HEAD_LEN)
        .ok_or_else(|| FormatError::invalid(POINTER, "head", "truncated"))?;
    let field = |from: usize, to: usize| head.get(from..to).unwrap_or_default();
    if field(0, 8) != STATE_POINTER_MAGIC {
        return Err(FormatError::invalid(POINTER, "magic", "not KVRSMPTR"));
    }
    if field(8, 9) != [STATE_POINTER_VERSION] {
        return Err(FormatError::invalid(POINTER, "version", "not 1"));
    }
    if field(9, 12) != [0, 0, 0] {
        return Err(FormatError::invalid(POINTER, "reserved", "not zero"));
    }
    let be = |bytes: &[u8]| bytes.try_into().map(u32::from_be_bytes).unwrap_or(u32::MAX);
    let len = be(field(12, 16)) as usize;
    if len > STATE_POINTER_LEN_MAX {
        return Err(FormatError::TooLong {
            structure: POINTER,
            len,
            max: STATE_POINTER_LEN_MAX,
        });
    }
    if message.len() != len {
        return Err(FormatError::invalid(
            POINTER,
            "length",
            format!("says {len}, {} bytes follow the head", message.len()),
        ));
    }
    if be(field(16, 20)) != crc32c::crc32c(message) {
        return Err(FormatError::invalid(POINTER, "crc32c", "mismatch"));
    }
    let p: proto::StatePointer = decode_message(POINTER, message, STATE_POINTER_LEN_MAX)?;
    Ok(StatePointer {
        generation: p.generation,
        installed: p
            .installed
            .as_ref()
            .map(snapshot_meta_from_proto)
            .transpose()?,
    })
}
