//! [`DecideView`]: the database at the last published revision, as the decide stage reads it
//! (the [`StateView`] that transactions are evaluated against).
//!
//! Invariants: every read is at `revision`, the newest published one, taken by the leader under
//! the writer lock, so nothing is committed meanwhile and no pin is needed (the newest versions
//! are kept whatever the read floor).

use crate::db::Versioned;
use crate::entry::VersionMeta;
use crate::error::Result;
use crate::iter::{MergeIter, ScanSpec, Tombstones};
use crate::range::{Direction, KeyRange};
use crate::txn::StateView;

use super::inner::Inner;
use super::versions::ReadView;

/// See the module doc.
pub(crate) struct DecideView<'a> {
    inner: &'a Inner,
    view: ReadView,
}

impl<'a> DecideView<'a> {
    /// The view of `inner` at `revision`. REQUIRES: `revision` is the newest published one.
    pub(crate) fn new(inner: &'a Inner, revision: u64) -> Self {
        let mut view = inner.read_view();
        view.revision = revision;
        DecideView { inner, view }
    }

    /// The metadata of the newest version of `key` (a tombstone's included).
    pub(crate) fn newest_meta(&self, key: &[u8]) -> Result<Option<VersionMeta>> {
        Ok(self.inner.meta_in(&self.view, key)?.map(|(_, meta)| meta))
    }

    /// Every version of `range` the view sees, one per key, tombstones included if `tombstones`.
    fn entries(&self, range: &KeyRange, tombstones: Tombstones) -> Result<MergeIter> {
        let sources = self.inner.sources(&self.view, range, Direction::Forward)?;
        let mut spec = ScanSpec::user(range.clone(), Direction::Forward, self.view.revision);
        spec.tombstones = tombstones;
        Ok(MergeIter::new(sources, spec))
    }
}

impl StateView for DecideView<'_> {
    fn revision(&self) -> u64 {
        self.view.revision
    }

    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        Ok(self
            .inner
            .entry_in(&self.view, key)?
            .and_then(Versioned::of))
    }

    fn range(&self, range: &KeyRange) -> Result<Vec<(Vec<u8>, Versioned)>> {
        let mut rows = Vec::new();
        for entry in self.entries(range, Tombstones::Hide)? {
            rows.extend(Versioned::keyed(entry?));
        }
        Ok(rows)
    }

    fn newest_revision(&self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .inner
            .meta_in(&self.view, key)?
            .map(|(revision, _)| revision))
    }

    fn first_written_since(&self, range: &KeyRange, since: u64) -> Result<Option<Vec<u8>>> {
        for entry in self.entries(range, Tombstones::Keep)? {
            let entry = entry?;
            if entry.revision > since {
                return Ok(Some(entry.key));
            }
        }
        Ok(None)
    }
}
