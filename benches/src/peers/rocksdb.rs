//! RocksDB (the `rocksdb` crate, C++ built from source): LZ4 compression, one `WriteBatch` per
//! batch; `sync` mode writes with `sync = true`, `nosync` with `sync = false` and one
//! `flush_wal(true)` at the end.

use std::path::Path;

use rocksdb::{DB, DBCompressionType, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode};

pub struct RocksdbEngine {
    db: DB,
}

impl RocksdbEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
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
        let mut count = 0;
        for item in self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.flush_wal(true)?;
        drop(self);
        Ok(())
    }
}
