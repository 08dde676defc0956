//! WAL payloads: one MessagePack map per record (`spec/FORMAT.md` § WAL payloads).
//!
//! ```text
//! put    (type 1): {"revision", "created_at_ms", "synced_through", "key": bin, "value": bin [, "lease": uint] [, "stamp": uint]}
//! delete (type 2): {"revision", "created_at_ms", "synced_through", "key": bin [, "stamp": uint]}
//! batch  (type 3): {"revision", "created_at_ms", "synced_through", "ops": [op, ...] [, "stamp": uint]}
//!   op: {"op": "put", "key": bin, "value": bin [, "lease": uint]} | {"op": "delete", "key": bin}
//! lease grant  (type 5): {"revision", "created_at_ms", "synced_through", "lease": uint, "ttl_ms": uint [, "stamp": uint]}
//! lease revoke (type 6): {"revision", "created_at_ms", "synced_through", "lease": uint, "keys": [bin, ...] [, "stamp": uint]}
//! ```
//!
//! Invariants:
//! - Writers emit the fields in the order above with the smallest MessagePack encodings (what
//!   `rmp` writes), and a put's `lease` and a record's `stamp` only when not 0, so one record
//!   has one encoding.
//!   Readers accept any field order and any width of integer, string, bin, map and array
//!   headers, and reject unknown, duplicate or missing fields, signed or float integers, and
//!   bytes after the map.
//! - Keys are 0..=KEY_LEN_MAX bytes, values 0..=VALUE_LEN_MAX, a batch has 1..=WAL_BATCH_OPS_MAX
//!   ops, a revoke 0..=WAL_BATCH_OPS_MAX keys in strictly increasing order; a lease id is
//!   1..=LEASE_ID_MAX, a TTL 1..=LEASE_TTL_MS_MAX and a stamp, when present, 1..=u64::MAX.

use super::frame::RecordType;
use super::msgpack::{
    Mp, STRUCTURE, missing, put_bin, put_str, put_uint, set, too_large, unknown, w,
};
use crate::format::{
    FormatError, FormatErrorKind, KEY_LEN_MAX, LEASE_ID_MAX, LEASE_TTL_MS_MAX, Reader,
    VALUE_LEN_MAX,
};

/// Most ops in one batch record, and most keys in one revoke record.
pub const WAL_BATCH_OPS_MAX: usize = 1 << 20;
/// Most entries in any payload map (a leased, stamped put has 7).
const MAP_LEN_MAX: usize = 8;

/// One record: all its ops share `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalRecord {
    /// The commit's revision (global u64 counter, one per commit that changes keys); for a
    /// record that changes none ([`WalBody::changes_keys`]), the revision before it.
    pub revision: u64,
    /// Wall-clock time of the commit, unix milliseconds.
    pub created_at_ms: u64,
    /// Logical WAL end offset as of the writer's last successful `sync_data` before it encoded
    /// this record (0 if none). Replay uses it to tell a torn tail from corruption.
    pub synced_through: u64,
    /// The commit's stamp, opaque to the engine and chosen by the caller (a Raft log index):
    /// non-decreasing in log order; 0 means the commit carries none (the field is absent).
    pub stamp: u64,
    /// What the commit does.
    pub body: WalBody,
}

/// The ops of a record; the variant decides the record type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WalBody {
    /// Record type 1.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease the key is attached to (0: none).
        lease: u64,
    },
    /// Record type 2.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Record type 3: 1..=WAL_BATCH_OPS_MAX ops applied atomically, in order.
    Batch(Vec<BatchOp>),
    /// Record type 5: a lease granted.
    LeaseGrant {
        /// Its id, 1..=LEASE_ID_MAX.
        lease: u64,
        /// Its time to live, ms, 1..=LEASE_TTL_MS_MAX.
        ttl_ms: u64,
    },
    /// Record type 6: a lease revoked, and its keys deleted.
    LeaseRevoke {
        /// Its id, 1..=LEASE_ID_MAX.
        lease: u64,
        /// The live keys attached to it, strictly increasing: each gets a tombstone.
        keys: Vec<Vec<u8>>,
    },
}

impl WalBody {
    /// The frame type that carries this body.
    pub fn record_type(&self) -> RecordType {
        match self {
            Self::Put { .. } => RecordType::Put,
            Self::Delete { .. } => RecordType::Delete,
            Self::Batch(_) => RecordType::Batch,
            Self::LeaseGrant { .. } => RecordType::LeaseGrant,
            Self::LeaseRevoke { .. } => RecordType::LeaseRevoke,
        }
    }

    /// Whether the record writes a version of some key, and so takes a revision of its own.
    pub fn changes_keys(&self) -> bool {
        match self {
            Self::Put { .. } | Self::Delete { .. } | Self::Batch(_) => true,
            Self::LeaseGrant { .. } => false,
            Self::LeaseRevoke { keys, .. } => !keys.is_empty(),
        }
    }
}

/// One op inside a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BatchOp {
    /// Put `value` at `key`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease the key is attached to (0: none).
        lease: u64,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

fn check_key(key: &[u8]) -> Result<(), FormatError> {
    if key.len() > KEY_LEN_MAX {
        Err(too_large("key", key.len(), KEY_LEN_MAX))
    } else {
        Ok(())
    }
}

fn check_value(value: &[u8]) -> Result<(), FormatError> {
    if value.len() > VALUE_LEN_MAX {
        Err(too_large("value", value.len(), VALUE_LEN_MAX))
    } else {
        Ok(())
    }
}

fn invalid(field: &'static str, reason: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        0,
        FormatErrorKind::InvalidValue { reason },
    )
}

/// Whether `lease` may be written as a lease id (0, "no lease", never is).
fn lease_in_range(lease: u64) -> bool {
    (1..=LEASE_ID_MAX).contains(&lease)
}

fn check_lease(lease: u64) -> Result<(), FormatError> {
    if lease_in_range(lease) {
        Ok(())
    } else {
        Err(invalid("lease", "lease id outside 1..=LEASE_ID_MAX"))
    }
}

/// Encodes the MessagePack payload of `record` (canonical form). Fails with `LengthTooLarge`
/// when a key, value, op count or the payload exceeds its limit, or `InvalidValue` for an empty
/// batch, a lease id or TTL out of range, or a revoke's keys out of order.
pub fn encode_payload(record: &WalRecord) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    encode_payload_into(
        &mut out,
        record.revision,
        record.created_at_ms,
        record.synced_through,
        record.stamp,
        &record.body,
    )?;
    Ok(out)
}

/// Writes a put's `key`, `value` and (when not 0) `lease` fields.
fn put_fields(out: &mut Vec<u8>, key: &[u8], value: &[u8], lease: u64) -> Result<(), FormatError> {
    check_key(key)?;
    check_value(value)?;
    put_bin(out, "key", key)?;
    put_bin(out, "value", value)?;
    if lease != 0 {
        check_lease(lease)?;
        put_uint(out, "lease", lease)?;
    }
    Ok(())
}

/// [`encode_payload`] of the record these fields and `body` would make, appended to `out`: for a
/// writer that keeps ownership of the body and reuses one buffer from record to record. On
/// `Err`, `out` may hold part of the payload: the caller discards it.
pub fn encode_payload_into(
    out: &mut Vec<u8>,
    revision: u64,
    created_at_ms: u64,
    synced_through: u64,
    stamp: u64,
    body: &WalBody,
) -> Result<(), FormatError> {
    let start = out.len();
    let body_len: u32 = match body {
        WalBody::Put { lease: 0, .. }
        | WalBody::LeaseGrant { .. }
        | WalBody::LeaseRevoke { .. } => 5,
        WalBody::Put { .. } => 6,
        WalBody::Delete { .. } | WalBody::Batch(_) => 4,
    };
    let map_len = body_len.saturating_add(u32::from(stamp != 0));
    w(rmp::encode::write_map_len(out, map_len))?;
    put_uint(out, "revision", revision)?;
    put_uint(out, "created_at_ms", created_at_ms)?;
    put_uint(out, "synced_through", synced_through)?;
    match body {
        WalBody::Put { key, value, lease } => put_fields(out, key, value, *lease)?,
        WalBody::Delete { key } => {
            check_key(key)?;
            put_bin(out, "key", key)?;
        }
        WalBody::Batch(ops) => {
            if ops.is_empty() {
                return Err(invalid("ops", "empty batch"));
            }
            if ops.len() > WAL_BATCH_OPS_MAX {
                return Err(too_large("ops", ops.len(), WAL_BATCH_OPS_MAX));
            }
            put_str(out, "ops")?;
            w(rmp::encode::write_array_len(out, ops.len() as u32))?;
            for op in ops {
                match op {
                    BatchOp::Put { key, value, lease } => {
                        w(rmp::encode::write_map_len(
                            out,
                            if *lease == 0 { 3 } else { 4 },
                        ))?;
                        put_str(out, "op")?;
                        put_str(out, "put")?;
                        put_fields(out, key, value, *lease)?;
                    }
                    BatchOp::Delete { key } => {
                        check_key(key)?;
                        w(rmp::encode::write_map_len(out, 2))?;
                        put_str(out, "op")?;
                        put_str(out, "delete")?;
                        put_bin(out, "key", key)?;
                    }
                }
            }
        }
        WalBody::LeaseGrant { lease, ttl_ms } => {
            check_lease(*lease)?;
            if !(1..=LEASE_TTL_MS_MAX).contains(ttl_ms) {
                return Err(invalid("ttl_ms", "TTL outside 1..=LEASE_TTL_MS_MAX"));
            }
            put_uint(out, "lease", *lease)?;
            put_uint(out, "ttl_ms", *ttl_ms)?;
        }
        WalBody::LeaseRevoke { lease, keys } => {
            check_lease(*lease)?;
            if keys.len() > WAL_BATCH_OPS_MAX {
                return Err(too_large("keys", keys.len(), WAL_BATCH_OPS_MAX));
            }
            if keys.windows(2).any(|pair| matches!(pair, [a, b] if a >= b)) {
                return Err(invalid("keys", "keys not strictly increasing"));
            }
            put_uint(out, "lease", *lease)?;
            put_str(out, "keys")?;
            w(rmp::encode::write_array_len(out, keys.len() as u32))?;
            for key in keys {
                check_key(key)?;
                w(rmp::encode::write_bin(out, key))?;
            }
        }
    }
    if stamp != 0 {
        put_uint(out, "stamp", stamp)?;
    }
    let len = out.len().saturating_sub(start);
    if len > super::WAL_PAYLOAD_LEN_MAX {
        return Err(too_large("payload", len, super::WAL_PAYLOAD_LEN_MAX));
    }
    Ok(())
}

/// An unsigned `field` in `1..=max`, else `invalid_value` (`reason`) at its type byte.
fn decode_in_range(
    mp: &mut Mp<'_>,
    field: &'static str,
    max: u64,
    reason: &'static str,
) -> Result<u64, FormatError> {
    let at = mp.r.pos();
    let value = mp.uint(field)?;
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(mp
            .r
            .err(field, at, FormatErrorKind::InvalidValue { reason }))
    }
}

/// A `lease` value: 1..=LEASE_ID_MAX.
fn decode_lease(mp: &mut Mp<'_>) -> Result<u64, FormatError> {
    decode_in_range(
        mp,
        "lease",
        LEASE_ID_MAX,
        "lease id outside 1..=LEASE_ID_MAX",
    )
}

/// A `ttl_ms` value: 1..=LEASE_TTL_MS_MAX.
fn decode_ttl(mp: &mut Mp<'_>) -> Result<u64, FormatError> {
    decode_in_range(
        mp,
        "ttl_ms",
        LEASE_TTL_MS_MAX,
        "TTL outside 1..=LEASE_TTL_MS_MAX",
    )
}

/// A `stamp` value: 1..=u64::MAX (0 is written as no field).
fn decode_stamp(mp: &mut Mp<'_>) -> Result<u64, FormatError> {
    decode_in_range(mp, "stamp", u64::MAX, "stamp 0 is written as no field")
}

fn decode_op(mp: &mut Mp<'_>) -> Result<BatchOp, FormatError> {
    let start = mp.r.pos();
    let n = mp.map_len("op")?;
    mp.r.check_len("op", start, n, MAP_LEN_MAX)?;
    let (mut op, mut key, mut value, mut lease) = (None, None, None, None);
    // Where a delete op's first put-only field (`value` or `lease`) was named, if it had one.
    let mut put_only_at = None;
    for _ in 0..n {
        let at = mp.r.pos();
        match mp.str("name")? {
            b"op" => set(&mut op, at, "op", || {
                let tag_at = mp.r.pos();
                match mp.str("op")? {
                    b"put" => Ok(true),
                    b"delete" => Ok(false),
                    _ => Err(mp
                        .r
                        .err("op", tag_at, FormatErrorKind::UnknownTag { tag: 0 })),
                }
            })?,
            b"key" => set(&mut key, at, "key", || mp.bin("key", KEY_LEN_MAX))?,
            b"value" => {
                put_only_at.get_or_insert(at);
                set(&mut value, at, "value", || mp.bin("value", VALUE_LEN_MAX))?
            }
            b"lease" => {
                put_only_at.get_or_insert(at);
                set(&mut lease, at, "lease", || decode_lease(mp))?
            }
            _ => return Err(unknown(at)),
        }
    }
    let is_put = op.ok_or_else(|| missing(start, "op"))?;
    let key = key.ok_or_else(|| missing(start, "key"))?;
    match (is_put, value, put_only_at) {
        (true, Some(value), _) => Ok(BatchOp::Put {
            key,
            value,
            lease: lease.unwrap_or(0),
        }),
        (true, None, _) => Err(missing(start, "value")),
        (false, _, Some(at)) => Err(unknown(at)),
        (false, _, None) => Ok(BatchOp::Delete { key }),
    }
}

/// The `ops` array of a batch, from its header on.
fn decode_ops(mp: &mut Mp<'_>) -> Result<Vec<BatchOp>, FormatError> {
    let len_at = mp.r.pos();
    let count = mp.array_len("ops")?;
    if count == 0 {
        return Err(mp.r.err(
            "ops",
            len_at,
            FormatErrorKind::InvalidValue {
                reason: "empty batch",
            },
        ));
    }
    // Each op takes at least 8 bytes, so the input bounds the count before any allocation.
    let max = WAL_BATCH_OPS_MAX.min(mp.r.remaining() / 8);
    mp.r.check_len("ops", len_at, count, max)?;
    let mut list = Vec::with_capacity(count);
    for _ in 0..count {
        list.push(decode_op(mp)?);
    }
    Ok(list)
}

/// The `keys` array of a revoke, from its header on: strictly increasing.
fn decode_keys(mp: &mut Mp<'_>) -> Result<Vec<Vec<u8>>, FormatError> {
    let len_at = mp.r.pos();
    let count = mp.array_len("keys")?;
    // Each key takes at least 2 bytes (a bin8 header and its length).
    let max = WAL_BATCH_OPS_MAX.min(mp.r.remaining() / 2);
    mp.r.check_len("keys", len_at, count, max)?;
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(count);
    for _ in 0..count {
        let at = mp.r.pos();
        let key = mp.bin("keys", KEY_LEN_MAX)?;
        if keys.last().is_some_and(|last| *last >= key) {
            return Err(mp.r.err("keys", at, FormatErrorKind::KeyOrder));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Which fields each record type has beyond the three every record has.
fn has_field(record_type: RecordType, name: &[u8]) -> bool {
    use RecordType as T;
    matches!(
        (name, record_type),
        (b"key", T::Put | T::Delete)
            | (b"value", T::Put)
            | (b"lease", T::Put | T::LeaseGrant | T::LeaseRevoke)
            | (b"ops", T::Batch)
            | (b"ttl_ms", T::LeaseGrant)
            | (b"keys", T::LeaseRevoke)
    )
}

/// Decodes the payload of a frame of type `record_type`. The whole slice must be one map. After
/// the map, missing fields are reported (at offset 0, in the order revision, created_at_ms,
/// synced_through, then the type's own fields in the order of the module doc), then bytes after
/// the map.
pub fn decode_payload(record_type: RecordType, bytes: &[u8]) -> Result<WalRecord, FormatError> {
    let mut mp = Mp {
        r: Reader::new(bytes, STRUCTURE),
    };
    let n = mp.map_len("record")?;
    mp.r.check_len("record", 0, n, MAP_LEN_MAX)?;
    let (mut revision, mut created, mut synced) = (None, None, None);
    let (mut key, mut value, mut ops) = (None, None, None);
    let (mut lease, mut ttl_ms, mut keys, mut stamp) = (None, None, None, None);
    for _ in 0..n {
        let at = mp.r.pos();
        let name = mp.str("name")?;
        match name {
            b"revision" => set(&mut revision, at, "revision", || mp.uint("revision"))?,
            b"created_at_ms" => set(&mut created, at, "created_at_ms", || {
                mp.uint("created_at_ms")
            })?,
            b"synced_through" => set(&mut synced, at, "synced_through", || {
                mp.uint("synced_through")
            })?,
            b"stamp" => set(&mut stamp, at, "stamp", || decode_stamp(&mut mp))?,
            _ if !has_field(record_type, name) => return Err(unknown(at)),
            b"key" => set(&mut key, at, "key", || mp.bin("key", KEY_LEN_MAX))?,
            b"value" => set(&mut value, at, "value", || mp.bin("value", VALUE_LEN_MAX))?,
            b"lease" => set(&mut lease, at, "lease", || decode_lease(&mut mp))?,
            b"ops" => set(&mut ops, at, "ops", || decode_ops(&mut mp))?,
            b"ttl_ms" => set(&mut ttl_ms, at, "ttl_ms", || decode_ttl(&mut mp))?,
            _ => set(&mut keys, at, "keys", || decode_keys(&mut mp))?,
        }
    }
    let revision = revision.ok_or_else(|| missing(0, "revision"))?;
    let created_at_ms = created.ok_or_else(|| missing(0, "created_at_ms"))?;
    let synced_through = synced.ok_or_else(|| missing(0, "synced_through"))?;
    let body = match record_type {
        RecordType::Put => WalBody::Put {
            key: key.ok_or_else(|| missing(0, "key"))?,
            value: value.ok_or_else(|| missing(0, "value"))?,
            lease: lease.unwrap_or(0),
        },
        RecordType::Delete => WalBody::Delete {
            key: key.ok_or_else(|| missing(0, "key"))?,
        },
        RecordType::Batch => WalBody::Batch(ops.ok_or_else(|| missing(0, "ops"))?),
        RecordType::LeaseGrant => WalBody::LeaseGrant {
            lease: lease.ok_or_else(|| missing(0, "lease"))?,
            ttl_ms: ttl_ms.ok_or_else(|| missing(0, "ttl_ms"))?,
        },
        RecordType::LeaseRevoke => WalBody::LeaseRevoke {
            lease: lease.ok_or_else(|| missing(0, "lease"))?,
            keys: keys.ok_or_else(|| missing(0, "keys"))?,
        },
    };
    mp.r.finish("record")?;
    Ok(WalRecord {
        revision,
        created_at_ms,
        synced_through,
        stamp: stamp.unwrap_or(0),
        body,
    })
}

#[cfg(test)]
pub(crate) mod tests;
