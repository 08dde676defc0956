//! [`Engine`]: the small trait every measured store implements, so the seed workload runs the same
//! code against each; and [`KvstoreEngine`], kvstore's implementation. [`TxnEngine`]: the same for
//! optimistic transactions (the `txn` workload), and [`KvstoreTxnEngine`].
//!
//! Invariants:
//! - `write_batch` is atomic: all of its entries or none become visible.
//! - After `write_batch(.., Sync::Each)` returns, the batch is durable; after `Sync::End` it may not
//!   be until `sync` returns.
//! - `TxnEngine::increment` either commits exactly one increment of the counter or, on a
//!   conflict, commits nothing.

use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::sync::Arc;

use kvstore::vfs::OsVfs;
use kvstore::{
    Db, Durability, Error, KeyRange, Options, Scan, ScanOptions, WriteBatch, WriteOptions,
};

use crate::BenchResult;
use crate::counting::{Counters, CountingVfs};

/// Hands a looked-up value, if there is one, to `found`; whether there was: the end every
/// adapter's [`Engine::get_with`] shares.
pub fn found_value<V: AsRef<[u8]>>(value: Option<V>, found: &mut dyn FnMut(&[u8])) -> bool {
    match value {
        Some(value) => {
            found(value.as_ref());
            true
        }
        None => false,
    }
}

/// Visits every `(key, value)` of `items` in order and counts them, stopping at the first error:
/// the loop the peers' [`Engine::scan_prefix`] share.
pub fn visit_all<K, V, E>(
    items: impl IntoIterator<Item = Result<(K, V), E>>,
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> BenchResult<u64>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    E: Into<crate::BoxError>,
{
    let mut count = 0;
    for item in items {
        let (k, v) = item.map_err(Into::into)?;
        visit(k.as_ref(), v.as_ref());
        count += 1;
    }
    Ok(count)
}

/// When the write phase makes data durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every batch is durable before the next one starts (`--mode sync`).
    Each,
    /// Batches are buffered; one sync at the end of the phase, timed (`--mode nosync`).
    End,
}

impl SyncMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Each => "sync",
            SyncMode::End => "nosync",
        }
    }
}

/// One key/value store under measurement. Shared by the threads of a multi-threaded workload
/// (YCSB), so every call takes `&self`; an engine whose writes take one lock (LMDB, redb)
/// serializes them inside.
pub trait Engine: Send + Sync {
    /// Writes `entries` as one atomic batch, durable before returning if `mode` is
    /// [`SyncMode::Each`].
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()>;

    /// Makes every write so far durable.
    fn sync(&self) -> BenchResult<()>;

    /// Looks `key` up: if present, calls `found` with its value (lent where the engine lends
    /// it) and returns `true`.
    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool>;

    /// Whether `key` is present with exactly `expected` as its value.
    fn get_eq(&self, key: &[u8], expected: &[u8]) -> BenchResult<bool> {
        let mut equal = false;
        let present = self.get_with(key, &mut |value| equal = value == expected)?;
        Ok(present && equal)
    }

    /// Streams every pair whose key starts with `prefix` in key order, calling `visit` on each;
    /// returns how many there were.
    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64>;

    /// Streams at most `limit` pairs whose key is at or after `start`, in key order, calling
    /// `visit` on each; returns how many there were.
    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64>;

    /// The counters of the engine's own I/O layer, if it can count its writes. Shared, so they
    /// can be read after [`Engine::close`] (which may flush).
    fn write_counters(&self) -> Option<Arc<Counters>> {
        None
    }

    /// Closes the store cleanly, releasing its files.
    fn close(self: Box<Self>) -> BenchResult<()>;
}

/// kvstore options a run may set instead of the defaults (seedbench's `--kvstore-block-size`
/// and `--kvstore-cache-bytes`): a second kvstore row at a peer's memory, or another block size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvstoreTuning {
    /// `Options::sst_block_size_bytes`, if not the default.
    pub block_size_bytes: Option<u64>,
    /// `Options::block_cache_size_bytes`, if not the default.
    pub cache_bytes: Option<u64>,
}

/// kvstore on the real filesystem, through a [`CountingVfs`].
pub struct KvstoreEngine {
    db: Db,
    counters: Arc<Counters>,
}

impl KvstoreEngine {
    /// Opens kvstore in `dir` with default options, `Buffered` as the default durability (the
    /// sync mode asks for `Sync` per batch) and background flush/compaction threads; `tuning`'s
    /// block size and cache size where it sets them.
    pub fn open(dir: &Path, tuning: KvstoreTuning) -> BenchResult<Self> {
        let vfs = CountingVfs::new(Arc::new(OsVfs));
        let counters = vfs.counters();
        let defaults = Options::default();
        let options = Options {
            durability: Durability::Buffered,
            sst_block_size_bytes: tuning
                .block_size_bytes
                .unwrap_or(defaults.sst_block_size_bytes),
            block_cache_size_bytes: tuning
                .cache_bytes
                .unwrap_or(defaults.block_cache_size_bytes),
            ..defaults
        };
        let db = Db::open_with_vfs(Arc::new(vfs), dir, options)?;
        Ok(KvstoreEngine { db, counters })
    }
}

impl Engine for KvstoreEngine {
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in entries {
            batch.put(k, v);
        }
        let durability = match mode {
            SyncMode::Each => Durability::Sync,
            SyncMode::End => Durability::Buffered,
        };
        self.db.write_with(
            batch,
            WriteOptions {
                durability: Some(durability),
                ..WriteOptions::default()
            },
        )?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.sync()?)
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        Ok(found_value(self.db.get(key)?, found))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        // Rows lent by the engine, not copied: LMDB (heed) and redb hand out borrowed slices
        // too (see the peers' `scan_prefix`).
        visit_scan(self.db.scan_prefix(prefix, ScanOptions::default())?, visit)
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let range = KeyRange::new(Bound::Included(start.to_vec()), Bound::Unbounded);
        let options = ScanOptions {
            limit: Some(limit),
            ..ScanOptions::default()
        };
        visit_scan(self.db.scan(range, options)?, visit)
    }

    fn write_counters(&self) -> Option<Arc<Counters>> {
        Some(Arc::clone(&self.counters))
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        Ok(self.db.close()?)
    }
}

/// Lends every row of `scan` to `visit` and counts them.
fn visit_scan(scan: Scan, visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
    let mut count = 0;
    let flow = scan.visit(|k, v| {
        visit(k, v);
        count += 1;
        ControlFlow::<()>::Continue(())
    })?;
    debug_assert!(flow.is_continue(), "the visitor never breaks");
    Ok(count)
}

/// Bytes of a counter value: a big-endian `u64`.
pub const COUNTER_LEN_BYTES: usize = 8;

/// The counter a stored value holds. A missing key or a value of another length is an error: the
/// `txn` workload writes every counter before it starts.
pub fn decode_counter(key: &[u8], value: Option<&[u8]>) -> BenchResult<u64> {
    let value =
        value.ok_or_else(|| format!("counter {} is missing", String::from_utf8_lossy(key)))?;
    let bytes: [u8; COUNTER_LEN_BYTES] = value.try_into().map_err(|_| {
        format!(
            "counter {} holds {} bytes, not {COUNTER_LEN_BYTES}",
            String::from_utf8_lossy(key),
            value.len()
        )
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// One store with optimistic transactions under measurement. Shared by the workload's threads.
pub trait TxnEngine: Sync {
    /// Writes `keys`, each with counter 0, in one atomic commit (no conflicts possible: nothing
    /// runs beside it).
    fn init(&self, keys: &[&[u8]]) -> BenchResult<()>;

    /// One attempt to add 1 to the counter at `key`: begins an optimistic transaction, reads the
    /// counter in it, writes counter + 1, commits (durable before returning if `mode` is
    /// [`SyncMode::Each`]). `Ok(true)` if it committed, `Ok(false)` if the engine refused the
    /// commit as a conflict (nothing was written).
    fn increment(&self, key: &[u8], mode: SyncMode) -> BenchResult<bool>;

    /// The committed counter at `key`, read outside any transaction.
    fn counter(&self, key: &[u8]) -> BenchResult<u64>;

    /// Makes every commit so far durable.
    fn sync(&self) -> BenchResult<()>;

    /// Closes the store cleanly, releasing its files.
    fn close(self: Box<Self>) -> BenchResult<()>;
}

/// kvstore's [`kvstore::Transaction`]: snapshot at `Db::transaction`, read set checked at commit.
pub struct KvstoreTxnEngine {
    db: Db,
}

impl KvstoreTxnEngine {
    /// Opens kvstore in `dir` with default options and `Buffered` as the default durability (the
    /// sync mode asks for `Sync` per commit).
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let options = Options {
            durability: Durability::Buffered,
            ..Options::default()
        };
        Ok(KvstoreTxnEngine {
            db: Db::open(dir, options)?,
        })
    }
}

impl TxnEngine for KvstoreTxnEngine {
    fn init(&self, keys: &[&[u8]]) -> BenchResult<()> {
        let mut tx = self.db.transaction()?;
        for key in keys {
            tx.put(key, &0u64.to_be_bytes())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn increment(&self, key: &[u8], mode: SyncMode) -> BenchResult<bool> {
        let mut tx = self.db.transaction()?;
        let n = decode_counter(key, tx.get(key)?.as_deref())?;
        tx.put(key, &(n + 1).to_be_bytes())?;
        let durability = match mode {
            SyncMode::Each => Durability::Sync,
            SyncMode::End => Durability::Buffered,
        };
        match tx.commit_with(WriteOptions {
            durability: Some(durability),
            ..WriteOptions::default()
        }) {
            Ok(_) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn counter(&self, key: &[u8]) -> BenchResult<u64> {
        decode_counter(key, self.db.get(key)?.as_deref())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.sync()?)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        Ok(self.db.close()?)
    }
}
