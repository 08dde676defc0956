//! [`LeaseTable`]: the granted leases, their deadlines and the live keys attached to each, as the
//! commit pipeline's writer sees them (applied commits, under the writer lock).
//!
//! Invariants:
//! - `attached[key] = id` iff `key` is in `leases[id].keys`: the key's newest applied version is
//!   live and names lease `id`. `leases[id].key_bytes` is the sum of `key.len() + 8` over its
//!   keys, at most [`LEASE_KEY_BYTES_MAX`], and it has at most `WAL_BATCH_OPS_MAX` keys, so its
//!   revocation always fits one WAL record.
//! - `by_deadline` holds `(deadline, id)` for exactly the granted leases.
//! - `next_id` is above every id granted since the table was built (auto ids never repeat one
//!   in a process).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::format::manifest::LeaseMeta;
use crate::format::wal::{WAL_BATCH_OPS_MAX, WalBody};

use super::{LEASE_ID_MAX, LEASE_KEY_BYTES_MAX, LeaseStatus};

/// Bytes counted per attached key besides the key itself (its share of a revoke record).
const KEY_FRAMING_BYTES: usize = 8;

/// One granted lease.
#[derive(Debug)]
struct Lease {
    ttl_ms: u64,
    deadline_ms: u64,
    keys: BTreeSet<Vec<u8>>,
    key_bytes: usize,
}

/// What a logged record does to the lease table besides its keys' versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseEffect {
    /// Nothing.
    None,
    /// Grants `lease` for `ttl_ms`.
    Grant { lease: u64, ttl_ms: u64 },
    /// Revokes `lease` (its keys' tombstones come with the record).
    Revoke { lease: u64 },
}

impl LeaseEffect {
    /// The effect of a record with `body`.
    pub(crate) fn of(body: &WalBody) -> LeaseEffect {
        match body {
            WalBody::LeaseGrant { lease, ttl_ms } => LeaseEffect::Grant {
                lease: *lease,
                ttl_ms: *ttl_ms,
            },
            WalBody::LeaseRevoke { lease, .. } => LeaseEffect::Revoke { lease: *lease },
            WalBody::Put { .. } | WalBody::Delete { .. } | WalBody::Batch(_) => LeaseEffect::None,
        }
    }
}

/// See the module doc.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    leases: BTreeMap<u64, Lease>,
    by_deadline: BTreeSet<(u64, u64)>,
    attached: FxHashMap<Vec<u8>, u64>,
    next_id: u64,
}

impl LeaseTable {
    /// The table of `granted` leases, none with keys, each with its whole TTL from `now_ms`.
    pub(crate) fn new(granted: &[LeaseMeta], now_ms: u64) -> LeaseTable {
        let mut table = LeaseTable::default();
        for lease in granted {
            table.grant(lease.id, lease.ttl_ms, now_ms);
        }
        table
    }

    /// Whether no lease is granted.
    pub(crate) fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Whether `id` is granted.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.leases.contains_key(&id)
    }

    /// The granted leases, by id, as the manifest records them.
    pub(crate) fn granted(&self) -> Arc<[LeaseMeta]> {
        self.leases
            .iter()
            .map(|(&id, lease)| LeaseMeta {
                id,
                ttl_ms: lease.ttl_ms,
            })
            .collect()
    }

    /// The granted ids, ascending.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.leases.keys().copied().collect()
    }

    /// An id no granted lease has, for a grant that lets the engine choose.
    pub(crate) fn unused_id(&self) -> Result<u64> {
        let mut id = self.next_id.max(1);
        while self.leases.contains_key(&id) {
            id = id.saturating_add(1);
        }
        if id > LEASE_ID_MAX {
            return Err(Error::InvalidArgument(
                "every lease id up to LEASE_ID_MAX is taken".to_owned(),
            ));
        }
        Ok(id)
    }

    /// Refuses a put attaching `key` to `lease` unless the lease is granted and its keys,
    /// with `pending` more bytes and keys already decided for it (`(bytes, keys)`), stay
    /// within one revocation record. Returns the bytes and keys the put adds.
    pub(crate) fn check_attach(
        &self,
        lease: u64,
        key: &[u8],
        pending: (usize, usize),
    ) -> Result<(usize, usize)> {
        let granted = self
            .leases
            .get(&lease)
            .ok_or(Error::LeaseNotFound { id: lease })?;
        if granted.keys.contains(key) {
            return Ok((0, 0));
        }
        let bytes = key.len().saturating_add(KEY_FRAMING_BYTES);
        let total_bytes = granted
            .key_bytes
            .saturating_add(pending.0)
            .saturating_add(bytes);
        let total_keys = granted
            .keys
            .len()
            .saturating_add(pending.1)
            .saturating_add(1);
        if total_bytes > LEASE_KEY_BYTES_MAX || total_keys > WAL_BATCH_OPS_MAX {
            return Err(Error::InvalidArgument(format!(
                "lease {lease} would hold {total_keys} keys of {total_bytes} bytes, more than one \
                 revocation may delete (LEASE_KEY_BYTES_MAX = {LEASE_KEY_BYTES_MAX} bytes, \
                 WAL_BATCH_OPS_MAX = {WAL_BATCH_OPS_MAX} keys)"
            )));
        }
        Ok((bytes, 1))
    }

    /// The live keys attached to `lease`, ascending; `None` if it is not granted.
    pub(crate) fn keys_of(&self, lease: u64) -> Option<Vec<Vec<u8>>> {
        Some(self.leases.get(&lease)?.keys.iter().cloned().collect())
    }

    /// Whether `lease` is granted and its deadline is at or before `now_ms`.
    pub(crate) fn is_due(&self, lease: u64, now_ms: u64) -> bool {
        self.leases
            .get(&lease)
            .is_some_and(|l| l.deadline_ms <= now_ms)
    }

    /// The granted leases whose deadline is at or before `now_ms`, earliest first.
    pub(crate) fn due(&self, now_ms: u64) -> Vec<u64> {
        self.by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|&(_, id)| id)
            .collect()
    }

    /// Refreshes `lease`'s deadline to its whole TTL from `now_ms`; returns the TTL. An expired
    /// lease (deadline passed, revocation pending) is not found, as in etcd.
    pub(crate) fn keep_alive(&mut self, lease: u64, now_ms: u64) -> Result<u64> {
        let granted = self
            .leases
            .get_mut(&lease)
            .filter(|l| l.deadline_ms > now_ms)
            .ok_or(Error::LeaseNotFound { id: lease })?;
        self.by_deadline.remove(&(granted.deadline_ms, lease));
        granted.deadline_ms = now_ms.saturating_add(granted.ttl_ms);
        self.by_deadline.insert((granted.deadline_ms, lease));
        Ok(granted.ttl_ms)
    }

    /// What [`crate::Db::time_to_live`] reports of `lease` at `now_ms`.
    pub(crate) fn status(&self, lease: u64, now_ms: u64) -> Option<LeaseStatus> {
        let granted = self.leases.get(&lease)?;
        Some(LeaseStatus {
            id: lease,
            granted_ttl: Duration::from_millis(granted.ttl_ms),
            remaining: Duration::from_millis(granted.deadline_ms.saturating_sub(now_ms)),
            keys: granted.keys.iter().cloned().collect(),
        })
    }

    /// Applies a logged record: its `entries` (the versions it wrote, in op order) attach or
    /// detach their keys, then its `effect` grants or revokes (a grant's deadline counted from
    /// `now_ms`).
    pub(crate) fn apply(&mut self, effect: LeaseEffect, entries: &[Entry], now_ms: u64) {
        self.attach(entries);
        match effect {
            LeaseEffect::None => {}
            LeaseEffect::Grant { lease, ttl_ms } => self.grant(lease, ttl_ms, now_ms),
            LeaseEffect::Revoke { lease } => self.revoke(lease),
        }
    }

    /// Attaches `key`, live and naming `lease` in its newest version, as recovery finds it;
    /// `false` if `lease` is not granted (the invariant of the module [`crate::lease`] broke).
    pub(crate) fn attach_recovered(&mut self, key: &[u8], lease: u64) -> bool {
        let Some(granted) = self.leases.get_mut(&lease) else {
            return false;
        };
        if granted.keys.insert(key.to_vec()) {
            granted.key_bytes = granted
                .key_bytes
                .saturating_add(key.len().saturating_add(KEY_FRAMING_BYTES));
            self.attached.insert(key.to_vec(), lease);
        }
        true
    }

    /// Attaches each entry's key to the lease its version names (a tombstone or lease 0:
    /// none), detaching it from the one before.
    fn attach(&mut self, entries: &[Entry]) {
        if self.attached.is_empty() && entries.iter().all(|e| e.meta.lease == 0) {
            return;
        }
        for entry in entries {
            let lease = if entry.is_tombstone() {
                0
            } else {
                entry.meta.lease
            };
            if let Some(old) = self.attached.remove(&entry.key)
                && let Some(granted) = self.leases.get_mut(&old)
                && granted.keys.remove(&entry.key)
            {
                granted.key_bytes = granted
                    .key_bytes
                    .saturating_sub(entry.key.len().saturating_add(KEY_FRAMING_BYTES));
            }
            if let Some(granted) = self.leases.get_mut(&lease)
                && granted.keys.insert(entry.key.clone())
            {
                granted.key_bytes = granted
                    .key_bytes
                    .saturating_add(entry.key.len().saturating_add(KEY_FRAMING_BYTES));
                self.attached.insert(entry.key.clone(), lease);
            }
        }
    }

    fn grant(&mut self, lease: u64, ttl_ms: u64, now_ms: u64) {
        let deadline_ms = now_ms.saturating_add(ttl_ms);
        if let Some(old) = self.leases.insert(
            lease,
            Lease {
                ttl_ms,
                deadline_ms,
                keys: BTreeSet::new(),
                key_bytes: 0,
            },
        ) {
            // Not reached: a grant of a granted id is refused before it is logged.
            self.by_deadline.remove(&(old.deadline_ms, lease));
        }
        self.by_deadline.insert((deadline_ms, lease));
        self.next_id = self.next_id.max(lease.saturating_add(1));
    }

    fn revoke(&mut self, lease: u64) {
        if let Some(granted) = self.leases.remove(&lease) {
            self.by_deadline.remove(&(granted.deadline_ms, lease));
            for key in &granted.keys {
                self.attached.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::VersionMeta;

    fn version(key: &[u8], lease: u64) -> Entry {
        Entry {
            key: key.to_vec(),
            revision: 1,
            meta: VersionMeta::after_put(None, 1, lease),
            value: Some(Vec::new()),
            wal_offset: 0,
            created_at_ms: 0,
        }
    }

    fn tombstone(key: &[u8]) -> Entry {
        Entry {
            value: None,
            meta: VersionMeta::TOMBSTONE,
            ..version(key, 0)
        }
    }

    #[test]
    fn keys_move_between_leases_and_leave_on_delete_and_revoke() {
        let mut t = LeaseTable::new(&[LeaseMeta { id: 1, ttl_ms: 10 }], 100);
        t.apply(
            LeaseEffect::Grant {
                lease: 2,
                ttl_ms: 5,
            },
            &[],
            100,
        );
        t.apply(
            LeaseEffect::None,
            &[version(b"a", 1), version(b"b", 1)],
            101,
        );
        assert_eq!(t.keys_of(1).unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        t.apply(LeaseEffect::None, &[version(b"a", 2)], 102);
        t.apply(LeaseEffect::None, &[tombstone(b"b")], 102);
        assert_eq!(t.keys_of(1).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(t.keys_of(2).unwrap(), vec![b"a".to_vec()]);
        t.apply(LeaseEffect::None, &[version(b"a", 0)], 103);
        assert_eq!(t.keys_of(2).unwrap(), Vec::<Vec<u8>>::new());
        t.apply(LeaseEffect::None, &[version(b"c", 2)], 103);
        t.apply(LeaseEffect::Revoke { lease: 2 }, &[tombstone(b"c")], 104);
        assert!(!t.contains(2));
        assert!(t.attached.is_empty());
        assert_eq!(t.granted().to_vec(), vec![LeaseMeta { id: 1, ttl_ms: 10 }]);
    }

    #[test]
    fn deadlines_expire_and_keep_alive_refreshes_only_live_leases() {
        let mut t = LeaseTable::new(&[], 0);
        t.apply(
            LeaseEffect::Grant {
                lease: 5,
                ttl_ms: 10,
            },
            &[],
            0,
        );
        t.apply(
            LeaseEffect::Grant {
                lease: 6,
                ttl_ms: 20,
            },
            &[],
            0,
        );
        assert_eq!(t.due(9), Vec::<u64>::new());
        assert_eq!(t.keep_alive(5, 9).unwrap(), 10);
        assert_eq!(t.due(18), Vec::<u64>::new());
        assert_eq!(t.due(20), vec![5, 6]);
        assert!(t.is_due(5, 19) && !t.is_due(6, 19));
        assert!(matches!(
            t.keep_alive(5, 19),
            Err(Error::LeaseNotFound { id: 5 })
        ));
        assert_eq!(t.status(6, 15).unwrap().remaining, Duration::from_millis(5));
        assert_eq!(t.unused_id().unwrap(), 7);
    }

    #[test]
    fn attaching_past_one_revocation_record_is_refused() {
        let t = LeaseTable::new(&[LeaseMeta { id: 1, ttl_ms: 10 }], 0);
        assert!(matches!(
            t.check_attach(9, b"k", (0, 0)),
            Err(Error::LeaseNotFound { id: 9 })
        ));
        assert_eq!(t.check_attach(1, b"k", (0, 0)).unwrap(), (9, 1));
        assert!(matches!(
            t.check_attach(1, b"k", (LEASE_KEY_BYTES_MAX, 0)),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            t.check_attach(1, b"k", (0, WAL_BATCH_OPS_MAX)),
            Err(Error::InvalidArgument(_))
        ));
    }
}
