//! RocksDB (the `rocksdb` crate, C++ built from source): its defaults plus LZ4 compression and a
//! 10 bits/key bloom filter (kvstore's default; RocksDB's default table has none, so every
//! point read would search every level's index); one `WriteBatch` per batch; `sync` mode writes
//! with `sync = true`, `nosync` with `sync = false` and one `flush_wal(true)` at the end.
//!
//! [`RocksdbTxnEngine`]: `OptimisticTransactionDB` with the same options; each transaction sets a
//! snapshot at begin (`OptimisticTransactionOptions::set_snapshot`, as kvstore's and fjall's
//! transactions read at one) and reads with `get_for_update`, so its commit fails with `Busy` if
//! the key was written after the snapshot (`TryAgain` if RocksDB no longer holds enough memtable
//! history to tell; both are counted as conflicts, RocksDB's documented answer to both is a retry).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, DB, DBCompressionType, Direction, ErrorKind, IteratorMode,
    OptimisticTransactionDB, OptimisticTransactionOptions, Options, WriteBatch, WriteOptions,
};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, TxnEngine, decode_counter, found_value, visit_all};

/// The bloom filter's bits per key: kvstore's default (`Options::bloom_bits_per_key`).
const BLOOM_BITS_PER_KEY: f64 = 10.0;

pub struct RocksdbEngine {
    db: DB,
}

/// RocksDB's defaults plus LZ4 and the bloom filter, for both engines.
fn options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.set_compression_type(DBCompressionType::Lz4);
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    options.set_block_based_table_factory(&table);
    options
}

impl RocksdbEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        Ok(RocksdbEngine {
            db: DB::open(&options(), dir)?,
        })
    }
}

impl Engine for RocksdbEngine {
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put(k, v);
        }
        let mut options = WriteOptions::default();
        options.set_sync(mode == SyncMode::Each);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.flush_wal(true)?)
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        Ok(found_value(self.db.get_pinned(key)?, found))
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let items = self
            .db
            .iterator(IteratorMode::From(start, Direction::Forward))
            .take(limit);
        visit_all(items, visit)
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        // Without a prefix extractor the iterator runs on past the prefix: stop at the first
        // key outside it (an error still reaches visit_all).
        let items = self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
            .take_while(|item| match item {
                Ok((key, _)) => key.starts_with(prefix),
                Err(_) => true,
            });
        visit_all(items, visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}

pub struct RocksdbTxnEngine {
    db: OptimisticTransactionDB,
    /// `sync = false` and `sync = true`.
    buffered: WriteOptions,
    synced: WriteOptions,
    with_snapshot: OptimisticTransactionOptions,
}

impl RocksdbTxnEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let db: OptimisticTransactionDB = OptimisticTransactionDB::open(&options(), dir)?;
        let buffered = WriteOptions::default();
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let mut with_snapshot = OptimisticTransactionOptions::default();
        with_snapshot.set_snapshot(true);
        Ok(RocksdbTxnEngine {
            db,
            buffered,
            synced,
            with_snapshot,
        })
    }
}

impl TxnEngine for RocksdbTxnEngine {
    fn init(&self, keys: &[&[u8]]) -> BenchResult<()> {
        let txn = self.db.transaction();
        for key in keys {
            txn.put(key, 0u64.to_be_bytes())?;
        }
        Ok(txn.commit()?)
    }

    fn increment(&self, key: &[u8], mode: SyncMode) -> BenchResult<bool> {
        let write = match mode {
            SyncMode::Each => &self.synced,
            SyncMode::End => &self.buffered,
        };
        let txn = self.db.transaction_opt(write, &self.with_snapshot);
        let n = decode_counter(key, txn.get_for_update(key, true)?.as_deref())?;
        txn.put(key, (n + 1).to_be_bytes())?;
        match txn.commit() {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn counter(&self, key: &[u8]) -> BenchResult<u64> {
        decode_counter(key, self.db.get_pinned(key)?.as_deref())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.flush_wal(true)?)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}
