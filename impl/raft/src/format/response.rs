//! [`Response`] to and from `spec/raft_peer.proto`'s `CommandResponse` (`spec/FORMAT.md`
//! § 12.7): what a leader answers a relayed proposal.
//!
//! Invariant: every oneof is present after decoding, else a [`FormatError`]; decoding never
//! panics. Nested txn results recurse as deep as the message nests, which prost's recursion
//! limit (100) bounds.

use kvstore::Versioned;
use kvstore::txn::{OpResult, TxnResponse};

use super::FormatError;
use super::peer_proto::{self as p, CommandResult, OpResultKind, RejectionReason};
use crate::command::{Rejection, Response};

fn version_to_proto(v: &Versioned) -> p::Version {
    p::Version {
        value: v.value.clone(),
        revision: v.revision,
        created_at_ms: v.created_at_ms,
        create_revision: v.create_revision,
        version: v.version,
        lease: v.lease,
    }
}

fn version_from_proto(v: &p::Version) -> Versioned {
    Versioned {
        value: v.value.clone(),
        revision: v.revision,
        created_at_ms: v.created_at_ms,
        create_revision: v.create_revision,
        version: v.version,
        lease: v.lease,
    }
}

fn rows_to_proto(rows: &[(Vec<u8>, Versioned)], more: bool) -> p::RangeResult {
    p::RangeResult {
        rows: rows
            .iter()
            .map(|(key, v)| p::KeyVersion {
                key: key.clone(),
                version: Some(version_to_proto(v)),
            })
            .collect(),
        more,
    }
}

fn rows_from_proto(r: &p::RangeResult) -> Result<Vec<(Vec<u8>, Versioned)>, FormatError> {
    r.rows
        .iter()
        .map(|row| match &row.version {
            Some(v) => Ok((row.key.clone(), version_from_proto(v))),
            None => Err(FormatError::missing("KeyVersion", "version")),
        })
        .collect()
}

fn op_result_to_proto(r: &OpResult) -> p::OpResult {
    let result = match r {
        OpResult::Put { prev } => OpResultKind::Put(p::PutResult {
            prev: prev.as_ref().map(version_to_proto),
        }),
        OpResult::DeleteRange { deleted } => {
            OpResultKind::DeleteRange(rows_to_proto(deleted, false))
        }
        OpResult::Range { rows, more } => OpResultKind::Range(rows_to_proto(rows, *more)),
        OpResult::Txn { succeeded, results } => OpResultKind::Txn(Box::new(p::NestedTxnResult {
            succeeded: *succeeded,
            results: results.iter().map(op_result_to_proto).collect(),
        })),
    };
    p::OpResult {
        result: Some(result),
    }
}

fn op_result_from_proto(r: &p::OpResult) -> Result<OpResult, FormatError> {
    Ok(match &r.result {
        Some(OpResultKind::Put(put)) => OpResult::Put {
            prev: put.prev.as_ref().map(version_from_proto),
        },
        Some(OpResultKind::DeleteRange(deleted)) => OpResult::DeleteRange {
            deleted: rows_from_proto(deleted)?,
        },
        Some(OpResultKind::Range(range)) => OpResult::Range {
            rows: rows_from_proto(range)?,
            more: range.more,
        },
        Some(OpResultKind::Txn(nested)) => OpResult::Txn {
            succeeded: nested.succeeded,
            results: op_results_from_proto(&nested.results)?,
        },
        None => return Err(FormatError::missing("OpResult", "result")),
    })
}

fn op_results_from_proto(results: &[p::OpResult]) -> Result<Vec<OpResult>, FormatError> {
    results.iter().map(op_result_from_proto).collect()
}

fn rejection_to_proto(r: &Rejection) -> p::Rejection {
    let reason = match r {
        Rejection::LeaseNotFound { id } => RejectionReason::LeaseNotFound(*id),
        Rejection::LeaseExists { id } => RejectionReason::LeaseExists(*id),
        Rejection::Compacted { requested, horizon } => {
            RejectionReason::Compacted(p::RevisionPair {
                requested: *requested,
                bound: *horizon,
            })
        }
        Rejection::FutureRevision { requested, current } => {
            RejectionReason::FutureRevision(p::RevisionPair {
                requested: *requested,
                bound: *current,
            })
        }
        Rejection::InvalidArgument(what) => RejectionReason::InvalidArgument(what.clone()),
    };
    p::Rejection {
        reason: Some(reason),
    }
}

fn rejection_from_proto(r: &p::Rejection) -> Result<Rejection, FormatError> {
    Ok(match &r.reason {
        Some(RejectionReason::LeaseNotFound(id)) => Rejection::LeaseNotFound { id: *id },
        Some(RejectionReason::LeaseExists(id)) => Rejection::LeaseExists { id: *id },
        Some(RejectionReason::Compacted(pair)) => Rejection::Compacted {
            requested: pair.requested,
            horizon: pair.bound,
        },
        Some(RejectionReason::FutureRevision(pair)) => Rejection::FutureRevision {
            requested: pair.requested,
            current: pair.bound,
        },
        Some(RejectionReason::InvalidArgument(what)) => Rejection::InvalidArgument(what.clone()),
        None => return Err(FormatError::missing("Rejection", "reason")),
    })
}

/// A response as `CommandResponse`.
pub(super) fn response_to_proto(r: &Response) -> p::CommandResponse {
    let result = match r {
        Response::Empty => CommandResult::Empty(p::Empty {}),
        Response::Put { revision } => CommandResult::Put(*revision),
        Response::DeleteRange { revision, deleted } => {
            CommandResult::DeleteRange(p::DeleteRangeResult {
                revision: *revision,
                deleted: *deleted,
            })
        }
        Response::Txn(txn) => CommandResult::Txn(p::TxnResult {
            succeeded: txn.succeeded,
            revision: txn.revision,
            results: txn.results.iter().map(op_result_to_proto).collect(),
        }),
        Response::LeaseGranted { id } => CommandResult::LeaseGranted(*id),
        Response::LeaseRevoked { revision } => CommandResult::LeaseRevoked(*revision),
        Response::Compacted { revision } => CommandResult::Compacted(*revision),
        Response::Rejected(rejection) => CommandResult::Rejected(rejection_to_proto(rejection)),
    };
    p::CommandResponse {
        result: Some(result),
    }
}

/// [`response_to_proto`]'s inverse.
pub(super) fn response_from_proto(r: &p::CommandResponse) -> Result<Response, FormatError> {
    Ok(match &r.result {
        Some(CommandResult::Empty(_)) => Response::Empty,
        Some(CommandResult::Put(revision)) => Response::Put {
            revision: *revision,
        },
        Some(CommandResult::DeleteRange(d)) => Response::DeleteRange {
            revision: d.revision,
            deleted: d.deleted,
        },
        Some(CommandResult::Txn(txn)) => Response::Txn(TxnResponse {
            succeeded: txn.succeeded,
            revision: txn.revision,
            results: op_results_from_proto(&txn.results)?,
        }),
        Some(CommandResult::LeaseGranted(id)) => Response::LeaseGranted { id: *id },
        Some(CommandResult::LeaseRevoked(revision)) => Response::LeaseRevoked {
            revision: *revision,
        },
        Some(CommandResult::Compacted(revision)) => Response::Compacted {
            revision: *revision,
        },
        Some(CommandResult::Rejected(rejection)) => {
            Response::Rejected(rejection_from_proto(rejection)?)
        }
        None => return Err(FormatError::missing("CommandResponse", "result")),
    })
}
