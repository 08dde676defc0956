//! etcd's rules for the keys a request names, and the engine's versions as `mvccpb::KeyValue`.
//!
//! A request names keys with `key` and `range_end` (etcd's `mkGteRange`):
//! - `range_end` empty: the one key `key`;
//! - `range_end` = `"\0"`: every key at or after `key`;
//! - otherwise `[key, range_end)`, which holds no key when `range_end <= key`.
//!
//! Invariants: [`Keys::Empty`] is returned exactly when the range holds no possible key, so
//! callers never hand the engine an inverted range.

use std::ops::Bound;

use kvstore::{KeyRange, Versioned};

use crate::identity::wire_i64;
use crate::proto::mvccpb::KeyValue;

/// The keys a request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Keys {
    /// A range that may hold keys.
    Range(KeyRange),
    /// `[key, range_end)` with `range_end <= key`: no key.
    Empty,
}

/// The keys `key` and `range_end` name (see the module doc).
pub(crate) fn keys(key: &[u8], range_end: &[u8]) -> Keys {
    match range_end {
        [] => Keys::Range(KeyRange::key(key)),
        [0] => Keys::Range(KeyRange::new(
            Bound::Included(key.to_vec()),
            Bound::Unbounded,
        )),
        end if end <= key => Keys::Empty,
        end => Keys::Range(KeyRange::new(
            Bound::Included(key.to_vec()),
            Bound::Excluded(end.to_vec()),
        )),
    }
}

/// `key` at version `v` as etcd sends it (revisions on the wire, see [`crate::revision`]);
/// `keys_only` leaves the value out.
pub(crate) fn key_value(key: Vec<u8>, v: Versioned, keys_only: bool) -> KeyValue {
    KeyValue {
        key,
        create_revision: crate::revision::wire(v.create_revision),
        mod_revision: crate::revision::wire(v.revision),
        version: wire_i64(v.version),
        value: if keys_only { Vec::new() } else { v.value },
        lease: wire_i64(v.lease),
    }
}

/// A lease id from the wire: `None` for 0 or a negative id, which no lease has (the engine's
/// ids are `1..=i64::MAX`).
pub(crate) fn lease_id(id: i64) -> Option<u64> {
    u64::try_from(id).ok().filter(|&id| id != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_range_rules() {
        assert_eq!(keys(b"a", b""), Keys::Range(KeyRange::key(b"a")));
        let from = keys(b"a", b"\0");
        let Keys::Range(from) = from else {
            panic!("from-key is a range")
        };
        assert!(from.contains(b"a") && from.contains(b"zzz") && !from.contains(b"\x00"));
        let Keys::Range(half_open) = keys(b"a", b"c") else {
            panic!("a..c is a range")
        };
        assert!(half_open.contains(b"b") && !half_open.contains(b"c"));
        assert_eq!(keys(b"c", b"a"), Keys::Empty);
        assert_eq!(keys(b"c", b"c"), Keys::Empty);
        let Keys::Range(all) = keys(b"\0", b"\0") else {
            panic!("everything is a range")
        };
        assert!(all.contains(b"\x00") && all.contains(b"\xff"));
    }

    #[test]
    fn lease_ids() {
        assert_eq!(lease_id(0), None);
        assert_eq!(lease_id(-5), None);
        assert_eq!(lease_id(7), Some(7));
    }
}
