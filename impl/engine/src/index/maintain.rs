//! [`KeyIndex`]: the index's state in memory and its maintenance from the commit pipeline.
//!
//! Invariants:
//! - `persisted <= durable` (what the main database told durable) and `persisted <= told` (the
//!   newest revision told committed); `pending` holds the changes of every revision in
//!   `(persisted, told]`, in revision order, each once.
//! - The index database is written only under the state lock, by [`KeyIndex::persist`] and by
//!   reconciling, so a reader holding the lock sees the postings of exactly `persisted`.
//! - After a failed index write the index answers no query ([`Error::KeyIndex`]) until the
//!   database is reopened, which reconciles it from what is durable.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::db::{CommitObserver, Db};
use crate::entry::Entry;
use crate::error::{Error, Result};

use super::layout;

/// One revision's changes: each key written, live after it or not.
pub(crate) type Changes = Vec<(Vec<u8>, bool)>;

/// The key index of one open database; registered as its commit observer.
#[derive(Debug)]
pub(crate) struct KeyIndex {
    /// The index database (`<db>/index/`).
    pub(crate) db: Db,
    state: Mutex<State>,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct State {
    /// The main revision the index database's postings reflect.
    pub(crate) persisted: u64,
    /// The newest revision told committed.
    pub(crate) told: u64,
    /// The newest revision told durable.
    durable: u64,
    /// The changes of the revisions above `persisted`, in order.
    pub(crate) pending: VecDeque<(u64, Changes)>,
    /// Reconciled with the main database: persisting may start.
    ready: bool,
    /// The first failed index write.
    failed: Option<Error>,
}

impl KeyIndex {
    /// The index kept in `db`, not ready until [`KeyIndex::ready`].
    pub(crate) fn new(db: Db) -> KeyIndex {
        KeyIndex {
            db,
            state: Mutex::new(State {
                persisted: 0,
                told: 0,
                durable: 0,
                pending: VecDeque::new(),
                ready: false,
                failed: None,
            }),
        }
    }

    /// The state, for a reader (a query) or for reconciling; [`Error::KeyIndex`] after a failed
    /// index write.
    pub(crate) fn state(&self) -> Result<MutexGuard<'_, State>> {
        let state = crate::db::lock(&self.state);
        match &state.failed {
            Some(cause) => Err(Error::KeyIndex {
                cause: Box::new(cause.duplicate()),
            }),
            None => Ok(state),
        }
    }

    /// Reconciling is done: the index database reflects main revision `revision`, the newest
    /// one durable before the observer was registered. Persists what became durable meanwhile.
    pub(crate) fn ready(&self, revision: u64) {
        let mut state = crate::db::lock(&self.state);
        debug_assert!(state.pending.front().is_none_or(|(r, _)| *r > revision));
        state.persisted = revision;
        state.told = state.told.max(revision);
        state.durable = state.durable.max(revision);
        state.ready = true;
        self.persist(&mut state);
    }

    /// Writes the pending changes of every revision that is durable to the index database, the
    /// revision record in the last batch; on failure keeps the error (see the module doc).
    fn persist(&self, state: &mut State) {
        let target = state.durable.min(state.told);
        if !state.ready || state.failed.is_some() || target <= state.persisted {
            return;
        }
        let mut states = BTreeMap::new();
        while let Some((revision, _)) = state.pending.front()
            && *revision <= target
        {
            if let Some((_, changes)) = state.pending.pop_front() {
                states.extend(changes);
            }
        }
        match write_states(&self.db, &states, Some(target)) {
            Ok(()) => state.persisted = target,
            Err(e) => state.failed = Some(e),
        }
    }

    /// Persists what is durable and closes the index database (syncing it).
    pub(crate) fn close(&self) -> Result<()> {
        let mut state = crate::db::lock(&self.state);
        self.persist(&mut state);
        let closed = self.db.clone().close();
        match state.failed.take() {
            Some(e) => Err(e),
            None => closed,
        }
    }
}

/// Writes the batches that make the index say `states`, then (if given) that it reflects main
/// revision `revision`.
pub(crate) fn write_states(
    db: &Db,
    states: &BTreeMap<Vec<u8>, bool>,
    revision: Option<u64>,
) -> Result<()> {
    // Sabotage for negative controls (feature `failpoints`): the revision record is written in a
    // batch of its own before the postings it covers.
    fail::fail_point!(
        "index::revision_before_postings",
        revision.is_some(),
        |_| {
            for batch in layout::batches(&BTreeMap::new(), revision)
                .into_iter()
                .chain(layout::batches(states, None))
            {
                db.write(batch)?;
            }
            Ok(())
        }
    );
    for batch in layout::batches(states, revision) {
        db.write(batch)?;
    }
    Ok(())
}

impl CommitObserver for KeyIndex {
    fn committed(&self, revision: u64, changes: &Arc<[Entry]>) {
        let changes = changes
            .iter()
            .map(|e| (e.key.clone(), !e.is_tombstone()))
            .collect();
        let mut state = crate::db::lock(&self.state);
        state.told = state.told.max(revision);
        state.pending.push_back((revision, changes));
        self.persist(&mut state);
    }

    fn durable(&self, revision: u64) {
        let mut state = crate::db::lock(&self.state);
        state.durable = state.durable.max(revision);
        self.persist(&mut state);
    }
}
