//! RocksDB (the `rocksdb` crate, C++ built from source): its defaults plus LZ4 compression and a
//! 10 bits/key bloom filter (kvstore's default; RocksDB's default table has none, so every
//! point read would search every level's index); one `WriteBatch` per batch; `sync` mode writes
//! with `sync = true`, `nosync` with `sync = false` and one `flush_wal(true)` at the end.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, DB, DBCompressionType, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions,
};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, visit_all};

/// The bloom filter's bits per key: kvstore's default (`Options::bloom_bits_per_key`).
const BLOOM_BITS_PER_KEY: f64 = 10.0;

pub struct RocksdbEngine {
    db: DB,
}

impl RocksdbEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
        options.set_block_based_table_factory(&table);
        Ok(RocksdbEngine {
            db: DB::open(&options, dir)?,
        })
    }
}

impl Engine for RocksdbEngine {
    fn write_batch(&mut self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put(k, v);
        }
        let mut options = WriteOptions::default();
        options.set_sync(mode == SyncMode::Each);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    fn sync(&mut self) -> BenchResult<()> {
        Ok(self.db.flush_wal(true)?)
    }

    fn get_eq(&mut self, key: &[u8], expected: &[u8]) -> BenchResult<bool> {
        Ok(self.db.get_pinned(key)?.as_deref() == Some(expected))
    }

    fn scan_prefix(
        &mut self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
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
