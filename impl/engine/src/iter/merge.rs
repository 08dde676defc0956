//! [`MergeIter`]: k-way merge of sorted entry sources.
//!
//! Invariants:
//! - Keys come out strictly ordered in the scan direction, each inside the range, each once, at
//!   the newest version `<= snapshot_rev` among the sources; tombstones only with `Tombstones::Keep`.
//! - At most `limit` entries are yielded; after an `Err` or the end, `next` returns `None` forever.
//! - The merge advances a source only when its current entry was consumed (the front key was
//!   yielded or skipped), so a scan reads lazily; the entry [`MergeIter::next_ref`] lends stays
//!   in its source, unmoved, until the next call.
//!
//! The front key is found by a linear pass over the heads rather than a heap: a merge has one
//! source per memtable, per L0 file and per deeper level (a few dozen at most, bounded by
//! `l0_stop_files` + `LEVELS_MAX`), where a linear pass is as fast and has nothing to get wrong;
//! and while one source keeps the front alone, one comparison with the runner-up replaces the
//! pass.

use std::cmp::Ordering;

use super::{BoxedCursor, ScanSpec, Tombstones};
use crate::entry::Entry;
use crate::error::Result;
use crate::format::sst::EntryRef;
use crate::range::{Direction, Position};

/// The state of one source's current entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    /// Consumed (or never read): the source must be advanced before the next decision.
    Pending,
    /// The source's current entry is inside the range.
    Ready,
    /// The source is exhausted or past the range.
    Done,
}

/// A lazy merged scan over several sources; see the module doc.
pub struct MergeIter {
    sources: Vec<BoxedCursor>,
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
    pub fn new(sources: Vec<BoxedCursor>, spec: ScanSpec) -> Self {
        let heads = vec![Head::Pending; sources.len()];
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

    /// Advances every pending head. An error from a source is returned at once.
    fn fill(&mut self) -> Result<()> {
        for (head, source) in self.heads.iter_mut().zip(self.sources.iter_mut()) {
            if *head == Head::Pending {
                *head = pull(source, &self.spec)?;
            }
        }
        Ok(())
    }

    /// Finds the front key, marks its holders consumed, and returns the source holding its
    /// version visible at the snapshot, if any (`None`: no front key is left).
    fn take_front(&mut self) -> Option<Option<usize>> {
        let direction = self.spec.direction;
        let (heads, sources) = (&self.heads, &self.sources);
        let ready_key = |i: usize| ready_key(heads, sources, i);
        if let Some((winner, runner_up)) = self.last_win {
            let again = ready_key(winner).is_some_and(|key| {
                runner_up
                    .and_then(ready_key)
                    .is_none_or(|other| direction.cmp_keys(key, other) == Ordering::Less)
            });
            if again {
                return Some(self.take_holders(&[winner]));
            }
        }
        let mut front: Option<(usize, &[u8])> = None;
        for (i, key) in (0..heads.len()).filter_map(|i| Some((i, ready_key(i)?))) {
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
            (first.saturating_add(1)..heads.len()).filter(|&i| ready_key(i) == Some(front_key)),
        );
        self.last_win = match holders.as_slice() {
            [only] => {
                let runner_up = (0..heads.len())
                    .filter(|i| i != only)
                    .filter_map(|i| Some((i, ready_key(i)?)))
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

    /// Marks the heads of `holders` (all holding the front key) consumed and returns the one
    /// with the newest version visible at the snapshot among them.
    fn take_holders(&mut self, holders: &[usize]) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for &i in holders {
            let Some(head) = self.heads.get_mut(i) else {
                continue;
            };
            *head = Head::Pending;
            let Some(revision) = self.sources.get(i).and_then(|s| s.revision()) else {
                continue;
            };
            if revision > self.spec.snapshot_rev {
                continue;
            }
            // Strictly greater: on a tie the earlier (newer) source keeps its win.
            if best.is_none_or(|(_, b)| revision > b) {
                best = Some((i, revision));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The source whose current entry is the next one to yield (counted against the limit).
    fn next_source(&mut self) -> Option<Result<usize>> {
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
            let Some(i) = winner else { continue };
            if self.spec.tombstones == Tombstones::Hide
                && self
                    .sources
                    .get(i)
                    .and_then(|s| s.is_tombstone())
                    .is_none_or(|tombstone| tombstone)
            {
                continue;
            }
            self.yielded = self.yielded.saturating_add(1);
            return Some(Ok(i));
        }
        None
    }

    /// The next entry, borrowed from its source until the next call (what a zero-copy scan
    /// passes on); the same sequence as the owned [`Iterator`].
    pub fn next_ref(&mut self) -> Option<Result<EntryRef<'_>>> {
        match self.next_source()? {
            Ok(i) => self.sources.get(i).and_then(|s| s.current()).map(Ok),
            Err(e) => Some(Err(e)),
        }
    }
}

/// The current key of source `i`, if its head is ready.
fn ready_key<'a>(heads: &[Head], sources: &'a [BoxedCursor], i: usize) -> Option<&'a [u8]> {
    match heads.get(i)? {
        Head::Ready => sources.get(i)?.key(),
        Head::Pending | Head::Done => None,
    }
}

/// Advances `source` past the entries before the range; its new head.
fn pull(source: &mut BoxedCursor, spec: &ScanSpec) -> Result<Head> {
    loop {
        source.advance()?;
        let Some(key) = source.key() else {
            return Ok(Head::Done);
        };
        match (spec.direction, spec.range.position(key)) {
            (_, Position::Inside) => return Ok(Head::Ready),
            (Direction::Forward, Position::Below) | (Direction::Reverse, Position::Above) => {}
            (Direction::Forward, Position::Above) | (Direction::Reverse, Position::Below) => {
                return Ok(Head::Done);
            }
        }
    }
}

impl Iterator for MergeIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_source()? {
            Ok(i) => self.sources.get_mut(i).and_then(|s| s.take()).map(Ok),
            Err(e) => Some(Err(e)),
        }
    }
}
