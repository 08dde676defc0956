//! [`Model`]: the semantics of kvstore as a plain ordered map, the executable form of
//! `spec/SEMANTICS.md` ("What a read returns", "Revisions").
//!
//! Invariants:
//! - Every commit ([`Mutation`]) takes exactly the next revision, `revision + 1`, whether or not
//!   it changes anything (a delete of an absent key is still a commit).
//! - A batch is applied whole, in its order, all under one revision; a later op of a batch on the
//!   same key wins.
//! - A key maps to the value and the revision of the last commit that put it; a delete removes it.
//! - Every version is kept in `history` (a value or a deletion, per key and revision) down to the
//!   horizon: `state_at(r)` for any `horizon <= r <= revision` is the state a read at `r` sees.
//!   A put over a live key keeps its `create_revision` and adds 1 to its `version`; a put over an
//!   absent key creates it (`create_revision` = the commit's revision, `version` 1); every op of a
//!   batch is decided against the state before the batch (`spec/SEMANTICS.md`, "Versions").
//! - Leases (`spec/SEMANTICS.md`, "Leases"): a grant takes no revision; a put naming a lease
//!   attaches its key (the cell carries the lease); a revocation deletes every live key naming
//!   the lease in one revision (none if there is none) and removes it. A lease op the engine
//!   refuses ([`Model::refusal`]) changes nothing. Deadlines are not state: the oracle keeps them.
//! - Commit stamps (`spec/SEMANTICS.md`, "Commit stamps"): [`Model::apply_stamped`] raises the
//!   last stamp to the commit's if the engine logs the commit (it is not refused, and it takes a
//!   revision or is a grant or a revocation); a commit that writes nothing records no stamp.
//! - Two models are equal when their live state (keys, cells, last revision, granted leases, last
//!   stamp) is: that is what a read observes; the history is checked through
//!   [`Model::state_at`].

use std::collections::BTreeMap;
use std::ops::Bound;

/// One event a watcher sees: `(revision, key, value)`, `None` for a delete.
pub type WatchedEvent = (u64, Vec<u8>, Option<Vec<u8>>);

/// One op inside a batch: `Some(value)` puts, `None` deletes.
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// One commit: what a successful `put`, `delete` or `write(batch)` does.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Mutation {
    /// `Db::put(key, value)`.
    Put(Vec<u8>, Vec<u8>),
    /// `Db::delete(key)`.
    Delete(Vec<u8>),
    /// `Db::write(batch)`: every op under one revision, all or nothing.
    Batch(Vec<BatchOp>),
    /// `Db::txn`: if every compare holds, the `success` ops then, if any, the `nested` txn's
    /// chosen ops, else the `failure` ops (a delete deletes only a live key); one revision if
    /// it writes anything, none otherwise. A branch, with the nested txn's ops, names each key
    /// at most once.
    Txn {
        /// `(key, what it must be)`, all must hold.
        compares: Vec<(Vec<u8>, Expect)>,
        /// Ops when every compare holds.
        success: Vec<BatchOp>,
        /// Ops otherwise.
        failure: Vec<BatchOp>,
        /// A txn nested at the end of the success branch (`TxnOp::Txn`).
        nested: Option<Nested>,
    },
    /// `Db::delete_range([start, end))`: every live key of the range, one revision if any.
    DeleteRange(Vec<u8>, Vec<u8>),
    /// `Db::put_with_lease(key, value, lease)`.
    PutLease(Vec<u8>, Vec<u8>, u64),
    /// `Db::grant_id(lease, ttl_ms)`: no revision.
    Grant(u64, u64),
    /// `Db::revoke(lease)`, or its expiry: its keys deleted in one revision (none without keys).
    Revoke(u64),
}

/// A txn nested in another's success branch: its compares, like the outer txn's, are judged
/// against the state before the outer txn (etcd's `compareToPath`), then its chosen ops run.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Nested {
    /// `(key, what it must be)`, all must hold.
    pub compares: Vec<(Vec<u8>, Expect)>,
    /// Ops when every compare holds.
    pub success: Vec<BatchOp>,
    /// Ops otherwise.
    pub failure: Vec<BatchOp>,
}

/// Why the engine refuses a lease op before logging it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// `Error::LeaseNotFound`: the lease is not granted.
    LeaseNotFound,
    /// `Error::LeaseExists`: a grant of a granted id.
    LeaseExists,
}

/// What a txn compare requires of a key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Expect {
    /// The key is live with this value.
    Value(Vec<u8>),
    /// The key is absent (etcd: its version is 0).
    Absent,
    /// The key's version (puts since its creation) is this (0: absent).
    Version(u64),
}

impl Mutation {
    /// Every key the mutation names.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        match self {
            Mutation::Put(k, _) | Mutation::Delete(k) => vec![k.clone()],
            Mutation::Batch(ops) => ops.iter().map(|(k, _)| k.clone()).collect(),
            Mutation::Txn {
                compares,
                success,
                failure,
                nested,
            } => {
                let nested = nested.iter().flat_map(|n| {
                    let compared = n.compares.iter().map(|(k, _)| k.clone());
                    compared.chain(n.success.iter().chain(&n.failure).map(|(k, _)| k.clone()))
                });
                compares
                    .iter()
                    .map(|(k, _)| k.clone())
                    .chain(success.iter().chain(failure).map(|(k, _)| k.clone()))
                    .chain(nested)
                    .collect()
            }
            Mutation::DeleteRange(start, end) => vec![start.clone(), end.clone()],
            Mutation::PutLease(k, _, _) => vec![k.clone()],
            Mutation::Grant(..) | Mutation::Revoke(_) => Vec::new(),
        }
    }
}

/// A value as a read sees it: the bytes, the revision of the commit that wrote them, and etcd's
/// metadata of the version.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Cell {
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the commit that wrote it.
    pub revision: u64,
    /// The revision of the commit that created the key.
    pub create_revision: u64,
    /// Puts since that creation, 1 for the creating one.
    pub version: u64,
    /// The lease the key is attached to (0: none).
    pub lease: u64,
}

/// Why a read at a revision is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RevisionError {
    /// Below the horizon (`Error::Compacted`).
    Compacted,
    /// Above the last revision (`Error::FutureRevision`).
    Future,
}

/// The whole state of a database: every live key, the last revision committed, and the history
/// of every version down to the horizon.
#[derive(Clone, Default, Debug)]
pub struct Model {
    map: BTreeMap<Vec<u8>, Cell>,
    revision: u64,
    /// Per key, every version: (revision, the cell, or `None` for a delete), oldest first.
    history: BTreeMap<Vec<u8>, Vec<(u64, Option<Cell>)>>,
    horizon: u64,
    /// The granted leases: id and TTL in ms.
    leases: BTreeMap<u64, u64>,
    /// The highest stamp of a logged commit (0: none).
    stamp: u64,
}

impl PartialEq for Model {
    fn eq(&self, other: &Model) -> bool {
        self.map == other.map
            && self.revision == other.revision
            && self.leases == other.leases
            && self.stamp == other.stamp
    }
}

impl Eq for Model {}

impl std::hash::Hash for Model {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.map.hash(state);
        self.revision.hash(state);
        self.leases.hash(state);
        self.stamp.hash(state);
    }
}

impl Model {
    /// The empty database: no keys, revision 0.
    pub fn new() -> Model {
        Model::default()
    }

    /// A state read back from an engine: `map` and its `last_revision` (no history).
    pub fn from_parts(map: BTreeMap<Vec<u8>, Cell>, revision: u64) -> Model {
        Model {
            map,
            revision,
            ..Model::default()
        }
    }

    /// The same state with `leases` granted (for a state read back from an engine).
    pub fn with_leases(mut self, leases: BTreeMap<u64, u64>) -> Model {
        self.leases = leases;
        self
    }

    /// The same state with last stamp `stamp` (for a state read back from an engine).
    pub fn with_stamp(mut self, stamp: u64) -> Model {
        self.stamp = stamp;
        self
    }

    /// The highest stamp of a logged commit (0: none): what `Db::last_stamp` must say.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The granted leases: id and TTL in ms.
    pub fn leases(&self) -> &BTreeMap<u64, u64> {
        &self.leases
    }

    /// The live keys attached to `lease`, in key order.
    pub fn attached(&self, lease: u64) -> Vec<Vec<u8>> {
        self.map
            .iter()
            .filter(|(_, cell)| cell.lease == lease)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Why the engine refuses `mutation` now, if it does.
    pub fn refusal(&self, mutation: &Mutation) -> Option<Refusal> {
        match mutation {
            Mutation::PutLease(_, _, lease) if *lease != 0 && !self.leases.contains_key(lease) => {
                Some(Refusal::LeaseNotFound)
            }
            Mutation::Revoke(lease) if !self.leases.contains_key(lease) => {
                Some(Refusal::LeaseNotFound)
            }
            Mutation::Grant(lease, _) if self.leases.contains_key(lease) => {
                Some(Refusal::LeaseExists)
            }
            _ => None,
        }
    }

    /// Whether `expect` holds for `key` now.
    pub fn holds(&self, key: &[u8], expect: &Expect) -> bool {
        let live = self.map.get(key);
        match expect {
            Expect::Value(v) => live.is_some_and(|c| &c.value == v),
            Expect::Absent => live.is_none(),
            Expect::Version(n) => live.map_or(0, |c| c.version) == *n,
        }
    }

    /// Commits `mutation` without a stamp; see [`Model::apply_stamped`].
    pub fn apply(&mut self, mutation: &Mutation) -> u64 {
        self.apply_stamped(mutation, 0)
    }

    /// Commits `mutation` stamped `stamp` (0: none); returns its revision: the previous one plus
    /// one, or the previous one for a grant, a revocation without keys, or a txn or delete range
    /// that writes nothing. The stamp counts if the engine logs the commit: a grant or a
    /// revocation, or a commit that takes a revision.
    pub fn apply_stamped(&mut self, mutation: &Mutation, stamp: u64) -> u64 {
        let refused = self.refusal(mutation).is_some();
        let before = self.revision;
        let revision = self.commit(mutation);
        let lease_op = matches!(mutation, Mutation::Grant(..) | Mutation::Revoke(_));
        if !refused && (lease_op || revision != before) {
            self.stamp = self.stamp.max(stamp);
        }
        revision
    }

    /// [`Model::apply_stamped`] but the stamp.
    fn commit(&mut self, mutation: &Mutation) -> u64 {
        if self.refusal(mutation).is_some() {
            return self.revision;
        }
        let live_deletes = |ops: &[BatchOp]| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            ops.iter()
                .filter(|(k, v)| v.is_some() || self.map.contains_key(k))
                .cloned()
                .collect()
        };
        let mut lease = 0;
        let ops: Vec<BatchOp> = match mutation {
            Mutation::Put(key, value) => vec![(key.clone(), Some(value.clone()))],
            Mutation::PutLease(key, value, id) => {
                lease = *id;
                vec![(key.clone(), Some(value.clone()))]
            }
            Mutation::Grant(id, ttl_ms) => {
                self.leases.insert(*id, *ttl_ms);
                return self.revision;
            }
            Mutation::Revoke(id) => {
                self.leases.remove(id);
                let ops: Vec<BatchOp> = self
                    .attached(*id)
                    .into_iter()
                    .map(|key| (key, None))
                    .collect();
                if ops.is_empty() {
                    return self.revision;
                }
                ops
            }
            Mutation::Delete(key) => vec![(key.clone(), None)],
            Mutation::Batch(ops) => ops.clone(),
            Mutation::Txn {
                compares,
                success,
                failure,
                nested,
            } => {
                let holds =
                    |compares: &[(Vec<u8>, Expect)]| compares.iter().all(|(k, e)| self.holds(k, e));
                let ops = match nested {
                    _ if !holds(compares) => failure.clone(),
                    None => success.clone(),
                    Some(n) => {
                        let inner = if holds(&n.compares) {
                            &n.success
                        } else {
                            &n.failure
                        };
                        success.iter().chain(inner).cloned().collect()
                    }
                };
                let ops = live_deletes(&ops);
                if ops.is_empty() {
                    return self.revision;
                }
                ops
            }
            Mutation::DeleteRange(start, end) => {
                let range = (
                    Bound::Included(start.as_slice()),
                    Bound::Excluded(end.as_slice()),
                );
                let ops: Vec<BatchOp> = self
                    .map
                    .range::<[u8], _>(range)
                    .map(|(k, _)| (k.clone(), None))
                    .collect();
                if ops.is_empty() {
                    return self.revision;
                }
                ops
            }
        };
        self.revision = self.revision.saturating_add(1);
        let revision = self.revision;
        // Decided against the state before the commit: the last op of a key wins.
        let mut decided: BTreeMap<&Vec<u8>, Option<Cell>> = BTreeMap::new();
        for (key, value) in &ops {
            let value = value.as_ref();
            let cell = value.map(|value| {
                let (create_revision, version) = match self.map.get(key) {
                    Some(live) => (live.create_revision, live.version.saturating_add(1)),
                    None => (revision, 1),
                };
                Cell {
                    value: value.clone(),
                    revision,
                    create_revision,
                    version,
                    lease,
                }
            });
            decided.insert(key, cell);
        }
        for (key, cell) in decided {
            match &cell {
                Some(cell) => {
                    self.map.insert(key.clone(), cell.clone());
                }
                None => {
                    self.map.remove(key);
                }
            }
            self.history
                .entry(key.clone())
                .or_default()
                .push((revision, cell));
        }
        revision
    }

    /// The state a read at `revision` sees (`horizon <= revision <= self.revision()`).
    pub fn state_at(&self, revision: u64) -> Result<Model, RevisionError> {
        if revision < self.horizon {
            return Err(RevisionError::Compacted);
        }
        if revision > self.revision {
            return Err(RevisionError::Future);
        }
        let map = self
            .history
            .iter()
            .filter_map(|(key, versions)| {
                let newest = versions.iter().rev().find(|(r, _)| *r <= revision)?;
                newest.1.clone().map(|cell| (key.clone(), cell))
            })
            .collect();
        Ok(Model::from_parts(map, revision))
    }

    /// Raises the horizon to `horizon` (etcd's Compact): refused unless
    /// `self.horizon() < horizon <= self.revision()`.
    pub fn compact_history(&mut self, horizon: u64) -> Result<(), RevisionError> {
        if horizon <= self.horizon {
            return Err(RevisionError::Compacted);
        }
        if horizon > self.revision {
            return Err(RevisionError::Future);
        }
        self.horizon = horizon;
        Ok(())
    }

    /// What a watch of every key sees for the revisions `from..=to`: each version written in
    /// them, `(revision, key, value)` (`None`: a delete), by revision, then key.
    pub fn events(&self, from: u64, to: u64) -> Vec<WatchedEvent> {
        let mut events: Vec<WatchedEvent> = self
            .history
            .iter()
            .flat_map(|(key, versions)| {
                versions
                    .iter()
                    .filter(|(r, _)| (from..=to).contains(r))
                    .map(|(r, cell)| (*r, key.clone(), cell.as_ref().map(|c| c.value.clone())))
            })
            .collect();
        events.sort();
        events
    }

    /// Every key any commit ever wrote (put or delete).
    pub fn keys_ever(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.history.keys()
    }

    /// The oldest revision reads may ask for.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// What `get(key)` returns.
    pub fn get(&self, key: &[u8]) -> Option<&Cell> {
        self.map.get(key)
    }

    /// What a scan of `[start, end)` returns, in key order.
    pub fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .range::<[u8], _>((start, end))
            .map(|(k, c)| (k.clone(), c.value.clone()))
            .collect()
    }

    /// The revision of the last commit (0 before any).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every live key and its cell.
    pub fn cells(&self) -> &BTreeMap<Vec<u8>, Cell> {
        &self.map
    }

    /// A one-line difference between `self` (expected) and `other` (found), for messages.
    pub fn diff(&self, other: &Model) -> String {
        let mut out = Vec::new();
        if self.revision != other.revision {
            out.push(format!(
                "last revision {} vs {}",
                self.revision, other.revision
            ));
        }
        if self.leases != other.leases {
            out.push(format!("leases {:?} vs {:?}", self.leases, other.leases));
        }
        if self.stamp != other.stamp {
            out.push(format!("last stamp {} vs {}", self.stamp, other.stamp));
        }
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            self.map.keys().chain(other.map.keys()).collect();
        for key in keys {
            let (a, b) = (self.map.get(key), other.map.get(key));
            if a != b {
                out.push(format!(
                    "{}: {} vs {}",
                    show(key),
                    show_cell(a),
                    show_cell(b)
                ));
            }
        }
        if out.is_empty() {
            "equal".to_owned()
        } else {
            out.join("; ")
        }
    }
}

/// Bytes as text if printable, else hex-ish, shortened.
pub fn show(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(12)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if bytes.len() > 12 {
        format!("{shown}..({} B)", bytes.len())
    } else {
        shown
    }
}

fn show_cell(cell: Option<&Cell>) -> String {
    cell.map_or_else(
        || "absent".to_owned(),
        |c| {
            format!(
                "{}@{} (created {}, version {}, lease {})",
                show(&c.value),
                c.revision,
                c.create_revision,
                c.version,
                c.lease
            )
        },
    )
}

#[cfg(test)]
mod tests;
