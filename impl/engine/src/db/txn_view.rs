//! [`DecideView`]: the database at the last applied revision, as the decide stage reads it
//! (the [`StateView`] that transactions are evaluated against).
//!
//! Invariants:
//! - Every read is at `revision`, the newest applied one (published or still syncing), taken by
//!   the leader under the writer lock, so nothing is applied meanwhile and no pin is needed (the
//!   newest versions are kept whatever the read floor, and nothing unpublished is flushed).
//! - The key spans of the view's memtables and tables ([`Spans`]) cover every version the view
//!   sees: a memtable's span is taken under the writer lock, after every insert at or below
//!   `revision` (a later insert is above `revision`, invisible here), and a tree's file spans are
//!   exact (checked against the manifest when a table opens, `super::tables`). A source whose
//!   span excludes a key holds no version of it the view sees and is not searched.

use std::sync::OnceLock;

use crate::db::Versioned;
use crate::entry::VersionMeta;
use crate::error::Result;
use crate::iter::{MergeIter, ScanSpec, Tombstones};
use crate::range::{Direction, KeyRange};
use crate::txn::StateView;

use super::inner::Inner;
use super::read::tree_meta;
use super::versions::ReadView;

/// See the module doc.
pub(crate) struct DecideView<'a> {
    inner: &'a Inner,
    view: ReadView,
    /// Taken by the first lookup of a key's newest version.
    spans: OnceLock<Spans>,
}

/// A smallest and a largest user key (`None`: the source is empty).
type Span = Option<(Vec<u8>, Vec<u8>)>;

/// The key spans of a view's sources, so that a lookup of a key's newest version skips the ones
/// that cannot hold it: a put of a key above every key stored (keys written in ascending order,
/// as the seed workload does) searches nothing. Before, every put searched each memtable's skip
/// list and each level's file list (7 % of `seedbench`'s write phase, 20,000 of them 11.6M of
/// the 50M instructions multi-version storage added to the callgrind workload).
#[derive(Debug)]
struct Spans {
    /// One per memtable, in the view's order.
    mems: Vec<Span>,
    /// Of every table of the tree.
    tree: Span,
}

impl Spans {
    fn of(view: &ReadView) -> Spans {
        let mems = view.mems.iter().map(|m| m.key_span()).collect();
        let version = &view.tree.version;
        let mut tree: Option<(&[u8], &[u8])> = None;
        for level in 0..version.num_levels() {
            for file in version.files(level) {
                let (lo, hi) = (file.smallest_key.as_slice(), file.largest_key.as_slice());
                tree = Some(match tree {
                    None => (lo, hi),
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                });
            }
        }
        Spans {
            mems,
            tree: tree.map(|(lo, hi)| (lo.to_vec(), hi.to_vec())),
        }
    }
}

/// Whether `span` may hold `key` (the upper end first: a key written in ascending order is
/// above it, and then one comparison answers).
fn covers(span: &Span, key: &[u8]) -> bool {
    span.as_ref()
        .is_some_and(|(lo, hi)| key <= hi.as_slice() && lo.as_slice() <= key)
}

impl<'a> DecideView<'a> {
    /// The view of `inner` at `revision`. REQUIRES: the writer lock is held and `revision` is
    /// the newest applied one.
    pub(crate) fn new(inner: &'a Inner, revision: u64) -> Self {
        let mut view = inner.read_view();
        view.revision = revision;
        DecideView {
            inner,
            view,
            spans: OnceLock::new(),
        }
    }

    /// The metadata of the newest version of `key` (a tombstone's included).
    pub(crate) fn newest_meta(&self, key: &[u8]) -> Result<Option<VersionMeta>> {
        Ok(self.newest(key)?.map(|(_, meta)| meta))
    }

    /// The revision and metadata of the newest version of `key` the view sees (a tombstone's
    /// included), without copying its key or value: the first memtable holding one, else the
    /// tables; sources whose span excludes `key` are skipped (see the module doc).
    fn newest(&self, key: &[u8]) -> Result<Option<(u64, VersionMeta)>> {
        let spans = self.spans.get_or_init(|| Spans::of(&self.view));
        let revision = self.view.revision;
        let in_mems = self.view.mems.iter().zip(&spans.mems);
        for (mem, span) in in_mems {
            if covers(span, key)
                && let Some(found) = mem.get_meta(key, revision)
            {
                return Ok(Some(found));
            }
        }
        if !covers(&spans.tree, key) {
            return Ok(None);
        }
        tree_meta(&self.view.tree, &self.inner.dir, key, revision)
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
        Ok(self.newest(key)?.map(|(revision, _)| revision))
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

#[cfg(test)]
mod tests {
    use crate::{BackgroundMode, Db, Options, WriteBatch};

    /// Puts decided against every kind of source: keys below, inside and above the tables' span
    /// and the memtable's, on a span's edges, and one in a gap. Fails if a source holding the
    /// key were skipped (a rewritten key would get version 1).
    #[test]
    fn a_put_finds_the_newest_version_wherever_its_key_falls_in_the_spans() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            background: BackgroundMode::Inline,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).unwrap();
        let (b, d) = (db.put(b"b", b"1").unwrap(), db.put(b"d", b"1").unwrap());
        db.flush().unwrap();
        let (f, h) = (db.put(b"f", b"1").unwrap(), db.put(b"h", b"1").unwrap());
        let mut batch = WriteBatch::new();
        for key in [&b"a"[..], b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i"] {
            batch.put(key, b"2");
        }
        let second = db.write(batch).unwrap();
        let meta = |key: &[u8]| {
            let v = db.get_versioned(key).unwrap().unwrap();
            (v.create_revision, v.version)
        };
        for (key, created) in [(&b"b"[..], b), (b"d", d), (b"f", f), (b"h", h)] {
            assert_eq!(meta(key), (created, 2), "{key:?}");
        }
        for key in [&b"a"[..], b"c", b"e", b"g", b"i"] {
            assert_eq!(meta(key), (second, 1), "{key:?}");
        }
    }
}
