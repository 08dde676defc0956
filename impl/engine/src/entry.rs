//! [`Entry`]: one version of one key, the unit every engine layer (memtable, SST, merge,
//! compaction) passes around, and [`VersionMeta`], etcd's metadata of a version.
//!
//! Invariants:
//! - `value == None` is a tombstone: the key was deleted at `revision`; its metadata is
//!   [`VersionMeta::TOMBSTONE`].
//! - A value's `meta.version >= 1` and `1 <= meta.create_revision <= revision`.
//! - Within one source (a memtable, one SST) a key has at most one version per revision, and
//!   versions come sorted by key in the scan's direction and, within a key, newest first
//!   (forward) or oldest first (reverse).
//! - Revisions are global and strictly increasing per commit, so of two versions of a key the one
//!   with the higher revision is the newer one, whichever source holds it.
//!
//! The engine's unit is not the SST codec's struct ([`crate::format::sst::Entry`]): a field the
//! engine keeps in memory need not change the format, and the SST reader and writer are the only
//! places that convert.

use crate::format::sst::EntryRef;

/// Bytes counted per entry on top of its key and value: revision, metadata, WAL offset and
/// timestamp as they are held in memory and, roughly, on disk.
pub const ENTRY_OVERHEAD_BYTES: u64 = 6 * 8;

/// etcd's metadata of one version of a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionMeta {
    /// Revision of the commit that created the key (its first put since it last did not exist).
    pub create_revision: u64,
    /// Puts since that creation, 1 for the creating one; a delete resets it.
    pub version: u64,
    /// The lease the key is attached to (0: none).
    pub lease: u64,
}

impl VersionMeta {
    /// The metadata of a tombstone: etcd reports a deleted key with all three 0.
    pub const TOMBSTONE: VersionMeta = VersionMeta {
        create_revision: 0,
        version: 0,
        lease: 0,
    };

    /// The metadata an SST entry carries.
    pub fn of_sst(e: &EntryRef<'_>) -> VersionMeta {
        VersionMeta {
            create_revision: e.create_revision,
            version: e.version,
            lease: e.lease,
        }
    }

    /// The metadata of a key's first version at `revision`: a creating put, or a tombstone.
    pub fn first(is_value: bool, revision: u64) -> VersionMeta {
        if is_value {
            VersionMeta::after_put(None, revision, 0)
        } else {
            VersionMeta::TOMBSTONE
        }
    }

    /// The metadata of a put at `revision` with `lease` over `previous`, the key's newest
    /// version before it (`None` or a tombstone: the put creates the key).
    pub fn after_put(previous: Option<&VersionMeta>, revision: u64, lease: u64) -> VersionMeta {
        match previous.filter(|p| p.version > 0) {
            Some(p) => VersionMeta {
                create_revision: p.create_revision,
                version: p.version.saturating_add(1),
                lease,
            },
            None => VersionMeta {
                create_revision: revision,
                version: 1,
                lease,
            },
        }
    }
}

/// One version of a key as the engine holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The revision of the commit that wrote it (etcd's `mod_revision`).
    pub revision: u64,
    /// Create revision, version and lease.
    pub meta: VersionMeta,
    /// Logical WAL offset of the record that wrote it.
    pub wal_offset: u64,
    /// Commit time, unix milliseconds.
    pub created_at_ms: u64,
}

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

    /// The SST codec's borrowed view of this entry (what the table writer encodes).
    pub fn as_sst(&self) -> EntryRef<'_> {
        EntryRef {
            key: &self.key,
            value: self.value.as_deref(),
            revision: self.revision,
            create_revision: self.meta.create_revision,
            version: self.meta.version,
            lease: self.meta.lease,
            wal_offset: self.wal_offset,
            created_at_ms: self.created_at_ms,
        }
    }

    /// The engine entry of a decoded SST entry (copies its key and value).
    pub fn from_sst(e: EntryRef<'_>) -> Entry {
        Entry {
            key: e.key.to_vec(),
            value: e.value.map(<[u8]>::to_vec),
            revision: e.revision,
            meta: VersionMeta::of_sst(&e),
            wal_offset: e.wal_offset,
            created_at_ms: e.created_at_ms,
        }
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
            meta: VersionMeta::after_put(None, 1, 0),
            wal_offset: 0,
            created_at_ms: 0,
        };
        assert_eq!(e.size_bytes(), 8 + ENTRY_OVERHEAD_BYTES);
        assert!(!e.is_tombstone());
        e.value = None;
        assert_eq!(e.size_bytes(), 3 + ENTRY_OVERHEAD_BYTES);
        assert!(e.is_tombstone());
    }

    #[test]
    fn puts_count_versions_and_a_delete_resets_them() {
        let created = VersionMeta::after_put(None, 4, 0);
        assert_eq!((created.create_revision, created.version), (4, 1));
        let second = VersionMeta::after_put(Some(&created), 9, 7);
        assert_eq!(
            (second.create_revision, second.version, second.lease),
            (4, 2, 7)
        );
        let recreated = VersionMeta::after_put(Some(&VersionMeta::TOMBSTONE), 12, 0);
        assert_eq!((recreated.create_revision, recreated.version), (12, 1));
    }

    #[test]
    fn sst_conversion_round_trips() {
        let e = Entry {
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
            revision: 9,
            meta: VersionMeta {
                create_revision: 4,
                version: 2,
                lease: 7,
            },
            wal_offset: 3,
            created_at_ms: 11,
        };
        assert_eq!(Entry::from_sst(e.as_sst()), e);
        assert_eq!(Entry::from_sst(e.as_sst().to_entry().as_ref()), e);
    }
}
