//! Starting a watch: the database's watch hub on first use (registered as a commit observer,
//! with its dispatcher thread), then the watcher, then its replay of history. The same history
//! read lists the keys written in a range of revisions, for the key index's catch-up.
//!
//! Invariants:
//! - The hub is registered once per open database and ends (every watcher with it) at close.
//!   Every revision it replays or offers is durable: it starts with a WAL sync covering the
//!   revisions before it, and then offers only what the pipeline says is durable.
//! - A watch starts above the history horizon (`s > horizon`, `s >= 1`): compaction keeps every
//!   version above its floor, but a tombstone at the floor itself may go (a read there sees the
//!   same without it), and a delete is an event.
//! - A watcher from revision `s` gets the revisions `s..=live_after` from its replay, read from
//!   storage under a pin of `s - 1` (so compaction keeps them while it reads), and the later ones
//!   live: `live_after` is fixed under the hub's lock at registration, so none is missed or
//!   delivered twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::iter::{BoxedSource, HistoryMerge};
use crate::range::{Direction, KeyRange};
use crate::watch::{Hub, WatchRequest, WatchResponse, Watcher};

use super::inner::{Inner, lock};
use super::read::Versioned;
use super::readers::Pin;
use crate::watch::hub_internals::{PrevReader, WatcherShared, events_for};

/// The watch hub of an open database and its dispatcher thread.
#[derive(Debug)]
pub(crate) struct Watches {
    hub: Arc<Hub>,
    dispatcher: JoinHandle<()>,
}

impl Watches {
    /// How many watchers are registered and not ended.
    pub(crate) fn watchers(&self) -> usize {
        self.hub.watchers()
    }

    /// Ends every watcher and waits for the dispatcher to stop.
    pub(crate) fn shut_down(self) {
        self.hub.shutdown();
        // A dispatcher that panicked has nothing left to deliver: the watchers are ended.
        let _ = self.dispatcher.join();
    }
}

/// Starts a watch of `request` on `inner`, creating the hub in `watches` on first use.
pub(crate) fn watch(
    inner: &Arc<Inner>,
    watches: &Mutex<Option<Watches>>,
    request: WatchRequest,
) -> Result<Watcher> {
    inner.check_open()?;
    if request.buffer_events_max == 0 {
        return Err(Error::InvalidArgument(
            "watch buffer_events_max must be at least 1".to_owned(),
        ));
    }
    if let Some(start) = request.start_revision {
        let horizon = inner.readers.horizon();
        if start == 0 {
            return Err(Error::InvalidArgument(
                "watch start revision 0: revisions start at 1 (None watches from the next commit)"
                    .to_owned(),
            ));
        }
        if start <= horizon {
            return Err(Error::Compacted {
                requested: start,
                horizon,
            });
        }
    }
    let hub = {
        let mut watches = lock(watches);
        match watches.as_ref() {
            Some(started) => Arc::clone(&started.hub),
            None => {
                let started = start_hub(inner)?;
                let hub = Arc::clone(&started.hub);
                *watches = Some(started);
                hub
            }
        }
    };
    let shared = hub.register(request);
    let live_after = shared.live_after;
    if let Some(start) = shared.request.start_revision
        && start <= live_after
    {
        match inner.replay(&shared, start, live_after) {
            Ok(replay) => shared.install_replay(replay),
            Err(e) => {
                shared.end(crate::watch::hub_internals::End::Cancelled);
                return Err(e);
            }
        }
    }
    Ok(Watcher::new(shared, hub))
}

/// The dispatcher's reads of previous versions, under a pin at the newest revision it
/// dispatched: a compaction committed before the dispatcher offers an event (it offers a
/// revision only once durable, after its commit returned) cannot take the version before it.
struct DispatchHistory {
    inner: Weak<Inner>,
    pin: Mutex<Pin>,
}

impl PrevReader for DispatchHistory {
    fn prev(&self, key: &[u8], revision: u64) -> Result<Option<Versioned>> {
        let inner = self.inner.upgrade().ok_or(Error::Closed)?;
        Ok(inner.entry_held(key, revision)?.and_then(Versioned::of))
    }

    fn dispatched(&self, revision: u64) {
        lock(&self.pin).advance(revision);
    }
}

/// Creates the hub, registers it as an observer and starts its dispatcher.
fn start_hub(inner: &Arc<Inner>) -> Result<Watches> {
    // Pinned before the observer is registered: the first event offered is above it.
    let pin = inner.readers.pin(inner.pipeline.visible())?;
    let prev = DispatchHistory {
        inner: Arc::downgrade(inner),
        pin: Mutex::new(pin),
    };
    let hub = Arc::new(Hub::new(Box::new(prev), Arc::clone(&inner.metrics)));
    let after = inner.pipeline.observe(Arc::clone(&hub) as _);
    inner.pipeline.wait_published(after)?;
    // Watchers replay the revisions up to `after` from storage: they must be durable first (a
    // `Buffered` commit may not be), as every event a watcher delivers.
    inner.pipeline.sync_wal().map_err(|e| inner.poison(e))?;
    hub.begin(after, inner.pipeline.durable());
    let running = Arc::clone(&hub);
    let dispatcher = std::thread::Builder::new()
        .name("kvstore-watch".to_owned())
        .spawn(move || running.dispatch_loop())
        .map_err(|e| Error::io("spawn", &inner.dir, e))?;
    Ok(Watches { hub, dispatcher })
}

impl Inner {
    /// The responses of `watcher` for the revisions `from..=to`, read from storage: every
    /// version of its range in them, grouped by revision, each with the version before it.
    fn replay(&self, watcher: &WatcherShared, from: u64, to: u64) -> Result<Vec<WatchResponse>> {
        // Pinned below `from`: compaction keeps every version above its floor, but may drop a
        // tombstone at the floor itself (what a read there sees is the same without it), and a
        // delete at `from` is an event.
        let _pin = self.readers.pin(from - 1).map_err(|e| match e {
            Error::Compacted { horizon, .. } => Error::Compacted {
                requested: from,
                horizon,
            },
            other => other,
        })?;
        let range = &watcher.request.range;
        let sources = self.history_sources(range)?;
        let mut by_revision: BTreeMap<u64, Vec<crate::watch::WatchEvent>> = BTreeMap::new();
        let mut push = |candidate: Entry, prev: Option<Entry>| -> Result<()> {
            let prev = prev.and_then(Versioned::of);
            let events = events_for(watcher, &[&candidate], |_| Ok(prev.clone()))?;
            by_revision
                .entry(candidate.revision)
                .or_default()
                .extend(events);
            Ok(())
        };
        // Versions come key by key, newest first: a candidate's previous version is the next
        // entry when it has the same key.
        let mut candidate: Option<Entry> = None;
        for entry in HistoryMerge::new(sources) {
            let entry = entry?;
            if let Some(waiting) = candidate.take() {
                let prev = (waiting.key == entry.key).then(|| entry.clone());
                push(waiting, prev)?;
            }
            if (from..=to).contains(&entry.revision) {
                candidate = Some(entry);
            }
        }
        if let Some(waiting) = candidate {
            push(waiting, None)?;
        }
        Ok(by_revision
            .into_iter()
            .filter(|(_, events)| !events.is_empty())
            .map(|(revision, events)| WatchResponse::Events { revision, events })
            .collect())
    }

    /// Every version of `range`, all revisions, from a view taken now: the memtables' and every
    /// overlapping table's, for a [`HistoryMerge`]. The caller pins what it needs kept.
    fn history_sources(&self, range: &KeyRange) -> Result<Vec<BoxedSource>> {
        let view = self.read_view();
        let mut sources: Vec<BoxedSource> = Vec::new();
        for mem in view.mems.iter() {
            sources.push(Box::new(mem.history_in(range.clone())));
        }
        let version = &view.tree.version;
        for level in 0..version.num_levels() {
            for file in version.overlapping(level, range) {
                let table = view.tree.table(&self.dir, file.number)?;
                sources.push(Box::new(table.iter(range.clone(), Direction::Forward)));
            }
        }
        Ok(sources)
    }

    /// Every key a commit in `after+1..=to` wrote (puts and deletes), in key order, read from
    /// storage under a pin of `after` (`Err(Compacted)` below the history horizon): how the key
    /// index catches up from the revision it reflects.
    pub(crate) fn keys_written(&self, after: u64, to: u64) -> Result<BTreeSet<Vec<u8>>> {
        let _pin = self.readers.pin(after)?;
        let mut keys = BTreeSet::new();
        for entry in HistoryMerge::new(self.history_sources(&KeyRange::all())?) {
            let entry = entry?;
            if entry.revision > after && entry.revision <= to && !keys.contains(&entry.key) {
                keys.insert(entry.key);
            }
        }
        Ok(keys)
    }
}
