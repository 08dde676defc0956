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
    /// Scratch: indices of the sources whose head holds the front key (kept to reuse its
    /// allocation).
    holders: Vec<usize>,
    /// After a front key held by one source alone: that source, and the source whose head was
    /// the smallest among the others (`None` if no other was ready). Only the winner's head
    /// changes before the next call, so while its new key sorts strictly before the runner-up's,
    /// it is the front again and the only holder: one comparison instead of a pass over all.
    last_win: Option<(usize, Option<usize>)>,
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
            holders: Vec::new(),
            last_win: None,
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
        if let Some((winner, runner_up)) = self.last_win {
            let again = self
                .heads
                .get(winner)
                .and_then(ready_key)
                .is_some_and(|key| {
                    runner_up
                        .and_then(|r| self.heads.get(r))
                        .and_then(ready_key)
                        .is_none_or(|other| direction.cmp_keys(key, other) == Ordering::Less)
                });
            if again {
                return Some(self.take_holders(&[winner]));
            }
        }
        let mut front: Option<(usize, &[u8])> = None;
        for (i, key) in self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i, ready_key(h)?)))
        {
            if front.is_none_or(|(_, f)| direction.cmp_keys(key, f) == Ordering::Less) {
                front = Some((i, key));
            }
        }
        let (first, front_key) = front?;
        // Sources holding the front key: the first found and any later one with an equal key.
        let mut holders = std::mem::take(&mut self.holders);
        holders.clear();
        holders.push(first);
        holders.extend(
            self.heads
                .iter()
                .enumerate()
                .skip(first.saturating_add(1))
                .filter(|(_, h)| ready_key(h) == Some(front_key))
                .map(|(i, _)| i),
        );
        self.last_win = match holders.as_slice() {
            [only] => {
                let runner_up = self
                    .heads
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i != only)
                    .filter_map(|(i, h)| Some((i, ready_key(h)?)))
                    .min_by(|(_, a), (_, b)| direction.cmp_keys(a, b))
                    .map(|(i, _)| i);
                Some((*only, runner_up))
            }
            _ => None,
        };
        let best = self.take_holders(&holders);
        self.holders = holders;
        Some(best)
    }

    /// Takes the heads of `holders` (all holding the front key) and returns the newest version
    /// visible at the snapshot among them.
    fn take_holders(&mut self, holders: &[usize]) -> Option<Entry> {
        let mut best: Option<Entry> = None;
        for &i in holders {
            let Some(head) = self.heads.get_mut(i) else {
                continue;
            };
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
        best
    }
}

fn ready_key(head: &Head) -> Option<&[u8]> {
    match head {
        Head::Ready(e) => Some(e.key.as_slice()),
        Head::Pending | Head::Done => None,
    }
}

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
