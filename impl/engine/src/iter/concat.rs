//! [`ConcatSource`]: one entry source over the files of one sorted level, opening each file only
//! when the scan reaches it.
//!
//! Invariants:
//! - The openers are given in scan order (ascending files for a forward scan, descending for a
//!   reverse one) and their key spans do not overlap, so the concatenation is itself sorted.
//! - An opener runs at most once, and only after the previous source is exhausted: a scan with a
//!   limit opens no file it does not read.
//! - The first `Err` (from an opener or a source) is yielded, then the source ends.

use std::collections::VecDeque;

use super::BoxedSource;
use crate::entry::Entry;
use crate::error::Result;

/// Opens one file's entry source (e.g. an SST reader positioned at the scan's start).
pub type Opener = Box<dyn FnOnce() -> Result<BoxedSource> + Send>;

/// The concatenation of lazily opened sources; see the module doc.
pub struct ConcatSource {
    pending: VecDeque<Opener>,
    current: Option<BoxedSource>,
    finished: bool,
}

impl std::fmt::Debug for ConcatSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcatSource")
            .field("pending", &self.pending.len())
            .field("open", &self.current.is_some())
            .field("finished", &self.finished)
            .finish()
    }
}

impl ConcatSource {
    /// Concatenates the sources `openers` yield, in the order given.
    pub fn new(openers: Vec<Opener>) -> Self {
        ConcatSource {
            pending: openers.into(),
            current: None,
            finished: false,
        }
    }
}

impl Iterator for ConcatSource {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            if let Some(source) = self.current.as_mut() {
                match source.next() {
                    Some(Ok(entry)) => return Some(Ok(entry)),
                    Some(Err(e)) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            let Some(open) = self.pending.pop_front() else {
                self.finished = true;
                break;
            };
            match open() {
                Ok(source) => self.current = Some(source),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(key: u8) -> Entry {
        Entry {
            key: vec![key],
            revision: 1,
            value: Some(vec![key]),
            wal_offset: 0,
            created_at_ms: 0,
            meta: crate::entry::VersionMeta::first((Some(vec![key])).is_some(), 1),
        }
    }

    fn opener(keys: Vec<u8>, opened: &Arc<AtomicUsize>) -> Opener {
        let opened = Arc::clone(opened);
        Box::new(move || {
            opened.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(keys.into_iter().map(|k| Ok(entry(k)))) as BoxedSource)
        })
    }

    #[test]
    fn concatenates_in_order_and_opens_lazily() {
        let opened = Arc::new(AtomicUsize::new(0));
        let mut concat = ConcatSource::new(vec![
            opener(vec![1, 2], &opened),
            opener(vec![], &opened),
            opener(vec![5], &opened),
        ]);
        assert_eq!(opened.load(Ordering::SeqCst), 0);
        assert_eq!(concat.next().unwrap().unwrap().key, vec![1]);
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        let rest: Vec<Vec<u8>> = concat.map(|e| e.unwrap().key).collect();
        assert_eq!(rest, vec![vec![2], vec![5]]);
        assert_eq!(opened.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn an_open_failure_is_yielded_then_the_source_ends() {
        let opened = Arc::new(AtomicUsize::new(0));
        let failing: Opener = Box::new(|| Err(Error::Closed));
        let mut concat = ConcatSource::new(vec![
            opener(vec![1], &opened),
            failing,
            opener(vec![9], &opened),
        ]);
        assert!(concat.next().unwrap().is_ok());
        assert!(matches!(concat.next(), Some(Err(Error::Closed))));
        assert!(concat.next().is_none());
        assert_eq!(
            opened.load(Ordering::SeqCst),
            1,
            "nothing opened after the failure"
        );
    }
}
