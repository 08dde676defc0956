//! The index block, covered by the footer's `index_crc32c`:
//!
//! ```text
//! count u32 BE | count * (first_key_len u32 BE | first_key | offset u64 BE |
//!                         stored_len u32 BE (high bit = compressed) | crc32c u32 BE)
//! ```
//!
//! Invariants: `1 <= count`; first keys strictly increasing; blocks contiguous (checked by
//! [`Index::check_layout`]).

use super::block::{BLOCK_COMPRESSED_FLAG, BlockHandle};
use crate::format::checksum::crc32c;
use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, Reader};

const STRUCTURE: &str = "sst index";
/// Smallest encoded index entry (empty first key).
const INDEX_ENTRY_LEN_MIN: usize = 4 + 8 + 4 + 4;

/// One block's first key and handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// The first key of the block.
    pub first_key: Vec<u8>,
    /// Where the block is.
    pub handle: BlockHandle,
}

/// The decoded index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// One entry per data block, in file order.
    pub blocks: Vec<IndexEntry>,
}

impl Index {
    /// The encoded index region.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.blocks.len() as u32).to_be_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&(b.first_key.len() as u32).to_be_bytes());
            out.extend_from_slice(&b.first_key);
            out.extend_from_slice(&b.handle.offset.to_be_bytes());
            out.extend_from_slice(&b.handle.stored_len_field().to_be_bytes());
            out.extend_from_slice(&b.handle.crc32c.to_be_bytes());
        }
        out
    }

    /// Verifies the region's CRC32C against the footer's `index_crc32c`, then decodes it.
    pub fn decode_checked(bytes: &[u8], index_crc32c: u32) -> Result<Self, FormatError> {
        let actual = crc32c(bytes);
        if actual != index_crc32c {
            let kind = FormatErrorKind::BadChecksum {
                expected: index_crc32c,
                actual,
            };
            return Err(FormatError::new(STRUCTURE, "index_crc32c", 0, kind));
        }
        Self::decode(bytes)
    }

    /// Decodes the whole slice as an index (no checksum: see [`Index::decode_checked`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let count = r.u32("count")? as usize;
        let max = r.remaining() / INDEX_ENTRY_LEN_MIN;
        r.check_len("count", 0, count, max)?;
        if count == 0 {
            return Err(r.err(
                "count",
                0,
                FormatErrorKind::InvalidValue {
                    reason: "an SST has at least one block",
                },
            ));
        }
        let mut blocks: Vec<IndexEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.pos();
            let key_len = r.u32("first_key_len")? as usize;
            r.check_len("first_key_len", at, key_len, KEY_LEN_MAX)?;
            let first_key = r.take(key_len, "first_key")?.to_vec();
            if blocks
                .last()
                .is_some_and(|prev| prev.first_key >= first_key)
            {
                return Err(r.err("first_key", at, FormatErrorKind::KeyOrder));
            }
            let offset = r.u64("offset")?;
            let field = r.u32("stored_len")?;
            let crc32c = r.u32("crc32c")?;
            let handle = BlockHandle {
                offset,
                stored_len: field & !BLOCK_COMPRESSED_FLAG,
                compressed: field & BLOCK_COMPRESSED_FLAG != 0,
                crc32c,
            };
            blocks.push(IndexEntry { first_key, handle });
        }
        r.finish("count")?;
        Ok(Self { blocks })
    }

    /// Checks that blocks are non-empty and tile `[data_start, data_end)` exactly, in order.
    pub fn check_layout(&self, data_start: u64, data_end: u64) -> Result<(), FormatError> {
        let mut expected = data_start;
        for b in &self.blocks {
            if b.handle.offset != expected || b.handle.stored_len == 0 {
                let kind = FormatErrorKind::InvalidValue {
                    reason: "blocks must be non-empty and contiguous",
                };
                return Err(FormatError::new(STRUCTURE, "offset", 0, kind));
            }
            expected = expected.saturating_add(b.handle.stored_len.into());
        }
        if expected != data_end {
            let kind = FormatErrorKind::InvalidValue {
                reason: "blocks do not end where the bloom or index starts",
            };
            return Err(FormatError::new(STRUCTURE, "stored_len", 0, kind));
        }
        Ok(())
    }

    /// The position of the block that may hold `key`: the last block whose first key is <= `key`.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.blocks
            .partition_point(|b| b.first_key.as_slice() <= key)
            .checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn decode_never_panics(bytes: Vec<u8>) -> bool {
            let _ = Index::decode(&bytes);
            true
        }

        fn round_trip(keys: std::collections::BTreeSet<Vec<u8>>, seed: u32) -> bool {
            let blocks: Vec<IndexEntry> = keys.into_iter().enumerate().map(|(i, first_key)| IndexEntry {
                first_key,
                handle: BlockHandle { offset: i as u64 * 7, stored_len: seed >> 1, compressed: seed & 1 == 1, crc32c: seed },
            }).collect();
            let index = Index { blocks };
            index.blocks.is_empty() || Index::decode(&index.encode()) == Ok(index)
        }
    }

    #[test]
    fn huge_count_is_an_error() {
        assert_eq!(
            Index::decode(&[0xff, 0xff, 0xff, 0xff, 0, 0])
                .unwrap_err()
                .kind
                .name(),
            "length_too_large"
        );
    }
}
