//! [`Entry`]: one version of one key, the unit every engine layer (memtable, SST, merge,
//! compaction) passes around.
//!
//! Invariants:
//! - `value == None` is a tombstone: the key was deleted at `revision`.
//! - Within one source (a memtable snapshot, one SST) there is at most one entry per key, and
//!   entries come sorted by key in the scan's direction.
//! - Revisions are global and strictly increasing per commit, so of two versions of a key the one
//!   with the higher revision is the newer one, whichever source holds it.

/// Bytes counted per entry on top of its key and value: revision, WAL offset and timestamp as they
/// are held in memory and, roughly, on disk.
pub const ENTRY_OVERHEAD_BYTES: u64 = 3 * 8;

/// One version of a key as the engine stores it: the very struct an SST entry decodes to, so that
/// no layer converts between two shapes of the same thing.
pub use crate::format::sst::Entry;

impl Entry {
    /// Whether this version is a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Approximate bytes this entry occupies: key + value + [`ENTRY_OVERHEAD_BYTES`].
    pub fn size_bytes(&self) -> u64 {
        let value_len = self.value.as_ref().map_or(0, Vec::len);
        let payload = u64::try_from(self.key.len().saturating_add(value_len)).unwrap_or(u64::MAX);
        payload.saturating_add(ENTRY_OVERHEAD_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_key_value_and_overhead() {
        let mut e = Entry {
            key: b"abc".to_vec(),
            revision: 1,
            value: Some(b"12345".to_vec()),
            wal_offset: 0,
            created_at_ms: 0,
        };
        assert_eq!(e.size_bytes(), 8 + ENTRY_OVERHEAD_BYTES);
        assert!(!e.is_tombstone());
        e.value = None;
        assert_eq!(e.size_bytes(), 3 + ENTRY_OVERHEAD_BYTES);
        assert!(e.is_tombstone());
    }
}
