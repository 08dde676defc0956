//! [`Inner`]: the shared state behind every [`crate::Db`] handle: components that each own
//! their state and locks, and the protocols (`commit`, `flush`, `compact`, `background`, `read`)
//! that coordinate them through their methods.
//!
//! The components:
//! - [`Health`]: closed, or poisoned by the first fatal error.
//! - [`VersionSet`]: the memtables and live files readers see, the manifest's installs.
//! - [`Pipeline`]: the commit queue, the WAL writer and revision counter, WAL syncs, the
//!   publishing order and the observers.
//! - [`Worker`]: the background worker's wake-ups, the work lock, write stalls.
//! - [`Readers`]: the history horizon and the revisions live readers pin; [`Retention`]: where
//!   automatic history retention moves the horizon.
//! - [`Recorder`]: the cumulative metrics every component counts into (lock-free).
//!
//! Lock order across them (a lock is only taken while holding locks to its left):
//! `work` → `syncing` → `writer` → `published`; `writer` → `state`; `work` → `bg` → `state`.
//! The queue's, the readers' registry's, the table cache's and health's locks are leaves, and
//! `state` is never held while another is taken. No code path takes two in another order, so
//! there is no deadlock; no lock that the decide stage or a reader waits on is held across a
//! sync (flush and compaction syncs hold only `work`; a commit's WAL sync only `syncing`).
//!
//! Invariants:
//! - Only the holder of `writer` appends to the WAL, assigns revisions, inserts into the active
//!   memtable, or freezes it; only the holder of `work` flushes, compacts, or persists a manifest.
//! - The published revision only grows; a read sees every commit up to the revision it read at,
//!   whole, and nothing after it.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::format::manifest::sst_file_name;
use crate::metrics::Recorder;
use crate::options::Options;
use crate::sst::BlockCache;
use crate::vfs::{Vfs, VfsLock};

use super::background::Worker;
use super::health::Health;
use super::pipeline::Pipeline;
use super::readers::Readers;
use super::retention::Retention;
use super::versions::{ReadView, Tree, VersionSet};

/// Locks `m`, ignoring poisoning: no code holding one of our locks panics in library code, and
/// every critical section leaves its data consistent before any fallible call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `cv`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Shared state of an open database; see the module doc.
pub(crate) struct Inner {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) cache: Arc<BlockCache>,
    /// Closed or poisoned.
    pub(crate) health: Health,
    /// The memtables and live files readers see.
    pub(crate) versions: VersionSet,
    /// The commit pipeline: queue, WAL writer, revisions, publishing, observers.
    pub(crate) pipeline: Pipeline,
    /// The background worker and write stalls.
    pub(crate) worker: Worker,
    /// The history horizon and the revisions live readers pin.
    pub(crate) readers: Arc<Readers>,
    /// Where automatic history retention puts the horizon at a flush.
    pub(crate) retention: Retention,
    /// Cumulative counters and histograms ([`crate::Db::metrics`]), shared with the pipeline
    /// and the watch hub.
    pub(crate) metrics: Arc<Recorder>,
    /// The held `LOCK` file, released at close.
    pub(crate) dir_lock: Mutex<Option<Box<dyn VfsLock>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("dir", &self.dir)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// `Err(Closed)` if the database is closed, `Err(Poisoned { cause })` if an earlier fatal
    /// error poisoned it.
    pub(crate) fn check_usable(&self) -> Result<()> {
        self.health.check_usable()
    }

    /// [`Inner::check_usable`], and [`Error::ReadOnly`] if opened with
    /// [`crate::Options::read_only`]: every write, flush, compaction and lease change asks.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_usable()?;
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// `Err(Closed)` once the database is closed (reads keep working on a poisoned database).
    pub(crate) fn check_open(&self) -> Result<()> {
        self.health.check_open()
    }

    /// Records `error` as fatal (the first one wins) and returns a copy of it.
    pub(crate) fn poison(&self, error: Error) -> Error {
        self.health.poison(error)
    }

    /// The current tree.
    pub(crate) fn tree(&self) -> Arc<Tree> {
        self.versions.tree()
    }

    /// A consistent read view at the newest published revision (see [`ReadView`]).
    pub(crate) fn read_view(&self) -> ReadView {
        // Read before the sources are copied: every commit up to it is in one of them.
        let revision = self.pipeline.visible();
        self.versions.read_view(revision)
    }

    /// The path of SST `number`.
    pub(crate) fn sst_path(&self, number: u64) -> PathBuf {
        self.dir.join(sst_file_name(number))
    }
}
