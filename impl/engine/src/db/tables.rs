//! [`TableCache`]: the open readers of live SSTs, at most `Options::max_open_tables` of them kept
//! open, each opened on first use and checked against the manifest; and [`LiveFile`], one live
//! table of a tree, whose file is removed once no tree lists it.
//!
//! Built on `quick_cache` like [`crate::sst::BlockCache`], for the same reasons: every reader
//! weighs 1, the shard count follows from the capacity alone and the hasher has no seed, so a
//! seeded simulation opens and evicts the same tables on every run.
//!
//! Invariants:
//! - A reader reaches a caller only after [`Table::open`] verified it (footer, index, bloom) and
//!   [`check_against_meta`] found its file size and its smallest and largest keys equal to the
//!   manifest's [`FileMeta`]: a table swapped, truncated or rewritten under another name is
//!   [`Error::Corruption`] naming the file, never wrong answers. The manifest's key span is
//!   therefore exact, and both reads may trust it: a point read skips a table whose span excludes
//!   the key, a scan one whose span misses the range (`spec/FORMAT.md` § 5.1).
//! - The cache holds at most `max_open_tables` readers (the shards split the capacity exactly).
//!   A reader it evicts stays open while a read still holds its `Arc` and closes when the read
//!   drops it; a table being opened is open before the cache evicts another. So the open SST
//!   handles are at most `max_open_tables`, plus one per table being opened, plus the evicted
//!   readers reads in flight still hold.
//! - A live file remembers the reader the cache gave it, weakly ([`LiveFile::table`]): a read
//!   that finds it still open uses it without the cache's hash, shard lock and `Arc` clone
//!   (6 % of `seedbench`'s gets in key order, 1.5 % of its shuffled ones). A weak reference keeps
//!   nothing open: once the cache has evicted the reader and no read holds it, it is closed and
//!   the next read goes through the cache, which reopens it; until then reads may still use it,
//!   so an evicted reader stays open only while reads hold it, as above.
//! - A table is opened on first use and reopened (and checked again) after an eviction; its
//!   file is never removed while any tree lists it: a compaction marks its inputs obsolete
//!   ([`LiveFile::mark_obsolete`]) and the file goes when the last tree holding its
//!   [`LiveFile`] is dropped, so a read on an older snapshot can still open it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use quick_cache::UnitWeighter;
use quick_cache::sync::{Cache, DefaultLifecycle};

use crate::error::{Error, Result};
use crate::format::manifest::sst_file_name;
use crate::sst::{BlockCache, Table};
use crate::version::FileMeta;
use crate::vfs::Vfs;

/// Fewest readers per cache shard: below this, one shard's evictions ignore the others' use.
pub const SHARD_TABLES_MIN: u64 = 32;
/// Most shards: lock contention stops mattering long before this on a 2..16-core machine.
pub const SHARDS_MAX: u64 = 16;

const _: () = assert!(SHARDS_MAX.is_power_of_two());

type OpenTables = Cache<u64, Arc<Table>, UnitWeighter, rustc_hash::FxBuildHasher>;

/// Shards for a cache of `capacity` readers: the largest power of two up to [`SHARDS_MAX`] that
/// divides `capacity` exactly and leaves each shard at least [`SHARD_TABLES_MIN`] readers (so
/// the shards' capacities sum to exactly `capacity`), else 1.
fn shard_count(capacity: u64) -> u64 {
    let mut shards = SHARDS_MAX;
    while shards > 1 && (!capacity.is_multiple_of(shards) || capacity / shards < SHARD_TABLES_MIN) {
        shards /= 2;
    }
    shards
}

/// The open readers of live tables; see the module doc.
pub(crate) struct TableCache {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    blocks: Arc<BlockCache>,
    open: OpenTables,
}

impl std::fmt::Debug for TableCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCache")
            .field("dir", &self.dir)
            .field("open", &self.open.len())
            .field("capacity", &self.open.capacity())
            .finish_non_exhaustive()
    }
}

impl TableCache {
    /// A cache keeping at most `max_open_tables` (>= 1, validated) readers of tables in `dir`.
    pub(crate) fn new(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        blocks: Arc<BlockCache>,
        max_open_tables: usize,
    ) -> Result<TableCache> {
        let capacity = u64::try_from(max_open_tables).unwrap_or(u64::MAX).max(1);
        let shards = usize::try_from(shard_count(capacity)).unwrap_or(1);
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards)
            .estimated_items_capacity(max_open_tables.max(1))
            .weight_capacity(capacity)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("table cache options: {e:?}")))?;
        let open = Cache::with_options(
            options,
            UnitWeighter,
            rustc_hash::FxBuildHasher,
            DefaultLifecycle::default(),
        );
        Ok(TableCache {
            vfs,
            dir: dir.to_path_buf(),
            blocks,
            open,
        })
    }

    /// The reader of live table `meta`: cached, or opened, verified and checked against `meta`.
    pub(crate) fn get(&self, meta: &FileMeta) -> Result<Arc<Table>> {
        self.open
            .get_or_insert_with(&meta.number, || self.open_checked(meta))
    }

    /// Caches the reader of a table just written (its metadata was taken from it).
    pub(crate) fn insert(&self, number: u64, table: Arc<Table>) {
        self.open.insert(number, table);
    }

    /// Readers currently cached (each an open file handle).
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    fn open_checked(&self, meta: &FileMeta) -> Result<Arc<Table>> {
        let path = self.dir.join(sst_file_name(meta.number));
        let table = Table::open(
            self.vfs.as_ref(),
            &path,
            meta.number,
            Arc::clone(&self.blocks),
        )
        .map_err(|e| missing_is_corruption(e, &path))?;
        let span = table.key_span()?;
        let actual = span.as_ref().map(|(lo, hi)| (lo.as_slice(), hi.as_slice()));
        if let Some(what) = check_against_meta(table.size_bytes(), actual, meta) {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                what,
            });
        }
        Ok(table)
    }

    /// Drops table `number` (no tree lists it any more): its reader, its cached blocks, its file.
    /// A failed removal leaves an orphan that the next open deletes.
    fn remove_file(&self, number: u64) {
        self.open.remove(&number);
        self.blocks.forget_file(number);
        let path = self.dir.join(sst_file_name(number));
        if let Err(e) = self.vfs.remove(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove compacted SST");
        }
    }
}

/// What disagrees between a table (its file size and its actual smallest and largest keys,
/// `None` when it holds no entry) and the manifest's `meta`, or `None` when they agree.
pub(crate) fn check_against_meta(
    size_bytes: u64,
    span: Option<(&[u8], &[u8])>,
    meta: &FileMeta,
) -> Option<String> {
    if size_bytes != meta.size_bytes {
        return Some(format!(
            "table is {size_bytes} bytes but the manifest says {}",
            meta.size_bytes
        ));
    }
    let Some((smallest, largest)) = span else {
        return Some("table holds no entry but the manifest lists a key span".to_owned());
    };
    if smallest != meta.smallest_key.as_slice() {
        return Some(format!(
            "table's smallest key is {} but the manifest says {}",
            hex::encode(smallest),
            hex::encode(&meta.smallest_key)
        ));
    }
    if largest != meta.largest_key.as_slice() {
        return Some(format!(
            "table's largest key is {} but the manifest says {}",
            hex::encode(largest),
            hex::encode(&meta.largest_key)
        ));
    }
    None
}

/// A table the manifest lists but the directory lacks is corruption of the database (the
/// manifest names data that is gone), not an I/O failure to retry.
pub(crate) fn missing_is_corruption(error: Error, path: &Path) -> Error {
    match error {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::Corruption {
                file: path.to_path_buf(),
                offset: 0,
                what: "table listed in the manifest is missing".to_owned(),
            }
        }
        other => other,
    }
}

/// One live table as the trees listing it share it: when the last of them is dropped and the
/// table was marked obsolete (an installed edit removed it), its file is removed.
#[derive(Debug)]
pub(crate) struct LiveFile {
    pub(crate) meta: Arc<FileMeta>,
    tables: Arc<TableCache>,
    obsolete: AtomicBool,
    /// The first reader the cache gave out for this file (see the module doc). Set once: after
    /// that reader is closed, reads go through the cache.
    reader: OnceLock<Weak<Table>>,
}

impl LiveFile {
    /// Live table `meta`, read through `tables`.
    pub(crate) fn new(meta: Arc<FileMeta>, tables: Arc<TableCache>) -> LiveFile {
        LiveFile {
            meta,
            tables,
            obsolete: AtomicBool::new(false),
            reader: OnceLock::new(),
        }
    }

    /// The table's reader: the one remembered if it is still open, else the cache's (opened
    /// and checked against the manifest if it is not open).
    pub(crate) fn table(&self) -> Result<Arc<Table>> {
        if let Some(table) = self.reader.get().and_then(Weak::upgrade) {
            return Ok(table);
        }
        let table = self.tables.get(&self.meta)?;
        // Only the first reader is remembered (a later one, after an eviction, is not).
        let _ = self.reader.set(Arc::downgrade(&table));
        Ok(table)
    }

    /// Records that a durable manifest no longer lists the table: its file goes with the last
    /// tree that does.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for LiveFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            self.tables.remove_file(self.meta.number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size_bytes: u64, lo: &[u8], hi: &[u8]) -> FileMeta {
        FileMeta {
            number: 7,
            level: 1,
            smallest_key: lo.to_vec(),
            largest_key: hi.to_vec(),
            size_bytes,
            wal_offset: 0,
            created_at_ms: 0,
            max_revision: 1,
        }
    }

    #[test]
    fn a_table_agreeing_with_its_meta_passes() {
        let m = meta(100, b"a", b"c");
        assert_eq!(check_against_meta(100, Some((b"a", b"c")), &m), None);
    }

    #[test]
    fn each_disagreement_is_named() {
        let m = meta(100, b"a", b"c");
        let size = check_against_meta(101, Some((b"a", b"c")), &m).unwrap();
        assert!(size.contains("101 bytes") && size.contains("100"), "{size}");
        let lo = check_against_meta(100, Some((b"b", b"c")), &m).unwrap();
        assert!(lo.contains("smallest key is 62"), "{lo}");
        let hi = check_against_meta(100, Some((b"a", b"d")), &m).unwrap();
        assert!(hi.contains("largest key is 64"), "{hi}");
        let empty = check_against_meta(100, None, &m).unwrap();
        assert!(empty.contains("no entry"), "{empty}");
    }

    #[test]
    fn shards_split_the_capacity_exactly() {
        assert_eq!(shard_count(1), 1);
        assert_eq!(shard_count(16), 1);
        assert_eq!(shard_count(500), 4);
        assert_eq!(shard_count(512), 16);
        assert_eq!(shard_count(97), 1);
        for capacity in 1..2000 {
            let shards = shard_count(capacity);
            assert!(shards.is_power_of_two() && shards <= SHARDS_MAX);
            assert_eq!(capacity % shards, 0, "{capacity}");
        }
    }
}
