//! Hash and HashKV: a checksum of the store that two members (or one member before and after a
//! restart, a snapshot and its import) can compare.
//!
//! etcd hashes its bolt file (Hash) or its MVCC keys (HashKV); those bytes are etcd's own, so
//! kvstore's hash is defined on what the API shows instead, and its values never equal etcd's:
//! - HashKV at revision `r` is CRC-32C over the live keys at `r` in key order, each as the
//!   length-delimited protobuf encoding of the `mvccpb.KeyValue` a Range at `r` returns (key,
//!   create and mod revision, version, value, lease; revisions as on the wire). Its
//!   `compact_revision` is the last compaction's revision on the wire, -1 if there was none, as
//!   etcd's. A revision at or below the last compaction is `ErrCompacted` (etcd's
//!   `HashByRev`, stricter than Range, which reads at the compaction's revision), above the
//!   newest `ErrFutureRev`; 0 (or less) means the newest.
//! - Hash is HashKV at the newest revision continued over the granted leases in id order, each
//!   as the protobuf encoding of a `LeaseStatus` carrying its id.
//!
//! Invariants: the rows hashed and the header's revision come from one snapshot, so the hash
//! is of exactly the revision the header names (or the one requested).

use kvstore::KeyRange;
use prost::Message;

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::identity::wire_i64;
use crate::keys::key_value;
use crate::kv::{ReadPoint, requested_revision};
use crate::proto::etcdserverpb::{
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, LeaseStatus,
};

/// Serves HashKV (blocking).
pub(crate) fn hash_kv(context: &Context, request: &HashKvRequest) -> EtcdResult<HashKvResponse> {
    let horizon = context.db().history_horizon();
    if horizon != 0 && requested_revision(request.revision).is_some_and(|r| r <= horizon) {
        return Err(EtcdError::Compacted);
    }
    let point = ReadPoint::new(context, request.revision)?;
    Ok(HashKvResponse {
        header: Some(context.header(point.current())),
        hash: hash_rows(context, &point)?,
        compact_revision: compact_revision(horizon),
    })
}

/// Serves Hash (blocking).
pub(crate) fn hash(context: &Context, _request: &HashRequest) -> EtcdResult<HashResponse> {
    let point = ReadPoint::new(context, 0)?;
    let rows = hash_rows(context, &point)?;
    let mut leases = context.db().leases()?;
    leases.sort_unstable();
    let hash = leases.into_iter().fold(rows, |crc, id| {
        let status = LeaseStatus { id: wire_i64(id) };
        crc32c::crc32c_append(crc, &status.encode_to_vec())
    });
    Ok(HashResponse {
        header: Some(context.header(point.current())),
        hash,
    })
}

/// CRC-32C over the live keys at the read point (see the module doc).
fn hash_rows(context: &Context, point: &ReadPoint) -> EtcdResult<u32> {
    let mut crc = 0;
    for row in point.scan(context, KeyRange::all())?.versioned() {
        let (key, version) = row?;
        let kv = key_value(key, version, false);
        crc = crc32c::crc32c_append(crc, &kv.encode_length_delimited_to_vec());
    }
    Ok(crc)
}

/// The wire revision of the last compaction given the engine's history horizon: -1 when the
/// horizon never moved (etcd's answer before any compaction).
fn compact_revision(horizon: u64) -> i64 {
    if horizon == 0 {
        -1
    } else {
        crate::revision::wire(horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_revision_is_wire_or_none() {
        assert_eq!(compact_revision(0), -1);
        assert_eq!(compact_revision(4), 5);
    }
}
