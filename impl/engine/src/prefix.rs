//! [`KeyPrefixes`]: binary search over a sorted list of keys that compares an 8-byte prefix of
//! each key, held in one contiguous array, before touching the key itself.
//!
//! A point read searches the index of every table it consults and the file list of every level;
//! keys live in separate heap allocations, so a plain binary search takes a cache miss (and an
//! out-of-line `memcmp`) at every step. Here each step loads a `u64` from one array; the full key
//! is read only when two prefixes are equal.
//!
//! Invariants:
//! - [`key_prefix`] is monotone: `key_prefix(a) < key_prefix(b)` implies `a < b` (bytewise), so
//!   an unequal prefix decides the comparison and an equal one defers to the full keys.
//! - A `KeyPrefixes` is built from the list it searches and never outlives a change to it.

use std::cmp::Ordering;

/// The first 8 bytes of `key` as a big-endian integer, zero-padded: order-preserving, see the
/// module invariants.
pub fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (slot, byte) in bytes.iter_mut().zip(key) {
        *slot = *byte;
    }
    u64::from_be_bytes(bytes)
}

/// The prefixes of a sorted list of keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPrefixes {
    prefixes: Vec<u64>,
}

impl KeyPrefixes {
    /// The prefixes of `keys`, which must be sorted.
    pub fn new<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Self {
        KeyPrefixes {
            prefixes: keys.map(key_prefix).collect(),
        }
    }

    /// How many keys compare `Less` than `key`, or `Less`/`Equal` when `or_equal`: the
    /// `partition_point` of the list for that predicate. `full(i)` is the `i`-th key of the list.
    pub fn count_below<'a>(
        &self,
        key: &[u8],
        or_equal: bool,
        full: impl Fn(usize) -> &'a [u8],
    ) -> usize {
        let probe = key_prefix(key);
        let below = |i: usize, prefix: u64| match prefix.cmp(&probe) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => match full(i).cmp(key) {
                Ordering::Less => true,
                Ordering::Equal => or_equal,
                Ordering::Greater => false,
            },
        };
        let (mut lo, mut hi) = (0usize, self.prefixes.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let prefix = self.prefixes.get(mid).copied().unwrap_or(u64::MAX);
            if below(mid, prefix) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The prefix search equals a plain binary search on any sorted keys, short, long, with
        /// shared prefixes and zero bytes.
        #[test]
        fn agrees_with_partition_point(
            keys in prop::collection::btree_set(prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x61, 0xff]), 0..12), 0..40),
            probe in prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x61, 0xff]), 0..12),
        ) {
            let keys: Vec<Vec<u8>> = keys.into_iter().collect();
            let search = KeyPrefixes::new(keys.iter().map(Vec::as_slice));
            let full = |i: usize| keys[i].as_slice();
            prop_assert_eq!(
                search.count_below(&probe, false, full),
                keys.partition_point(|k| k.as_slice() < probe.as_slice())
            );
            prop_assert_eq!(
                search.count_below(&probe, true, full),
                keys.partition_point(|k| k.as_slice() <= probe.as_slice())
            );
        }
    }

    #[test]
    fn prefixes_preserve_order() {
        assert!(key_prefix(b"") < key_prefix(b"\x01"));
        assert_eq!(key_prefix(b"ab"), key_prefix(b"ab\0"));
        assert!(key_prefix(b"k_0000001") == key_prefix(b"k_0000002"));
        assert!(key_prefix(b"k_000001") < key_prefix(b"k_000002"));
    }
}
