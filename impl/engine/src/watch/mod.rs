//! Watches: a stream of the changes to a key, a range or a prefix, in revision order, from a
//! start revision (history replayed, then live), as etcd's Watch (`spec/SEMANTICS.md`,
//! "Watches").
//!
//! - [`WatchRequest`]: what to watch and how.
//! - [`Watcher`] (`watcher`): one watch's buffer and its blocking, non-blocking and timed reads.
//! - `hub`: the database's one observer of the commit pipeline and its dispatcher thread, which
//!   hands each durable revision's changes to every matching watcher.
//!
//! Guarantees (each a test in `impl/engine/tests/db_watch.rs`): ordered by revision; unique (no event
//! twice); reliable (no gap in a watcher's lifetime); atomic (every event of one revision in one
//! [`WatchResponse`]); resumable (a watch from revision R, also after a restart, continues with no
//! gap and no duplicate); bookmarkable (progress responses carry the revision every event up to
//! which was delivered); after durable (an event is delivered only once its revision is durable
//! as the database's durability mode promises, in `Buffered` after the sync or flush that covers
//! it).

mod hub;
mod watcher;

pub(crate) use hub::Hub;
pub use watcher::Watcher;

/// What the database's side of a watch uses of the hub and the watchers.
pub(crate) mod hub_internals {
    pub(crate) use super::hub::{PrevReader, events_for};
    pub(crate) use super::watcher::{End, WatcherShared};
}

use crate::db::Versioned;
use crate::range::KeyRange;

/// The most events a watcher buffers by default before it ends with
/// [`crate::Error::WatcherLagged`] (etcd's server buffers 1,024 responses per watch stream).
pub const WATCH_BUFFER_EVENTS_DEFAULT: usize = 10_000;

/// What to watch, and how (etcd's `WatchCreateRequest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    /// The keys watched.
    pub range: KeyRange,
    /// The first revision to deliver: older ones are replayed from history (`Compacted` below
    /// the horizon). `None`: from the next commit on.
    pub start_revision: Option<u64>,
    /// Also deliver each event's previous version of its key (etcd's `prev_kv`).
    pub prev_kv: bool,
    /// Leave puts out (etcd's `NOPUT` filter).
    pub no_put: bool,
    /// Leave deletes out (etcd's `NODELETE` filter).
    pub no_delete: bool,
    /// Deliver a [`WatchResponse::Progress`] when [`Watcher::request_progress`] asks for one
    /// (etcd's `progress_notify`, on demand).
    pub progress_notify: bool,
    /// The most events buffered before the watcher ends with
    /// [`crate::Error::WatcherLagged`].
    pub buffer_events_max: usize,
}

impl WatchRequest {
    /// A watch of every key in `range`, from the next commit on.
    pub fn new(range: KeyRange) -> WatchRequest {
        WatchRequest {
            range,
            start_revision: None,
            prev_kv: false,
            no_put: false,
            no_delete: false,
            progress_notify: false,
            buffer_events_max: WATCH_BUFFER_EVENTS_DEFAULT,
        }
    }

    /// A watch of one key.
    pub fn key(key: &[u8]) -> WatchRequest {
        Self::new(KeyRange::key(key))
    }

    /// A watch of every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> WatchRequest {
        Self::new(KeyRange::prefix(prefix))
    }

    /// The same watch, starting at `revision`.
    pub fn from_revision(self, revision: u64) -> WatchRequest {
        WatchRequest {
            start_revision: Some(revision),
            ..self
        }
    }
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A put: the key has a new version.
    Put,
    /// A delete: the key is gone.
    Delete,
}

/// One change to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: Vec<u8>,
    /// The revision of the commit that made it.
    pub revision: u64,
    /// The version a put wrote (value and metadata); `None` for a delete.
    pub value: Option<Versioned>,
    /// With [`WatchRequest::prev_kv`]: the key's version before this event, if it had one.
    pub prev: Option<Versioned>,
}

/// What a watcher delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchResponse {
    /// Every event of one revision in the watched range (never empty).
    Events {
        /// The revision.
        revision: u64,
        /// Its events, in key order.
        events: Vec<WatchEvent>,
    },
    /// Every event up to `revision` was delivered (a bookmark to resume from: `revision + 1`).
    Progress {
        /// The revision.
        revision: u64,
    },
}
