//! SST v4 (`spec/FORMAT.md` § SST v4):
//!
//! ```text
//! file   := header data_block+ bloom? index footer
//! header := "SST1" 0x04
//! ```
//!
//! One file per structure: [`entry`], [`block`], [`bloom`], [`index`], [`footer`], and [`table`]
//! (the builder and the whole-file decoder).
//!
//! Invariants: internal keys (key ascending, revision descending) are strictly increasing across
//! the whole table, and a key's versions lie in one block; every
//! region is covered by a CRC32C (blocks by the index, the bloom by its own trailer, the index by
//! the footer, the footer by itself).

pub mod block;
pub mod bloom;
pub mod entry;
pub mod footer;
pub mod index;
pub mod table;

pub use block::{
    BLOCK_COMPRESSED_FLAG, BLOCK_SIZE_BYTES, BLOCK_STORED_LEN_MAX, Block, BlockHandle, Compression,
    compress_block, decode_block, decode_block_vec, encode_block, internal_less,
};
pub use bloom::{BLOOM_BITS_PER_KEY_DEFAULT, Bloom, BloomBuilder};
pub use entry::{Entry, EntryRef, TOMBSTONE_LEN, decode_entry, decode_entry_ref, encode_entry};
pub use footer::{FOOTER_LEN, FOOTER_MAGIC, Footer, Regions};
pub use index::{Index, IndexEntry};
pub use table::{DecodedTable, TableBuilder, TableOptions, TableSummary, decode_table};

/// The first four bytes of every SST.
pub const SST_MAGIC: [u8; 4] = *b"SST1";
/// The SST version this implementation writes and reads.
pub const SST_VERSION: u8 = 4;
/// Header length: magic plus version.
pub const SST_HEADER_LEN: usize = SST_MAGIC.len() + 1;
