//! [`Db`]: the handle applications use. A thin coordinator: each operation is one call into a
//! module that owns one protocol.
//!
//! - `inner`: the components below, and the lock order between them.
//! - `health`, `versions`, `pipeline`: closed/poisoned; the memtables and files readers see;
//!   the commit pipeline's state (queue, WAL writer, syncs, publishing order, observers).
//! - `open`: recovery (lock, manifest, tables, leftovers, WAL replay).
//! - `commit`: the write pipeline's protocol and group commit (durability modes): decide, log,
//!   apply per chunk of proposals; sync, publish and notify per group.
//! - `decide`: the version metadata of a write's ops; `txn_view`: the read view transactions
//!   are decided against (the pure evaluation is [`crate::txn`]).
//! - `read`: point reads and lazy scans, at the newest revision or an older one.
//! - `readers`: the history horizon and the revisions live readers pin (compaction's floor);
//!   `retention`: where automatic history retention moves the horizon at a flush.
//! - `snapshot`, `transaction`: [`Snapshot`] and the optimistic [`Transaction`].
//! - `tables`: the bounded cache of open table readers.
//! - `flush`: freezing memtables and writing them to L0.
//! - `compact`: running compaction tasks (the policy is [`crate::compaction`]) and
//!   `compact_history`.
//! - `background`: the worker thread, inline mode, write stalls.
//! - `watch`: starting watches (the hub of [`crate::watch`], the replay of history).
//! - `lease`: leases on the handle (grant, keep alive, revoke, expire) and the expiry thread.
//! - `export`, `import`: the retained history as an export stream, and back into a new database.
//! - `checkpoint`: an openable copy in a new directory (tables hard-linked, a manifest).
//! - `search`: contains and fuzzy key search over the key index (`crate::index`).
//!
//! Directory layout: `LOCK`, `manifest.json`, `wal-<20 digits>.log` segments and
//! `<20 digits>.sst` tables (`spec/FORMAT.md`); with [`Options::key_index`], the index database
//! in `index/` (`spec/FORMAT.md` § 5.4).
//!
//! Invariants:
//! - `Db` is `Clone + Send + Sync`; clones share one database. The last clone dropped (or
//!   [`Db::close`]) flushes, stops the worker, syncs the WAL and releases the lock; drop does it
//!   best effort and never panics.
//! - Every commit that writes gets exactly one revision; reads at a revision see every commit up
//!   to it whole.
//! - After a fatal I/O error every write fails until the database is reopened: the call that met
//!   the error returns it, every later one [`Error::Poisoned`] carrying it.

mod background;
mod batch;
pub(crate) mod checkpoint;
mod commit;
mod compact;
mod decide;
pub(crate) mod dir_lock;
mod export;
mod flush;
mod health;
mod import;
mod inner;
mod lease;
pub(crate) mod open;
mod pipeline;
mod read;
mod readers;
mod retention;
mod search;
mod snapshot;
mod stats;
pub(crate) mod tables;
mod transaction;
mod txn_view;
mod versions;
mod watch;

pub use batch::{WriteBatch, WriteOptions};
pub use checkpoint::{COPY_CHUNK_BYTES, CheckpointSummary, checkpoint_is_complete};
pub use compact::range_task;
pub use dir_lock::LOCK_FILE_NAME;
pub use export::ExportSummary;
pub use pipeline::CommitObserver;
pub use read::{Scan, ScanOptions, Versioned, key_range};
pub use search::SEARCH_GRAM_LEN;
pub use snapshot::Snapshot;
pub use stats::Stats;
pub use transaction::Transaction;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::format::wal::WalBody;
use crate::lease::LeaseExpiry;
use crate::metrics::Counter;
use crate::options::{BackgroundMode, Options};
use crate::range::KeyRange;
use crate::txn::{Compare, CompareOp, CompareTarget, OpResult, Txn, TxnOp, TxnResponse};
use crate::vfs::{OsVfs, Vfs};
use crate::watch::{WatchRequest, Watcher};

use commit::CommitMode;
use flush::Freeze;
use inner::Inner;
pub(crate) use inner::lock;

/// An open database. Cheap to clone; see the module doc.
#[derive(Clone, Debug)]
pub struct Db {
    handle: Arc<Handle>,
}

/// Owns the worker thread; dropping the last one shuts the database down.
#[derive(Debug)]
struct Handle {
    inner: Arc<Inner>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The lease expiry thread, if [`crate::LeaseExpiry::Every`].
    expiry: Mutex<Option<lease::ExpiryThread>>,
    /// The watch hub, once a watch started.
    watches: Mutex<Option<watch::Watches>>,
    /// The key index, if [`Options::key_index`]: set once at open, closed after the WAL sync.
    index: OnceLock<Arc<crate::index::KeyIndex>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "closing the database on drop failed");
        }
    }
}

impl Handle {
    fn close(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.health.is_closed() {
            return Ok(());
        }
        if let Some(expiry) = lock(&self.expiry).take() {
            expiry.stop();
        }
        let read_only = inner.options.read_only;
        let mut result = match inner.check_usable() {
            Ok(()) if read_only => Ok(()),
            Ok(()) => flush_all(inner),
            Err(e) => Err(e),
        };
        inner.worker.request_shutdown();
        if let Some(worker) = lock(&self.worker).take()
            && worker.join().is_err()
            && result.is_ok()
        {
            result = Err(Error::Closed);
        }
        if !read_only
            && inner.check_usable().is_ok()
            && let Err(e) = inner.pipeline.sync_wal()
        {
            let e = inner.poison(e);
            if result.is_ok() {
                result = Err(e);
            }
        }
        if let Some(index) = self.index.get()
            && let Err(e) = index.close()
            && result.is_ok()
        {
            result = Err(e);
        }
        inner.health.close();
        if let Some(watches) = lock(&self.watches).take() {
            watches.shut_down();
        }
        drop(lock(&inner.dir_lock).take());
        result
    }
}

/// Freezes the active memtable and flushes every frozen one.
fn flush_all(inner: &Inner) -> Result<()> {
    // `flush` is a durable point. With no key in the memtable the WAL may still hold buffered
    // records that change none (a lease grant, a revocation without keys): sync them.
    if !inner.freeze(Freeze::NonEmpty)? {
        inner.pipeline.sync_wal().map_err(|e| inner.poison(e))?;
    }
    let _work = inner.worker.work();
    inner.flush_frozen()
}

impl Db {
    /// Opens (creating if needed) the database in directory `path` on the real filesystem.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_with_vfs(Arc::new(OsVfs), path, options)
    }

    /// Opens (creating if needed) the database in directory `path` of `vfs`.
    pub fn open_with_vfs(
        vfs: Arc<dyn Vfs>,
        path: impl AsRef<Path>,
        options: Options,
    ) -> Result<Db> {
        let inner = Arc::new(open::open_inner(vfs, path.as_ref(), options)?);
        let worker = match inner.options.background {
            BackgroundMode::Threads => {
                let worker_inner = Arc::clone(&inner);
                let spawned = std::thread::Builder::new()
                    .name("kvstore-bg".to_owned())
                    .spawn(move || worker_inner.worker_loop())
                    .map_err(|e| Error::io("spawn", path.as_ref(), e))?;
                Some(spawned)
            }
            BackgroundMode::Inline => None,
        };
        let expiry = match inner.options.lease_expiry {
            // A read-only database commits no revocation: its leases do not expire.
            LeaseExpiry::Every(_) if inner.options.read_only => None,
            LeaseExpiry::Every(every) => {
                Some(lease::ExpiryThread::start(Arc::clone(&inner), every)?)
            }
            LeaseExpiry::Manual => None,
        };
        let db = Db {
            handle: Arc::new(Handle {
                inner,
                worker: Mutex::new(worker),
                expiry: Mutex::new(expiry),
                watches: Mutex::new(None),
                index: OnceLock::new(),
            }),
        };
        // A recovered memtable may already be over its size (read-only: it stays in memory).
        if !db.inner().options.read_only {
            db.inner().after_commit();
        }
        if db.inner().options.key_index {
            let index = crate::index::open_index(&db)?;
            // Set once, here, before the handle is shared.
            let _ = db.handle.index.set(index);
        }
        Ok(db)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    fn mode(&self, opts: WriteOptions) -> CommitMode {
        CommitMode {
            durability: opts.durability.unwrap_or(self.inner().options.durability),
            stamp: opts.stamp,
        }
    }

    /// Sets `key` to `value`; returns the commit's revision.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.put_with(key, value, WriteOptions::default())
    }

    /// [`Db::put`] with per-write options.
    pub fn put_with(&self, key: &[u8], value: &[u8], opts: WriteOptions) -> Result<u64> {
        let body = WalBody::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            lease: opts.lease,
        };
        self.inner().commit(body, self.mode(opts))
    }

    /// Deletes `key` (a no-op if absent, still a commit); returns the commit's revision.
    pub fn delete(&self, key: &[u8]) -> Result<u64> {
        self.delete_with(key, WriteOptions::default())
    }

    /// [`Db::delete`] with per-write options.
    pub fn delete_with(&self, key: &[u8], opts: WriteOptions) -> Result<u64> {
        let body = WalBody::Delete { key: key.to_vec() };
        self.inner().commit(body, self.mode(opts))
    }

    /// Commits every op of `batch` atomically under one revision.
    pub fn write(&self, batch: WriteBatch) -> Result<u64> {
        self.write_with(batch, WriteOptions::default())
    }

    /// [`Db::write`] with per-write options.
    pub fn write_with(&self, batch: WriteBatch, opts: WriteOptions) -> Result<u64> {
        self.inner().commit(batch.into_body(), self.mode(opts))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|v| v.value))
    }

    /// The value of `key` with the commit that wrote it and its version's metadata.
    pub fn get_versioned(&self, key: &[u8]) -> Result<Option<Versioned>> {
        Ok(self.inner().get_entry(key, None)?.and_then(Versioned::of))
    }

    /// The version of `key` a read at `revision` sees: `Err(Compacted)` below the history
    /// horizon, `Err(FutureRevision)` above the newest revision.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// let first = db.put(b"k", b"v1")?;
    /// db.put(b"k", b"v2")?;
    /// let old = db.get_at(b"k", first)?.expect("present at its first revision");
    /// assert_eq!((old.value.as_slice(), old.version), (&b"v1"[..], 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<Versioned>> {
        Ok(self
            .inner()
            .get_entry(key, Some(revision))?
            .and_then(Versioned::of))
    }

    /// A lazy scan of `range` over a consistent snapshot taken now.
    pub fn scan(&self, range: KeyRange, opts: ScanOptions) -> Result<Scan> {
        let inner = self.inner();
        inner.metrics.inc(Counter::Scans);
        inner.scan(range, opts)
    }

    /// A lazy scan of every key starting with `prefix`.
    pub fn scan_prefix(&self, prefix: &[u8], opts: ScanOptions) -> Result<Scan> {
        self.scan(KeyRange::prefix(prefix), opts)
    }

    /// Runs an etcd `Txn` atomically: if every compare holds, the success ops, else the failure
    /// ops; its writes share one revision (none if it writes nothing). See [`crate::txn`].
    ///
    /// ```
    /// use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// // Create `k` only if it does not exist (etcd's idiom: its version is 0).
    /// let create = Txn {
    ///     compares: vec![Compare::key(b"k", CompareOp::Equal, CompareTarget::Version(0))],
    ///     success: vec![TxnOp::Put { key: b"k".to_vec(), value: b"v".to_vec(), lease: 0 }],
    ///     failure: vec![],
    /// };
    /// assert!(db.txn(create.clone())?.succeeded);
    /// assert!(!db.txn(create)?.succeeded);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.txn_with(txn, WriteOptions::default())
    }

    /// [`Db::txn`] with per-write options.
    pub fn txn_with(&self, txn: Txn, opts: WriteOptions) -> Result<TxnResponse> {
        self.inner().commit_txn(txn, self.mode(opts))
    }

    /// Sets `key` to `new` if its value is `expected` (`None`: if it does not exist); returns
    /// the commit's revision, or `None` (and commits nothing) if the value differs.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<Option<u64>> {
        let compare = match expected {
            Some(value) => {
                Compare::key(key, CompareOp::Equal, CompareTarget::Value(value.to_vec()))
            }
            None => Compare::key(key, CompareOp::Equal, CompareTarget::Version(0)),
        };
        let txn = Txn {
            compares: vec![compare],
            success: vec![TxnOp::Put {
                key: key.to_vec(),
                value: new.to_vec(),
                lease: 0,
            }],
            failure: Vec::new(),
        };
        let response = self.txn(txn)?;
        Ok(response.succeeded.then_some(response.revision))
    }

    /// Deletes every live key of `range` atomically, under one revision; returns that revision
    /// and how many keys were deleted. Deleting nothing commits nothing (the revision returned
    /// is then the current one), as etcd's `DeleteRange`.
    pub fn delete_range(&self, range: KeyRange) -> Result<(u64, u64)> {
        self.delete_range_with(range, WriteOptions::default())
    }

    /// [`Db::delete_range`] with per-write options.
    pub fn delete_range_with(&self, range: KeyRange, opts: WriteOptions) -> Result<(u64, u64)> {
        let txn = Txn {
            success: vec![TxnOp::DeleteRange(range)],
            ..Txn::default()
        };
        let response = self.txn_with(txn, opts)?;
        let deleted = match response.results.first() {
            Some(OpResult::DeleteRange { deleted }) => deleted.len(),
            _ => 0,
        };
        Ok((
            response.revision,
            u64::try_from(deleted).unwrap_or(u64::MAX),
        ))
    }

    /// An optimistic interactive transaction reading at the newest revision (see
    /// [`Transaction`]).
    pub fn transaction(&self) -> Result<Transaction> {
        Ok(Transaction::new(self.clone(), self.snapshot()?))
    }

    /// An optimistic transaction reading at `revision`, at or below the newest (a client
    /// resuming a transaction it began earlier, e.g. across a reopen): it pins `revision`, and
    /// its conflict check covers every commit after it. `Err(Compacted)` below the history
    /// horizon, `Err(FutureRevision)` above the newest revision.
    pub fn transaction_at(&self, revision: u64) -> Result<Transaction> {
        Ok(Transaction::new(
            self.clone(),
            self.snapshot_at(Some(revision))?,
        ))
    }

    /// A consistent view at the newest revision, for as long as it lives (see [`Snapshot`]).
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_at(None)
    }

    pub(crate) fn snapshot_at(&self, revision: Option<u64>) -> Result<Snapshot> {
        let inner = self.inner();
        inner.check_open()?;
        let current = inner.pipeline.visible();
        let requested = revision.unwrap_or(current);
        if requested > current {
            return Err(Error::FutureRevision { requested, current });
        }
        let pin = inner.readers.pin(requested)?;
        Ok(Snapshot::new(self.clone(), pin))
    }

    /// Makes every version older than `revision` unreachable, as etcd's Compact: reads below it
    /// return [`Error::Compacted`], and flush and compaction drop what only such reads could
    /// see (live snapshots keep what they see). Durable when it returns; the horizon never
    /// goes back. `Err(Compacted)` if `revision` is not above the current horizon,
    /// `Err(FutureRevision)` if it is above the newest revision.
    pub fn compact_history(&self, revision: u64) -> Result<()> {
        self.inner().compact_history(revision)
    }

    /// The history horizon: the oldest revision reads may ask for.
    pub fn history_horizon(&self) -> u64 {
        self.inner().readers.horizon()
    }

    /// The highest stamp ([`WriteOptions::stamp`]) of any commit that is visible, 0 if none
    /// ever was. After a reopen it is the highest stamp of the commits recovery kept, so it
    /// agrees with the data: for stamps given in increasing order, the commit stamped `i` was
    /// recovered if and only if `last_stamp() >= i`. A commit that wrote nothing recorded no
    /// stamp (`spec/SEMANTICS.md`, "Commit stamps").
    ///
    /// ```
    /// use kvstore::{Db, Options, WriteOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!(db.last_stamp(), 0);
    /// // Apply log entry 7 and record "applied index = 7" in the same commit.
    /// let entry_7 = WriteOptions { stamp: Some(7), ..WriteOptions::default() };
    /// db.put_with(b"k", b"v", entry_7)?;
    /// assert_eq!(db.last_stamp(), 7);
    /// // A stamp below the last one is refused, and nothing is written.
    /// let entry_6 = WriteOptions { stamp: Some(6), ..WriteOptions::default() };
    /// assert!(matches!(
    ///     db.put_with(b"k", b"old", entry_6),
    ///     Err(kvstore::Error::StampBelowLast { stamp: 6, last_stamp: 7 })
    /// ));
    /// db.close()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!((db.last_stamp(), db.get(b"k")?), (7, Some(b"v".to_vec())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_stamp(&self) -> u64 {
        self.inner().pipeline.visible_stamp()
    }

    /// Registers `observer`, told of every commit above the returned revision, in revision
    /// order, once each, with every version the commit wrote (the notify stage of the commit
    /// pipeline; see [`CommitObserver`]). Every commit up to the returned revision is readable
    /// when this returns, so a caller can read history up to it and take the rest from the
    /// observer, with no gap and no duplicate.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex, OnceLock};
    /// use kvstore::{CommitObserver, entry::Entry};
    ///
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<(u64, Vec<u8>)>>);
    /// impl CommitObserver for Log {
    ///     fn committed(&self, revision: u64, changes: &Arc<[Entry]>) {
    ///         let mut log = self.0.lock().unwrap();
    ///         log.extend(changes.iter().map(|e| (revision, e.key.clone())));
    ///     }
    /// }
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// db.put(b"before", b"v")?;
    /// let log = Arc::new(Log::default());
    /// let after = db.observe(log.clone())?;
    /// let revision = db.put(b"k", b"v")?;
    /// assert!(revision > after);
    /// assert_eq!(*log.0.lock().unwrap(), vec![(revision, b"k".to_vec())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn observe(&self, observer: Arc<dyn CommitObserver>) -> Result<u64> {
        let inner = self.inner();
        inner.check_open()?;
        let after = inner.pipeline.observe(observer);
        inner.pipeline.wait_published(after)?;
        Ok(after)
    }

    /// Watches the keys of `request` (see [`crate::watch`]): from its start revision (history
    /// replayed; `Err(Compacted)` below the horizon) or from the next commit, each revision's
    /// events once durable, in order, until the watcher is cancelled or the database closes.
    pub fn watch(&self, request: WatchRequest) -> Result<Watcher> {
        watch::watch(&self.handle.inner, &self.handle.watches, request)
    }

    /// Writes the memtable to an SST now (and, inline, compacts if due).
    pub fn flush(&self) -> Result<()> {
        let inner = self.inner();
        inner.check_writable()?;
        flush_all(inner)?;
        match inner.options.background {
            BackgroundMode::Inline => inner.background_work(),
            BackgroundMode::Threads => {
                inner.wake_worker();
                Ok(())
            }
        }
    }

    /// Flushes, then compacts every file overlapping `range` down to the last level.
    pub fn compact_range(&self, range: KeyRange) -> Result<()> {
        let inner = self.inner();
        inner.check_writable()?;
        flush_all(inner)?;
        let _work = inner.worker.work();
        inner.compact_range_locked(&range)
    }

    /// Makes every write so far durable (syncs the WAL). Read-only: there is nothing to sync.
    pub fn sync(&self) -> Result<()> {
        let inner = self.inner();
        inner.check_usable()?;
        if inner.options.read_only {
            return Ok(());
        }
        inner.pipeline.sync_wal().map_err(|e| inner.poison(e))
    }

    /// Flushes, stops background work, syncs and releases the lock. Other clones of this handle
    /// get [`Error::Closed`] afterwards.
    pub fn close(self) -> Result<()> {
        self.handle.close()
    }
}
