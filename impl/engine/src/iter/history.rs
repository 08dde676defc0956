//! [`HistoryMerge`]: the k-way merge of sources that yield every version of their keys, in
//! internal-key order (key ascending, revision descending), as flush and compaction read them.
//!
//! Invariants:
//! - Input: each source forward, internal keys strictly increasing.
//! - Output: every version of every source, internal keys strictly increasing; a version
//!   (same key and revision) offered by several sources comes out once, from the source listed
//!   first. An `Err` is yielded and ends the merge.
//! - A source is pulled only after its head was consumed; the front is found by a linear pass
//!   (a compaction has a few dozen inputs at most, see [`super::MergeIter`]).

use crate::entry::Entry;
use crate::error::Result;
use crate::format::sst::internal_less;

use super::BoxedSource;

/// See the module doc.
pub struct HistoryMerge {
    sources: Vec<BoxedSource>,
    /// Each source's next entry; `None` once it is exhausted. Filled before every decision.
    heads: Vec<Option<Entry>>,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for HistoryMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryMerge")
            .field("sources", &self.sources.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl HistoryMerge {
    /// Merges `sources`, listed newest first (the order only breaks exact duplicates).
    pub fn new(sources: Vec<BoxedSource>) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        HistoryMerge {
            sources,
            heads,
            started: false,
            finished: false,
        }
    }

    fn pull(&mut self, i: usize) -> Result<()> {
        if let (Some(head), Some(source)) = (self.heads.get_mut(i), self.sources.get_mut(i)) {
            *head = source.next().transpose()?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.pull(i)?;
            }
        }
        let mut front: Option<usize> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some(head) = head else { continue };
            let better = match front
                .and_then(|f| self.heads.get(f))
                .and_then(Option::as_ref)
            {
                None => true,
                Some(best) => internal_less((&head.key, head.revision), (&best.key, best.revision)),
            };
            if better {
                front = Some(i);
            }
        }
        let Some(front) = front else {
            return Ok(None);
        };
        let entry = self.heads.get_mut(front).and_then(Option::take);
        self.pull(front)?;
        // The same version in a later source: already yielded, skip it there.
        if let Some(entry) = &entry {
            for i in 0..self.heads.len() {
                let duplicate = self
                    .heads
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|h| h.key == entry.key && h.revision == entry.revision);
                if duplicate {
                    self.pull(i)?;
                }
            }
        }
        Ok(entry)
    }
}

impl Iterator for HistoryMerge {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.step() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::VersionMeta;

    fn e(key: &str, revision: u64) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            value: None,
            revision,
            meta: VersionMeta::TOMBSTONE,
            wal_offset: 0,
            created_at_ms: 0,
        }
    }

    fn source(entries: Vec<Entry>) -> BoxedSource {
        Box::new(entries.into_iter().map(Ok))
    }

    #[test]
    fn every_version_in_internal_key_order_duplicates_once() {
        let merged: Vec<(String, u64)> = HistoryMerge::new(vec![
            source(vec![e("a", 9), e("b", 12), e("b", 3)]),
            source(vec![e("a", 4), e("b", 7), e("b", 3), e("c", 1)]),
        ])
        .map(|r| r.unwrap())
        .map(|e| (String::from_utf8(e.key).unwrap(), e.revision))
        .collect();
        let expected = [("a", 9), ("a", 4), ("b", 12), ("b", 7), ("b", 3), ("c", 1)];
        let expected: Vec<(String, u64)> = expected
            .iter()
            .map(|(k, r)| ((*k).to_owned(), *r))
            .collect();
        assert_eq!(merged, expected);
    }

    #[test]
    fn an_error_ends_the_merge() {
        let failing: BoxedSource =
            Box::new(vec![Ok(e("b", 1)), Err(crate::Error::Closed)].into_iter());
        let out: Vec<_> = HistoryMerge::new(vec![source(vec![e("a", 1)]), failing]).collect();
        assert!(out.iter().any(Result::is_err));
        assert!(out.last().is_some_and(Result::is_err));
    }
}
