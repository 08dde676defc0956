//! The candidates of a search, read from the postings and the unpersisted changes under the
//! index's state lock, and the predicates that verify them.
//!
//! Invariants:
//! - [`Candidates::keys`] holds every key live at [`Candidates::revision`] that shares at least
//!   the asked number of distinct grams, plus possibly other live keys (changed since the
//!   postings' revision, or under a long-key prefix once expanded); never a key that is not live
//!   there. So filtering them by the exact predicate answers what a scan at that revision would.
//! - The state lock is held while the postings are read (the observer waits meanwhile), so the
//!   postings and the pending changes are of one moment.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::ScanOptions;
use crate::error::Result;

use super::distance;
use super::gram::{self, Gram};
use super::layout::{long_prefix, marked_prefix, posted_key, posting_prefix};
use super::maintain::KeyIndex;

/// What the index offers a search at one main revision.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// The main revision the candidates are live at: the newest the index was told of.
    pub(crate) revision: u64,
    /// The candidate keys (see the module doc), in key order.
    pub(crate) keys: BTreeSet<Vec<u8>>,
    /// Prefixes of keys too long to post: every live key under one is a candidate too.
    pub(crate) long_prefixes: Vec<Vec<u8>>,
}

impl KeyIndex {
    /// The live keys holding every gram of `substr` (`substr.len() >= GRAM_LEN`).
    pub(crate) fn contains_candidates(&self, substr: &[u8]) -> Result<Candidates> {
        debug_assert!(substr.len() >= gram::GRAM_LEN);
        let grams = gram::distinct(substr);
        let all = grams.len();
        self.candidates(&grams, all)
    }

    /// The live keys sharing enough grams with `word` to be within `max_distance` of it; `None`
    /// when the q-gram bound is 0 (every key must be checked).
    pub(crate) fn fuzzy_candidates(
        &self,
        word: &[u8],
        max_distance: usize,
    ) -> Result<Option<Candidates>> {
        match gram::shared_grams_min(word, max_distance) {
            0 => Ok(None),
            shared => self.candidates(&gram::distinct(word), shared).map(Some),
        }
    }

    /// The posted keys holding at least `shared` of `grams`, with the pending changes applied.
    fn candidates(&self, grams: &BTreeSet<Gram>, shared: usize) -> Result<Candidates> {
        let state = self.state()?;
        let changed: BTreeMap<&[u8], bool> = state
            .pending
            .iter()
            .flat_map(|(_, changes)| changes.iter().map(|(k, live)| (k.as_slice(), *live)))
            .collect();
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for gram in grams {
            let postings = self
                .db
                .scan_prefix(&posting_prefix(gram), ScanOptions::default())?;
            for posting in postings.keys() {
                let posting = posting?;
                let key = posted_key(&posting);
                if !changed.contains_key(key) {
                    let count = counts.entry(key.to_vec()).or_default();
                    *count = count.saturating_add(1);
                }
            }
        }
        let mut keys: BTreeSet<Vec<u8>> = counts
            .into_iter()
            .filter(|(_, count)| *count >= shared)
            .map(|(key, _)| key)
            .collect();
        keys.extend(
            changed
                .into_iter()
                .filter(|(_, live)| *live)
                .map(|(key, _)| key.to_vec()),
        );
        let long_prefixes = self
            .db
            .scan_prefix(&long_prefix(), ScanOptions::default())?
            .keys()
            .map(|marker| marker.map(|m| marked_prefix(&m).to_vec()))
            .collect::<Result<_>>()?;
        Ok(Candidates {
            revision: state.told,
            keys,
            long_prefixes,
        })
    }
}

/// Whether `key` holds `substr` as a byte substring (the empty one is in every key).
pub(crate) fn contains_matches(key: &[u8], substr: &[u8]) -> bool {
    substr.is_empty() || key.windows(substr.len()).any(|window| window == substr)
}

/// The edit distance of `key` from `word`, if at most `max_distance`.
pub(crate) fn fuzzy_matches(key: &[u8], word: &[u8], max_distance: usize) -> Option<usize> {
    distance::within(key, word, max_distance)
}
