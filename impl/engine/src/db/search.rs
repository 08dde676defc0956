//! Contains and fuzzy key search ([`Db::search_contains`], [`Db::search_fuzzy`]): the key index's
//! candidates (see [`crate::index`]), verified with the exact predicate; a full scan when the
//! grams cannot narrow the search.
//!
//! Invariants:
//! - Every answer is what a scan of every live key filtered by the same predicate returns at one
//!   revision: the candidates' revision when the index answers, the scan's own otherwise.
//! - A search never writes; it pins the main database only to read under a long-key prefix.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::index::{Candidates, contains_matches, fuzzy_matches};
use crate::range::KeyRange;

use super::{Db, ScanOptions};

/// Shortest substring the index can narrow ([`Db::search_contains`] scans for shorter ones).
pub const SEARCH_GRAM_LEN: usize = crate::index::GRAM_LEN;

impl Db {
    /// The live keys holding `substr` as a byte substring, in key order, at most `limit` of
    /// them, as of one revision: exactly what a scan of every key filtered by that predicate
    /// returns there. Needs [`crate::Options::key_index`] ([`Error::InvalidArgument`] without
    /// it). A `substr` of at least [`SEARCH_GRAM_LEN`] bytes reads the postings of its 3-grams;
    /// a shorter one (no gram to look up) scans every key.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let options = kvstore::Options { key_index: true, ..kvstore::Options::default() };
    /// let db = kvstore::Db::open(dir.path(), options)?;
    /// for key in ["user/alice", "user/bob", "user/malice"] {
    ///     db.put(key.as_bytes(), b"")?;
    /// }
    /// let found = db.search_contains(b"lic", 10)?;
    /// assert_eq!(found, vec![b"user/alice".to_vec(), b"user/malice".to_vec()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn search_contains(&self, substr: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        let index = self.key_index()?;
        let matches = |key: &[u8]| contains_matches(key, substr);
        if substr.len() < SEARCH_GRAM_LEN {
            return self
                .scan_keys(|key| matches(key).then_some(()), limit)
                .map(|found| found.into_iter().map(|(key, ())| key).collect());
        }
        let keys = self.expand(index.contains_candidates(substr)?)?;
        Ok(keys
            .into_iter()
            .filter(|key| matches(key))
            .take(limit)
            .collect())
    }

    /// The live keys within Levenshtein distance `max_distance` (unit-cost byte insertions,
    /// deletions and substitutions) of `word`, each with its distance, ranked by distance then
    /// key, at most `limit` of them, as of one revision: exactly what a scan of every key with
    /// that predicate returns there. Needs [`crate::Options::key_index`]. Reads the postings of
    /// `word`'s 3-grams when a key that close must share some (the q-gram lemma: at least
    /// `distinct grams of word - 3 * max_distance`); scans every key when that bound is 0.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let options = kvstore::Options { key_index: true, ..kvstore::Options::default() };
    /// let db = kvstore::Db::open(dir.path(), options)?;
    /// for key in ["color", "colour", "collar", "dollar"] {
    ///     db.put(key.as_bytes(), b"")?;
    /// }
    /// let found = db.search_fuzzy(b"colour", 1, 10)?;
    /// assert_eq!(found, vec![(b"colour".to_vec(), 0), (b"color".to_vec(), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn search_fuzzy(
        &self,
        word: &[u8],
        max_distance: usize,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, usize)>> {
        let index = self.key_index()?;
        let distance = |key: &[u8]| fuzzy_matches(key, word, max_distance);
        let mut found = match index.fuzzy_candidates(word, max_distance)? {
            Some(candidates) => self
                .expand(candidates)?
                .into_iter()
                .filter_map(|key| distance(&key).map(|d| (key, d)))
                .collect(),
            None => self.scan_keys(distance, usize::MAX)?,
        };
        found.sort_by(|(a, da), (b, db)| da.cmp(db).then_with(|| a.cmp(b)));
        found.truncate(limit);
        Ok(found)
    }

    /// The key index, or why there is none.
    fn key_index(&self) -> Result<&crate::index::KeyIndex> {
        self.handle.index.get().map(AsRef::as_ref).ok_or_else(|| {
            Error::InvalidArgument(
                "search needs the key index: open the database with Options::key_index".to_owned(),
            )
        })
    }

    /// The candidates' keys with every live key (at their revision) under a long-key prefix.
    fn expand(&self, candidates: Candidates) -> Result<BTreeSet<Vec<u8>>> {
        let mut keys = candidates.keys;
        let at = ScanOptions {
            revision: Some(candidates.revision),
            ..ScanOptions::default()
        };
        for prefix in &candidates.long_prefixes {
            for key in self.scan(KeyRange::prefix(prefix), at)?.keys() {
                keys.insert(key?);
            }
        }
        Ok(keys)
    }

    /// The first `limit` live keys of a scan now for which `check` says something, in key
    /// order.
    fn scan_keys<T>(
        &self,
        check: impl Fn(&[u8]) -> Option<T>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>> {
        let mut found = Vec::new();
        for key in self.scan(KeyRange::all(), ScanOptions::default())?.keys() {
            if found.len() >= limit {
                break;
            }
            let key = key?;
            if let Some(t) = check(&key) {
                found.push((key, t));
            }
        }
        Ok(found)
    }
}
