//! sled 0.34: the default tree, `apply_batch` per batch; `sync` mode calls `flush` (which fsyncs)
//! after each batch, `nosync` once at the end.

use std::path::Path;

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, found_value, visit_all};

pub struct SledEngine {
    db: sled::Db,
}

impl SledEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        Ok(SledEngine {
            db: sled::open(dir)?,
        })
    }
}

impl Engine for SledEngine {
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in entries {
            batch.insert(*k, *v);
        }
        self.db.apply_batch(batch)?;
        if mode == SyncMode::Each {
            self.db.flush()?;
        }
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        self.db.flush()?;
        Ok(())
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        Ok(found_value(self.db.get(key)?, found))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        visit_all(self.db.scan_prefix(prefix), visit)
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        visit_all(self.db.range(start..).take(limit), visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.flush()?;
        drop(self);
        Ok(())
    }
}
