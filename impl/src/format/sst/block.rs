//! Data blocks. A block's raw form is one or more [`Entry`]s back to back. Its stored form is
//! either the raw bytes, or (compressed flag set in the index's `stored_len`)
//!
//! ```text
//! raw_len u32 BE | LZ4 block-format bytes (no frame, no checksum)
//! ```
//!
//! The CRC32C in the index covers the stored bytes exactly as they are on disk.
//!
//! Invariants: a block holds at least one entry; entries are in strictly increasing key order;
//! a compressed block is kept only when smaller than the raw one; `raw_len` is bounded by
//! [`BLOCK_STORED_LEN_MAX`] and by [`LZ4_EXPANSION_MAX`] times the compressed bytes, so a
//! lying `raw_len` cannot make the decoder allocate more than the input justifies.

use super::entry::{Entry, decode_entry};
use crate::format::checksum::crc32c;
use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, VALUE_LEN_MAX};

/// Target raw size of a block: the builder closes a block once its raw bytes reach this.
pub const BLOCK_SIZE_BYTES: usize = 4096;
/// High bit of the index's `stored_len`: the block is LZ4-compressed.
pub const BLOCK_COMPRESSED_FLAG: u32 = 0x8000_0000;
/// Largest stored or raw block length (31 bits).
pub const BLOCK_STORED_LEN_MAX: u32 = !BLOCK_COMPRESSED_FLAG;
/// Most raw bytes LZ4 can produce per compressed byte (one token byte can expand to ~255).
pub const LZ4_EXPANSION_MAX: usize = 255;
const _: () = assert!(
    BLOCK_SIZE_BYTES + 8 + KEY_LEN_MAX + VALUE_LEN_MAX + 30 <= BLOCK_STORED_LEN_MAX as usize
);

const STRUCTURE: &str = "sst block";

/// Block compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Raw blocks.
    None,
    /// LZ4 block format (`lz4_flex`), kept only when smaller.
    #[default]
    Lz4,
}

/// Where a block is and how to check it: one index entry minus the first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHandle {
    /// File offset of the block's first stored byte.
    pub offset: u64,
    /// Stored length in bytes (without the flag bit).
    pub stored_len: u32,
    /// Whether the stored bytes are LZ4-compressed.
    pub compressed: bool,
    /// CRC32C of the stored bytes.
    pub crc32c: u32,
}

impl BlockHandle {
    /// The on-disk `stored_len` field: length with the compression flag.
    pub fn stored_len_field(&self) -> u32 {
        self.stored_len
            | if self.compressed {
                BLOCK_COMPRESSED_FLAG
            } else {
                0
            }
    }
}

/// The stored form of raw block bytes: `(stored, compressed)`. Compresses with LZ4 if asked and
/// if that is smaller.
pub fn encode_block(raw: &[u8], compression: Compression) -> (Vec<u8>, bool) {
    if compression == Compression::Lz4 {
        let mut stored = Vec::with_capacity(raw.len());
        stored.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        stored.extend_from_slice(&lz4_flex::block::compress(raw));
        if stored.len() < raw.len() {
            return (stored, true);
        }
    }
    (raw.to_vec(), false)
}

/// Verifies `stored` against `handle` (length, CRC32C), decompresses it if flagged, and decodes
/// its entries, checking they are in strictly increasing key order. Offsets in errors are
/// relative to the raw (decompressed) bytes for entry errors, to `stored` otherwise.
pub fn decode_block(stored: &[u8], handle: &BlockHandle) -> Result<Vec<Entry>, FormatError> {
    if stored.len() != handle.stored_len as usize {
        let kind = FormatErrorKind::Truncated {
            needed: handle.stored_len.into(),
            available: stored.len() as u64,
        };
        return Err(FormatError::new(STRUCTURE, "stored_len", 0, kind));
    }
    let actual = crc32c(stored);
    if actual != handle.crc32c {
        let kind = FormatErrorKind::BadChecksum {
            expected: handle.crc32c,
            actual,
        };
        return Err(FormatError::new(STRUCTURE, "crc32c", 0, kind));
    }
    if handle.compressed {
        let raw = decompress(stored)?;
        decode_entries(&raw)
    } else {
        decode_entries(stored)
    }
}

fn decompress(stored: &[u8]) -> Result<Vec<u8>, FormatError> {
    let (len_bytes, lz) = stored.split_first_chunk::<4>().ok_or_else(|| {
        let kind = FormatErrorKind::Truncated {
            needed: 4,
            available: stored.len() as u64,
        };
        FormatError::new(STRUCTURE, "raw_len", 0, kind)
    })?;
    let raw_len = u32::from_be_bytes(*len_bytes) as usize;
    let max = (BLOCK_STORED_LEN_MAX as usize).min(lz.len().saturating_mul(LZ4_EXPANSION_MAX));
    if raw_len > max {
        let kind = FormatErrorKind::LengthTooLarge {
            len: raw_len as u64,
            max: max as u64,
        };
        return Err(FormatError::new(STRUCTURE, "raw_len", 0, kind));
    }
    let mut raw = vec![0u8; raw_len];
    match lz4_flex::block::decompress_into(lz, &mut raw) {
        Ok(n) if n == raw_len => Ok(raw),
        _ => Err(FormatError::new(
            STRUCTURE,
            "lz4",
            4,
            FormatErrorKind::BadCompression,
        )),
    }
}

/// Decodes the raw bytes of a block: one or more entries, keys strictly increasing.
pub fn decode_entries(raw: &[u8]) -> Result<Vec<Entry>, FormatError> {
    if raw.is_empty() {
        return Err(FormatError::new(
            STRUCTURE,
            "entries",
            0,
            FormatErrorKind::InvalidValue {
                reason: "empty block",
            },
        ));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = raw.get(pos..).filter(|r| !r.is_empty()) {
        let (entry, n) = decode_entry(rest).map_err(|e| e.at(pos as u64))?;
        if entries.last().is_some_and(|prev| prev.key >= entry.key) {
            return Err(FormatError::new(
                STRUCTURE,
                "key",
                pos as u64,
                FormatErrorKind::KeyOrder,
            ));
        }
        entries.push(entry);
        pos += n;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sst::entry::encode_entry;

    fn raw_block(n: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        for i in 0..n {
            let e = Entry {
                key: format!("key{i:05}").into_bytes(),
                value: Some(vec![b'x'; 50]),
                revision: i as u64,
                wal_offset: 0,
                created_at_ms: 0,
            };
            encode_entry(&e, &mut raw);
        }
        raw
    }

    #[test]
    fn compressed_round_trip() {
        let raw = raw_block(20);
        let (stored, compressed) = encode_block(&raw, Compression::Lz4);
        assert!(compressed && stored.len() < raw.len());
        let h = BlockHandle {
            offset: 5,
            stored_len: stored.len() as u32,
            compressed,
            crc32c: crc32c(&stored),
        };
        assert_eq!(decode_block(&stored, &h).unwrap().len(), 20);
    }

    #[test]
    fn lying_raw_len_is_rejected() {
        let mut stored = vec![0x7f, 0xff, 0xff, 0xff];
        stored.extend_from_slice(&[0u8; 10]);
        let h = BlockHandle {
            offset: 5,
            stored_len: stored.len() as u32,
            compressed: true,
            crc32c: crc32c(&stored),
        };
        assert_eq!(
            decode_block(&stored, &h).unwrap_err().kind.name(),
            "length_too_large"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(stored in proptest::collection::vec(proptest::num::u8::ANY, 0..300), compressed: bool) {
            let h = BlockHandle { offset: 0, stored_len: stored.len() as u32, compressed, crc32c: crc32c(&stored) };
            let _ = decode_block(&stored, &h);
        }
    }
}
