//! Building and decoding whole SST files.
//!
//! [`TableBuilder`] streams: after each [`TableBuilder::add`], [`TableBuilder::take_ready`] hands
//! out the bytes that are final (header, finished blocks) so a large table is never held in
//! memory; [`TableBuilder::finish`] returns the rest (last block, bloom, index, footer).
//! [`decode_table`] validates a whole file in memory (the inspect tool and the fuzzers use it).
//!
//! Invariants: internal keys (key ascending, revision descending) strictly increasing across the
//! table; a key's versions never span two blocks (a block closes only at a key boundary); a table
//! has at least one entry.

use super::block::internal_less;
use super::block::{BlockHandle, Compression, compress_block, decode_block};
use super::bloom::{BLOOM_BITS_PER_KEY_DEFAULT, Bloom, BloomBuilder};
use super::entry::{Entry, EntryRef, encode_entry};
use super::footer::{FOOTER_LEN, Footer};
use super::index::{Index, IndexEntry};
use super::{BLOCK_SIZE_BYTES, SST_HEADER_LEN, SST_MAGIC, SST_VERSION};
use crate::format::checksum::crc32c;
use crate::format::{FormatError, FormatErrorKind, Reader};

/// How a table is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Target raw block size; a block is closed once it reaches this.
    pub block_size_bytes: usize,
    /// Block compression.
    pub compression: Compression,
    /// Bloom bits per key; 0 = no bloom block.
    pub bloom_bits_per_key: u32,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            block_size_bytes: BLOCK_SIZE_BYTES,
            compression: Compression::Lz4,
            bloom_bits_per_key: BLOOM_BITS_PER_KEY_DEFAULT,
        }
    }
}

/// What a finished table holds (for the manifest's `FileMeta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Entries written.
    pub entry_count: u64,
    /// Data blocks written.
    pub block_count: u64,
    /// The smallest key.
    pub min_key: Vec<u8>,
    /// The largest key.
    pub max_key: Vec<u8>,
    /// The largest revision of any entry.
    pub max_revision: u64,
    /// Total file size in bytes.
    pub file_size: u64,
}

/// Streams entries (strictly increasing internal keys) into SST bytes.
#[derive(Debug, Clone)]
pub struct TableBuilder {
    options: TableOptions,
    ready: Vec<u8>,
    written: u64,
    block: Vec<u8>,
    block_first_key: Option<Vec<u8>>,
    index: Index,
    bloom: BloomBuilder,
    min_key: Option<Vec<u8>>,
    last_key: Option<Vec<u8>>,
    /// The revision of the last entry added.
    last_revision: u64,
    max_revision: u64,
    entry_count: u64,
    /// Blocks in a row whose compression did not save enough.
    incompressible_streak: u32,
    /// Blocks written without trying compression since the last attempt.
    blocks_since_attempt: u32,
}

/// After this many blocks in a row that LZ4 could not shrink by 1/8, the builder stops trying on
/// every block (random-looking values: the attempt would cost a compression per block for
/// nothing)...
const INCOMPRESSIBLE_STREAK_MAX: u32 = 8;
/// ...and tries once every this many blocks, so data that turns compressible is noticed.
const INCOMPRESSIBLE_RETRY_EVERY: u32 = 16;

impl TableBuilder {
    /// A builder; the header is the first ready bytes.
    pub fn new(options: TableOptions) -> Self {
        let mut ready = Vec::with_capacity(SST_HEADER_LEN);
        ready.extend_from_slice(&SST_MAGIC);
        ready.push(SST_VERSION);
        Self {
            options,
            ready,
            written: SST_HEADER_LEN as u64,
            block: Vec::new(),
            block_first_key: None,
            index: Index::default(),
            bloom: BloomBuilder::default(),
            min_key: None,
            last_key: None,
            last_revision: 0,
            max_revision: 0,
            entry_count: 0,
            incompressible_streak: 0,
            blocks_since_attempt: 0,
        }
    }

    /// Appends an entry. Fails with `KeyOrder` if its internal key (key, then revision
    /// descending) is not greater than the previous one, `LengthTooLarge` if its key or value
    /// exceeds the limits, or `InvalidValue` if its metadata is inconsistent; the builder is
    /// unchanged then. The open block is closed first when it reached the target size and the
    /// entry starts a new key, so a key's versions share one block.
    pub fn add(&mut self, entry: EntryRef<'_>) -> Result<(), FormatError> {
        entry.check()?;
        let new_key = self.last_key.as_deref() != Some(entry.key);
        if let Some(last) = &self.last_key
            && !internal_less((last, self.last_revision), (entry.key, entry.revision))
        {
            return Err(FormatError::new(
                "sst entry",
                "key",
                0,
                FormatErrorKind::KeyOrder,
            ));
        }
        if new_key && self.block.len() >= self.options.block_size_bytes {
            self.flush_block();
        }
        if self.block_first_key.is_none() {
            self.block_first_key = Some(entry.key.to_vec());
        }
        encode_entry(entry, &mut self.block);
        if new_key && self.options.bloom_bits_per_key > 0 {
            self.bloom.add(entry.key);
        }
        if self.min_key.is_none() {
            self.min_key = Some(entry.key.to_vec());
        }
        if new_key {
            // Reuses the previous key's buffer: no allocation per key.
            match &mut self.last_key {
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(entry.key);
                }
                None => self.last_key = Some(entry.key.to_vec()),
            }
        }
        self.last_revision = entry.revision;
        self.max_revision = self.max_revision.max(entry.revision);
        self.entry_count += 1;
        Ok(())
    }

    fn flush_block(&mut self) {
        let Some(first_key) = self.block_first_key.take() else {
            return;
        };
        let compressed = self.try_compress();
        let stored = compressed.as_deref().unwrap_or(&self.block);
        let handle = BlockHandle {
            offset: self.written,
            stored_len: stored.len() as u32,
            compressed: compressed.is_some(),
            crc32c: crc32c(stored),
        };
        self.written += stored.len() as u64;
        self.ready.extend_from_slice(stored);
        self.block.clear();
        self.index.blocks.push(IndexEntry { first_key, handle });
    }

    /// The compressed form of the open block, if compression is on, due (see
    /// [`INCOMPRESSIBLE_STREAK_MAX`]) and worth it.
    fn try_compress(&mut self) -> Option<Vec<u8>> {
        if self.options.compression == Compression::None {
            return None;
        }
        let skipping = self.incompressible_streak >= INCOMPRESSIBLE_STREAK_MAX
            && self.blocks_since_attempt.saturating_add(1) < INCOMPRESSIBLE_RETRY_EVERY;
        if skipping {
            self.blocks_since_attempt = self.blocks_since_attempt.saturating_add(1);
            return None;
        }
        self.blocks_since_attempt = 0;
        let compressed = compress_block(&self.block);
        self.incompressible_streak = match compressed {
            Some(_) => 0,
            None => self.incompressible_streak.saturating_add(1),
        };
        compressed
    }

    /// Takes the bytes that are final so far, to append to the file.
    pub fn take_ready(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ready)
    }

    /// How many final bytes [`Self::take_ready`] would hand out now.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Bytes produced but not yet handed out by [`Self::take_ready`], plus the raw bytes of the
    /// open block (an upper bound on its stored size, which may be compressed).
    pub fn buffered_bytes(&self) -> u64 {
        (self.ready.len() as u64).saturating_add(self.block.len() as u64)
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Closes the table: returns the remaining bytes (after everything [`Self::take_ready`]
    /// returned) and the summary. Fails with `InvalidValue` if no entry was added.
    pub fn finish(mut self) -> Result<(Vec<u8>, TableSummary), FormatError> {
        self.flush_block();
        let (Some(min_key), Some(max_key)) = (self.min_key.take(), self.last_key.take()) else {
            let kind = FormatErrorKind::InvalidValue {
                reason: "an SST has at least one entry",
            };
            return Err(FormatError::new("sst table", "entries", 0, kind));
        };
        let bloom_offset = if self.options.bloom_bits_per_key > 0 {
            let at = self.written;
            let bytes = self.bloom.build(self.options.bloom_bits_per_key).encode();
            self.written += bytes.len() as u64;
            self.ready.extend_from_slice(&bytes);
            Some(at)
        } else {
            None
        };
        let index = self.index.encode();
        let footer = Footer {
            index_offset: self.written,
            bloom_offset,
            index_crc32c: crc32c(&index),
        };
        self.written += (index.len() + FOOTER_LEN) as u64;
        self.ready.extend_from_slice(&index);
        self.ready.extend_from_slice(&footer.encode());
        let summary = TableSummary {
            entry_count: self.entry_count,
            block_count: self.index.blocks.len() as u64,
            min_key,
            max_key,
            max_revision: self.max_revision,
            file_size: self.written,
        };
        Ok((self.ready, summary))
    }

    /// Builds a whole table in memory.
    pub fn build(
        options: TableOptions,
        entries: &[Entry],
    ) -> Result<(Vec<u8>, TableSummary), FormatError> {
        let mut b = Self::new(options);
        for e in entries {
            b.add(e.as_ref())?;
        }
        let mut bytes = b.take_ready();
        let (rest, summary) = b.finish()?;
        bytes.extend_from_slice(&rest);
        Ok((bytes, summary))
    }
}

/// A fully validated table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedTable {
    /// The footer.
    pub footer: Footer,
    /// The index.
    pub index: Index,
    /// The bloom filter, if present.
    pub bloom: Option<Bloom>,
    /// Every entry, in internal-key order.
    pub entries: Vec<Entry>,
}

fn sub(bytes: &[u8], range: std::ops::Range<u64>) -> &[u8] {
    let (Ok(s), Ok(e)) = (usize::try_from(range.start), usize::try_from(range.end)) else {
        return &[];
    };
    bytes.get(s..e).unwrap_or_default()
}

/// Decodes and validates a whole SST: header, footer, index (CRC, layout), bloom (CRC, holds
/// every key), every block (CRC, entries, first key = index first key), global internal-key
/// order with no key in two blocks.
/// Error offsets are file offsets.
pub fn decode_table(bytes: &[u8]) -> Result<DecodedTable, FormatError> {
    let mut r = Reader::new(bytes, "sst header");
    let magic = r.array::<4>("magic")?;
    if magic != SST_MAGIC {
        return Err(r.err("magic", 0, FormatErrorKind::BadMagic));
    }
    let version = r.u8("version")?;
    if version != SST_VERSION {
        return Err(r.err(
            "version",
            4,
            FormatErrorKind::UnsupportedVersion {
                version: version.into(),
            },
        ));
    }
    let footer_start = bytes
        .len()
        .checked_sub(FOOTER_LEN)
        .filter(|&s| s >= SST_HEADER_LEN)
        .ok_or_else(|| {
            let kind = FormatErrorKind::Truncated {
                needed: (SST_HEADER_LEN + FOOTER_LEN) as u64,
                available: bytes.len() as u64,
            };
            FormatError::new("sst footer", "footer", 0, kind)
        })?;
    let fs = footer_start as u64;
    let footer =
        Footer::decode(bytes.get(footer_start..).unwrap_or_default()).map_err(|e| e.at(fs))?;
    let regions = footer.regions(bytes.len() as u64).map_err(|e| e.at(fs))?;
    let index = Index::decode_checked(sub(bytes, regions.index.clone()), footer.index_crc32c)
        .map_err(|e| e.at(regions.index.start))?;
    index
        .check_layout(regions.data.start, regions.data.end)
        .map_err(|e| e.at(regions.index.start))?;
    let bloom = match &regions.bloom {
        Some(range) => {
            Some(Bloom::decode(sub(bytes, range.clone())).map_err(|e| e.at(range.start))?)
        }
        None => None,
    };
    let mut entries: Vec<Entry> = Vec::new();
    for b in &index.blocks {
        let h = &b.handle;
        let at = h.offset;
        let stored = sub(bytes, at..at.saturating_add(h.stored_len.into()));
        let block = decode_block(stored, h).map_err(|e| e.at(at))?.entries();
        if block.first().map(|e| &e.key) != Some(&b.first_key) {
            return Err(FormatError::new(
                "sst index",
                "first_key",
                regions.index.start,
                FormatErrorKind::KeyOrder,
            ));
        }
        if let (Some(prev), Some(first)) = (entries.last(), block.first())
            && prev.key >= first.key
        {
            return Err(FormatError::new(
                "sst block",
                "key",
                at,
                FormatErrorKind::KeyOrder,
            ));
        }
        entries.extend(block);
    }
    if let (Some(bloom), Some(range)) = (&bloom, &regions.bloom)
        && !entries.iter().all(|e| bloom.may_contain(&e.key))
    {
        let kind = FormatErrorKind::InvalidValue {
            reason: "bloom filter misses a key of the table",
        };
        return Err(FormatError::new("sst bloom", "bits", range.start, kind));
    }
    Ok(DecodedTable {
        footer,
        index,
        bloom,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<Entry>> {
        prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..12),
            (
                prop::option::of(prop::collection::vec(0u8..4, 0..200)),
                1u64..,
                any::<u64>(),
                any::<u64>(),
            ),
            1..60,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(
                    |(key, (value, revision, wal_offset, created_at_ms))| Entry {
                        key,
                        create_revision: if value.is_some() { revision } else { 0 },
                        version: u64::from(value.is_some()),
                        lease: 0,
                        value,
                        revision,
                        wal_offset,
                        created_at_ms,
                    },
                )
                .collect()
        })
    }

    fn options() -> impl Strategy<Value = TableOptions> {
        (1usize..600, any::<bool>(), 0u32..16).prop_map(
            |(block_size_bytes, lz4, bloom_bits_per_key)| TableOptions {
                block_size_bytes,
                compression: if lz4 {
                    Compression::Lz4
                } else {
                    Compression::None
                },
                bloom_bits_per_key,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip(entries in entries(), options in options()) {
            let (bytes, summary) = TableBuilder::build(options, &entries).unwrap();
            prop_assert_eq!(summary.file_size, bytes.len() as u64);
            prop_assert_eq!(summary.entry_count, entries.len() as u64);
            let t = decode_table(&bytes).unwrap();
            prop_assert_eq!(&t.entries, &entries);
            prop_assert_eq!(t.bloom.is_some(), options.bloom_bits_per_key > 0);
        }

        #[test]
        fn streaming_equals_whole(entries in entries(), options in options()) {
            let (whole, _) = TableBuilder::build(options, &entries).unwrap();
            let mut b = TableBuilder::new(options);
            let mut streamed = Vec::new();
            for e in &entries {
                b.add(e.as_ref()).unwrap();
                streamed.extend_from_slice(&b.take_ready());
            }
            let (rest, summary) = b.finish().unwrap();
            streamed.extend_from_slice(&rest);
            prop_assert_eq!(&streamed, &whole);
            prop_assert_eq!(&summary.min_key, &entries[0].key);
            prop_assert_eq!(&summary.max_key, &entries[entries.len() - 1].key);
        }

        #[test]
        fn mutated_never_panics(entries in entries(), options in options(), i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let (mut bytes, _) = TableBuilder::build(options, &entries).unwrap();
            let i = i.index(bytes.len());
            bytes[i] = b;
            let _ = decode_table(&bytes);
            bytes.truncate(i);
            prop_assert!(decode_table(&bytes).is_err());
        }

        #[test]
        fn arbitrary_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_table(&bytes);
        }
    }

    #[test]
    fn builder_rejects_disorder_and_empty() {
        let e = |k: &[u8]| Entry {
            key: k.to_vec(),
            value: None,
            revision: 1,
            wal_offset: 0,
            created_at_ms: 0,
            create_revision: 0,
            version: 0,
            lease: 0,
        };
        let mut b = TableBuilder::new(TableOptions::default());
        b.add(e(b"b").as_ref()).unwrap();
        assert_eq!(
            b.add(e(b"b").as_ref()).unwrap_err().kind.name(),
            "key_order"
        );
        assert_eq!(
            b.add(e(b"a").as_ref()).unwrap_err().kind.name(),
            "key_order"
        );
        assert!(TableBuilder::new(TableOptions::default()).finish().is_err());
    }

    /// One table of `incompressible` blocks of random bytes, then `compressible` blocks of
    /// zeros: which blocks end up compressed.
    fn compressed_flags(incompressible: usize, compressible: usize) -> Vec<bool> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random_byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        let mut b = TableBuilder::new(TableOptions::default());
        for i in 0..incompressible + compressible {
            let value: Vec<u8> = if i < incompressible {
                (0..BLOCK_SIZE_BYTES).map(|_| random_byte()).collect()
            } else {
                vec![0; BLOCK_SIZE_BYTES]
            };
            let entry = Entry {
                key: format!("k{i:06}").into_bytes(),
                value: Some(value),
                revision: 1,
                wal_offset: 0,
                created_at_ms: 0,
                create_revision: 1,
                version: 1,
                lease: 0,
            };
            b.add(entry.as_ref()).unwrap();
        }
        let (bytes, _) = b.finish().unwrap();
        let table = decode_table(&bytes).unwrap();
        table
            .index
            .blocks
            .iter()
            .map(|b| b.handle.compressed)
            .collect()
    }

    #[test]
    fn incompressible_data_pauses_compression_and_compressible_data_resumes_it() {
        // One entry per block (each value fills a block).
        let flags = compressed_flags(40, 40);
        assert_eq!(flags.len(), 80);
        assert!(
            flags[..40].iter().all(|c| !c),
            "random bytes never compress"
        );
        let first_compressed = flags.iter().position(|c| *c).unwrap();
        assert!(
            first_compressed < 40 + INCOMPRESSIBLE_RETRY_EVERY as usize,
            "compressible data noticed within one retry period, at block {first_compressed}"
        );
        assert!(flags[first_compressed..].iter().all(|c| *c));
        assert!(compressed_flags(0, 10).iter().all(|c| *c));
    }
}
