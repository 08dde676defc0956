//! [`VisibleVersions`]: turns a source that yields every version of its keys (an SST scan) into
//! one that yields, per key, the version a snapshot sees.
//!
//! Invariants:
//! - Input: the [`super::EntrySource`] order with several versions per key allowed: keys in the
//!   scan direction, a key's versions adjacent (in either revision order).
//! - Output: per key, the version with the highest revision `<= snapshot_rev`, if any
//!   (tombstones included: hiding them is the merge's job); keys in the input's order. An `Err`
//!   is passed on and ends the stream.
//! - Holds at most one pending entry: the best version so far of the key being read.

use crate::entry::Entry;
use crate::error::Result;

/// See the module doc.
#[derive(Debug)]
pub struct VisibleVersions<S> {
    input: S,
    snapshot_rev: u64,
    /// The best visible version so far of the key being read.
    pending: Option<Entry>,
    /// The key being read when its versions are all invisible so far (so `pending` is `None`).
    current_key: Option<Vec<u8>>,
    done: bool,
}

impl<S: Iterator<Item = Result<Entry>>> VisibleVersions<S> {
    /// The versions of `input` visible at `snapshot_rev`.
    pub fn new(input: S, snapshot_rev: u64) -> Self {
        VisibleVersions {
            input,
            snapshot_rev,
            pending: None,
            current_key: None,
            done: false,
        }
    }

    fn is_current(&self, key: &[u8]) -> bool {
        match (&self.pending, &self.current_key) {
            (Some(p), _) => p.key == key,
            (None, Some(k)) => k == key,
            (None, None) => false,
        }
    }
}

impl<S: Iterator<Item = Result<Entry>>> Iterator for VisibleVersions<S> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        // Bounded: each pass consumes one input entry or ends.
        while !self.done {
            let entry = match self.input.next() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Err(e)) => {
                    self.done = true;
                    self.pending = None;
                    return Some(Err(e));
                }
                Some(Ok(entry)) => entry,
            };
            let visible = entry.revision <= self.snapshot_rev;
            if self.is_current(&entry.key) {
                let better = self
                    .pending
                    .as_ref()
                    .is_none_or(|p| entry.revision > p.revision);
                if visible && better {
                    self.pending = Some(entry);
                    self.current_key = None;
                }
                continue;
            }
            // A new key: the previous one's best version is final.
            let finished = self.pending.take();
            if visible {
                self.pending = Some(entry);
                self.current_key = None;
            } else {
                self.current_key = Some(entry.key);
            }
            if finished.is_some() {
                return finished.map(Ok);
            }
        }
        self.pending.take().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::VersionMeta;

    fn e(key: &str, revision: u64) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            value: Some(revision.to_string().into_bytes()),
            revision,
            meta: VersionMeta::after_put(None, revision, 0),
            wal_offset: 0,
            created_at_ms: 0,
        }
    }

    fn visible(input: Vec<Entry>, at: u64) -> Vec<(String, u64)> {
        VisibleVersions::new(input.into_iter().map(Ok), at)
            .map(|r| r.unwrap())
            .map(|e| (String::from_utf8(e.key).unwrap(), e.revision))
            .collect()
    }

    #[test]
    fn newest_version_at_or_below_the_snapshot_in_either_order() {
        let newest_first = vec![e("a", 9), e("a", 4), e("b", 12), e("c", 7), e("c", 2)];
        assert_eq!(
            visible(newest_first.clone(), u64::MAX),
            [("a".into(), 9), ("b".into(), 12), ("c".into(), 7)]
        );
        assert_eq!(visible(newest_first, 8), [("a".into(), 4), ("c".into(), 7)]);
        let oldest_first = vec![e("c", 2), e("c", 7), e("b", 12), e("a", 4), e("a", 9)];
        assert_eq!(visible(oldest_first, 8), [("c".into(), 7), ("a".into(), 4)]);
        assert_eq!(visible(vec![e("a", 5)], 4), Vec::<(String, u64)>::new());
    }

    #[test]
    fn an_error_is_passed_on_and_ends_the_stream() {
        let input = vec![Ok(e("a", 1)), Err(crate::Error::Closed), Ok(e("b", 2))];
        let out: Vec<_> = VisibleVersions::new(input.into_iter(), 9).collect();
        assert_eq!(out.len(), 1);
        assert!(
            out[0].is_err(),
            "the pending version is dropped with the scan"
        );
    }
}
