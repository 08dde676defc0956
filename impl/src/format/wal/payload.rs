//! WAL payloads: one MessagePack map per record (`spec/FORMAT.md` § WAL payloads).
//!
//! ```text
//! put    (type 1): {"revision": uint, "created_at_ms": uint, "synced_through": uint, "key": bin, "value": bin}
//! delete (type 2): {"revision": uint, "created_at_ms": uint, "synced_through": uint, "key": bin}
//! batch  (type 3): {"revision": uint, "created_at_ms": uint, "synced_through": uint, "ops": [op, ...]}
//!   op: {"op": "put", "key": bin, "value": bin} | {"op": "delete", "key": bin}
//! ```
//!
//! Invariants:
//! - Writers emit the fields in the order above with the smallest MessagePack encodings (what
//!   `rmp` writes), so one record has one encoding. Readers accept any field order and any width
//!   of integer, string, bin, map and array headers, and reject unknown, duplicate or missing
//!   fields, signed or float integers, and bytes after the map.
//! - Keys are 0..=KEY_LEN_MAX bytes, values 0..=VALUE_LEN_MAX, a batch has 1..=WAL_BATCH_OPS_MAX ops.

use super::frame::RecordType;
use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, Reader, VALUE_LEN_MAX};

/// Most ops in one batch record.
pub const WAL_BATCH_OPS_MAX: usize = 1 << 20;
/// Most entries in any payload map (the batch record's 4, a put's 5).
const MAP_LEN_MAX: usize = 8;

const STRUCTURE: &str = "wal payload";

/// One committed write: all its ops share `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalRecord {
    /// The commit's revision (global u64 counter, one per commit).
    pub revision: u64,
    /// Wall-clock time of the commit, unix milliseconds.
    pub created_at_ms: u64,
    /// Logical WAL end offset as of the writer's last successful `sync_data` before it encoded
    /// this record (0 if none). Replay uses it to tell a torn tail from corruption.
    pub synced_through: u64,
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
    },
    /// Record type 2.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Record type 3: 1..=WAL_BATCH_OPS_MAX ops applied atomically, in order.
    Batch(Vec<BatchOp>),
}

impl WalBody {
    /// The frame type that carries this body.
    pub fn record_type(&self) -> RecordType {
        match self {
            Self::Put { .. } => RecordType::Put,
            Self::Delete { .. } => RecordType::Delete,
            Self::Batch(_) => RecordType::Batch,
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
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

fn too_large(field: &'static str, len: usize, max: usize) -> FormatError {
    FormatError::new(STRUCTURE, field, 0, FormatErrorKind::too_large(len, max))
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

// Writing to a Vec cannot fail; rmp's error type is still a Result, which we map away.
fn w<T, E>(r: Result<T, E>) -> Result<(), FormatError> {
    r.map(|_| ()).map_err(|_| {
        FormatError::new(
            STRUCTURE,
            "encode",
            0,
            FormatErrorKind::InvalidValue { reason: "write" },
        )
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), FormatError> {
    w(rmp::encode::write_str(out, s))
}

fn put_uint(out: &mut Vec<u8>, name: &str, v: u64) -> Result<(), FormatError> {
    put_str(out, name)?;
    w(rmp::encode::write_uint(out, v))
}

fn put_bin(out: &mut Vec<u8>, name: &str, v: &[u8]) -> Result<(), FormatError> {
    put_str(out, name)?;
    w(rmp::encode::write_bin(out, v))
}

/// Encodes the MessagePack payload of `record` (canonical form). Fails with `LengthTooLarge`
/// when a key, value, op count or the payload exceeds its limit, or `InvalidValue` for an empty
/// batch.
pub fn encode_payload(record: &WalRecord) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    encode_payload_into(
        &mut out,
        record.revision,
        record.created_at_ms,
        record.synced_through,
        &record.body,
    )?;
    Ok(out)
}

/// [`encode_payload`] of the record these fields and `body` would make, appended to `out`: for a
/// writer that keeps ownership of the body and reuses one buffer from record to record. On
/// `Err`, `out` may hold part of the payload: the caller discards it.
pub fn encode_payload_into(
    out: &mut Vec<u8>,
    revision: u64,
    created_at_ms: u64,
    synced_through: u64,
    body: &WalBody,
) -> Result<(), FormatError> {
    let start = out.len();
    let map_len = match body {
        WalBody::Put { .. } => 5,
        WalBody::Delete { .. } | WalBody::Batch(_) => 4,
    };
    w(rmp::encode::write_map_len(out, map_len))?;
    put_uint(out, "revision", revision)?;
    put_uint(out, "created_at_ms", created_at_ms)?;
    put_uint(out, "synced_through", synced_through)?;
    match body {
        WalBody::Put { key, value } => {
            check_key(key)?;
            check_value(value)?;
            put_bin(out, "key", key)?;
            put_bin(out, "value", value)?;
        }
        WalBody::Delete { key } => {
            check_key(key)?;
            put_bin(out, "key", key)?;
        }
        WalBody::Batch(ops) => {
            if ops.is_empty() {
                return Err(FormatError::new(
                    STRUCTURE,
                    "ops",
                    0,
                    FormatErrorKind::InvalidValue {
                        reason: "empty batch",
                    },
                ));
            }
            if ops.len() > WAL_BATCH_OPS_MAX {
                return Err(too_large("ops", ops.len(), WAL_BATCH_OPS_MAX));
            }
            put_str(out, "ops")?;
            w(rmp::encode::write_array_len(out, ops.len() as u32))?;
            for op in ops {
                match op {
                    BatchOp::Put { key, value } => {
                        check_key(key)?;
                        check_value(value)?;
                        w(rmp::encode::write_map_len(out, 3))?;
                        put_str(out, "op")?;
                        put_str(out, "put")?;
                        put_bin(out, "key", key)?;
                        put_bin(out, "value", value)?;
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
    }
    let len = out.len().saturating_sub(start);
    if len > super::WAL_PAYLOAD_LEN_MAX {
        return Err(too_large("payload", len, super::WAL_PAYLOAD_LEN_MAX));
    }
    Ok(())
}

/// A MessagePack reader over the subset the payload schema uses.
struct Mp<'a> {
    r: Reader<'a>,
}

impl<'a> Mp<'a> {
    fn bad(&self, field: &'static str, at: usize, expected: &'static str) -> FormatError {
        self.r
            .err(field, at, FormatErrorKind::BadMsgpack { expected })
    }

    fn len_be(&mut self, n: usize, field: &'static str) -> Result<usize, FormatError> {
        Ok(match n {
            1 => usize::from(self.r.u8(field)?),
            2 => usize::from(self.r.u16(field)?),
            _ => self.r.u32(field)? as usize,
        })
    }

    fn map_len(&mut self, field: &'static str) -> Result<usize, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        match m {
            0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.len_be(2, field),
            0xdf => self.len_be(4, field),
            _ => Err(self.bad(field, at, "map")),
        }
    }

    fn array_len(&mut self, field: &'static str) -> Result<usize, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.len_be(2, field),
            0xdd => self.len_be(4, field),
            _ => Err(self.bad(field, at, "array")),
        }
    }

    fn str(&mut self, field: &'static str) -> Result<&'a [u8], FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len_be(1, field)?,
            0xda => self.len_be(2, field)?,
            0xdb => self.len_be(4, field)?,
            _ => return Err(self.bad(field, at, "str")),
        };
        self.r.take(len, field)
    }

    fn bin(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        let len = match m {
            0xc4 => self.len_be(1, field)?,
            0xc5 => self.len_be(2, field)?,
            0xc6 => self.len_be(4, field)?,
            _ => return Err(self.bad(field, at, "bin")),
        };
        self.r.check_len(field, at, len, max)?;
        Ok(self.r.take(len, field)?.to_vec())
    }

    fn uint(&mut self, field: &'static str) -> Result<u64, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        Ok(match m {
            0x00..=0x7f => u64::from(m),
            0xcc => u64::from(self.r.u8(field)?),
            0xcd => u64::from(self.r.u16(field)?),
            0xce => u64::from(self.r.u32(field)?),
            0xcf => self.r.u64(field)?,
            _ => return Err(self.bad(field, at, "unsigned integer")),
        })
    }
}

fn dup(at: usize, field: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "duplicate field",
        },
    )
}

/// Reads a field's value with `read` into `slot`. A field seen before is a duplicate, reported
/// at its name (`at`) before its value is read.
fn set<T>(
    slot: &mut Option<T>,
    at: usize,
    field: &'static str,
    read: impl FnOnce() -> Result<T, FormatError>,
) -> Result<(), FormatError> {
    if slot.is_some() {
        return Err(dup(at, field));
    }
    *slot = Some(read()?);
    Ok(())
}

fn missing(at: usize, field: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "missing field",
        },
    )
}

fn unknown(at: usize) -> FormatError {
    FormatError::new(
        STRUCTURE,
        "name",
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "unknown field",
        },
    )
}

fn decode_op(mp: &mut Mp<'_>) -> Result<BatchOp, FormatError> {
    let start = mp.r.pos();
    let n = mp.map_len("op")?;
    mp.r.check_len("op", start, n, MAP_LEN_MAX)?;
    let (mut op, mut key, mut value) = (None, None, None);
    let mut value_at = start;
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
                value_at = at;
                set(&mut value, at, "value", || mp.bin("value", VALUE_LEN_MAX))?
            }
            _ => return Err(unknown(at)),
        }
    }
    let is_put = op.ok_or_else(|| missing(start, "op"))?;
    let key = key.ok_or_else(|| missing(start, "key"))?;
    match (is_put, value) {
        (true, Some(value)) => Ok(BatchOp::Put { key, value }),
        (true, None) => Err(missing(start, "value")),
        (false, None) => Ok(BatchOp::Delete { key }),
        (false, Some(_)) => Err(unknown(value_at)),
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

/// Decodes the payload of a frame of type `record_type`. The whole slice must be one map. After
/// the map, missing fields are reported (at offset 0, in the order revision, created_at_ms,
/// synced_through, then key, value or ops), then bytes after the map.
pub fn decode_payload(record_type: RecordType, bytes: &[u8]) -> Result<WalRecord, FormatError> {
    let mut mp = Mp {
        r: Reader::new(bytes, STRUCTURE),
    };
    let n = mp.map_len("record")?;
    mp.r.check_len("record", 0, n, MAP_LEN_MAX)?;
    let (mut revision, mut created, mut synced) = (None, None, None);
    let (mut key, mut value, mut ops) = (None, None, None);
    for _ in 0..n {
        let at = mp.r.pos();
        let name = mp.str("name")?;
        match (name, record_type) {
            (b"revision", _) => set(&mut revision, at, "revision", || mp.uint("revision"))?,
            (b"created_at_ms", _) => set(&mut created, at, "created_at_ms", || {
                mp.uint("created_at_ms")
            })?,
            (b"synced_through", _) => set(&mut synced, at, "synced_through", || {
                mp.uint("synced_through")
            })?,
            (b"key", RecordType::Put | RecordType::Delete) => {
                set(&mut key, at, "key", || mp.bin("key", KEY_LEN_MAX))?
            }
            (b"value", RecordType::Put) => {
                set(&mut value, at, "value", || mp.bin("value", VALUE_LEN_MAX))?
            }
            (b"ops", RecordType::Batch) => set(&mut ops, at, "ops", || decode_ops(&mut mp))?,
            _ => return Err(unknown(at)),
        }
    }
    let revision = revision.ok_or_else(|| missing(0, "revision"))?;
    let created_at_ms = created.ok_or_else(|| missing(0, "created_at_ms"))?;
    let synced_through = synced.ok_or_else(|| missing(0, "synced_through"))?;
    let body = match record_type {
        RecordType::Put => WalBody::Put {
            key: key.ok_or_else(|| missing(0, "key"))?,
            value: value.ok_or_else(|| missing(0, "value"))?,
        },
        RecordType::Delete => WalBody::Delete {
            key: key.ok_or_else(|| missing(0, "key"))?,
        },
        RecordType::Batch => WalBody::Batch(ops.ok_or_else(|| missing(0, "ops"))?),
    };
    mp.r.finish("record")?;
    Ok(WalRecord {
        revision,
        created_at_ms,
        synced_through,
        body,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    pub(crate) fn record() -> impl Strategy<Value = WalRecord> {
        let op = prop_oneof![
            (bytes(8), bytes(16)).prop_map(|(key, value)| BatchOp::Put { key, value }),
            bytes(8).prop_map(|key| BatchOp::Delete { key }),
        ];
        let body = prop_oneof![
            (bytes(8), bytes(300)).prop_map(|(key, value)| WalBody::Put { key, value }),
            bytes(8).prop_map(|key| WalBody::Delete { key }),
            prop::collection::vec(op, 1..5).prop_map(WalBody::Batch),
        ];
        (any::<u64>(), any::<u64>(), any::<u64>(), body).prop_map(
            |(revision, created_at_ms, synced_through, body)| WalRecord {
                revision,
                created_at_ms,
                synced_through,
                body,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip(r in record()) {
            let bytes = encode_payload(&r).unwrap();
            prop_assert_eq!(decode_payload(r.body.record_type(), &bytes).unwrap(), r);
        }

        #[test]
        fn decode_never_panics(t in 1u8..=3, bytes in bytes(96)) {
            let _ = decode_payload(RecordType::from_u8(t).unwrap(), &bytes);
        }

        #[test]
        fn decode_mutated_never_panics(r in record(), i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut bytes = encode_payload(&r).unwrap();
            let i = i.index(bytes.len());
            bytes[i] = b;
            let _ = decode_payload(r.body.record_type(), &bytes);
        }
    }
}
