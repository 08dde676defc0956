//! Put, DeleteRange and Compact (etcd v3.4's `applierV3backend.Put`, `DeleteRange`, and
//! `Compaction`), each one engine commit.
//!
//! - Put is an engine `Txn` of one put, so its previous version (`prev_kv`) is read in the
//!   same commit. `ignore_value` / `ignore_lease` keep the key's current value / lease: the
//!   engine's put has no such flag, so the server reads the key, then commits the put guarded
//!   by the key's mod revision, and retries if another write came in between (at most
//!   [`PUT_IGNORE_TRIES_MAX`] times). A lease that does not exist is `etcdserver: requested
//!   lease not found`, then a key that does not exist `etcdserver: key not found` (etcd's order).
//! - DeleteRange is an engine `Txn` of one delete range: deleting nothing commits nothing and
//!   answers the current revision, as etcd.
//! - Compact moves the engine's history horizon (`compact_history`), durable when it returns.
//!
//! Invariants: a response's header revision is the commit's revision (the current one when
//! nothing was written), as etcd's.

use kvstore::txn::{Compare, CompareOp, CompareTarget, OpResult, Txn, TxnOp};

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::keys::{Keys, key_value, keys, lease_id};
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse,
};
use crate::proto::mvccpb::KeyValue;

/// Most attempts of a put with `ignore_value` or `ignore_lease` whose guard keeps failing
/// because other writes to the key come in between.
pub(crate) const PUT_IGNORE_TRIES_MAX: usize = 64;

/// Refuses a put etcd refuses before applying it.
pub(crate) fn check_put(request: &PutRequest) -> EtcdResult<()> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if request.ignore_lease && request.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

/// The engine's lease for a put's `lease` field: 0 for none; a negative id names no lease.
pub(crate) fn put_lease(lease: i64) -> EtcdResult<u64> {
    match lease {
        0 => Ok(0),
        id => lease_id(id).ok_or(EtcdError::LeaseNotFound),
    }
}

/// Serves Put (blocking).
pub(crate) fn put(context: &Context, request: &PutRequest) -> EtcdResult<PutResponse> {
    check_put(request)?;
    let lease = put_lease(request.lease)?;
    // Sabotage for the crash test's negative control (feature `failpoints`).
    fail::fail_point!("kv::ack_before_commit", |delay| ack_before_commit(
        context, request, lease, delay
    ));
    let (revision, prev) = if request.ignore_value || request.ignore_lease {
        put_keeping(context, request, lease)?
    } else {
        let txn = Txn {
            success: vec![TxnOp::Put {
                key: request.key.clone(),
                value: request.value.clone(),
                lease,
            }],
            ..Txn::default()
        };
        let response = context.store.txn(txn)?;
        (response.revision, put_prev(response.results))
    };
    Ok(PutResponse {
        header: Some(context.header(revision)),
        prev_kv: prev
            .filter(|_| request.prev_kv)
            .map(|v| key_value(request.key.clone(), v, false)),
    })
}

/// A planted bug (failpoint `kv::ack_before_commit`, argument a delay in milliseconds,
/// default 100): answers the revision the put would take if nothing else were written, and
/// commits it on a thread after the delay, so a crash in between loses an acknowledged write
/// and concurrent puts are answered with the same revision.
#[cfg(feature = "failpoints")]
fn ack_before_commit(
    context: &Context,
    request: &PutRequest,
    lease: u64,
    delay: Option<String>,
) -> EtcdResult<PutResponse> {
    let delay_ms = delay.and_then(|d| d.parse().ok()).unwrap_or(100);
    let revision = context.current_revision()?.saturating_add(1);
    let db = context.db().clone();
    let (key, value) = (request.key.clone(), request.value.clone());
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = db.txn(Txn {
            success: vec![TxnOp::Put { key, value, lease }],
            ..Txn::default()
        });
    });
    Ok(PutResponse {
        header: Some(context.header(revision)),
        prev_kv: None,
    })
}

/// A put with `ignore_value` or `ignore_lease` (see the module doc): the commit's revision and
/// the previous version.
fn put_keeping(
    context: &Context,
    request: &PutRequest,
    lease: u64,
) -> EtcdResult<(u64, Option<kvstore::Versioned>)> {
    // etcd looks the lease up before it reads the key.
    if lease != 0 && context.db().time_to_live(lease)?.is_none() {
        return Err(EtcdError::LeaseNotFound);
    }
    for _ in 0..PUT_IGNORE_TRIES_MAX {
        let current = context
            .db()
            .get_versioned(&request.key)?
            .ok_or(EtcdError::KeyNotFound)?;
        let value = if request.ignore_value {
            current.value.clone()
        } else {
            request.value.clone()
        };
        let lease = if request.ignore_lease {
            current.lease
        } else {
            lease
        };
        let txn = Txn {
            compares: vec![Compare::key(
                &request.key,
                CompareOp::Equal,
                CompareTarget::ModRevision(current.revision),
            )],
            success: vec![TxnOp::Put {
                key: request.key.clone(),
                value,
                lease,
            }],
            failure: Vec::new(),
        };
        let response = context.store.txn(txn)?;
        if response.succeeded {
            return Ok((response.revision, put_prev(response.results)));
        }
    }
    Err(EtcdError::Contended(format!(
        "put with ignore_value/ignore_lease: the key changed under each of \
         {PUT_IGNORE_TRIES_MAX} attempts"
    )))
}

/// The previous version a one-put txn reports.
fn put_prev(results: Vec<OpResult>) -> Option<kvstore::Versioned> {
    match results.into_iter().next() {
        Some(OpResult::Put { prev }) => prev,
        _ => None,
    }
}

/// Serves DeleteRange (blocking).
pub(crate) fn delete_range(
    context: &Context,
    request: &DeleteRangeRequest,
) -> EtcdResult<DeleteRangeResponse> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    let (revision, deleted) = match keys(&request.key, &request.range_end) {
        Keys::Empty => (context.current_revision()?, Vec::new()),
        Keys::Range(range) => {
            let txn = Txn {
                success: vec![TxnOp::DeleteRange(range)],
                ..Txn::default()
            };
            let response = context.store.txn(txn)?;
            let deleted = match response.results.into_iter().next() {
                Some(OpResult::DeleteRange { deleted }) => deleted,
                _ => Vec::new(),
            };
            (response.revision, deleted)
        }
    };
    Ok(DeleteRangeResponse {
        header: Some(context.header(revision)),
        deleted: crate::identity::wire_i64(u64::try_from(deleted.len()).unwrap_or(u64::MAX)),
        prev_kvs: prev_kvs(deleted, request.prev_kv),
    })
}

/// The deleted versions as etcd's `prev_kvs` (none unless asked for).
pub(crate) fn prev_kvs(deleted: Vec<(Vec<u8>, kvstore::Versioned)>, wanted: bool) -> Vec<KeyValue> {
    if !wanted {
        return Vec::new();
    }
    deleted
        .into_iter()
        .map(|(key, v)| key_value(key, v, false))
        .collect()
}

/// Serves Compact (blocking): the horizon moves to `revision`; etcd's errors for a revision at
/// or below the last compaction (compacted) and above the newest (future).
///
/// Before any compaction etcd also accepts wire revisions 0 and 1, which remove nothing (its
/// last compaction is -1 then); the engine's horizon is already 0 and cannot move below 1, so
/// such a request succeeds without changing it (and a second one succeeds too, where etcd
/// refuses it: a known difference, SEMANTICS "The server").
pub(crate) fn compact(
    context: &Context,
    request: &CompactionRequest,
) -> EtcdResult<CompactionResponse> {
    let never_compacted = context.db().history_horizon() == 0;
    if never_compacted && matches!(request.revision, 0 | 1) {
        return Ok(CompactionResponse {
            header: Some(context.current_header()?),
        });
    }
    let revision = crate::revision::engine(u64::try_from(request.revision).unwrap_or(0));
    context.store.compact(revision)?;
    Ok(CompactionResponse {
        header: Some(context.current_header()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_checks_follow_etcd() {
        let mut request = PutRequest::default();
        assert!(matches!(check_put(&request), Err(EtcdError::EmptyKey)));
        request.key = b"k".to_vec();
        request.ignore_value = true;
        request.value = b"v".to_vec();
        assert!(matches!(check_put(&request), Err(EtcdError::ValueProvided)));
        request.value.clear();
        request.ignore_lease = true;
        request.lease = 5;
        assert!(matches!(check_put(&request), Err(EtcdError::LeaseProvided)));
        request.lease = 0;
        assert!(check_put(&request).is_ok());
        assert!(matches!(put_lease(-1), Err(EtcdError::LeaseNotFound)));
        assert_eq!(put_lease(0).ok(), Some(0));
    }
}
