//! One SST entry:
//!
//! ```text
//! key_len u32 BE | key | value_len u32 BE (0xFFFFFFFF = tombstone) | value? |
//! revision varint | wal_offset varint | created_at_ms varint
//! ```
//!
//! Invariants: `key_len <= KEY_LEN_MAX`, `value_len <= VALUE_LEN_MAX` unless it is the tombstone
//! marker, which carries no value bytes.

use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, Reader, VALUE_LEN_MAX, varint};

/// `value_len` of a tombstone.
pub const TOMBSTONE_LEN: u32 = u32::MAX;
const _: () = assert!(VALUE_LEN_MAX < TOMBSTONE_LEN as usize);

const STRUCTURE: &str = "sst entry";

/// One version of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The revision of the commit that wrote it.
    pub revision: u64,
    /// Logical WAL offset of the record that wrote it.
    pub wal_offset: u64,
    /// Commit time, unix milliseconds.
    pub created_at_ms: u64,
}

impl Entry {
    /// Bytes [`encode_entry`] appends for this entry.
    pub fn encoded_len(&self) -> usize {
        8 + self.key.len()
            + self.value.as_ref().map_or(0, Vec::len)
            + varint::encoded_len(self.revision)
            + varint::encoded_len(self.wal_offset)
            + varint::encoded_len(self.created_at_ms)
    }

    /// Fails with `LengthTooLarge` if the key or value exceeds its limit.
    pub fn check_limits(&self) -> Result<(), FormatError> {
        if self.key.len() > KEY_LEN_MAX {
            let kind = FormatErrorKind::too_large(self.key.len(), KEY_LEN_MAX);
            return Err(FormatError::new(STRUCTURE, "key_len", 0, kind));
        }
        if let Some(v) = &self.value
            && v.len() > VALUE_LEN_MAX
        {
            let kind = FormatErrorKind::too_large(v.len(), VALUE_LEN_MAX);
            return Err(FormatError::new(STRUCTURE, "value_len", 0, kind));
        }
        Ok(())
    }
}

/// Appends `entry` to `out`. Precondition: [`Entry::check_limits`] holds.
pub fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    debug_assert!(entry.check_limits().is_ok());
    out.extend_from_slice(&(entry.key.len() as u32).to_be_bytes());
    out.extend_from_slice(&entry.key);
    match &entry.value {
        Some(v) => {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&TOMBSTONE_LEN.to_be_bytes()),
    }
    varint::encode(entry.revision, out);
    varint::encode(entry.wal_offset, out);
    varint::encode(entry.created_at_ms, out);
}

/// A decoded entry borrowing its key and value from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Revision of the commit that wrote this version.
    pub revision: u64,
    /// Logical WAL offset of that commit's record.
    pub wal_offset: u64,
    /// Commit time, unix milliseconds.
    pub created_at_ms: u64,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            key: self.key.to_vec(),
            value: self.value.map(<[u8]>::to_vec),
            revision: self.revision,
            wal_offset: self.wal_offset,
            created_at_ms: self.created_at_ms,
        }
    }
}

/// Decodes one entry from the start of `bytes`; returns it and the bytes consumed.
pub fn decode_entry(bytes: &[u8]) -> Result<(Entry, usize), FormatError> {
    decode_entry_ref(bytes).map(|(e, n)| (e.to_entry(), n))
}

/// [`decode_entry`] without copying the key and value out of `bytes`.
pub fn decode_entry_ref(bytes: &[u8]) -> Result<(EntryRef<'_>, usize), FormatError> {
    let mut r = Reader::new(bytes, STRUCTURE);
    let key_len = r.u32("key_len")? as usize;
    r.check_len("key_len", 0, key_len, KEY_LEN_MAX)?;
    let key = r.take(key_len, "key")?;
    let at = r.pos();
    let value_len = r.u32("value_len")?;
    let value = if value_len == TOMBSTONE_LEN {
        None
    } else {
        let len = value_len as usize;
        r.check_len("value_len", at, len, VALUE_LEN_MAX)?;
        Some(r.take(len, "value")?)
    };
    let revision = r.varint("revision")?;
    let wal_offset = r.varint("wal_offset")?;
    let created_at_ms = r.varint("created_at_ms")?;
    Ok((
        EntryRef {
            key,
            value,
            revision,
            wal_offset,
            created_at_ms,
        },
        r.pos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn round_trip(key: Vec<u8>, value: Option<Vec<u8>>, revision: u64, wal_offset: u64, created_at_ms: u64) -> bool {
            let e = Entry { key, value, revision, wal_offset, created_at_ms };
            let mut out = Vec::new();
            encode_entry(&e, &mut out);
            out.len() == e.encoded_len() && decode_entry(&out) == Ok((e, out.len()))
        }

        fn decode_never_panics(bytes: Vec<u8>) -> bool {
            let _ = decode_entry(&bytes);
            true
        }
    }

    #[test]
    fn seed_example_with_correct_varint() {
        let e = Entry {
            key: b"abc".to_vec(),
            value: Some(b"xyz".to_vec()),
            revision: 1,
            wal_offset: 123,
            created_at_ms: 1_690_000_000,
        };
        let mut out = Vec::new();
        encode_entry(&e, &mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 3, 0x61, 0x62, 0x63, 0, 0, 0, 3, 0x78, 0x79, 0x7a, 1, 0x7b, 0x80, 0xb5,
                0xed, 0xa5, 0x06
            ]
        );
    }

    #[test]
    fn huge_length_is_an_error_not_an_allocation() {
        let bytes = [0x00, 0x00, 0x10, 0x00, 0xff, 0xff, 0xff, 0xfe];
        assert_eq!(decode_entry(&bytes).unwrap_err().kind.name(), "truncated");
        let bytes = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode_entry(&bytes).unwrap_err().kind.name(),
            "length_too_large"
        );
    }
}
