//! [`Cursor`]: a sorted entry source that lends its current entry instead of handing out owned
//! copies, what a merge needs to compare heads and a zero-copy scan needs to pass borrowed keys
//! and values on; and [`OwnedCursor`], the cursor over any owned [`EntrySource`] (a memtable
//! scan, a test's vector).
//!
//! Invariants:
//! - A cursor meets the [`EntrySource`] contract of the module doc of [`super`]: the entries it
//!   moves through are sorted strictly by key in the scan direction, one per key for a merge.
//! - `current` (and `key`, `revision`) is `None` before the first `advance` and after the last;
//!   an `Err` from `advance` leaves the cursor exhausted (`current` is `None` and every later
//!   `advance` is `Ok` with nothing current), so an error is reported once and ends the source.
//! - `take` may leave the cursor without a current entry (an owned cursor moves it out); the
//!   caller advances before asking again.

use super::EntrySource;
use crate::entry::Entry;
use crate::error::Result;
use crate::format::sst::EntryRef;

/// A sorted source positioned on one entry at a time; see the module doc.
pub trait Cursor: Send {
    /// Moves to the next entry (the first, on the first call).
    fn advance(&mut self) -> Result<()>;

    /// The entry the cursor is on, borrowed from the cursor.
    fn current(&self) -> Option<EntryRef<'_>>;

    /// The current entry's key (a cursor may answer it without building the whole entry).
    fn key(&self) -> Option<&[u8]> {
        self.current().map(|e| e.key)
    }

    /// The current entry's revision.
    fn revision(&self) -> Option<u64> {
        self.current().map(|e| e.revision)
    }

    /// Whether the current entry is a tombstone (`None`: no current entry).
    fn is_tombstone(&self) -> Option<bool> {
        self.current().map(|e| e.value.is_none())
    }

    /// The current entry, owned (copied, or moved out of an owned cursor).
    fn take(&mut self) -> Option<Entry> {
        self.current().map(Entry::from_sst)
    }
}

/// An owned, type-erased cursor, as the merge takes them.
pub type BoxedCursor = Box<dyn Cursor>;

/// The owned iterator protocol over a cursor: advance, then take; an error is yielded once.
pub fn next_owned(cursor: &mut impl Cursor) -> Option<Result<Entry>> {
    match cursor.advance() {
        Ok(()) => cursor.take().map(Ok),
        Err(e) => Some(Err(e)),
    }
}

/// The cursor over an owned entry source: it holds the source's current entry.
#[derive(Debug)]
pub struct OwnedCursor<S> {
    source: S,
    current: Option<Entry>,
    /// The source yielded an `Err`: nothing more is read from it.
    failed: bool,
}

impl<S: EntrySource> OwnedCursor<S> {
    /// A cursor over `source`, before its first entry.
    pub fn new(source: S) -> Self {
        OwnedCursor {
            source,
            current: None,
            failed: false,
        }
    }
}

impl<S: EntrySource> Cursor for OwnedCursor<S> {
    fn advance(&mut self) -> Result<()> {
        self.current = None;
        if self.failed {
            return Ok(());
        }
        match self.source.next() {
            Some(Ok(entry)) => self.current = Some(entry),
            Some(Err(e)) => {
                self.failed = true;
                return Err(e);
            }
            None => {}
        }
        Ok(())
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.current.as_ref().map(Entry::as_sst)
    }

    fn key(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|e| e.key.as_slice())
    }

    fn revision(&self) -> Option<u64> {
        self.current.as_ref().map(|e| e.revision)
    }

    fn is_tombstone(&self) -> Option<bool> {
        self.current.as_ref().map(Entry::is_tombstone)
    }

    fn take(&mut self) -> Option<Entry> {
        self.current.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::VersionMeta;
    use crate::error::Error;

    fn e(key: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: Some(key.to_vec()),
            revision: 1,
            meta: VersionMeta::first(true, 1),
            wal_offset: 0,
            created_at_ms: 0,
        }
    }

    #[test]
    fn an_owned_cursor_lends_then_ends_after_an_error() {
        let items = vec![Ok(e(b"a")), Err(Error::Closed), Ok(e(b"z"))];
        let mut cursor = OwnedCursor::new(items.into_iter());
        assert!(cursor.current().is_none());
        cursor.advance().unwrap();
        assert_eq!(cursor.key(), Some(&b"a"[..]));
        assert_eq!(cursor.current().and_then(|c| c.value), Some(&b"a"[..]));
        assert!(matches!(cursor.advance(), Err(Error::Closed)));
        assert!(cursor.current().is_none());
        cursor.advance().unwrap();
        assert_eq!(cursor.take(), None, "nothing after the error");
    }

    #[test]
    fn next_owned_yields_each_entry_once() {
        let mut cursor = OwnedCursor::new(vec![Ok(e(b"a")), Ok(e(b"b"))].into_iter());
        let keys: Vec<Vec<u8>> = std::iter::from_fn(|| next_owned(&mut cursor))
            .map(|r| r.unwrap().key)
            .collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
