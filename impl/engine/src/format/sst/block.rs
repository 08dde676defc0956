//! Data blocks. A block's raw form is one or more [`Entry`]s back to back. Its stored form is
//! either the raw bytes, or (compressed flag set in the index's `stored_len`)
//!
//! ```text
//! raw_len u32 BE | LZ4 block-format bytes (no frame, no checksum)
//! ```
//!
//! The CRC32C in the index covers the stored bytes exactly as they are on disk.
//!
//! Invariants: a block holds at least one entry; entries are in strictly increasing internal-key
//! order (key ascending, then revision descending: a key's versions are adjacent, newest first);
//! a compressed block is kept only when it saves at least 1/8 of the raw size; `raw_len` is bounded by
//! [`BLOCK_STORED_LEN_MAX`] and by [`LZ4_EXPANSION_MAX`] times the compressed bytes, so a
//! lying `raw_len` cannot make the decoder allocate more than the input justifies.

use super::entry::{Entry, EntryRef, TOMBSTONE_LEN, decode_entry_ref};
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

/// A compressed block is kept only if it saves at least `1 / COMPRESSION_SAVING_MIN_DIVISOR` of
/// the raw size (12.5 %, RocksDB's rule): below that, every read would pay a decompression for
/// a few bytes of disk.
pub const COMPRESSION_SAVING_MIN_DIVISOR: usize = 8;

/// The stored form of raw block bytes: `(stored, compressed)`. Compresses with LZ4 if asked and
/// if that saves enough (see [`COMPRESSION_SAVING_MIN_DIVISOR`]).
pub fn encode_block(raw: &[u8], compression: Compression) -> (Vec<u8>, bool) {
    let compressed = match compression {
        Compression::Lz4 => compress_block(raw),
        Compression::None => None,
    };
    match compressed {
        Some(stored) => (stored, true),
        None => (raw.to_vec(), false),
    }
}

/// The compressed stored form of `raw` (`raw_len` then LZ4), or `None` when it would not save
/// at least `1 / COMPRESSION_SAVING_MIN_DIVISOR` of the raw size.
pub fn compress_block(raw: &[u8]) -> Option<Vec<u8>> {
    let mut stored = Vec::with_capacity(raw.len());
    stored.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    stored.extend_from_slice(&lz4_flex::block::compress(raw));
    let kept_max = raw.len() - raw.len() / COMPRESSION_SAVING_MIN_DIVISOR;
    (stored.len() < kept_max).then_some(stored)
}

/// Verifies `stored` against `handle` (length, CRC32C), decompresses it if flagged, and decodes
/// its entries, checking they are in strictly increasing key order. Offsets in errors are
/// relative to the raw (decompressed) bytes for entry errors, to `stored` otherwise.
pub fn decode_block(stored: &[u8], handle: &BlockHandle) -> Result<Block, FormatError> {
    decode_block_vec(stored.to_vec(), handle)
}

/// [`decode_block`] taking ownership of the stored bytes (an uncompressed block keeps them).
pub fn decode_block_vec(stored: Vec<u8>, handle: &BlockHandle) -> Result<Block, FormatError> {
    if stored.len() != handle.stored_len as usize {
        let kind = FormatErrorKind::Truncated {
            needed: handle.stored_len.into(),
            available: stored.len() as u64,
        };
        return Err(FormatError::new(STRUCTURE, "stored_len", 0, kind));
    }
    let actual = crc32c(&stored);
    if actual != handle.crc32c {
        let kind = FormatErrorKind::BadChecksum {
            expected: handle.crc32c,
            actual,
        };
        return Err(FormatError::new(STRUCTURE, "crc32c", 0, kind));
    }
    if handle.compressed {
        Block::parse(decompress(&stored)?)
    } else {
        Block::parse(stored)
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
        let kind = FormatErrorKind::too_large(raw_len, max);
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

/// Whether internal key `a` sorts strictly before `b`: key ascending, then revision descending.
pub fn internal_less(a: (&[u8], u64), b: (&[u8], u64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

/// A verified block: its raw bytes and each entry's decoded fields. Built only by
/// [`Block::parse`], which decoded every entry and checked their order once, so lookups read keys
/// in place and an entry is returned without decoding it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    raw: Vec<u8>,
    slots: Vec<Slot>,
}

/// Where one entry's key and value lie in the raw bytes, and its integer fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key_start: u32,
    key_len: u32,
    /// [`TOMBSTONE_LEN`] for a tombstone. The value starts right after the key and this length
    /// field (§ 4.2), so its offset is not stored.
    value_len: u32,
    /// Whether this entry is its key's newest version here (the previous entry, if any, has
    /// another key): what [`Block::is_visible`] asks of every entry a scan passes, answered by
    /// the key comparison the parse makes anyway instead of a second one per entry.
    first_of_key: bool,
    revision: u64,
    create_revision: u64,
    version: u64,
    lease: u64,
    wal_offset: u64,
    created_at_ms: u64,
}

/// Where `slot`'s value starts: after its key and the value's length field (§ 4.2); `None` if
/// that overflows (cannot happen: [`Block::parse`] checked the offset fits).
fn value_start(slot: &Slot) -> Option<u32> {
    slot.key_start.checked_add(slot.key_len)?.checked_add(4)
}

/// Raw bytes per entry [`Block::parse`] sizes its slot list for: a 4 KiB block of the seed
/// workload's entries (~270 bytes) needs no reallocation, where growing from empty reallocated
/// three times per block (14 % of a parse); a block of larger entries leaves at most a quarter
/// of its raw size unused (a 64-byte slot per 256 raw bytes).
const SLOT_RAW_BYTES_ESTIMATE: usize = 256;
const _: () = assert!(std::mem::size_of::<Slot>() * 4 <= SLOT_RAW_BYTES_ESTIMATE);

impl Block {
    /// Decodes and checks every entry of `raw` (at least one, internal keys strictly
    /// increasing).
    /// Errors carry offsets relative to `raw`.
    pub fn parse(raw: Vec<u8>) -> Result<Block, FormatError> {
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
        // Every offset below is < raw.len(); the caller bounded that by BLOCK_STORED_LEN_MAX.
        let too_large = |at: usize| {
            let kind = FormatErrorKind::too_large(raw.len(), BLOCK_STORED_LEN_MAX as usize);
            FormatError::new(STRUCTURE, "entries", at as u64, kind)
        };
        let offset = |at: usize| u32::try_from(at).map_err(|_| too_large(at));
        let mut slots: Vec<Slot> = Vec::with_capacity(raw.len() / SLOT_RAW_BYTES_ESTIMATE);
        let mut previous: Option<(&[u8], u64)> = None;
        let mut pos = 0usize;
        while let Some(rest) = raw.get(pos..).filter(|r| !r.is_empty()) {
            let (entry, n) = decode_entry_ref(rest).map_err(|e| e.at(pos as u64))?;
            // Internal keys strictly increasing (`internal_less`), with one key comparison.
            let first_of_key = match previous {
                None => true,
                Some((key, revision)) => match key.cmp(entry.key) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal if revision > entry.revision => false,
                    _ => {
                        return Err(FormatError::new(
                            STRUCTURE,
                            "key",
                            pos as u64,
                            FormatErrorKind::KeyOrder,
                        ));
                    }
                },
            };
            // The layout of § 4.2: key_len:u32 key value_len:u32 value? varints.
            let key_start = pos + 4;
            // The value's offset must fit too ([`value_start`]).
            offset(key_start + entry.key.len() + 4)?;
            slots.push(Slot {
                key_start: offset(key_start)?,
                key_len: offset(entry.key.len())?,
                value_len: match entry.value {
                    Some(v) => offset(v.len())?,
                    None => TOMBSTONE_LEN,
                },
                first_of_key,
                revision: entry.revision,
                create_revision: entry.create_revision,
                version: entry.version,
                lease: entry.lease,
                wal_offset: entry.wal_offset,
                created_at_ms: entry.created_at_ms,
            });
            previous = Some((entry.key, entry.revision));
            pos += n;
        }
        Ok(Block { raw, slots })
    }

    /// Number of entries (at least one).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a parsed block holds at least one entry.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn bytes(&self, start: u32, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.raw.get(start..end)
    }

    /// Entry `i`, borrowing from the block; `None` past the end.
    pub fn entry(&self, i: usize) -> Option<EntryRef<'_>> {
        let slot = self.slots.get(i)?;
        let value = match slot.value_len {
            TOMBSTONE_LEN => None,
            len => Some(self.bytes(value_start(slot)?, len)?),
        };
        Some(EntryRef {
            key: self.bytes(slot.key_start, slot.key_len)?,
            value,
            revision: slot.revision,
            create_revision: slot.create_revision,
            version: slot.version,
            lease: slot.lease,
            wal_offset: slot.wal_offset,
            created_at_ms: slot.created_at_ms,
        })
    }

    /// Whether entry `i` is the version a read at `snapshot_rev` sees of its key: the first of
    /// the key's versions (newest first) with a revision at or below it. Depends on `i` and
    /// `i - 1` alone, since a key's versions are adjacent and never span blocks.
    pub fn is_visible(&self, i: usize, snapshot_rev: u64) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        if slot.revision > snapshot_rev {
            return false;
        }
        // The first entry of a block is its key's first version here (never spans blocks).
        slot.first_of_key
            || i.checked_sub(1)
                .and_then(|before| self.revision(before))
                .is_none_or(|r| r > snapshot_rev)
    }

    /// Whether entry `i` is a tombstone; `None` past the end.
    pub fn is_tombstone(&self, i: usize) -> Option<bool> {
        self.slots.get(i).map(|s| s.value_len == TOMBSTONE_LEN)
    }

    /// The revision of entry `i`; `None` past the end.
    pub fn revision(&self, i: usize) -> Option<u64> {
        self.slots.get(i).map(|s| s.revision)
    }

    /// The key of entry `i`, read in place; `None` past the end.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let slot = self.slots.get(i)?;
        self.bytes(slot.key_start, slot.key_len)
    }

    /// The number of leading entries whose key satisfies `pred` (which must be true on a
    /// prefix of the block and false on the rest, as for `slice::partition_point`).
    pub fn partition_point(&self, mut pred: impl FnMut(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid).is_some_and(&mut pred) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The newest version of `key` with revision `<= snapshot_rev`, if the block holds one.
    /// A key's versions are adjacent, newest first, so this is the first of them at or below
    /// `snapshot_rev`.
    pub fn find(&self, key: &[u8], snapshot_rev: u64) -> Option<EntryRef<'_>> {
        self.find_from(self.first_version(key), key, snapshot_rev)
    }

    /// The index of `key`'s newest version, if the block holds the key (else of the first
    /// entry past it).
    pub fn first_version(&self, key: &[u8]) -> usize {
        self.partition_point(|k| k < key)
    }

    /// [`Block::find`] from `first`, the key's [`Block::first_version`].
    pub fn find_from(&self, first: usize, key: &[u8], snapshot_rev: u64) -> Option<EntryRef<'_>> {
        (first..self.len())
            .take_while(|&i| self.key(i) == Some(key))
            .find(|&i| self.revision(i).is_some_and(|r| r <= snapshot_rev))
            .and_then(|i| self.entry(i))
    }

    /// Every entry, owned, in order.
    pub fn entries(&self) -> Vec<Entry> {
        (0..self.len())
            .filter_map(|i| self.entry(i))
            .map(|e| e.to_entry())
            .collect()
    }

    /// Bytes of memory the block holds (raw bytes and decoded fields).
    pub fn size_bytes(&self) -> u64 {
        let slots = self.slots.len().saturating_mul(std::mem::size_of::<Slot>());
        u64::try_from(self.raw.len().saturating_add(slots)).unwrap_or(u64::MAX)
    }
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
                revision: i as u64 + 1,
                create_revision: 1,
                version: 1,
                lease: 0,
                wal_offset: 0,
                created_at_ms: 0,
            };
            encode_entry(e.as_ref(), &mut raw);
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
        let block = decode_block(&stored, &h).unwrap();
        assert_eq!(block.len(), 20);
        assert_eq!(block.key(3), Some(&b"key00003"[..]));
        assert_eq!(
            block.find(b"key00007", u64::MAX).map(|e| e.revision),
            Some(8)
        );
        assert_eq!(block.find(b"key00007", 7), None);
        assert_eq!(block.find(b"key00007x", u64::MAX), None);
        assert_eq!(block.partition_point(|k| k < &b"key00010"[..]), 10);
        assert_eq!(block.entries().len(), 20);
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

    #[test]
    fn versions_of_a_key_are_found_newest_first_at_a_revision() {
        let mut raw = Vec::new();
        for (key, revision) in [
            (&b"a"[..], 9u64),
            (b"b", 12),
            (b"b", 7),
            (b"b", 3),
            (b"c", 1),
        ] {
            let e = Entry {
                key: key.to_vec(),
                value: Some(vec![b'v']),
                revision,
                create_revision: 1,
                version: 1,
                lease: 0,
                wal_offset: 0,
                created_at_ms: 0,
            };
            encode_entry(e.as_ref(), &mut raw);
        }
        let block = Block::parse(raw.clone()).unwrap();
        let at = |rev| block.find(b"b", rev).map(|e| e.revision);
        assert_eq!(
            (at(u64::MAX), at(11), at(7), at(6), at(2)),
            (Some(12), Some(7), Some(7), Some(3), None)
        );
        // An entry is visible at a revision exactly when it is what `find` returns for its key.
        for rev in 0..14 {
            for i in 0..block.len() {
                let key = block.key(i).unwrap();
                let found = block.find(key, rev).map(|e| e.revision);
                assert_eq!(
                    block.is_visible(i, rev),
                    found == block.revision(i),
                    "entry {i} at {rev}"
                );
            }
        }
        // The same versions oldest first break the order.
        let mut swapped = Vec::new();
        for revision in [3u64, 7] {
            let e = Entry {
                key: b"b".to_vec(),
                value: None,
                revision,
                create_revision: 0,
                version: 0,
                lease: 0,
                wal_offset: 0,
                created_at_ms: 0,
            };
            encode_entry(e.as_ref(), &mut swapped);
        }
        assert_eq!(Block::parse(swapped).unwrap_err().kind.name(), "key_order");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(stored in proptest::collection::vec(proptest::num::u8::ANY, 0..300), compressed: bool) {
            let h = BlockHandle { offset: 0, stored_len: stored.len() as u32, compressed, crc32c: crc32c(&stored) };
            let _ = decode_block(&stored, &h);
        }
    }
}
