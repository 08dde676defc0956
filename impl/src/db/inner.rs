//! [`Inner`]: the shared state behind every [`crate::Db`] handle, and the locks that order it.
//!
//! Invariants:
//! - Lock order: `queue` → `writer` → `state`; `work` → `writer` → `state`; `work` → `bg` →
//!   `state` (a stalled writer re-checks the state under `bg`, the mutex its wait sleeps on; an
//!   install, under `work`, releases `state` before it takes `bg` to wake it). No code path
//!   takes them in another order, so there is no deadlock.
//! - `state` holds what readers need, swapped atomically: the active memtable, the frozen ones
//!   (oldest first, each with the WAL offset where its records end) and the [`Tree`] (live
//!   version, its files, the shared cache of open tables). A reader copies the `Arc`s under the
//!   lock and reads without it.
//! - `visible` is the largest revision whose commit is fully inserted into a memtable; it only
//!   grows, and every entry in a frozen memtable or an SST has a revision `<= visible`.
//! - Only the holder of `writer` appends to the WAL, assigns revisions, inserts into the active
//!   memtable, or freezes it; only the holder of `work` flushes, compacts, or persists a manifest.
//! - After the first fatal error (a failed WAL sync or append, a failed flush or compaction)
//!   `failed` is set and never cleared: the call that met it returns the error itself, every
//!   later write [`Error::Poisoned`] carrying it, until the database is reopened.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::format::manifest::sst_file_name;
use crate::memtable::MemTable;
use crate::options::Options;
use crate::sst::{BlockCache, Table};
use crate::version::Version;
use crate::vfs::{Vfs, VfsLock};
use crate::wal::WalWriter;

use super::background::BgState;
use super::commit::Queue;
use super::readers::Readers;
use super::tables::{LiveFile, TableCache};

/// Locks `m`, ignoring poisoning: no code holding one of our locks panics in library code, and
/// every critical section leaves its data consistent before any fallible call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `cv`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// The live SST files and where their readers come from.
#[derive(Debug)]
pub(crate) struct Tree {
    /// Which files are live, by level.
    pub(crate) version: Version,
    /// Every file of `version`, by file number (Fx-hashed: a point read looks up one or more
    /// tables, and file numbers need no seeded hash). Shared with the trees that list it too;
    /// the last tree holding an obsolete file removes it (see [`LiveFile`]).
    pub(crate) files: FxHashMap<u64, Arc<LiveFile>>,
    /// The open readers, at most `Options::max_open_tables` (shared by every tree).
    pub(crate) tables: Arc<TableCache>,
}

impl Tree {
    /// The reader of live file `number`, opened (and checked against the manifest) if it is not
    /// open.
    pub(crate) fn table(&self, dir: &Path, number: u64) -> Result<Arc<Table>> {
        let file = self.files.get(&number).ok_or_else(|| Error::Corruption {
            file: dir.join(sst_file_name(number)),
            offset: 0,
            what: "live file has no entry in the tree".to_owned(),
        })?;
        file.table()
    }

    /// The tree of `version`: its files' entries are taken from `previous` where they are live
    /// there too, and made for the others.
    pub(crate) fn new(
        version: Version,
        previous: &FxHashMap<u64, Arc<LiveFile>>,
        tables: Arc<TableCache>,
    ) -> Tree {
        let mut files = FxHashMap::default();
        for level in 0..version.num_levels() {
            for meta in version.files(level) {
                let file = previous.get(&meta.number).map_or_else(
                    || Arc::new(LiveFile::new(Arc::clone(meta), Arc::clone(&tables))),
                    Arc::clone,
                );
                files.insert(meta.number, file);
            }
        }
        Tree {
            version,
            files,
            tables,
        }
    }
}

/// A memtable frozen for flushing.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    /// Its entries.
    pub(crate) mem: Arc<MemTable>,
    /// The WAL offset where its records end (the segment base after the rotation that froze it).
    pub(crate) wal_boundary: u64,
    /// The last revision assigned when it was frozen.
    pub(crate) last_revision: u64,
}

/// What readers see, swapped under one lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Where new commits go.
    active: Arc<MemTable>,
    /// Frozen memtables not yet in an SST, oldest first.
    frozen: Vec<Frozen>,
    /// Live files.
    pub(crate) tree: Arc<Tree>,
    /// The memtables a read consults, newest first: `active`, then `frozen` newest first.
    /// Rebuilt by every change of either, so a snapshot copies one `Arc` instead of a list.
    mems: Arc<[Arc<MemTable>]>,
}

impl State {
    /// The state of a database whose memtable is `active` and whose files are `tree`.
    pub(crate) fn new(active: Arc<MemTable>, tree: Arc<Tree>) -> State {
        let mut state = State {
            active,
            frozen: Vec::new(),
            tree,
            mems: Arc::new([]),
        };
        state.rebuild_mems();
        state
    }

    /// Where new commits go.
    pub(crate) fn active(&self) -> &Arc<MemTable> {
        &self.active
    }

    /// Frozen memtables not yet in an SST, oldest first.
    pub(crate) fn frozen(&self) -> &[Frozen] {
        &self.frozen
    }

    /// Freezes the active memtable as `frozen` (the newest frozen) and makes `active` the new one.
    pub(crate) fn freeze(&mut self, frozen: Frozen, active: Arc<MemTable>) {
        debug_assert!(Arc::ptr_eq(&frozen.mem, &self.active));
        self.frozen.push(frozen);
        self.active = active;
        self.rebuild_mems();
    }

    /// Drops the oldest frozen memtable (its entries are now in the tree), if any.
    pub(crate) fn drop_oldest_frozen(&mut self) {
        if !self.frozen.is_empty() {
            self.frozen.remove(0);
            self.rebuild_mems();
        }
    }

    fn rebuild_mems(&mut self) {
        let newest_first = self.frozen.iter().rev().map(|f| Arc::clone(&f.mem));
        self.mems = std::iter::once(Arc::clone(&self.active))
            .chain(newest_first)
            .collect();
    }
}

/// The WAL writer and the revision counter, owned by whoever commits.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) wal: WalWriter,
    /// The last revision assigned.
    pub(crate) last_revision: u64,
}

/// A consistent read view: every source a read consults, and the newest revision it may read at.
#[derive(Debug)]
pub(crate) struct ReadView {
    pub(crate) revision: u64,
    /// Active memtable first, then frozen ones newest first.
    pub(crate) mems: Arc<[Arc<MemTable>]>,
    pub(crate) tree: Arc<Tree>,
}

/// Shared state of an open database; see the module doc.
pub(crate) struct Inner {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) cache: Arc<BlockCache>,
    pub(crate) state: Mutex<State>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) queue_cv: Condvar,
    pub(crate) work: Mutex<()>,
    pub(crate) bg: Mutex<BgState>,
    pub(crate) bg_cv: Condvar,
    pub(crate) stall_cv: Condvar,
    pub(crate) visible: AtomicU64,
    /// The history horizon and the revisions live readers pin.
    pub(crate) readers: Arc<Readers>,
    pub(crate) next_file_number: AtomicU64,
    /// Commits acknowledged so far (this process).
    pub(crate) commits: AtomicU64,
    /// WAL syncs issued by the commit pipeline so far (this process).
    pub(crate) commit_syncs: AtomicU64,
    pub(crate) failed: Mutex<Option<Error>>,
    pub(crate) closed: AtomicBool,
    pub(crate) dir_lock: Mutex<Option<Box<dyn VfsLock>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("dir", &self.dir)
            .field("visible", &self.visible)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// `Err(Closed)` if the database is closed, `Err(Poisoned { cause })` if an earlier fatal
    /// error poisoned it.
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        match lock(&self.failed).as_ref() {
            Some(e) => Err(Error::poisoned(e)),
            None => Ok(()),
        }
    }

    /// `Err(Closed)` once the database is closed (reads keep working on a poisoned database).
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Records `error` as fatal (the first one wins) and returns a copy of it.
    pub(crate) fn poison(&self, error: Error) -> Error {
        let mut failed = lock(&self.failed);
        let copy = error.duplicate();
        if failed.is_none() {
            tracing::error!(%error, "database poisoned: writes refused until reopened");
            *failed = Some(error);
        }
        copy
    }

    /// The current tree.
    pub(crate) fn tree(&self) -> Arc<Tree> {
        Arc::clone(&lock(&self.state).tree)
    }

    /// A consistent read view (see [`ReadView`]).
    pub(crate) fn read_view(&self) -> ReadView {
        let state = lock(&self.state);
        // Read under the lock: everything in the tree and the frozen memtables taken here was
        // published before, so it is at or below this revision.
        let revision = self.visible.load(Ordering::Acquire);
        ReadView {
            revision,
            mems: Arc::clone(&state.mems),
            tree: Arc::clone(&state.tree),
        }
    }

    /// Allocates a file number never used before in this database.
    pub(crate) fn allocate_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::AcqRel)
    }

    /// The path of SST `number`.
    pub(crate) fn sst_path(&self, number: u64) -> PathBuf {
        self.dir.join(sst_file_name(number))
    }
}
