//! [`Table`]: an open, verified SST: its footer, index and bloom in memory, its data blocks read
//! on demand through the [`BlockCache`].
//!
//! Open reads, in order (`spec/FORMAT.md` § 4.6, reader order): the file size; the header (magic,
//! version); the footer (magic, CRC); the region bounds; the index (CRC, then layout: blocks tile
//! the data region exactly); the bloom (CRC). Every length read is bounded by the file size
//! first, because [`Footer::regions`] and [`Index::check_layout`] run before any read they bound.
//!
//! Invariants:
//! - Every error from the format is an [`Error::Corruption`] whose offset is a file offset inside
//!   the bad region (the decoder's offset plus the region start); for a compressed block whose
//!   decompressed entries are bad, it is the block's start (raw offsets are not file offsets).
//! - A block is used only after `decode_block_vec` verified its CRC32C and entry order, and the
//!   reader verified that its first key is the index's and that its last key sorts before the
//!   next block's first key: so a table's entries, block after block, are strictly increasing
//!   in internal-key order, and no key has versions in two blocks.
//! - A bloom miss reads nothing; the bloom is trusted only because its CRC matched at open.
//! - A point read that misses the cache on the block right after the one the previous miss read
//!   reads ahead: blocks from `i` on, [`POINT_READAHEAD_BYTES_INITIAL`] at first, doubling on
//!   each further sequential miss up to [`POINT_READAHEAD_BYTES_MAX`], with one read. Each block
//!   of the run is verified exactly as a single read is; the good ones are cached, a bad one is
//!   left for the read that asks for it, so a get fails only if its own block is bad. The miss
//!   history is a hint shared by the table's readers: a race between threads can only cost an
//!   extra read or a missed read-ahead, never a wrong block.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::cache::{BlockCache, CachedBlock};
use super::iter::TableIter;
use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::format::sst::{
    Bloom, FOOTER_LEN, Footer, Index, SST_HEADER_LEN, SST_MAGIC, SST_VERSION, decode_block_vec,
};
use crate::format::{FormatError, FormatErrorKind};
use crate::prefix::KeyPrefixes;
use crate::range::{Direction, KeyRange};
use crate::vfs::{Vfs, VfsFile};

/// The smallest possible SST: header and footer (a real one also has a block and an index).
const TABLE_LEN_MIN: u64 = (SST_HEADER_LEN + FOOTER_LEN) as u64;

/// Stored bytes a point read's first sequential read-ahead covers (see the module doc): small, so
/// two gets that happen to miss on neighbouring blocks waste little.
pub const POINT_READAHEAD_BYTES_INITIAL: u64 = 8 * 1024;
/// Most stored bytes one point read-ahead covers: gets in key order pay one `pread` per this
/// many bytes instead of one per block.
pub const POINT_READAHEAD_BYTES_MAX: u64 = 64 * 1024;

/// An open, verified table. Shared by readers across threads (`Arc<Table>`, `Send + Sync`).
pub struct Table {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    file_number: u64,
    size_bytes: u64,
    index: Index,
    /// Prefixes of the index's first keys, for [`Table::find_block`].
    first_keys: KeyPrefixes,
    bloom: Option<Bloom>,
    cache: Arc<BlockCache>,
    /// The last block a point read read from the file (`usize::MAX`: none yet).
    last_read_block: AtomicUsize,
    /// Stored bytes the next sequential point read-ahead covers.
    readahead_bytes: AtomicU64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("file_number", &self.file_number)
            .field("size_bytes", &self.size_bytes)
            .field("blocks", &self.index.blocks.len())
            .field("bloom", &self.bloom.is_some())
            .finish()
    }
}

/// Reads `range` of `file` into a new buffer. REQUIRES: the range was bounded by the file size.
fn read_range(file: &dyn VfsFile, path: &Path, range: Range<u64>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_range_into(file, path, range, &mut buf)?;
    Ok(buf)
}

/// Reads `range` of `file` into `buf`, replacing its contents and reusing its allocation (only
/// bytes past its old length are zeroed before the read). REQUIRES: the range was bounded by
/// the file size.
fn read_range_into(
    file: &dyn VfsFile,
    path: &Path,
    range: Range<u64>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let len = range.end.saturating_sub(range.start);
    let len = usize::try_from(len).map_err(|_| Error::Corruption {
        file: path.to_path_buf(),
        offset: range.start,
        what: format!("region of {len} bytes does not fit in memory"),
    })?;
    buf.resize(len, 0);
    file.read_at(range.start, buf)
        .map_err(|e| Error::io("read_at", path, e))
}

fn corruption(path: &Path, at: u64, structure: &'static str, kind: FormatErrorKind) -> Error {
    Error::corruption(path, at, &FormatError::new(structure, "key", 0, kind))
}

impl Table {
    /// Opens `path` and verifies its footer, index (CRC, layout) and bloom (CRC); errors are
    /// `Error::Corruption { file, offset, what }` with the file offset of the bad structure.
    /// Bounds every length by the file size before reading.
    pub fn open(
        vfs: &dyn Vfs,
        path: &Path,
        file_number: u64,
        cache: Arc<BlockCache>,
    ) -> Result<Arc<Table>> {
        let file = vfs
            .open_read(path)
            .map_err(|e| Error::io("open", path, e))?;
        let size_bytes = file.size().map_err(|e| Error::io("size", path, e))?;
        if size_bytes < TABLE_LEN_MIN {
            let kind = FormatErrorKind::Truncated {
                needed: TABLE_LEN_MIN,
                available: size_bytes,
            };
            let e = FormatError::new("sst table", "length", 0, kind);
            return Err(Error::corruption(path, 0, &e));
        }
        let header = read_range(file.as_ref(), path, 0..SST_HEADER_LEN as u64)?;
        check_header(&header).map_err(|e| Error::corruption(path, 0, &e))?;

        let footer_start = size_bytes - FOOTER_LEN as u64;
        let footer_bytes = read_range(file.as_ref(), path, footer_start..size_bytes)?;
        let footer =
            Footer::decode(&footer_bytes).map_err(|e| Error::corruption(path, footer_start, &e))?;
        let regions = footer
            .regions(size_bytes)
            .map_err(|e| Error::corruption(path, footer_start, &e))?;

        let index_bytes = read_range(file.as_ref(), path, regions.index.clone())?;
        let index = Index::decode_checked(&index_bytes, footer.index_crc32c)
            .map_err(|e| Error::corruption(path, regions.index.start, &e))?;
        index
            .check_layout(regions.data.start, regions.data.end)
            .map_err(|e| Error::corruption(path, regions.index.start, &e))?;

        let bloom = match &regions.bloom {
            Some(range) => {
                let bytes = read_range(file.as_ref(), path, range.clone())?;
                Some(Bloom::decode(&bytes).map_err(|e| Error::corruption(path, range.start, &e))?)
            }
            None => None,
        };
        let first_keys = KeyPrefixes::new(index.blocks.iter().map(|b| b.first_key.as_slice()));
        Ok(Arc::new(Table {
            file,
            path: path.to_path_buf(),
            file_number,
            size_bytes,
            index,
            first_keys,
            bloom,
            cache,
            last_read_block: AtomicUsize::new(usize::MAX),
            readahead_bytes: AtomicU64::new(POINT_READAHEAD_BYTES_INITIAL),
        }))
    }

    /// The newest version of `key` in this table with revision `<= snapshot_rev`, tombstones
    /// included. Bloom first; a bloom miss reads nothing. A key's versions lie in one block
    /// (`spec/FORMAT.md` § 4.3), so one block answers.
    pub fn get(&self, key: &[u8], snapshot_rev: u64) -> Result<Option<Entry>> {
        self.find(key, snapshot_rev, u64::MAX, Entry::from_sst)
    }

    /// [`Table::get`], and an [`Error::Corruption`] if the key's newest version here is newer
    /// than `revision_max` (the manifest's `lastRevision`), whatever revision is read.
    pub fn get_checked(
        &self,
        key: &[u8],
        snapshot_rev: u64,
        revision_max: u64,
    ) -> Result<Option<Entry>> {
        self.find(key, snapshot_rev, revision_max, Entry::from_sst)
    }

    /// The revision and metadata of the version [`Table::get_checked`] finds, without copying
    /// its key or value (what the decide stage needs of a key's newest version).
    pub fn get_meta(
        &self,
        key: &[u8],
        snapshot_rev: u64,
        revision_max: u64,
    ) -> Result<Option<(u64, VersionMeta)>> {
        self.find(key, snapshot_rev, revision_max, |e| {
            (e.revision, VersionMeta::of_sst(&e))
        })
    }

    fn find<T>(
        &self,
        key: &[u8],
        snapshot_rev: u64,
        revision_max: u64,
        take: impl FnOnce(crate::format::sst::EntryRef<'_>) -> T,
    ) -> Result<Option<T>> {
        if self.bloom.as_ref().is_some_and(|b| !b.may_contain(key)) {
            return Ok(None);
        }
        let Some(i) = self.find_block(key) else {
            return Ok(None);
        };
        let block = self.block(i)?;
        let first = block.first_version(key);
        if block.key(first) == Some(key)
            && let Some(newest) = block.entry(first)
            && newest.revision > revision_max
        {
            return Err(self.revision_too_new(newest.key, newest.revision, revision_max));
        }
        Ok(block.find_from(first, key, snapshot_rev).map(take))
    }

    /// Lazy iterator over `range` in `direction`, loading one block at a time through the cache.
    pub fn iter(self: &Arc<Self>, range: KeyRange, direction: Direction) -> TableIter {
        TableIter::new(Arc::clone(self), range, direction, None, u64::MAX)
    }

    /// Lazy iterator over `range` in `direction` yielding, per key, only the version a read at
    /// `snapshot_rev` sees (tombstones included), as a [`crate::iter::MergeIter`] source needs.
    /// An entry newer than `revision_max` (the manifest's `lastRevision`) ends it with
    /// [`Error::Corruption`].
    pub fn iter_at(
        self: &Arc<Self>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: u64,
        revision_max: u64,
    ) -> TableIter {
        TableIter::new(
            Arc::clone(self),
            range,
            direction,
            Some(snapshot_rev),
            revision_max,
        )
    }

    /// The corruption of an entry newer than the newest revision the manifest says the tables
    /// hold (a table from another database, or a damaged manifest): reported, never hidden.
    pub fn revision_too_new(&self, key: &[u8], revision: u64, revision_max: u64) -> Error {
        Error::Corruption {
            file: self.path.clone(),
            offset: 0,
            what: format!(
                "entry of key {} has revision {revision}, above the manifest's lastRevision \
                 {revision_max}",
                hex::encode(key)
            ),
        }
    }

    /// The file number given at open (the cache key).
    pub fn file_number(&self) -> u64 {
        self.file_number
    }

    /// The file path given at open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes at open.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.blocks.len()
    }

    /// Whether the table has a bloom filter.
    pub fn has_bloom(&self) -> bool {
        self.bloom.is_some()
    }

    /// The table's smallest and largest keys (`None` for a table without entries): the first
    /// block's first key from the index, and the last key of the last block, which this reads
    /// (verified, through the cache).
    pub fn key_span(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let (Some(first), Some(last)) = (
            self.index.blocks.first(),
            self.index.blocks.len().checked_sub(1),
        ) else {
            return Ok(None);
        };
        let block = self.block(last)?;
        let largest = block.len().checked_sub(1).and_then(|i| block.key(i));
        Ok(largest.map(|largest| (first.first_key.clone(), largest.to_vec())))
    }

    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    /// The block that may hold `key`: the last whose first key is `<= key` (as
    /// [`Index::find`], searched by prefix).
    pub(super) fn find_block(&self, key: &[u8]) -> Option<usize> {
        let first_key = |i: usize| self.index.blocks.get(i).map_or(&[][..], |b| &b.first_key);
        self.first_keys
            .count_below(key, true, first_key)
            .checked_sub(1)
    }

    fn index_entry(&self, i: usize) -> Result<&crate::format::sst::IndexEntry> {
        self.index.blocks.get(i).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "block {i} of {} out of range ({} blocks)",
                self.path.display(),
                self.index.blocks.len()
            ))
        })
    }

    /// Data block `i` (index order), from the cache or read, verified, and cached; a miss right
    /// after a miss on block `i - 1` reads ahead (see the module doc).
    pub(super) fn block(&self, i: usize) -> Result<CachedBlock> {
        let handle = self.index_entry(i)?.handle;
        if let Some(block) = self.cache.get(self.file_number, handle.offset) {
            return Ok(block);
        }
        let previous = self.last_read_block.swap(i, Ordering::Relaxed);
        if previous.checked_add(1) == Some(i) {
            return self.read_ahead(i);
        }
        self.readahead_bytes
            .store(POINT_READAHEAD_BYTES_INITIAL, Ordering::Relaxed);
        let end = handle.offset.saturating_add(handle.stored_len.into());
        let stored = read_range(self.file.as_ref(), &self.path, handle.offset..end)?;
        let block = self.verify_block(i, stored)?;
        self.cache
            .insert(self.file_number, handle.offset, Arc::clone(&block));
        Ok(block)
    }

    /// Reads blocks `i..` (at least block `i`) with one read of the current read-ahead size,
    /// caches the good ones, doubles the size for the next run and returns block `i`'s result.
    fn read_ahead(&self, i: usize) -> Result<CachedBlock> {
        let budget = self.readahead_bytes.load(Ordering::Relaxed);
        let (_, last) = self.run(i, budget, Direction::Forward);
        let mut run = Vec::new();
        let run_offset = self.read_run(i, last, &mut run)?;
        self.last_read_block.store(last, Ordering::Relaxed);
        let next_budget = budget.saturating_mul(2).min(POINT_READAHEAD_BYTES_MAX);
        self.readahead_bytes.store(next_budget, Ordering::Relaxed);
        for j in i.saturating_add(1)..=last {
            if let (Ok(block), Ok(entry)) =
                (self.block_in_run(j, &run, run_offset), self.index_entry(j))
            {
                self.cache
                    .insert(self.file_number, entry.handle.offset, block);
            }
        }
        let wanted = self.block_in_run(i, &run, run_offset)?;
        let offset = self.index_entry(i)?.handle.offset;
        self.cache
            .insert(self.file_number, offset, Arc::clone(&wanted));
        Ok(wanted)
    }

    /// The blocks of the run that starts at `i` and goes in `direction` while the stored bytes
    /// fit in `budget` and the blocks are not cached (always block `i` itself), as an index range
    /// `first..=last`: a run never reads again what the cache holds.
    pub(super) fn run(&self, i: usize, budget: u64, direction: Direction) -> (usize, usize) {
        let blocks = &self.index.blocks;
        let stored = |j: usize| blocks.get(j).map_or(0, |b| u64::from(b.handle.stored_len));
        let mut bytes = stored(i);
        let (mut first, mut last) = (i, i);
        loop {
            let next = match direction {
                Direction::Forward => last.checked_add(1).filter(|&n| n < blocks.len()),
                Direction::Reverse => first.checked_sub(1),
            };
            let Some(next) = next else { break };
            bytes = bytes.saturating_add(stored(next));
            if bytes > budget || self.is_cached(next) {
                break;
            }
            match direction {
                Direction::Forward => last = next,
                Direction::Reverse => first = next,
            }
        }
        (first, last)
    }

    /// Whether block `i` is cached (not counted as a cache hit or miss).
    fn is_cached(&self, i: usize) -> bool {
        self.index
            .blocks
            .get(i)
            .is_some_and(|b| self.cache.contains(self.file_number, b.handle.offset))
    }

    /// The cached block `i`, if it is cached.
    pub(super) fn cached_block(&self, i: usize) -> Option<CachedBlock> {
        let handle = self.index.blocks.get(i)?.handle;
        self.cache.get(self.file_number, handle.offset)
    }

    /// Reads the stored bytes of blocks `first..=last` (index order) with one read into `run` (a
    /// buffer the caller may keep from run to run), unverified, and returns the file offset they
    /// start at; [`Table::block_in_run`] verifies each when it is used, so a bad block fails only
    /// the read that uses it and a block never used costs no check.
    pub(super) fn read_run(&self, first: usize, last: usize, run: &mut Vec<u8>) -> Result<u64> {
        let start = self.index_entry(first)?.handle.offset;
        let last_handle = self.index_entry(last)?.handle;
        let end = last_handle
            .offset
            .saturating_add(last_handle.stored_len.into());
        read_range_into(self.file.as_ref(), &self.path, start..end, run)?;
        Ok(start)
    }

    /// Block `i`, verified exactly as a single read is, from `run`: the bytes
    /// [`Table::read_run`] read from file offset `run_offset` on. REQUIRES: the run covers block
    /// `i` (else a corruption error, as for a block outside the file).
    pub(super) fn block_in_run(
        &self,
        i: usize,
        run: &[u8],
        run_offset: u64,
    ) -> Result<CachedBlock> {
        let handle = self.index_entry(i)?.handle;
        // Blocks tile the data region (checked at open), so each lies inside its run.
        let from = usize::try_from(handle.offset.saturating_sub(run_offset)).unwrap_or(usize::MAX);
        let stored = run
            .get(from..from.saturating_add(handle.stored_len as usize))
            .filter(|_| handle.offset >= run_offset)
            .ok_or_else(|| self.outside_run(i))?;
        self.verify_block(i, stored.to_vec())
    }

    /// The error for block `i` missing from a read-ahead run (cannot happen: blocks tile the
    /// data region, checked at open).
    fn outside_run(&self, i: usize) -> Error {
        Error::Corruption {
            file: self.path.clone(),
            offset: self.index.blocks.get(i).map_or(0, |b| b.handle.offset),
            what: "block outside the read-ahead run".to_owned(),
        }
    }

    /// Checks block `i`'s stored bytes (length, CRC32C, decompression, entries) and its keys
    /// against the index (first key equal, last key below the next block's first).
    fn verify_block(&self, i: usize, stored: Vec<u8>) -> Result<CachedBlock> {
        let entry = self.index_entry(i)?;
        let handle = entry.handle;
        let block = decode_block_vec(stored, &handle).map_err(|e| {
            if handle.compressed && e.field != "crc32c" && e.field != "stored_len" {
                // Entry offsets are relative to the decompressed bytes: report the block start.
                Error::Corruption {
                    file: self.path.clone(),
                    offset: handle.offset,
                    what: format!("{e} (offset within the decompressed block)"),
                }
            } else {
                Error::corruption(&self.path, handle.offset, &e)
            }
        })?;
        if block.key(0) != Some(entry.first_key.as_slice()) {
            return Err(corruption(
                &self.path,
                handle.offset,
                "sst block",
                FormatErrorKind::KeyOrder,
            ));
        }
        let next_first = self
            .index
            .blocks
            .get(i.saturating_add(1))
            .map(|n| &n.first_key);
        let last = block.len().checked_sub(1).and_then(|i| block.key(i));
        if let (Some(last), Some(next)) = (last, next_first)
            && last >= next.as_slice()
        {
            return Err(corruption(
                &self.path,
                handle.offset,
                "sst block",
                FormatErrorKind::KeyOrder,
            ));
        }
        Ok(Arc::new(block))
    }
}

fn check_header(bytes: &[u8]) -> Result<(), FormatError> {
    let mut r = crate::format::Reader::new(bytes, "sst header");
    let magic = r.array::<4>("magic")?;
    if magic != SST_MAGIC {
        return Err(r.err("magic", 0, FormatErrorKind::BadMagic));
    }
    let version = r.u8("version")?;
    if version != SST_VERSION {
        let kind = FormatErrorKind::UnsupportedVersion {
            version: version.into(),
        };
        return Err(r.err("version", 4, kind));
    }
    Ok(())
}
