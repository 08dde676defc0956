//! [`BlockCache`]: decoded data blocks shared by every open table, keyed by (file number, block
//! offset) and weighed in bytes.
//!
//! Built on `quick_cache` (S3-FIFO eviction, sharded locks, a byte weighter) rather than a
//! hand-written LRU: it is small, maintained, `Send + Sync`, and its `retain` gives
//! [`BlockCache::forget_file`] for free. Two choices make it fit here:
//! - The shard count is fixed from the capacity (never from the machine's core count) and the
//!   hasher has no key (never a per-process random seed), so a seeded simulation evicts the
//!   same blocks on every run and every machine.
//! - Hits and misses are counted here, not by the crate's `stats` feature, so they count what the
//!   reader asked for, including lookups on a cache of capacity 0.
//!
//! Invariants:
//! - A cached block was verified (CRC32C, decompression, key order) when it was read from the
//!   file; the cache never holds bytes that did not pass [`crate::format::sst::decode_block`].
//! - The summed weight of cached blocks never exceeds the capacity; a block heavier than a shard's
//!   share of the capacity is simply not cached. Capacity 0 caches nothing.
//! - Every block weighs at least [`BLOCK_WEIGHT_OVERHEAD_BYTES`] (quick_cache never evicts an
//!   item of weight 0).
//! - File numbers are never reused while their blocks are cached: the engine calls
//!   [`BlockCache::forget_file`] when it deletes a table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::format::sst::Block;

/// A decoded, verified data block: its entries in key order.
pub type CachedBlock = Arc<Block>;

/// Bytes counted per cached block on top of its entries: the `Arc`, the key, the cache's slot.
pub const BLOCK_WEIGHT_OVERHEAD_BYTES: u64 = 64;
/// Each cache shard holds at least this many bytes, so a default-sized block always fits one.
pub const SHARD_CAPACITY_BYTES_MIN: u64 = 1024 * 1024;
/// Most shards: lock contention stops mattering long before this on a 2..16-core machine.
pub const SHARDS_MAX: u64 = 16;

const _: () = assert!(SHARDS_MAX.is_power_of_two());
const _: () = assert!(SHARD_CAPACITY_BYTES_MIN >= 4 * crate::format::sst::BLOCK_SIZE_BYTES as u64);

/// (file number, file offset of the block).
type BlockKey = (u64, u64);

/// rustc's Fx hash: no per-process seed (deterministic shard choice and eviction order), and a
/// few instructions for two integers, where SipHash was a third of a cache lookup in a profile
/// of in-order gets. Keys are file numbers and offsets the engine chose, not outside input, so
/// a flooding-resistant hash buys nothing here.
type FixedHasher = rustc_hash::FxBuildHasher;

type Inner = Cache<
    BlockKey,
    CachedBlock,
    ByteWeighter,
    FixedHasher,
    quick_cache::sync::DefaultLifecycle<BlockKey, CachedBlock>,
>;

/// Weighs a block as the bytes of its entries plus a fixed overhead.
#[derive(Clone, Copy, Debug, Default)]
struct ByteWeighter;

impl Weighter<BlockKey, CachedBlock> for ByteWeighter {
    fn weight(&self, _key: &BlockKey, block: &CachedBlock) -> u64 {
        block_weight_bytes(block)
    }
}

/// The weight of `block` in the cache.
pub fn block_weight_bytes(block: &Block) -> u64 {
    block
        .size_bytes()
        .saturating_add(BLOCK_WEIGHT_OVERHEAD_BYTES)
}

/// A bounded cache of decoded blocks; see the module doc.
pub struct BlockCache {
    inner: Option<Inner>,
    capacity_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("weight_bytes", &self.weight_bytes())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

/// Shards for a cache of `capacity_bytes`: the largest power of two keeping every shard at least
/// [`SHARD_CAPACITY_BYTES_MIN`], between 1 and [`SHARDS_MAX`].
fn shard_count(capacity_bytes: u64) -> u64 {
    let wanted = (capacity_bytes / SHARD_CAPACITY_BYTES_MIN).clamp(1, SHARDS_MAX);
    // The largest power of two <= wanted (wanted >= 1).
    1u64 << (63 - wanted.leading_zeros())
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of decoded blocks; 0 disables caching.
    pub fn new(capacity_bytes: u64) -> Self {
        let inner = if capacity_bytes == 0 {
            None
        } else {
            let shards = shard_count(capacity_bytes);
            let items = capacity_bytes / crate::format::sst::BLOCK_SIZE_BYTES as u64;
            quick_cache::OptionsBuilder::new()
                .shards(usize::try_from(shards).unwrap_or(1))
                .estimated_items_capacity(usize::try_from(items.max(1)).unwrap_or(1))
                .weight_capacity(capacity_bytes)
                .build()
                .ok()
                .map(|options| {
                    Cache::with_options(
                        options,
                        ByteWeighter,
                        FixedHasher::default(),
                        quick_cache::sync::DefaultLifecycle::default(),
                    )
                })
        };
        Self {
            inner,
            capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The block of `file_number` at `offset`, if cached; counts a hit or a miss.
    pub fn get(&self, file_number: u64, offset: u64) -> Option<CachedBlock> {
        let found = self
            .inner
            .as_ref()
            .and_then(|c| c.get(&(file_number, offset)));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether the block of `file_number` at `offset` is cached, without counting a hit or a
    /// miss (a read-ahead run asks this of the blocks it would cover, none of which was asked for).
    pub fn contains(&self, file_number: u64, offset: u64) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|c| c.contains_key(&(file_number, offset)))
    }

    /// Caches a verified block (REQUIRES: it passed `decode_block` and the reader's order checks).
    pub fn insert(&self, file_number: u64, offset: u64, block: CachedBlock) {
        if let Some(c) = &self.inner {
            c.insert((file_number, offset), block);
        }
    }

    /// Evicts every block of `file_number` (call when the table is deleted).
    pub fn forget_file(&self, file_number: u64) {
        if let Some(c) = &self.inner {
            c.retain(|key, _| key.0 != file_number);
        }
    }

    /// Lookups that found their block.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that did not (every lookup on a cache of capacity 0).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The capacity given to [`BlockCache::new`].
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// The summed weight of the cached blocks (<= capacity).
    pub fn weight_bytes(&self) -> u64 {
        self.inner.as_ref().map_or(0, Cache::weight)
    }

    /// The number of cached blocks.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, Cache::len)
    }

    /// Whether no block is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(tag: u8, entries: usize, value_len: usize) -> CachedBlock {
        let mut raw = Vec::new();
        for i in 0..entries {
            let entry = crate::entry::Entry {
                key: vec![tag, i as u8],
                value: Some(vec![0; value_len]),
                revision: 1,
                wal_offset: 0,
                created_at_ms: 0,
                meta: crate::entry::VersionMeta::first((Some(vec![0; value_len])).is_some(), 1),
            };
            crate::format::sst::encode_entry(entry.as_sst(), &mut raw);
        }
        Arc::new(Block::parse(raw).unwrap())
    }

    #[test]
    fn shard_counts_are_powers_of_two_within_bounds() {
        assert_eq!(shard_count(1), 1);
        assert_eq!(shard_count(3 * SHARD_CAPACITY_BYTES_MIN), 2);
        assert_eq!(shard_count(8 * 1024 * 1024), 8);
        assert_eq!(shard_count(u64::MAX), SHARDS_MAX);
    }

    #[test]
    fn hit_after_insert_miss_before_and_forget_evicts() {
        let c = BlockCache::new(1 << 20);
        assert!(c.get(1, 5).is_none());
        c.insert(1, 5, block(1, 3, 10));
        c.insert(2, 5, block(2, 3, 10));
        assert_eq!(c.get(1, 5).map(|b| b.len()), Some(3));
        assert_eq!((c.hits(), c.misses()), (1, 1));
        c.forget_file(1);
        assert!(c.get(1, 5).is_none());
        assert!(c.get(2, 5).is_some());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let c = BlockCache::new(0);
        c.insert(1, 5, block(1, 3, 10));
        assert!(c.get(1, 5).is_none());
        assert_eq!((c.hits(), c.misses(), c.len()), (0, 1, 0));
    }

    #[test]
    fn weight_never_exceeds_capacity() {
        let capacity = 20_000;
        let c = BlockCache::new(capacity);
        for i in 0..200u64 {
            c.insert(i, 5, block(i as u8, 4, 300));
            assert!(c.weight_bytes() <= capacity, "{}", c.weight_bytes());
        }
        assert!(c.len() >= 2, "{}", c.len());
        let oversized = block(9, 10, 5000);
        assert!(block_weight_bytes(&oversized) > capacity);
        c.insert(1000, 5, oversized);
        assert!(c.weight_bytes() <= capacity);
        assert!(c.get(1000, 5).is_none());
    }
}
