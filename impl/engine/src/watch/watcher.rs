//! [`Watcher`]: one watch's buffered responses, and the ways to read them.
//!
//! Invariants:
//! - `responses` holds, in order: the replayed history (installed once, before the watch is
//!   returned), then what the dispatcher offered, one response per revision, each revision
//!   above the previous one and above `live_after`.
//! - The live events buffered never exceed the request's `buffer_events_max`: an offer past it
//!   ends the watcher with `Lagged { resume_from }` (its revision) and nothing later is
//!   buffered, so the events delivered are exactly those below `resume_from`.
//! - Once `end` is set it never changes, and no response is added after it.
//! - Every change that can make a read return (a response added, the end set) signals `ready`
//!   and wakes the registered `waker`, if any, once: a waker is registered only while nothing
//!   is ready ([`Watcher::wake_when_ready`]), so none is ever missed.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::db::lock;
use crate::error::{Error, Result};

use super::hub::Hub;
use super::{WatchEvent, WatchRequest, WatchResponse};

/// Why a watcher ended.
#[derive(Debug)]
pub(crate) enum End {
    /// [`Watcher::cancel`], or the watcher dropped.
    Cancelled,
    /// The database closed.
    Closed,
    /// Its buffer overflowed at this revision.
    Lagged { resume_from: u64 },
    /// Making an event failed (reading its previous version).
    Failed(Error),
}

/// The buffer (under `WatcherShared::buffer`).
#[derive(Debug)]
struct Buffer {
    responses: VecDeque<WatchResponse>,
    /// Live events buffered now.
    live_events: usize,
    /// The newest revision whose events were offered (revisions are offered in order, so
    /// every event up to it is buffered or was taken).
    offered: u64,
    end: Option<End>,
    /// Woken (and dropped) at the next change that makes a read return.
    waker: Option<Waker>,
}

/// A watcher's state, shared by the [`Watcher`] and the hub's dispatcher.
#[derive(Debug)]
pub(crate) struct WatcherShared {
    pub(crate) request: WatchRequest,
    /// Live revisions at or below it are not offered (the replay covers them).
    pub(crate) live_after: u64,
    buffer: Mutex<Buffer>,
    ready: Condvar,
}

impl WatcherShared {
    pub(crate) fn new(request: WatchRequest, live_after: u64) -> WatcherShared {
        WatcherShared {
            request,
            live_after,
            buffer: Mutex::new(Buffer {
                responses: VecDeque::new(),
                live_events: 0,
                offered: 0,
                end: None,
                waker: None,
            }),
            ready: Condvar::new(),
        }
    }

    /// Whether the watcher ended (the dispatcher stops offering to it).
    pub(crate) fn is_ended(&self) -> bool {
        lock(&self.buffer).end.is_some()
    }

    /// Whether a live commit of `revision` concerns this watcher at all.
    pub(crate) fn wants(&self, revision: u64) -> bool {
        revision > self.live_after && revision >= self.request.start_revision.unwrap_or(0)
    }

    /// Puts the replayed history before everything offered so far.
    pub(crate) fn install_replay(&self, replay: Vec<WatchResponse>) {
        let mut buffer = lock(&self.buffer);
        for response in replay.into_iter().rev() {
            buffer.responses.push_front(response);
        }
        self.signal(buffer);
    }

    /// Offers the events of one live revision (see the module doc for the bound).
    pub(crate) fn offer(&self, revision: u64, events: Vec<WatchEvent>) {
        let mut buffer = lock(&self.buffer);
        if buffer.end.is_some() {
            return;
        }
        let total = buffer.live_events.saturating_add(events.len());
        if total > self.request.buffer_events_max {
            buffer.end = Some(End::Lagged {
                resume_from: revision,
            });
        } else {
            buffer.live_events = total;
            buffer.offered = buffer.offered.max(revision);
            buffer
                .responses
                .push_back(WatchResponse::Events { revision, events });
        }
        self.signal(buffer);
    }

    /// Appends a progress response at `revision` (every event up to it is already buffered),
    /// or at the newest revision offered to this watcher if that is later (the hub records a
    /// batch as dispatched only after it offered all of it).
    pub(crate) fn progress(&self, revision: u64) {
        let mut buffer = lock(&self.buffer);
        if buffer.end.is_none() {
            let revision = revision.max(buffer.offered);
            buffer
                .responses
                .push_back(WatchResponse::Progress { revision });
            self.signal(buffer);
        }
    }

    /// Ends the watcher (the first end wins).
    pub(crate) fn end(&self, end: End) {
        let mut buffer = lock(&self.buffer);
        if buffer.end.is_none() {
            buffer.end = Some(end);
        }
        self.signal(buffer);
    }

    /// Tells readers that `buffer` changed: the blocking ones through `ready`, an async one
    /// through its waker (woken after the lock is released).
    fn signal(&self, mut buffer: MutexGuard<'_, Buffer>) {
        self.ready.notify_all();
        let waker = buffer.waker.take();
        drop(buffer);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next response if one is buffered; `Ok(None)` if none is, `Err` (once buffered
    /// responses are drained) if the watcher ended with an error; `ended` says whether it ended.
    /// Events handed out are counted in `hub`'s metrics.
    fn take(buffer: &mut Buffer, hub: &Hub) -> (Result<Option<WatchResponse>>, bool) {
        if let Some(response) = buffer.responses.pop_front() {
            if let WatchResponse::Events { events, .. } = &response {
                buffer.live_events = buffer.live_events.saturating_sub(events.len());
                hub.delivered(events.len());
            }
            return (Ok(Some(response)), false);
        }
        match &buffer.end {
            None => (Ok(None), false),
            Some(End::Cancelled | End::Closed) => (Ok(None), true),
            Some(End::Lagged { resume_from }) => (
                Err(Error::WatcherLagged {
                    resume_from: *resume_from,
                }),
                true,
            ),
            Some(End::Failed(e)) => (Err(e.duplicate()), true),
        }
    }
}

/// A live watch (see [`crate::Db::watch`]). Dropping it cancels it.
///
/// ```
/// use kvstore::watch::{EventKind, WatchRequest, WatchResponse};
/// # let dir = tempfile::tempdir()?;
/// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
/// let first = db.put(b"app/a", b"1")?;
/// // Replays history from `first`, then follows live commits.
/// let watcher = db.watch(WatchRequest::prefix(b"app/").from_revision(first))?;
/// db.delete(b"app/a")?;
/// let Some(WatchResponse::Events { revision, events }) = watcher.next()? else { panic!() };
/// assert_eq!((revision, events[0].kind), (first, EventKind::Put));
/// let Some(WatchResponse::Events { events, .. }) = watcher.next()? else { panic!() };
/// assert_eq!(events[0].kind, EventKind::Delete);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Watcher {
    shared: Arc<WatcherShared>,
    hub: Arc<Hub>,
}

impl Watcher {
    pub(crate) fn new(shared: Arc<WatcherShared>, hub: Arc<Hub>) -> Watcher {
        Watcher { shared, hub }
    }

    /// The next response, waiting for one; `Ok(None)` once the watcher is cancelled or the
    /// database closed, [`Error::WatcherLagged`] once it fell behind (after every response
    /// before that point).
    pub fn next(&self) -> Result<Option<WatchResponse>> {
        let mut buffer = lock(&self.shared.buffer);
        loop {
            let (taken, ended) = WatcherShared::take(&mut buffer, &self.hub);
            if ended || !matches!(taken, Ok(None)) {
                return taken;
            }
            buffer = self
                .shared
                .ready
                .wait(buffer)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The next response if one is buffered now, without waiting (`Ok(None)`: none is, or the
    /// watcher ended without an error; see [`Watcher::is_done`]).
    pub fn try_next(&self) -> Result<Option<WatchResponse>> {
        WatcherShared::take(&mut lock(&self.shared.buffer), &self.hub).0
    }

    /// The next response, waiting at most `timeout` (`Ok(None)`: none came, or the watcher
    /// ended without an error).
    pub fn next_timeout(&self, timeout: Duration) -> Result<Option<WatchResponse>> {
        let deadline = Instant::now() + timeout;
        let mut buffer = lock(&self.shared.buffer);
        loop {
            let (taken, ended) = WatcherShared::take(&mut buffer, &self.hub);
            let left = deadline.saturating_duration_since(Instant::now());
            if ended || !matches!(taken, Ok(None)) || left.is_zero() {
                return taken;
            }
            buffer = self
                .shared
                .ready
                .wait_timeout(buffer, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// For async readers: `true` if a read would return now (a response is buffered, or the
    /// watcher ended); otherwise `false`, and `waker` is woken once when one would (a response
    /// buffered, or the end). It replaces the waker registered before, if any. Register, read
    /// with [`Watcher::try_next`] when woken or when this returns `true`, and register again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::task::{Wake, Waker};
    /// use kvstore::watch::WatchRequest;
    ///
    /// struct Flag(AtomicBool);
    /// impl Wake for Flag {
    ///     fn wake(self: Arc<Self>) {
    ///         self.0.store(true, Ordering::SeqCst);
    ///     }
    /// }
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// let watcher = db.watch(WatchRequest::prefix(b"jobs/"))?;
    /// let flag = Arc::new(Flag(AtomicBool::new(false)));
    /// assert!(!watcher.wake_when_ready(&Waker::from(Arc::clone(&flag))));
    /// db.put(b"jobs/1", b"x")?;
    /// watcher.settle(); // the dispatcher thread has offered the commit
    /// assert!(flag.0.load(Ordering::SeqCst));
    /// assert!(watcher.try_next()?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake_when_ready(&self, waker: &Waker) -> bool {
        let mut buffer = lock(&self.shared.buffer);
        if !buffer.responses.is_empty() || buffer.end.is_some() {
            return true;
        }
        match &mut buffer.waker {
            Some(registered) => registered.clone_from(waker),
            none => *none = Some(waker.clone()),
        }
        false
    }

    /// Whether the watcher ended and every buffered response was read.
    pub fn is_done(&self) -> bool {
        let buffer = lock(&self.shared.buffer);
        buffer.end.is_some() && buffer.responses.is_empty()
    }

    /// Asks for a [`WatchResponse::Progress`] carrying the revision every event up to which is
    /// delivered before it (requires [`WatchRequest::progress_notify`]).
    pub fn request_progress(&self) -> Result<()> {
        if !self.shared.request.progress_notify {
            return Err(Error::InvalidArgument(
                "progress requested from a watch created without progress_notify".to_owned(),
            ));
        }
        self.hub.request_progress(&self.shared);
        Ok(())
    }

    /// Waits until every event this watcher may be delivered now (its revision published and
    /// durable) is in its buffer, so that a [`Watcher::try_next`] after it sees them: the
    /// dispatcher is another thread, and a test (or a server flushing a stream) must not race it.
    pub fn settle(&self) {
        self.hub.settle();
    }

    /// Ends the watch: [`Watcher::next`] returns what was buffered, then `Ok(None)`.
    pub fn cancel(&self) {
        self.shared.end(End::Cancelled);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.cancel();
    }
}
