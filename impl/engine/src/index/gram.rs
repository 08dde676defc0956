//! 3-grams of keys: the unit the index posts keys under.
//!
//! A key's grams are its 3-byte windows, bytes not characters, without padding: a key of `n >= 3`
//! bytes has `n - 2` windows (some may repeat), a key of fewer than 3 bytes has none.
//!
//! Invariants:
//! - If `s` is a byte substring of `key` and `s.len() >= GRAM_LEN`, every gram of `s` is a gram of
//!   `key` (a window of `s` is a window of `key`): the index may intersect the postings of `s`'s
//!   grams and lose no key containing `s`.
//! - One edit (insert, delete or substitute a byte) touches at most `GRAM_LEN` windows of a string,
//!   so a key within edit distance `k` of `w` has every distinct gram of `w` but at most
//!   `GRAM_LEN * k` of them (the q-gram lemma, counted over distinct grams: see
//!   [`shared_grams_min`]).

use std::collections::BTreeSet;

/// Bytes in a gram.
pub(crate) const GRAM_LEN: usize = 3;

/// One gram: three bytes of a key.
pub(crate) type Gram = [u8; GRAM_LEN];

/// Every window of `bytes`, in order, repeats included; none if it is shorter than a gram.
pub(crate) fn windows(bytes: &[u8]) -> impl Iterator<Item = Gram> + '_ {
    bytes
        .windows(GRAM_LEN)
        .filter_map(|window| Gram::try_from(window).ok())
}

/// The distinct grams of `bytes`, sorted.
pub(crate) fn distinct(bytes: &[u8]) -> BTreeSet<Gram> {
    windows(bytes).collect()
}

/// How many distinct grams of `word` a key within edit distance `max_distance` of it must share
/// with it, at least; `0` when the bound says nothing (every key must then be checked).
///
/// Each edit of the alignment destroys at most `GRAM_LEN` windows of `word`; a distinct gram is
/// missing from the key only if every window holding it was destroyed, so at most
/// `GRAM_LEN * max_distance` distinct grams go missing.
pub(crate) fn shared_grams_min(word: &[u8], max_distance: usize) -> usize {
    distinct(word)
        .len()
        .saturating_sub(GRAM_LEN.saturating_mul(max_distance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bytes_without_padding() {
        assert_eq!(windows(b"ab").count(), 0);
        assert_eq!(windows(b"abc").collect::<Vec<_>>(), vec![*b"abc"]);
        assert_eq!(windows(b"aaaa").collect::<Vec<_>>(), vec![*b"aaa", *b"aaa"]);
        assert_eq!(distinct(b"aaaa").len(), 1);
        // Bytes, not characters: "é" is two bytes.
        assert_eq!(windows("éa".as_bytes()).count(), 1);
    }

    #[test]
    fn the_lemma_bound_shrinks_with_the_distance() {
        assert_eq!(shared_grams_min(b"k_0000123", 0), 7 - 1);
        assert_eq!(shared_grams_min(b"abcdefgh", 1), 3);
        assert_eq!(shared_grams_min(b"abcdefgh", 2), 0);
        assert_eq!(shared_grams_min(b"ab", 0), 0);
    }
}
