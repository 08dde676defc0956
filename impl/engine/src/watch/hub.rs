//! [`Hub`]: the database's one [`CommitObserver`] for watches, and its dispatcher thread.
//!
//! The commit path only hands each published revision's changes to the hub (one push under the
//! hub's lock); the dispatcher thread matches them against the watchers and fills their buffers,
//! so watchers cost no thread each and the commit path does not wait for them.
//!
//! Invariants:
//! - `queue` holds committed revisions not yet dispatched, in revision order; the dispatcher
//!   takes a revision only once it is durable (`<= durable`), in order, so a watcher is offered
//!   revisions in increasing order, each once, each only once durable.
//! - `taken` is the newest revision the dispatcher took. A watcher registered under the lock with
//!   `live_after = taken` is offered exactly the revisions after it (the dispatcher offers a
//!   taken batch to the watchers registered when it took it), and replays the ones up to it.
//! - `dispatched <= taken` is the newest revision offered to every watcher: a progress response
//!   at it follows every event up to it in a watcher's buffer.
//! - The dispatcher sorts each revision's changes by key once; a watcher's events are then found
//!   by a binary search for its range's start and a walk to its end, so matching a revision
//!   costs each watcher `O(log changes + its events)`, not a look at every change.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::db::{CommitObserver, Versioned, lock};
use crate::entry::Entry;
use crate::error::Result;
use crate::metrics::{Counter, Recorder};
use crate::range::Position;

use super::watcher::{End, WatcherShared};
use super::{EventKind, WatchEvent};

/// What the dispatcher reads from the database for `prev_kv`: each event's previous version,
/// with the history that needs held back from compaction until it is offered.
pub(crate) trait PrevReader: Send + Sync {
    /// The version of `key` a read at `revision` sees. `revision` is at or above the last
    /// revision told to [`PrevReader::dispatched`] (or the hub's start), so it is readable
    /// however far the history horizon moved since it was committed.
    fn prev(&self, key: &[u8], revision: u64) -> Result<Option<Versioned>>;

    /// Every commit up to `revision` was offered: older history is no longer needed.
    fn dispatched(&self, revision: u64);
}

/// The hub's state (under `Hub::state`).
struct HubState {
    queue: VecDeque<(u64, Arc<[Entry]>)>,
    durable: u64,
    taken: u64,
    dispatched: u64,
    watchers: Vec<Arc<WatcherShared>>,
    shutdown: bool,
    /// The dispatcher is offering a batch it took (outside the lock).
    offering: bool,
}

/// See the module doc.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    work: Condvar,
    /// Signalled when the dispatcher finishes offering a batch.
    offered: Condvar,
    prev: Box<dyn PrevReader>,
    /// Where events handed to watchers' readers are counted.
    metrics: Arc<Recorder>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose `prev` reads previous versions, counting into `metrics`; [`Hub::begin`]
    /// before any watcher.
    pub(crate) fn new(prev: Box<dyn PrevReader>, metrics: Arc<Recorder>) -> Hub {
        Hub {
            metrics,
            state: Mutex::new(HubState {
                queue: VecDeque::new(),
                durable: 0,
                taken: 0,
                dispatched: 0,
                watchers: Vec::new(),
                shutdown: false,
                offering: false,
            }),
            work: Condvar::new(),
            offered: Condvar::new(),
            prev,
        }
    }

    /// Once registered as an observer: the commits up to `after` are not told to the hub (the
    /// ones after are), and every commit up to `durable` is durable.
    pub(crate) fn begin(&self, after: u64, durable: u64) {
        let mut state = lock(&self.state);
        state.taken = after;
        state.dispatched = after;
        state.durable = state.durable.max(durable);
    }

    /// Registers a watcher of `request`: returns it with the revision its replay must cover up
    /// to (every later one is offered live).
    pub(crate) fn register(&self, request: super::WatchRequest) -> Arc<WatcherShared> {
        let mut state = lock(&self.state);
        let shared = Arc::new(WatcherShared::new(request, state.taken));
        if state.shutdown {
            shared.end(End::Closed);
        } else {
            state.watchers.push(Arc::clone(&shared));
        }
        shared
    }

    /// `events` were handed to a watcher's reader.
    pub(crate) fn delivered(&self, events: usize) {
        self.metrics
            .add(Counter::WatchEventsDelivered, events as u64);
    }

    /// How many watchers are registered and not ended.
    pub(crate) fn watchers(&self) -> usize {
        let state = lock(&self.state);
        state.watchers.iter().filter(|w| !w.is_ended()).count()
    }

    /// Queues a progress response for `watcher` (see the module doc).
    pub(crate) fn request_progress(&self, watcher: &WatcherShared) {
        let state = lock(&self.state);
        watcher.progress(state.dispatched.max(watcher.live_after));
    }

    /// Ends every watcher and stops the dispatcher.
    pub(crate) fn shutdown(&self) {
        let mut state = lock(&self.state);
        state.shutdown = true;
        for watcher in state.watchers.drain(..) {
            watcher.end(End::Closed);
        }
        self.work.notify_all();
        self.offered.notify_all();
    }

    /// The dispatcher thread's loop, until [`Hub::shutdown`].
    pub(crate) fn dispatch_loop(&self) {
        loop {
            let (batch, watchers) = {
                let mut state = lock(&self.state);
                loop {
                    if state.shutdown {
                        return;
                    }
                    let durable = deliverable(&state);
                    if state.queue.front().is_some_and(|(r, _)| *r <= durable) {
                        break;
                    }
                    state = self
                        .work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                let durable = deliverable(&state);
                let ready = state
                    .queue
                    .iter()
                    .take_while(|(r, _)| *r <= durable)
                    .count();
                let batch: Vec<(u64, Arc<[Entry]>)> = state.queue.drain(..ready).collect();
                if let Some((last, _)) = batch.last() {
                    state.taken = *last;
                }
                state.offering = true;
                state.watchers.retain(|w| !w.is_ended());
                (batch, state.watchers.clone())
            };
            // Tests hold the dispatcher here (feature `failpoints`) to race it with commits.
            fail::fail_point!("watch::before_offer");
            for (revision, changes) in &batch {
                let mut sorted: Vec<&Entry> = changes.iter().collect();
                sorted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                for watcher in &watchers {
                    if watcher.wants(*revision) {
                        self.offer(watcher, *revision, &sorted);
                    }
                }
            }
            if let Some((last, _)) = batch.last() {
                self.prev.dispatched(*last);
            }
            let mut state = lock(&self.state);
            if let Some((last, _)) = batch.last() {
                state.dispatched = *last;
            }
            state.offering = false;
            self.offered.notify_all();
        }
    }

    /// Waits until the dispatcher has offered every revision it may deliver now (every one
    /// published and durable): what a watcher will get without another commit or sync is in its
    /// buffer when this returns.
    pub(crate) fn settle(&self) {
        let mut state = lock(&self.state);
        loop {
            let ready = state
                .queue
                .front()
                .is_some_and(|(r, _)| *r <= deliverable(&state));
            if state.shutdown || !(state.offering || ready) {
                return;
            }
            state = self
                .offered
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Offers `watcher` its events of `changes` (sorted by key), committed at `revision`.
    fn offer(&self, watcher: &WatcherShared, revision: u64, changes: &[&Entry]) {
        match events_for(watcher, changes, |key| self.prev.prev(key, revision - 1)) {
            Ok(events) if events.is_empty() => {}
            Ok(events) => watcher.offer(revision, events),
            Err(e) => watcher.end(End::Failed(e)),
        }
    }
}

/// The newest revision the dispatcher may deliver: the durable one.
fn deliverable(state: &HubState) -> u64 {
    // Negative control: deliver events before they are durable.
    fail::fail_point!("watch::ignore_durability", |_| u64::MAX);
    state.durable
}

/// The events of `changes` (one revision's entries, sorted by key, each key once) that
/// `watcher` asked for, in key order; `prev` reads a key's previous version when the request
/// wants it.
pub(crate) fn events_for(
    watcher: &WatcherShared,
    changes: &[&Entry],
    prev: impl Fn(&[u8]) -> Result<Option<Versioned>>,
) -> Result<Vec<WatchEvent>> {
    let request = &watcher.request;
    let mut events = Vec::new();
    let first = changes.partition_point(|e| request.range.position(&e.key) == Position::Below);
    let in_range = changes
        .get(first..)
        .unwrap_or_default()
        .iter()
        .take_while(|e| request.range.position(&e.key) == Position::Inside);
    for entry in in_range {
        let kind = if entry.is_tombstone() {
            EventKind::Delete
        } else {
            EventKind::Put
        };
        let filtered = match kind {
            EventKind::Put => request.no_put,
            EventKind::Delete => request.no_delete,
        };
        if filtered {
            continue;
        }
        let previous = if request.prev_kv {
            prev(&entry.key)?
        } else {
            None
        };
        events.push(WatchEvent {
            kind,
            key: entry.key.clone(),
            revision: entry.revision,
            value: Versioned::of((*entry).clone()),
            prev: previous,
        });
    }
    Ok(events)
}

impl CommitObserver for Hub {
    fn committed(&self, revision: u64, changes: &Arc<[Entry]>) {
        let mut state = lock(&self.state);
        state.queue.push_back((revision, Arc::clone(changes)));
        if revision <= deliverable(&state) {
            self.work.notify_all();
        }
    }

    fn durable(&self, revision: u64) {
        let mut state = lock(&self.state);
        state.durable = state.durable.max(revision);
        self.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::VersionMeta;
    use crate::range::KeyRange;
    use std::ops::Bound;

    fn put(key: &str) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            revision: 7,
            meta: VersionMeta::after_put(None, 7, 0),
            value: Some(b"v".to_vec()),
            wal_offset: 0,
            created_at_ms: 0,
        }
    }

    fn keys_seen(range: KeyRange, changes: &[&Entry]) -> Vec<String> {
        let watcher = WatcherShared::new(super::super::WatchRequest::new(range), 0);
        let events = events_for(&watcher, changes, |_| Ok(None)).unwrap();
        events
            .into_iter()
            .map(|e| String::from_utf8(e.key).unwrap())
            .collect()
    }

    #[test]
    fn a_watcher_gets_exactly_the_sorted_changes_in_its_range() {
        let entries: Vec<Entry> = ["a", "b", "ba", "bz", "c", "d"].map(put).into();
        let sorted: Vec<&Entry> = entries.iter().collect();
        let range = |start: &str, end: Bound<&str>| {
            KeyRange::new(
                Bound::Included(start.as_bytes().to_vec()),
                end.map(|e| e.as_bytes().to_vec()),
            )
        };
        assert_eq!(
            keys_seen(KeyRange::prefix(b"b"), &sorted),
            ["b", "ba", "bz"]
        );
        assert_eq!(keys_seen(KeyRange::key(b"a"), &sorted), ["a"]);
        assert_eq!(keys_seen(KeyRange::key(b"d"), &sorted), ["d"]);
        assert_eq!(
            keys_seen(KeyRange::key(b"bb"), &sorted),
            Vec::<String>::new()
        );
        assert_eq!(
            keys_seen(range("e", Bound::Unbounded), &sorted),
            Vec::<String>::new()
        );
        assert_eq!(
            keys_seen(range("ba", Bound::Excluded("c")), &sorted),
            ["ba", "bz"]
        );
        assert_eq!(keys_seen(KeyRange::all(), &sorted).len(), 6);
        assert_eq!(keys_seen(KeyRange::all(), &[]), Vec::<String>::new());
    }
}
