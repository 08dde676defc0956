//! [`Command`] to and from `spec/raft.proto`'s `Command` (`spec/FORMAT.md` § 12.4).
//!
//! Invariant: every oneof is present and every enum value known after decoding, else a
//! [`FormatError`]; what the engine judges (key lengths, lease ids, txn sizes) is left to the
//! engine, which rejects it the same way on every member.

use std::ops::Bound;

use kvstore::KeyRange;
use kvstore::txn::{Compare, CompareOp, CompareTarget, RangeRequest, Txn, TxnOp};
use prost::Message;

use super::proto::{self, BoundKind, CompareOpKind};
use super::{FormatError, VALUE_LEN_MAX, decode_message};
use crate::command::Command;

/// A command's bytes (`Command` of `spec/raft.proto`), as an entry carries them.
pub fn encode_command(command: &Command) -> Vec<u8> {
    command_to_proto(command).encode_to_vec()
}

/// [`encode_command`]'s inverse.
pub fn decode_command(bytes: &[u8]) -> Result<Command, FormatError> {
    let p: proto::Command = decode_message("Command", bytes, VALUE_LEN_MAX)?;
    command_from_proto(&p)
}

fn bound_to_proto(bound: &Bound<Vec<u8>>) -> Option<proto::Bound> {
    let (kind, key) = match bound {
        Bound::Unbounded => return None,
        Bound::Included(key) => (BoundKind::Included, key),
        Bound::Excluded(key) => (BoundKind::Excluded, key),
    };
    Some(proto::Bound {
        kind: kind as i32,
        key: key.clone(),
    })
}

fn bound_from_proto(bound: Option<&proto::Bound>) -> Result<Bound<Vec<u8>>, FormatError> {
    let Some(bound) = bound else {
        return Ok(Bound::Unbounded);
    };
    match BoundKind::try_from(bound.kind) {
        Ok(BoundKind::Included) => Ok(Bound::Included(bound.key.clone())),
        Ok(BoundKind::Excluded) => Ok(Bound::Excluded(bound.key.clone())),
        Ok(BoundKind::Unspecified) | Err(_) => Err(FormatError::invalid(
            "Bound",
            "kind",
            format!("{} is not INCLUDED (1) or EXCLUDED (2)", bound.kind),
        )),
    }
}

fn range_to_proto(range: &KeyRange) -> proto::KeyRange {
    proto::KeyRange {
        start: bound_to_proto(&range.start),
        end: bound_to_proto(&range.end),
    }
}

fn range_from_proto(range: &proto::KeyRange) -> Result<KeyRange, FormatError> {
    Ok(KeyRange::new(
        bound_from_proto(range.start.as_ref())?,
        bound_from_proto(range.end.as_ref())?,
    ))
}

fn put_to_proto(key: &[u8], value: &[u8], lease: u64) -> proto::Put {
    proto::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
    }
}

fn op_to_proto(op: &TxnOp) -> proto::TxnOp {
    let op = match op {
        TxnOp::Put { key, value, lease } => proto::TxnOpKind::Put(put_to_proto(key, value, *lease)),
        TxnOp::DeleteRange(range) => proto::TxnOpKind::DeleteRange(range_to_proto(range)),
        TxnOp::Range(request) => proto::TxnOpKind::Range(proto::RangeRequest {
            range: Some(range_to_proto(&request.range)),
            limit: request
                .limit
                .map(|limit| u64::try_from(limit).unwrap_or(u64::MAX)),
        }),
        TxnOp::Txn(nested) => proto::TxnOpKind::Txn(Box::new(txn_to_proto(nested))),
    };
    proto::TxnOp { op: Some(op) }
}

fn op_from_proto(op: &proto::TxnOp) -> Result<TxnOp, FormatError> {
    Ok(match &op.op {
        Some(proto::TxnOpKind::Put(p)) => TxnOp::Put {
            key: p.key.clone(),
            value: p.value.clone(),
            lease: p.lease,
        },
        Some(proto::TxnOpKind::DeleteRange(range)) => TxnOp::DeleteRange(range_from_proto(range)?),
        Some(proto::TxnOpKind::Range(request)) => TxnOp::Range(RangeRequest {
            range: match &request.range {
                Some(range) => range_from_proto(range)?,
                None => return Err(FormatError::missing("RangeRequest", "range")),
            },
            limit: request
                .limit
                .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX)),
        }),
        Some(proto::TxnOpKind::Txn(nested)) => TxnOp::Txn(txn_from_proto(nested)?),
        None => return Err(FormatError::missing("TxnOp", "op")),
    })
}

fn txn_to_proto(txn: &Txn) -> proto::Txn {
    proto::Txn {
        compares: txn.compares.iter().map(compare_to_proto).collect(),
        success: txn.success.iter().map(op_to_proto).collect(),
        failure: txn.failure.iter().map(op_to_proto).collect(),
    }
}

/// [`txn_to_proto`]'s inverse; a nested txn recurses, as deep as the message nests (bounded by
/// the decoder's recursion limit, § 12.4).
fn txn_from_proto(txn: &proto::Txn) -> Result<Txn, FormatError> {
    let ops = |ops: &[proto::TxnOp]| ops.iter().map(op_from_proto).collect::<Result<_, _>>();
    Ok(Txn {
        compares: txn
            .compares
            .iter()
            .map(compare_from_proto)
            .collect::<Result<_, _>>()?,
        success: ops(&txn.success)?,
        failure: ops(&txn.failure)?,
    })
}

fn compare_to_proto(compare: &Compare) -> proto::Compare {
    let op = match compare.op {
        CompareOp::Equal => CompareOpKind::Equal,
        CompareOp::NotEqual => CompareOpKind::NotEqual,
        CompareOp::Less => CompareOpKind::Less,
        CompareOp::Greater => CompareOpKind::Greater,
    };
    let target = match &compare.target {
        CompareTarget::Value(value) => proto::CompareTarget::Value(value.clone()),
        CompareTarget::Version(v) => proto::CompareTarget::Version(*v),
        CompareTarget::CreateRevision(r) => proto::CompareTarget::CreateRevision(*r),
        CompareTarget::ModRevision(r) => proto::CompareTarget::ModRevision(*r),
        CompareTarget::Lease(l) => proto::CompareTarget::Lease(*l),
    };
    proto::Compare {
        key: compare.key.clone(),
        range: compare.range.as_ref().map(range_to_proto),
        op: op as i32,
        target: Some(target),
    }
}

fn compare_from_proto(compare: &proto::Compare) -> Result<Compare, FormatError> {
    let op = match CompareOpKind::try_from(compare.op) {
        Ok(CompareOpKind::Equal) => CompareOp::Equal,
        Ok(CompareOpKind::NotEqual) => CompareOp::NotEqual,
        Ok(CompareOpKind::Less) => CompareOp::Less,
        Ok(CompareOpKind::Greater) => CompareOp::Greater,
        Err(_) => {
            return Err(FormatError::invalid(
                "Compare",
                "op",
                format!("{} is not 0..=3", compare.op),
            ));
        }
    };
    let target = match &compare.target {
        Some(proto::CompareTarget::Value(value)) => CompareTarget::Value(value.clone()),
        Some(proto::CompareTarget::Version(v)) => CompareTarget::Version(*v),
        Some(proto::CompareTarget::CreateRevision(r)) => CompareTarget::CreateRevision(*r),
        Some(proto::CompareTarget::ModRevision(r)) => CompareTarget::ModRevision(*r),
        Some(proto::CompareTarget::Lease(l)) => CompareTarget::Lease(*l),
        None => return Err(FormatError::missing("Compare", "target")),
    };
    Ok(Compare {
        key: compare.key.clone(),
        range: compare.range.as_ref().map(range_from_proto).transpose()?,
        target,
        op,
    })
}

pub(super) fn command_to_proto(command: &Command) -> proto::Command {
    let op = match command {
        Command::Put { key, value, lease } => {
            proto::CommandOp::Put(put_to_proto(key, value, *lease))
        }
        Command::DeleteRange(range) => proto::CommandOp::DeleteRange(range_to_proto(range)),
        Command::Txn(txn) => proto::CommandOp::Txn(txn_to_proto(txn)),
        Command::LeaseGrant { id, ttl_ms } => proto::CommandOp::LeaseGrant(proto::LeaseGrant {
            id: *id,
            ttl_ms: *ttl_ms,
        }),
        Command::LeaseRevoke { id } => {
            proto::CommandOp::LeaseRevoke(proto::LeaseRevoke { id: *id })
        }
        Command::Compact { revision } => proto::CommandOp::Compact(proto::Compact {
            revision: *revision,
        }),
    };
    proto::Command { op: Some(op) }
}

pub(super) fn command_from_proto(command: &proto::Command) -> Result<Command, FormatError> {
    Ok(match &command.op {
        Some(proto::CommandOp::Put(p)) => Command::Put {
            key: p.key.clone(),
            value: p.value.clone(),
            lease: p.lease,
        },
        Some(proto::CommandOp::DeleteRange(range)) => {
            Command::DeleteRange(range_from_proto(range)?)
        }
        Some(proto::CommandOp::Txn(txn)) => Command::Txn(txn_from_proto(txn)?),
        Some(proto::CommandOp::LeaseGrant(g)) => Command::LeaseGrant {
            id: g.id,
            ttl_ms: g.ttl_ms,
        },
        Some(proto::CommandOp::LeaseRevoke(r)) => Command::LeaseRevoke { id: r.id },
        Some(proto::CommandOp::Compact(c)) => Command::Compact {
            revision: c.revision,
        },
        None => return Err(FormatError::missing("Command", "op")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A txn whose success branch holds a txn, `levels` deep, with a put at the bottom.
    fn nested(levels: usize) -> Txn {
        let mut txn = Txn {
            success: vec![TxnOp::Put {
                key: b"leaf".to_vec(),
                value: b"v".to_vec(),
                lease: 0,
            }],
            ..Txn::default()
        };
        for _ in 1..levels {
            txn = Txn {
                compares: vec![Compare::key(
                    b"k",
                    CompareOp::Equal,
                    CompareTarget::Version(0),
                )],
                success: vec![TxnOp::Txn(txn)],
                failure: vec![TxnOp::DeleteRange(KeyRange::key(b"k"))],
            };
        }
        txn
    }

    #[test]
    fn nested_txns_round_trip_and_too_deep_ones_are_refused() {
        for levels in [2, 10, 49] {
            let command = Command::Txn(nested(levels));
            let decoded = decode_command(&encode_command(&command));
            assert_eq!(decoded.as_ref(), Ok(&command), "{levels} levels");
        }
        // 49 `Txn`s nest 98 messages deep under `Command`; one more passes the decoder's
        // recursion limit of 100 (§ 12.4): an error, not a stack overflow.
        assert!(decode_command(&encode_command(&Command::Txn(nested(50)))).is_err());
    }
}
