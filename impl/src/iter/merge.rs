//! [`MergeIter`]: k-way merge of sorted entry sources.
//!
//! Invariants:
//! - Keys come out strictly ordered in the scan direction, each inside the range, each once, at
//!   the newest version `<= snapshot_rev` among the sources; tombstones only with `Tombstones::Keep`.
//! - At most `limit` entries are yielded; after an `Err` or the end, `next` returns `None` forever.
//! - The merge pulls a source only when its head was consumed, so a scan reads lazily.
//!
//! The front key is found by a linear pass over the heads rather than a heap: a merge has one
//! source per memtable, per L0 file and per deeper level (a few dozen at most, bounded by
//! `l0_stop_files` + `LEVELS_MAX`), where a linear pass is as fast and has nothing to get wrong.

use std::cmp::Ordering;

use super::{BoxedSource, ScanSpec, Tombstones};
use crate::entry::Entry;
use crate::error::Result;
use crate::range::{Direction, Position};

/// The state of one source's next entry.
#[derive(Debug)]
enum Head {
    /// Must be pulled from the source before the next decision.
    Pending,
    /// The source's next entry, inside the range.
    Ready(Entry),
    /// The source is exhausted or past the range.
    Done,
}

/// A lazy merged scan over several sources; see the module doc.
pub struct MergeIter {
    sources: Vec<BoxedSource>,
    heads: Vec<Head>,
    spec: ScanSpec,
    yielded: usize,
    finished: bool,
}

impl std::fmt::Debug for MergeIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeIter")
            .field("sources", &self.sources.len())
            .field("heads", &self.heads)
            .field("spec", &self.spec)
            .field("yielded", &self.yielded)
            .field("finished", &self.finished)
            .finish()
    }
}

impl MergeIter {
    /// Merges `sources`, listed newest first (the order only breaks revision ties), under `spec`.
    pub fn new(sources: Vec<BoxedSource>, spec: ScanSpec) -> Self {
        let heads = sources.iter().map(|_| Head::Pending).collect();
        MergeIter {
            sources,
            heads,
            spec,
            yielded: 0,
            finished: false,
        }
    }

    /// Pulls every pending head. An error from a source is returned at once.
    fn fill(&mut self) -> Result<()> {
        for (head, source) in self.heads.iter_mut().zip(self.sources.iter_mut()) {
            if matches!(head, Head::Pending) {
                *head = pull(source, &self.spec)?;
            }
        }
        Ok(())
    }

    /// Takes the versions of the front key from every head and returns the winner, if any version
    /// is visible at the snapshot.
    fn take_front(&mut self) -> Option<Option<Entry>> {
        let direction = self.spec.direction;
        let front = self
            .heads
            .iter()
            .filter_map(|h| match h {
                Head::Ready(e) => Some(e.key.as_slice()),
                Head::Pending | Head::Done => None,
            })
            .min_by(|a, b| direction.cmp_keys(a, b))?
            .to_vec();
        let mut best: Option<Entry> = None;
        for head in &mut self.heads {
            let Head::Ready(entry) = head else { continue };
            if entry.key != front {
                continue;
            }
            let Head::Ready(entry) = std::mem::replace(head, Head::Pending) else {
                continue;
            };
            if entry.revision > self.spec.snapshot_rev {
                continue;
            }
            // Strictly greater: on a tie the earlier (newer) source keeps its win.
            if best.as_ref().is_none_or(|b| entry.revision > b.revision) {
                best = Some(entry);
            }
        }
        Some(best)
    }
}

/// Reads `source` up to its first entry inside the range, or to its end.
fn pull(source: &mut BoxedSource, spec: &ScanSpec) -> Result<Head> {
    for item in source.by_ref() {
        let entry = item?;
        let relative = match (spec.direction, spec.range.position(&entry.key)) {
            (_, Position::Inside) => Ordering::Equal,
            (Direction::Forward, Position::Below) | (Direction::Reverse, Position::Above) => {
                Ordering::Less
            }
            (Direction::Forward, Position::Above) | (Direction::Reverse, Position::Below) => {
                Ordering::Greater
            }
        };
        match relative {
            Ordering::Less => continue,
            Ordering::Equal => return Ok(Head::Ready(entry)),
            Ordering::Greater => return Ok(Head::Done),
        }
    }
    Ok(Head::Done)
}

impl Iterator for MergeIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            if self.spec.limit.is_some_and(|limit| self.yielded >= limit) {
                self.finished = true;
                break;
            }
            if let Err(e) = self.fill() {
                self.finished = true;
                return Some(Err(e));
            }
            let Some(winner) = self.take_front() else {
                self.finished = true;
                break;
            };
            let Some(entry) = winner else { continue };
            if entry.is_tombstone() && self.spec.tombstones == Tombstones::Hide {
                continue;
            }
            self.yielded = self.yielded.saturating_add(1);
            return Some(Ok(entry));
        }
        None
    }
}
