//! [`ConcatSource`]: one cursor (and entry source) over the files of one sorted level, opening
//! each file only when the scan reaches it.
//!
//! Invariants:
//! - The openers yield their cursors in scan order (ascending files for a forward scan,
//!   descending for a reverse one) and their key spans do not overlap, so the concatenation is
//!   itself sorted.
//! - The openers are a lazy iterator, asked for the next cursor only after the previous one is
//!   exhausted: a scan with a limit opens no file it does not read, and one that stops early
//!   has done no work for the files after it (a short scan of a level of thousands of files
//!   costs the same as of a level of ten).
//! - The first `Err` (from an opener or a source) is yielded, then the source ends.

use super::cursor::{Cursor, next_owned};
use crate::entry::Entry;
use crate::error::Result;
use crate::format::sst::EntryRef;

/// The cursors of one sorted level in scan order, each opened (e.g. an SST reader positioned at
/// the scan's start) when the iterator is asked for it.
type Openers<S> = Box<dyn Iterator<Item = Result<S>> + Send>;

/// The concatenation of lazily opened cursors; see the module doc.
pub struct ConcatSource<S> {
    pending: Openers<S>,
    current: Option<S>,
    finished: bool,
}

impl<S> std::fmt::Debug for ConcatSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcatSource")
            .field("open", &self.current.is_some())
            .field("finished", &self.finished)
            .finish()
    }
}

impl<S> ConcatSource<S> {
    /// Concatenates the cursors `openers` yields, in its order.
    pub fn new(openers: impl Iterator<Item = Result<S>> + Send + 'static) -> Self {
        ConcatSource {
            pending: Box::new(openers),
            current: None,
            finished: false,
        }
    }
}

impl<S: Cursor> Cursor for ConcatSource<S> {
    fn advance(&mut self) -> Result<()> {
        while !self.finished {
            if let Some(source) = self.current.as_mut() {
                if let Err(e) = source.advance() {
                    self.finished = true;
                    self.current = None;
                    return Err(e);
                }
                if source.key().is_some() {
                    return Ok(());
                }
                self.current = None;
            }
            let Some(opened) = self.pending.next() else {
                self.finished = true;
                break;
            };
            match opened {
                Ok(source) => self.current = Some(source),
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.current.as_ref()?.current()
    }

    fn key(&self) -> Option<&[u8]> {
        self.current.as_ref()?.key()
    }

    fn revision(&self) -> Option<u64> {
        self.current.as_ref()?.revision()
    }

    fn is_tombstone(&self) -> Option<bool> {
        self.current.as_ref()?.is_tombstone()
    }

    fn take(&mut self) -> Option<Entry> {
        self.current.as_mut()?.take()
    }
}

impl<S: Cursor> Iterator for ConcatSource<S> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        next_owned(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::iter::{BoxedSource, OwnedCursor};
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

    type Source = OwnedCursor<BoxedSource>;
    type Opener = Box<dyn FnOnce() -> Result<Source> + Send>;

    fn opener(keys: Vec<u8>, opened: &Arc<AtomicUsize>) -> Opener {
        let opened = Arc::clone(opened);
        Box::new(move || {
            opened.fetch_add(1, Ordering::SeqCst);
            let source: BoxedSource = Box::new(keys.into_iter().map(|k| Ok(entry(k))));
            Ok(OwnedCursor::new(source))
        })
    }

    /// The concatenation of `openers`, each run when the source asks for its cursor.
    fn concat(openers: Vec<Opener>) -> ConcatSource<Source> {
        ConcatSource::new(openers.into_iter().map(|open| open()))
    }

    #[test]
    fn concatenates_in_order_and_opens_lazily() {
        let opened = Arc::new(AtomicUsize::new(0));
        let mut concat = concat(vec![
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
        let mut concat = concat(vec![
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
