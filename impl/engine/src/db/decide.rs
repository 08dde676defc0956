//! The **decide** stage of the commit pipeline: the version metadata each op of a commit gets,
//! as a pure function of what the key looked like before the commit.
//!
//! Invariants:
//! - Every op of one commit (a batch) is decided against the state *before* that commit: two ops
//!   on one key in one batch make one version (the later op's), whose `version` counts the
//!   commit once.
//! - A put over a live version keeps its `create_revision` and adds 1 to its `version`; a put
//!   over nothing or a tombstone creates the key (`create_revision` = the commit's revision,
//!   `version` 1); a put's version carries the put's lease (0: none); a delete, and each key a
//!   lease revocation deletes, gets [`VersionMeta::TOMBSTONE`].
//! - A put may name only a granted lease, and the keys attached to one lease stay within one
//!   revocation record ([`check_leases`], counting the chunk's earlier members, which may
//!   overcount a key put twice: a refusal near the limit, never an unencodable revocation).
//! - The same function runs at commit time and at WAL replay, so a recovered version carries
//!   exactly the metadata it was acknowledged with (replay sees the state before each record, by
//!   the prefix rule of recovery).
//! - Within a group, a later commit sees the earlier ones through [`Overlay`], before any of
//!   them reaches the memtable.

use rustc_hash::FxHashMap;

use crate::entry::VersionMeta;
use crate::error::Result;
use crate::format::wal::{BatchOp, WalBody};
use crate::lease::LeaseTable;

/// Metas of the newest version of keys written by commits decided but not yet applied, and the
/// key bytes and keys those commits attach to each lease.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    newest: FxHashMap<Vec<u8>, VersionMeta>,
    leased: FxHashMap<u64, (usize, usize)>,
}

impl Overlay {
    /// The newest meta of `key` among the decided commits, if one wrote it.
    pub(crate) fn get(&self, key: &[u8]) -> Option<VersionMeta> {
        self.newest.get(key).copied()
    }

    /// Records the metas decided for `body` (the later op of a key wins, as in the memtable).
    pub(crate) fn record(&mut self, body: &WalBody, metas: &[VersionMeta]) {
        for (key, meta) in op_keys(body).zip(metas) {
            self.newest.insert(key.to_vec(), *meta);
        }
        for (key, lease) in leased_puts(body) {
            let pending = self.leased.entry(lease).or_default();
            *pending = added(*pending, (key.len().saturating_add(8), 1));
        }
    }
}

fn added(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

/// The keys of `body`'s ops, in order.
fn op_keys(body: &WalBody) -> Box<dyn Iterator<Item = &[u8]> + '_> {
    match body {
        WalBody::Put { key, .. } | WalBody::Delete { key } => Box::new(std::iter::once(&key[..])),
        WalBody::Batch(ops) => Box::new(ops.iter().map(|op| match op {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => &key[..],
        })),
        WalBody::LeaseGrant { .. } => Box::new(std::iter::empty()),
        WalBody::LeaseRevoke { keys, .. } => Box::new(keys.iter().map(Vec::as_slice)),
    }
}

/// The `(key, lease)` of each put of `body` that names a lease.
fn leased_puts(body: &WalBody) -> Box<dyn Iterator<Item = (&[u8], u64)> + '_> {
    match body {
        WalBody::Put { key, lease, .. } if *lease != 0 => {
            Box::new(std::iter::once((&key[..], *lease)))
        }
        WalBody::Batch(ops) => Box::new(ops.iter().filter_map(|op| match op {
            BatchOp::Put { key, lease, .. } if *lease != 0 => Some((&key[..], *lease)),
            BatchOp::Put { .. } | BatchOp::Delete { .. } => None,
        })),
        _ => Box::new(std::iter::empty()),
    }
}

/// Refuses `body` if one of its puts names a lease `leases` does not hold, or would attach
/// more to a lease than one revocation may delete, counting what the chunk's earlier members
/// (`overlay`) and the body's earlier ops attach.
pub(crate) fn check_leases(body: &WalBody, leases: &LeaseTable, overlay: &Overlay) -> Result<()> {
    let mut pending: FxHashMap<u64, (usize, usize)> = FxHashMap::default();
    for (key, lease) in leased_puts(body) {
        let before = match pending.get(&lease) {
            Some(p) => *p,
            None => overlay.leased.get(&lease).copied().unwrap_or_default(),
        };
        let adds = leases.check_attach(lease, key, before)?;
        pending.insert(lease, added(before, adds));
    }
    Ok(())
}

/// The meta of each op of `body` committed at `revision`, in op order. `before(key)` is the meta
/// of the key's newest version before this commit (`None`: never written, or compacted away as
/// a bottommost tombstone, which reads the same).
pub(crate) fn metas(
    body: &WalBody,
    revision: u64,
    mut before: impl FnMut(&[u8]) -> Result<Option<VersionMeta>>,
) -> Result<Vec<VersionMeta>> {
    let put =
        |key: &[u8], lease: u64, before: &mut dyn FnMut(&[u8]) -> Result<Option<VersionMeta>>| {
            // Sabotage for negative controls (feature `failpoints`): decide against a stale, empty
            // view of the key (neither the memtable nor the tables consulted): every put creates it.
            fail::fail_point!("decide::stale_view", |_| Ok(VersionMeta::after_put(
                None, revision, lease
            )));
            Ok(VersionMeta::after_put(
                before(key)?.as_ref(),
                revision,
                lease,
            ))
        };
    match body {
        WalBody::Put { key, lease, .. } => Ok(vec![put(key, *lease, &mut before)?]),
        WalBody::Delete { .. } => Ok(vec![VersionMeta::TOMBSTONE]),
        WalBody::Batch(ops) => ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, lease, .. } => put(key, *lease, &mut before),
                BatchOp::Delete { .. } => Ok(VersionMeta::TOMBSTONE),
            })
            .collect(),
        WalBody::LeaseGrant { .. } => Ok(Vec::new()),
        WalBody::LeaseRevoke { keys, .. } => Ok(vec![VersionMeta::TOMBSTONE; keys.len()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8]) -> BatchOp {
        BatchOp::Put {
            key: key.to_vec(),
            value: b"v".to_vec(),
            lease: 0,
        }
    }

    #[test]
    fn ops_of_one_batch_are_decided_against_the_state_before_it() {
        let live = VersionMeta {
            create_revision: 3,
            version: 2,
            lease: 0,
        };
        let body = WalBody::Batch(vec![put(b"a"), put(b"a"), put(b"b")]);
        let got = metas(&body, 9, |k| Ok((k == b"a").then_some(live))).unwrap();
        let second = VersionMeta {
            create_revision: 3,
            version: 3,
            lease: 0,
        };
        assert_eq!(
            got,
            vec![second, second, VersionMeta::after_put(None, 9, 0)]
        );
    }

    #[test]
    fn the_overlay_keeps_the_later_op_of_a_key() {
        let body = WalBody::Batch(vec![put(b"a"), BatchOp::Delete { key: b"a".to_vec() }]);
        let decided = metas(&body, 4, |_| Ok(None)).unwrap();
        let mut overlay = Overlay::default();
        overlay.record(&body, &decided);
        assert_eq!(overlay.get(b"a"), Some(VersionMeta::TOMBSTONE));
        assert_eq!(overlay.get(b"b"), None);
    }
}
