//! [`MemTableIter`]: a lazy, seek-per-step scan of a memtable at a snapshot revision.
//!
//! Invariants:
//! - Keys are yielded strictly increasing (forward) or strictly decreasing (reverse), each at most
//!   once, each inside the range, each at its newest version with revision `<= snapshot_rev`.
//! - The cursor is the last user key examined; every step seeks strictly past it, so a step
//!   terminates and the scan ends after at most one step per distinct key in the range.

use std::cmp::Reverse;
use std::ops::Bound;
use std::sync::Arc;

use super::{InternalKey, MemTable, to_entry};
use crate::entry::Entry;
use crate::error::Result;
use crate::range::{Direction, KeyRange, Position};

/// A scan over one memtable; see [`MemTable::scan`]. Items are always `Ok`; the `Result` matches
/// the other entry sources so the merge can treat all of them alike.
#[derive(Debug)]
pub struct MemTableIter {
    table: Arc<MemTable>,
    range: KeyRange,
    direction: Direction,
    snapshot_rev: u64,
    cursor: Option<Vec<u8>>,
    done: bool,
}

impl MemTableIter {
    pub(super) fn new(
        table: Arc<MemTable>,
        range: KeyRange,
        direction: Direction,
        snapshot_rev: u64,
    ) -> Self {
        MemTableIter {
            table,
            range,
            direction,
            snapshot_rev,
            cursor: None,
            done: false,
        }
    }

    /// The user key of the next distinct key after the cursor in scan order, not yet range-checked
    /// against the far bound.
    fn next_key(&self) -> Option<Vec<u8>> {
        let map = &self.table.map;
        let found = match (self.direction, &self.cursor) {
            (Direction::Forward, Some(cur)) => {
                map.lower_bound(Bound::Excluded(&(cur.clone(), Reverse(0))))
            }
            (Direction::Forward, None) => match &self.range.start {
                Bound::Included(s) => {
                    map.lower_bound(Bound::Included(&(s.clone(), Reverse(u64::MAX))))
                }
                Bound::Excluded(s) => map.lower_bound(Bound::Excluded(&(s.clone(), Reverse(0)))),
                Bound::Unbounded => map.front(),
            },
            (Direction::Reverse, Some(cur)) => {
                map.upper_bound(Bound::Excluded(&(cur.clone(), Reverse(u64::MAX))))
            }
            (Direction::Reverse, None) => match &self.range.end {
                Bound::Included(e) => map.upper_bound(Bound::Included(&(e.clone(), Reverse(0)))),
                Bound::Excluded(e) => {
                    map.upper_bound(Bound::Excluded(&(e.clone(), Reverse(u64::MAX))))
                }
                Bound::Unbounded => map.back(),
            },
        }?;
        Some(found.key().0.clone())
    }

    /// The newest version of `key` visible at the snapshot, if any.
    fn visible(&self, key: Vec<u8>) -> Option<Entry> {
        let probe: InternalKey = (key, Reverse(self.snapshot_rev));
        let found = self.table.map.lower_bound(Bound::Included(&probe))?;
        (found.key().0 == probe.0).then(|| to_entry(found.key(), found.value()))
    }
}

impl Iterator for MemTableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(key) = self.next_key() else {
                self.done = true;
                break;
            };
            let past_end = match (self.direction, self.range.position(&key)) {
                (Direction::Forward, Position::Above) | (Direction::Reverse, Position::Below) => {
                    true
                }
                (_, Position::Inside) => false,
                // The first seek starts at the near bound, so a key before it cannot come back.
                (Direction::Forward, Position::Below) | (Direction::Reverse, Position::Above) => {
                    debug_assert!(false, "memtable seek returned a key before the near bound");
                    true
                }
            };
            if past_end {
                self.done = true;
                break;
            }
            self.cursor = Some(key.clone());
            if let Some(entry) = self.visible(key) {
                return Some(Ok(entry));
            }
        }
        None
    }
}
