//! Key ranges and scan direction: what a scan covers and in which order it walks.
//!
//! Invariants:
//! - A [`KeyRange`] is a pair of standard [`Bound`]s over byte strings compared bytewise; a key is
//!   in the range iff it is at or after `start` and at or before `end` (each inclusive or not).
//! - `KeyRange::prefix(p)` holds exactly the keys starting with `p`: it is
//!   `[p, prefix_successor(p))`, unbounded above when no successor exists (`p` all `0xFF` or empty).

use std::cmp::Ordering;
use std::ops::Bound;

/// The order a scan yields keys in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending bytewise key order.
    #[default]
    Forward,
    /// Descending bytewise key order.
    Reverse,
}

impl Direction {
    /// Orders `a` against `b` in this direction: `Less` means `a` is yielded first.
    pub fn cmp_keys(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Direction::Forward => a.cmp(b),
            Direction::Reverse => b.cmp(a),
        }
    }
}

/// A range of keys with inclusive, exclusive or no bounds on each side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

/// Where a key falls relative to a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Before the lower bound.
    Below,
    /// Inside the range.
    Inside,
    /// After the upper bound.
    Above,
}

impl KeyRange {
    /// Exactly `key`.
    pub fn key(key: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(key.to_vec()),
            end: Bound::Included(key.to_vec()),
        }
    }

    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// The range from `start` to `end` with the given bounds.
    pub fn new(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        KeyRange { start, end }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let start = if prefix.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(prefix.to_vec())
        };
        let end = prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        KeyRange { start, end }
    }

    /// Where `key` falls relative to this range.
    pub fn position(&self, key: &[u8]) -> Position {
        let below = match &self.start {
            Bound::Included(s) => key < s.as_slice(),
            Bound::Excluded(s) => key <= s.as_slice(),
            Bound::Unbounded => false,
        };
        if below {
            return Position::Below;
        }
        let above = match &self.end {
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
            Bound::Unbounded => false,
        };
        if above {
            Position::Above
        } else {
            Position::Inside
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.position(key) == Position::Inside
    }

    /// Whether some key in `smallest..=largest` (both inclusive) may lie in this range.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        debug_assert!(smallest <= largest, "REQUIRES: smallest <= largest");
        self.position(largest) != Position::Below && self.position(smallest) != Position::Above
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (`prefix` is empty or all `0xFF`): drop trailing `0xFF` bytes, increment the last.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut succ: Vec<u8> = prefix
        .iter()
        .take(keep.saturating_add(1))
        .copied()
        .collect();
    if let Some(last) = succ.last_mut() {
        *last = last.checked_add(1)?;
    }
    Some(succ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn successor_of_plain_prefix_increments_last_byte() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[0x00]), Some(vec![0x01]));
    }

    #[test]
    fn successor_strips_trailing_ff() {
        assert_eq!(prefix_successor(&[0x61, 0xFF, 0xFF]), Some(vec![0x62]));
        assert_eq!(
            prefix_successor(&[0x61, 0xFE, 0xFF]),
            Some(vec![0x61, 0xFF])
        );
    }

    #[test]
    fn all_ff_and_empty_prefixes_are_unbounded() {
        assert_eq!(prefix_successor(&[]), None);
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[0xFF, 0xFF, 0xFF]), None);
        assert_eq!(KeyRange::prefix(&[0xFF]).end, Bound::Unbounded);
        assert_eq!(KeyRange::prefix(b""), KeyRange::all());
    }

    #[test]
    fn position_respects_inclusive_and_exclusive_bounds() {
        let r = KeyRange::new(
            Bound::Excluded(b"b".to_vec()),
            Bound::Included(b"d".to_vec()),
        );
        assert_eq!(r.position(b"a"), Position::Below);
        assert_eq!(r.position(b"b"), Position::Below);
        assert_eq!(r.position(b"b\0"), Position::Inside);
        assert_eq!(r.position(b"d"), Position::Inside);
        assert_eq!(r.position(b"d\0"), Position::Above);
        assert!(r.overlaps(b"a", b"b\0"));
        assert!(!r.overlaps(b"a", b"b"));
        assert!(!r.overlaps(b"e", b"f"));
    }

    #[test]
    fn reverse_direction_flips_order() {
        assert_eq!(Direction::Forward.cmp_keys(b"a", b"b"), Ordering::Less);
        assert_eq!(Direction::Reverse.cmp_keys(b"a", b"b"), Ordering::Greater);
    }

    proptest! {
        /// The prefix range holds exactly the keys that start with the prefix.
        #[test]
        fn prefix_range_is_exactly_the_prefixed_keys(
            prefix in prop::collection::vec(prop_oneof![Just(0xFFu8), Just(0u8), any::<u8>()], 0..4),
            key in prop::collection::vec(prop_oneof![Just(0xFFu8), Just(0u8), any::<u8>()], 0..6),
        ) {
            let range = KeyRange::prefix(&prefix);
            prop_assert_eq!(range.contains(&key), key.starts_with(&prefix));
        }
    }
}
