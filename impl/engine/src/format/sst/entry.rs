//! One SST entry (SST v4):
//!
//! ```text
//! key_len u32 BE | key | value_len u32 BE (0xFFFFFFFF = tombstone) | value? |
//! revision varint | create_delta varint | version varint | lease varint |
//! wal_offset varint | created_at_ms varint
//! ```
//!
//! `create_delta` is `revision - create_revision`: 0 for a key's first version since its
//! creation, so the common case costs one byte.
//!
//! Invariants: `key_len <= KEY_LEN_MAX`, `value_len <= VALUE_LEN_MAX` unless it is the tombstone
//! marker, which carries no value bytes. A value has `version >= 1` and
//! `1 <= create_revision <= revision` (so `create_delta < revision`); a tombstone has
//! `create_delta`, `version` and `lease` all 0 (it ends the key's life: etcd reports a deleted
//! key with create revision, version and lease 0).

use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, Reader, VALUE_LEN_MAX, varint};

/// `value_len` of a tombstone.
pub const TOMBSTONE_LEN: u32 = u32::MAX;
const _: () = assert!(VALUE_LEN_MAX < TOMBSTONE_LEN as usize);

const STRUCTURE: &str = "sst entry";

/// One version of one key, as the SST format stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The revision of the commit that wrote it (etcd's `mod_revision`).
    pub revision: u64,
    /// The revision of the commit that created the key (0 for a tombstone).
    pub create_revision: u64,
    /// Puts since the key's creation, 1 for the creating one (0 for a tombstone).
    pub version: u64,
    /// The lease the key is attached to (0: none, and for a tombstone).
    pub lease: u64,
    /// Logical WAL offset of the record that wrote it.
    pub wal_offset: u64,
    /// Commit time, unix milliseconds.
    pub created_at_ms: u64,
}

impl Entry {
    /// A borrowed view of this entry.
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            key: &self.key,
            value: self.value.as_deref(),
            revision: self.revision,
            create_revision: self.create_revision,
            version: self.version,
            lease: self.lease,
            wal_offset: self.wal_offset,
            created_at_ms: self.created_at_ms,
        }
    }

    /// Bytes [`encode_entry`] appends for this entry.
    pub fn encoded_len(&self) -> usize {
        self.as_ref().encoded_len()
    }

    /// See [`EntryRef::check`].
    pub fn check(&self) -> Result<(), FormatError> {
        self.as_ref().check()
    }
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
    /// Revision of the commit that created the key (0 for a tombstone).
    pub create_revision: u64,
    /// Puts since the key's creation (0 for a tombstone).
    pub version: u64,
    /// Attached lease (0: none).
    pub lease: u64,
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
            create_revision: self.create_revision,
            version: self.version,
            lease: self.lease,
            wal_offset: self.wal_offset,
            created_at_ms: self.created_at_ms,
        }
    }

    /// `revision - create_revision` as stored (0 for a tombstone). REQUIRES: [`Self::check`].
    fn create_delta(&self) -> u64 {
        match self.value {
            Some(_) => self.revision.saturating_sub(self.create_revision),
            None => 0,
        }
    }

    /// Bytes [`encode_entry`] appends for this entry.
    pub fn encoded_len(&self) -> usize {
        8 + self.key.len()
            + self.value.map_or(0, <[u8]>::len)
            + varint::encoded_len(self.revision)
            + varint::encoded_len(self.create_delta())
            + varint::encoded_len(self.version)
            + varint::encoded_len(self.lease)
            + varint::encoded_len(self.wal_offset)
            + varint::encoded_len(self.created_at_ms)
    }

    /// Fails with `LengthTooLarge` if the key or value exceeds its limit, or `InvalidValue` if the
    /// version metadata breaks the module's rules.
    pub fn check(&self) -> Result<(), FormatError> {
        if self.key.len() > KEY_LEN_MAX {
            let kind = FormatErrorKind::too_large(self.key.len(), KEY_LEN_MAX);
            return Err(FormatError::new(STRUCTURE, "key_len", 0, kind));
        }
        if let Some(v) = self.value
            && v.len() > VALUE_LEN_MAX
        {
            let kind = FormatErrorKind::too_large(v.len(), VALUE_LEN_MAX);
            return Err(FormatError::new(STRUCTURE, "value_len", 0, kind));
        }
        check_meta(
            self.value.is_some(),
            self.revision,
            self.create_revision,
            self.version,
            self.lease,
        )
        .map_err(|(field, reason)| {
            FormatError::new(
                STRUCTURE,
                field,
                0,
                FormatErrorKind::InvalidValue { reason },
            )
        })
    }
}

/// The metadata rules of the module doc: `Err((field, reason))` for the first one broken.
fn check_meta(
    is_value: bool,
    revision: u64,
    create_revision: u64,
    version: u64,
    lease: u64,
) -> Result<(), (&'static str, &'static str)> {
    if is_value {
        if version == 0 {
            return Err(("version", "a value's version is at least 1"));
        }
        if create_revision == 0 || create_revision > revision {
            return Err((
                "create_delta",
                "a value's create revision is in 1..=revision",
            ));
        }
    } else if create_revision != 0 || version != 0 || lease != 0 {
        return Err((
            "create_delta",
            "a tombstone's create delta, version and lease are 0",
        ));
    }
    Ok(())
}

/// Appends `entry` to `out`. Precondition: [`EntryRef::check`] holds.
pub fn encode_entry(entry: EntryRef<'_>, out: &mut Vec<u8>) {
    debug_assert!(entry.check().is_ok());
    out.extend_from_slice(&(entry.key.len() as u32).to_be_bytes());
    out.extend_from_slice(entry.key);
    match entry.value {
        Some(v) => {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&TOMBSTONE_LEN.to_be_bytes()),
    }
    varint::encode(entry.revision, out);
    varint::encode(entry.create_delta(), out);
    varint::encode(entry.version, out);
    varint::encode(entry.lease, out);
    varint::encode(entry.wal_offset, out);
    varint::encode(entry.created_at_ms, out);
}

/// The varint `field` at `r`'s position in `bytes` (the bytes `r` reads), decoded in place:
/// every block read parses each entry's six varints, and [`Reader::varint`] loops byte by byte
/// and returns through a `Result` as large as a [`FormatError`] (SST v4's three metadata varints
/// made a shuffled get 5 % slower that way). A one-byte varint (nearly every `create_delta`,
/// `version` and `lease`) is taken at once; a longer one that ends within the next eight bytes
/// is taken from one 8-byte word; anything else (nine or ten bytes, overlong, truncated) goes to
/// [`Reader::varint`], so the values and the errors are exactly its (eight 7-bit groups are 56
/// bits: no overflow is possible on the fast paths).
#[inline(always)]
fn varint(r: &mut Reader<'_>, bytes: &[u8], field: &'static str) -> Result<u64, FormatError> {
    let start = r.pos();
    match bytes.get(start) {
        Some(&b) if b & 0x80 == 0 => {
            r.take(1, field)?;
            return Ok(u64::from(b));
        }
        Some(_) => {}
        None => return r.varint(field),
    }
    let Some(word) = bytes
        .get(start..start.saturating_add(8))
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    else {
        return r.varint(field);
    };
    let word = u64::from_le_bytes(word);
    // The first byte without the continuation bit ends the varint (byte 0 has it).
    let ends = !word & 0x8080_8080_8080_8080;
    if ends == 0 {
        return r.varint(field);
    }
    let len = (ends.trailing_zeros() / 8 + 1) as usize; // 2..=8
    let groups = (word & (u64::MAX >> (64 - 8 * len))) & 0x7f7f_7f7f_7f7f_7f7f;
    if groups >> (8 * (len - 1)) == 0 {
        return r.varint(field); // overlong (last byte 0x00): the general decoder reports it
    }
    let mut value = 0u64;
    for k in 0..8 {
        value |= (groups >> k) & (0x7f << (7 * k));
    }
    r.take(len, field)?;
    Ok(value)
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
    let revision = varint(&mut r, bytes, "revision")?;
    let delta_at = r.pos();
    let create_delta = varint(&mut r, bytes, "create_delta")?;
    let version = varint(&mut r, bytes, "version")?;
    let lease = varint(&mut r, bytes, "lease")?;
    // A value's delta must leave a create revision of at least 1; a tombstone's must be 0.
    let create_revision = match value {
        Some(_) => revision.saturating_sub(create_delta),
        None if create_delta == 0 => 0,
        None => u64::MAX,
    };
    if let Err((field, reason)) =
        check_meta(value.is_some(), revision, create_revision, version, lease)
    {
        return Err(r.err(field, delta_at, FormatErrorKind::InvalidValue { reason }));
    }
    let wal_offset = varint(&mut r, bytes, "wal_offset")?;
    let created_at_ms = varint(&mut r, bytes, "created_at_ms")?;
    Ok((
        EntryRef {
            key,
            value,
            revision,
            create_revision,
            version,
            lease,
            wal_offset,
            created_at_ms,
        },
        r.pos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid entry: a tombstone (zero metadata) or a value with consistent metadata.
    pub(crate) fn entry_strategy() -> impl Strategy<Value = Entry> {
        (
            prop::collection::vec(any::<u8>(), 0..12),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            1u64..u64::MAX,
            any::<u64>(),
            1u64..u64::MAX,
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(
                |(key, value, revision, back, version, lease, wal_offset, created_at_ms)| {
                    let is_value = value.is_some();
                    Entry {
                        key,
                        value,
                        revision,
                        create_revision: if is_value {
                            revision - back % revision
                        } else {
                            0
                        },
                        version: if is_value { version } else { 0 },
                        lease: if is_value { lease } else { 0 },
                        wal_offset,
                        created_at_ms,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(e in entry_strategy()) {
            prop_assert!(e.check().is_ok());
            let mut out = Vec::new();
            encode_entry(e.as_ref(), &mut out);
            prop_assert_eq!(out.len(), e.encoded_len());
            prop_assert_eq!(decode_entry(&out), Ok((e, out.len())));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_entry(&bytes);
        }

        /// The in-place varint decoder answers exactly as `Reader::varint` (value, bytes taken,
        /// error), on encodings of every length followed by anything, and on arbitrary bytes
        /// (overlong, ten-byte, overflowing and truncated varints) at any position.
        #[test]
        fn in_place_varints_are_reader_varints(
            value in prop_oneof![any::<u64>(), 0u64..300, (0u32..64).prop_map(|b| 1u64 << b)],
            tail in prop::collection::vec(any::<u8>(), 0..12),
            noise in prop::collection::vec(any::<u8>(), 0..14),
            skip in 0usize..4,
        ) {
            let mut encoded = Vec::new();
            varint::encode(value, &mut encoded);
            encoded.extend_from_slice(&tail);
            for bytes in [&encoded[..], &noise[..]] {
                let mut general = Reader::new(bytes, STRUCTURE);
                let mut in_place = Reader::new(bytes, STRUCTURE);
                if general.take(skip, "skip").is_err() {
                    continue;
                }
                in_place.take(skip, "skip").unwrap();
                let expected = general.varint("field");
                prop_assert_eq!(varint(&mut in_place, bytes, "field"), expected.clone());
                prop_assert_eq!(in_place.pos(), general.pos());
            }
            let mut r = Reader::new(&encoded, STRUCTURE);
            prop_assert_eq!(varint(&mut r, &encoded, "field"), Ok(value));
        }
    }

    #[test]
    fn worked_example() {
        // spec/FORMAT.md § 4.2: key "abc", value "xyz", revision 5 created at 3, version 2, no
        // lease, walOffset 123, createdAt 1690000000.
        let e = Entry {
            key: b"abc".to_vec(),
            value: Some(b"xyz".to_vec()),
            revision: 5,
            create_revision: 3,
            version: 2,
            lease: 0,
            wal_offset: 123,
            created_at_ms: 1_690_000_000,
        };
        let mut out = Vec::new();
        encode_entry(e.as_ref(), &mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 3, 0x61, 0x62, 0x63, 0, 0, 0, 3, 0x78, 0x79, 0x7a, 5, 2, 2, 0, 0x7b, 0x80,
                0xb5, 0xed, 0xa5, 0x06
            ]
        );
    }

    #[test]
    fn metadata_rules_are_enforced_on_decode() {
        let encode = |value: Option<&[u8]>, revision: u64, delta: u64, version: u64, lease: u64| {
            let mut out = vec![0, 0, 0, 1, b'k'];
            match value {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&TOMBSTONE_LEN.to_be_bytes()),
            }
            for n in [revision, delta, version, lease, 0, 0] {
                varint::encode(n, &mut out);
            }
            out
        };
        let field = |bytes: Vec<u8>| {
            decode_entry(&bytes)
                .map(|_| ())
                .map_err(|e| (e.field, e.offset))
        };
        assert_eq!(field(encode(Some(b"v"), 5, 4, 1, 0)), Ok(()));
        // Tombstone metadata at offset 10 (after key_len, key, value_len, revision).
        assert_eq!(field(encode(None, 5, 0, 0, 0)), Ok(()));
        assert_eq!(field(encode(None, 5, 1, 0, 0)), Err(("create_delta", 10)));
        assert_eq!(field(encode(None, 5, 0, 1, 0)), Err(("create_delta", 10)));
        assert_eq!(field(encode(None, 5, 0, 0, 9)), Err(("create_delta", 10)));
        // A value: delta 5 at revision 5 would be create revision 0; version 0 is not allowed.
        assert_eq!(
            field(encode(Some(b"v"), 5, 5, 1, 0)),
            Err(("create_delta", 11))
        );
        assert_eq!(
            field(encode(Some(b"v"), 5, 6, 1, 0)),
            Err(("create_delta", 11))
        );
        assert_eq!(field(encode(Some(b"v"), 5, 0, 0, 0)), Err(("version", 11)));
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
