//! [`MemTableIter`]: a lazy scan of a memtable at a snapshot revision, read in short runs.
//!
//! The skip list is sorted by (user key ascending, revision descending). A refill seeks once to
//! just past the cursor, then walks neighbour links (O(1) a step) collecting the visible version
//! of each key, and stops at a key boundary once it holds the run's length in keys:
//! [`REFILL_ENTRIES_INITIAL`] for the first run, doubling run by run up to [`REFILL_ENTRIES`]
//! (so a short scan copies little it will not return, and a long one seeks once per
//! [`REFILL_ENTRIES`] keys). The iterator cannot
//! hold a skip-list position between calls (it would borrow the memtable it owns), so a seek per
//! run, not per key, is the price of laziness.
//!
//! Invariants:
//! - Keys are yielded strictly increasing (forward) or strictly decreasing (reverse), each at most
//!   once, each inside the range, each at its newest version with revision `<= snapshot_rev`;
//!   or, in history mode (forward only), every version of each key, newest first.
//! - The cursor is the last user key whose versions were all examined; every refill seeks
//!   strictly past it, so the scan ends after at most one examination per version in the range.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::map::Entry as MapEntry;

use super::{InternalKey, MemTable, Probe, Slot, to_entry};
use crate::entry::Entry;
use crate::error::Result;
use crate::range::{Direction, KeyRange, Position};

/// Keys collected by the first refill: a scan that stops after a few rows (YCSB E's short scans,
/// where this memtable holds a part of the rows) copies at most this many it will not return.
const REFILL_ENTRIES_INITIAL: usize = 4;
/// Most keys collected per refill: long enough that the seek is amortised.
const REFILL_ENTRIES: usize = 64;

const _: () = assert!(0 < REFILL_ENTRIES_INITIAL && REFILL_ENTRIES_INITIAL <= REFILL_ENTRIES);

#[derive(Debug)]
pub struct MemTableIter {
    table: Arc<MemTable>,
    range: KeyRange,
    direction: Direction,
    snapshot_rev: u64,
    /// Yield every version, not only the visible one.
    history: bool,
    cursor: Option<Bytes>,
    buffer: VecDeque<Entry>,
    /// Keys the next refill collects.
    refill_entries: usize,
    done: bool,
}

type Found<'a> = MapEntry<'a, InternalKey, Slot>;

impl MemTableIter {
    pub(super) fn new(
        table: Arc<MemTable>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: u64,
        history: bool,
    ) -> Self {
        debug_assert!(!history || direction == Direction::Forward);
        MemTableIter {
            table,
            range,
            direction,
            snapshot_rev,
            history,
            cursor: None,
            buffer: VecDeque::new(),
            refill_entries: REFILL_ENTRIES_INITIAL,
            done: false,
        }
    }

    /// The first version to examine: just past the cursor, or at the near end of the range.
    fn seek<'a>(
        map: &'a crossbeam_skiplist::SkipMap<InternalKey, Slot>,
        iter: &Self,
    ) -> Option<Found<'a>> {
        let lower = |bound: Bound<&Probe<'_>>| map.lower_bound(bound.map(Probe::as_dyn));
        let upper = |bound: Bound<&Probe<'_>>| map.upper_bound(bound.map(Probe::as_dyn));
        let before = |key| Probe::before_versions(key);
        let after = |key| Probe::after_versions(key);
        match (iter.direction, &iter.cursor) {
            (Direction::Forward, Some(cur)) => lower(Bound::Excluded(&after(cur))),
            (Direction::Forward, None) => match &iter.range.start {
                Bound::Included(s) => lower(Bound::Included(&before(s.as_slice()))),
                Bound::Excluded(s) => lower(Bound::Excluded(&after(s.as_slice()))),
                Bound::Unbounded => map.front(),
            },
            (Direction::Reverse, Some(cur)) => upper(Bound::Excluded(&before(cur))),
            (Direction::Reverse, None) => match &iter.range.end {
                Bound::Included(e) => upper(Bound::Included(&after(e.as_slice()))),
                Bound::Excluded(e) => upper(Bound::Excluded(&before(e.as_slice()))),
                Bound::Unbounded => map.back(),
            },
        }
    }

    /// Whether `key` lies beyond the far end of the range in the scan's direction.
    fn past_end(&self, key: &[u8]) -> bool {
        match (self.direction, self.range.position(key)) {
            (Direction::Forward, Position::Above) | (Direction::Reverse, Position::Below) => true,
            (_, Position::Inside) => false,
            // The first seek starts at the near bound, so a key before it cannot come back.
            (Direction::Forward, Position::Below) | (Direction::Reverse, Position::Above) => {
                debug_assert!(false, "memtable seek returned a key before the near bound");
                true
            }
        }
    }

    /// The next version a forward scan (not in history mode) examines after `found`: the next
    /// entry, unless it is a version of the same key that the scan need not see: past a key's
    /// visible version, or from the newest version to the first at or below the snapshot, one
    /// seek skips the rest (a key rewritten many times costs a seek, not a step per version).
    fn next_forward<'a>(
        map: &'a crossbeam_skiplist::SkipMap<InternalKey, Slot>,
        found: &Found<'a>,
        current: Option<&(Found<'a>, usize)>,
        snapshot_rev: u64,
    ) -> Option<Found<'a>> {
        let next = found.next()?;
        let key: &[u8] = &found.key().key;
        if next.key().key != key {
            return Some(next);
        }
        if current.is_some_and(|&(_, taken)| taken > 0) {
            let past = Probe::after_versions(key);
            return map.lower_bound(Bound::Excluded(past.as_dyn()));
        }
        if next.key().revision > snapshot_rev {
            let visible = Probe::new(key, snapshot_rev);
            return map.lower_bound(Bound::Included(visible.as_dyn()));
        }
        Some(next)
    }

    /// Collects the next run of entries into the buffer, then doubles the next run's length.
    fn refill(&mut self) {
        self.fill_run();
        self.refill_entries = self.refill_entries.saturating_mul(2).min(REFILL_ENTRIES);
    }

    /// Collects the next run of entries into the buffer (see the module doc).
    fn fill_run(&mut self) {
        let table = Arc::clone(&self.table);
        let mut at = Self::seek(&table.map, self);
        // Forward: a key's versions come newest first, so the first visible one is taken and
        // the rest skipped. Reverse: they come oldest first, so the last visible one before the
        // key changes is taken. The key being examined is borrowed from its first version's
        // skip-list entry (held, so it stays valid); it is shared (not copied) into the cursor, once
        // per refill.
        // History mode keeps every version of the key, in the walk's (newest first) order.
        // The versions taken go straight to the buffer (`current` counts them), so a key costs
        // no allocation of its own.
        let mut current: Option<(Found<'_>, usize)> = None;
        while let Some(found) = at {
            let InternalKey { key, revision } = found.key();
            if current
                .as_ref()
                .is_none_or(|(first, _)| first.key().key != *key)
            {
                if let Some((done, _)) = current.take()
                    && self.buffer.len() >= self.refill_entries
                {
                    self.cursor = Some(done.key().key.clone());
                    return;
                }
                if self.past_end(key) {
                    self.done = true;
                    return;
                }
                current = Some((found.clone(), 0));
            }
            if *revision <= self.snapshot_rev
                && let Some((_, taken)) = current.as_mut()
            {
                let entry = to_entry(found.key(), found.value());
                if self.history || *taken == 0 {
                    self.buffer.push_back(entry);
                    *taken += 1;
                } else if self.direction == Direction::Reverse
                    && let Some(last) = self.buffer.back_mut()
                {
                    // Oldest first: a later visible version of the key is newer.
                    *last = entry;
                }
            }
            at = match self.direction {
                Direction::Forward if !self.history => {
                    Self::next_forward(&table.map, &found, current.as_ref(), self.snapshot_rev)
                }
                Direction::Forward => found.next(),
                Direction::Reverse => found.prev(),
            };
        }
        if let Some((done, _)) = current {
            self.cursor = Some(done.key().key.clone());
        }
        self.done = true;
    }
}

impl Iterator for MemTableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                return Some(Ok(entry));
            }
            if self.done {
                return None;
            }
            self.refill();
        }
    }
}
