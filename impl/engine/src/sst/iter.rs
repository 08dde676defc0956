//! [`TableIter`]: a lazy scan of one table over a key range, forward or reverse, one block at a
//! time through the block cache. It is a [`Cursor`] lending its entries from the block it holds,
//! and an [`crate::iter::EntrySource`] (the cursor's entries copied out).
//!
//! Seek: forward, the first block is the last whose first key is <= the range start (binary
//! search on the index); reverse, the last whose first key is <= the range end, walking blocks
//! backwards from there. Inside a block, a binary search skips the entries outside the range.
//!
//! Invariants:
//! - Every version of every key in the range is yielded (a table may hold several versions of a
//!   key; [`Table::iter_at`] yields only the one a snapshot sees, by [`crate::format::sst::Block::is_visible`]), internal
//!   keys strictly increasing (forward) or decreasing (reverse) and inside the range:
//!   each block was order-checked against its neighbours in the index when it was read
//!   ([`Table`]'s block invariants), and the scan stops at the first key past the range.
//! - A block is loaded when the scan reaches it, from the cache if it is there. A scan that has
//!   loaded [`READAHEAD_AFTER_BLOCKS`] blocks reads the next uncached ones in runs with one read
//!   each, [`READAHEAD_BYTES_INITIAL`] at first, doubling run by run up to [`READAHEAD_BYTES`]
//!   (so a scan that stops early has read at most about twice what it used), each run ending
//!   before a cached block. A run's blocks are verified one by one exactly as a single read is,
//!   each when the scan reaches it (a bad block fails the scan only then, and a block past the
//!   scan's end costs no check), and not put in the cache (a long scan would evict what point
//!   reads use); so it holds at most one run of stored bytes at a time.
//! - The first `Err` is yielded and then the iterator ends (the `EntrySource` contract).
//! - The current entry is the entry at `current` of `block`: the block stays held (an
//!   `Arc`) until the cursor moves past its last entry, so what `current` lends stays valid.

use std::ops::Bound;
use std::sync::Arc;

use super::cache::CachedBlock;
use super::reader::Table;
use crate::entry::Entry;
use crate::error::Result;
use crate::format::sst::EntryRef;
use crate::iter::{Cursor, next_owned};
use crate::range::{Direction, KeyRange, Position};

/// Blocks a scan loads one at a time (through the cache) before it starts reading ahead: short
/// scans and seeks never read more than they use.
pub const READAHEAD_AFTER_BLOCKS: usize = 2;
/// Stored bytes a scan's first read-ahead run covers: four blocks of the default size, so a short
/// scan (YCSB E's up to 100 rows) reads little past its end; each later run doubles.
pub const READAHEAD_BYTES_INITIAL: u64 = 16 * 1024;
/// Most stored bytes one read-ahead run covers (RocksDB's auto read-ahead ceiling).
pub const READAHEAD_BYTES: u64 = 256 * 1024;

const _: () = assert!(READAHEAD_BYTES_INITIAL > 0 && READAHEAD_BYTES_INITIAL <= READAHEAD_BYTES);

/// A lazy range scan of one table; see the module doc.
pub struct TableIter {
    table: Arc<Table>,
    range: KeyRange,
    direction: Direction,
    /// `Some(r)`: yield per key only the version a read at `r` sees; `None`: every version.
    snapshot_rev: Option<u64>,
    /// The newest revision the table may hold (the manifest's `lastRevision`); a newer entry is
    /// corruption, not a version to hide.
    revision_max: u64,
    /// The next block to load, in scan order; `None` once every relevant block was loaded.
    next_block: Option<usize>,
    /// The block being yielded from.
    block: Option<CachedBlock>,
    /// Forward: the index of the next entry to examine. Reverse: one past it (entries left).
    pos: usize,
    /// The index in `block` of the entry the cursor is on.
    current: Option<usize>,
    /// Every entry of `block` left to yield is inside the range.
    block_inside: bool,
    done: bool,
    /// Blocks loaded so far.
    loaded: usize,
    /// Stored bytes the next read-ahead run covers.
    run_bytes: u64,
    /// The blocks the read-ahead buffer holds, `first..=last` (index order), and the file
    /// offset of its first byte; `None` before the first run.
    run: Option<(usize, usize, u64)>,
    /// The read-ahead buffer: the stored bytes of the blocks of `run`, unverified (each is
    /// verified when the scan loads it); reused from run to run.
    run_buf: Vec<u8>,
}

impl std::fmt::Debug for TableIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableIter")
            .field("table", &self.table.path())
            .field("range", &self.range)
            .field("direction", &self.direction)
            .field("next_block", &self.next_block)
            .field("pos", &self.pos)
            .field("done", &self.done)
            .finish()
    }
}

fn bound_key(bound: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

impl TableIter {
    pub(super) fn new(
        table: Arc<Table>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: Option<u64>,
        revision_max: u64,
    ) -> Self {
        let index = table.index();
        let next_block = match direction {
            Direction::Forward => match bound_key(&range.start) {
                Some(k) => Some(table.find_block(k).unwrap_or(0)),
                None => Some(0),
            },
            Direction::Reverse => match bound_key(&range.end) {
                // No block starts at or before the end: every key is past the range.
                Some(k) => table.find_block(k),
                None => index.blocks.len().checked_sub(1),
            },
        };
        let next_block = next_block.filter(|&i| i < index.blocks.len());
        Self {
            table,
            range,
            direction,
            snapshot_rev,
            revision_max,
            next_block,
            block: None,
            pos: 0,
            current: None,
            block_inside: false,
            done: false,
            loaded: 0,
            run_bytes: READAHEAD_BYTES_INITIAL,
            run: None,
            run_buf: Vec::new(),
        }
    }

    /// The index of the next entry of the current block in scan order that the scan yields
    /// (every version, or the visible one per key) with its revision, moving past it.
    /// Bounded: each pass consumes an entry.
    fn step(&mut self) -> Option<(usize, u64)> {
        let block = self.block.as_ref()?;
        loop {
            let i = match self.direction {
                Direction::Forward => {
                    let i = self.pos;
                    self.pos = self.pos.saturating_add(1);
                    i
                }
                Direction::Reverse => {
                    self.pos = self.pos.checked_sub(1)?;
                    self.pos
                }
            };
            let revision = block.revision(i)?;
            // A too-new entry is yielded whatever the snapshot, for `advance` to report.
            if revision > self.revision_max
                || self.snapshot_rev.is_none_or(|r| block.is_visible(i, r))
            {
                return Some((i, revision));
            }
        }
    }

    /// Loads the next block in scan order and positions the cursor at its first entry in range.
    /// `Ok(false)` when no block is left.
    fn load_next_block(&mut self) -> Result<bool> {
        let Some(i) = self.next_block else {
            return Ok(false);
        };
        let count = self.table.block_count();
        self.next_block = match self.direction {
            Direction::Forward => i.checked_add(1).filter(|&n| n < count),
            Direction::Reverse => i.checked_sub(1),
        };
        let block = self.fetch(i)?;
        let first_loaded = self.loaded == 0;
        self.loaded = self.loaded.saturating_add(1);
        let range = &self.range;
        let len = block.len();
        (self.pos, self.block_inside) = match self.direction {
            Direction::Forward => {
                let pos = if first_loaded {
                    block.partition_point(|key| range.position(key) == Position::Below)
                } else {
                    0
                };
                let last = len.checked_sub(1).and_then(|l| block.key(l));
                (
                    pos,
                    last.is_some_and(|k| range.position(k) != Position::Above),
                )
            }
            Direction::Reverse => {
                let pos = if first_loaded {
                    block.partition_point(|key| range.position(key) != Position::Above)
                } else {
                    len
                };
                let first = block.key(0);
                (
                    pos,
                    first.is_some_and(|k| range.position(k) != Position::Below),
                )
            }
        };
        self.block = Some(block);
        Ok(true)
    }
}

impl TableIter {
    /// Block `i`: from the read-ahead run, the cache, a new read-ahead run, or a single read.
    fn fetch(&mut self, i: usize) -> Result<CachedBlock> {
        if let Some((first, last, run_offset)) = self.run
            && (first..=last).contains(&i)
        {
            return self.table.block_in_run(i, &self.run_buf, run_offset);
        }
        if self.loaded < READAHEAD_AFTER_BLOCKS {
            return self.table.block(i);
        }
        if let Some(block) = self.table.cached_block(i) {
            return Ok(block);
        }
        let (first, last) = self.table.run(i, self.run_bytes, self.direction);
        self.run_bytes = self.run_bytes.saturating_mul(2).min(READAHEAD_BYTES);
        self.run = None;
        let run_offset = self.table.read_run(first, last, &mut self.run_buf)?;
        self.run = Some((first, last, run_offset));
        self.table.block_in_run(i, &self.run_buf, run_offset)
    }
}

impl Cursor for TableIter {
    fn advance(&mut self) -> Result<()> {
        self.current = None;
        // Bounded: each pass yields, consumes an entry, or consumes a block.
        while !self.done {
            if let Some((i, revision)) = self.step() {
                if self.block_inside && revision <= self.revision_max {
                    self.current = Some(i);
                    return Ok(());
                }
                let key = self
                    .block
                    .as_ref()
                    .and_then(|b| b.key(i))
                    .unwrap_or_default();
                if revision > self.revision_max {
                    self.done = true;
                    let error = self
                        .table
                        .revision_too_new(key, revision, self.revision_max);
                    self.block = None;
                    return Err(error);
                }
                match (self.range.position(key), self.direction) {
                    (Position::Inside, _) => {
                        self.current = Some(i);
                        return Ok(());
                    }
                    (Position::Above, Direction::Forward)
                    | (Position::Below, Direction::Reverse) => {
                        self.done = true;
                    }
                    // Before the range in scan order: the seek skips these; never reached.
                    _ => {}
                }
                continue;
            }
            self.block = None;
            match self.load_next_block() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        self.block = None;
        Ok(())
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.block.as_ref()?.entry(self.current?)
    }

    fn key(&self) -> Option<&[u8]> {
        self.block.as_ref()?.key(self.current?)
    }

    fn revision(&self) -> Option<u64> {
        self.block.as_ref()?.revision(self.current?)
    }

    fn is_tombstone(&self) -> Option<bool> {
        self.block.as_ref()?.is_tombstone(self.current?)
    }
}

impl Iterator for TableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        next_owned(self)
    }
}
