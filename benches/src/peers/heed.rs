//! heed 0.23 (LMDB): one unnamed database of bytes, one write transaction per batch; `sync` mode
//! uses LMDB's default (each commit syncs), `nosync` opens with `NO_SYNC` and calls
//! `force_sync` at the end.

use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, found_value, visit_all};

/// LMDB maps the whole file: room for 1M 256-byte values several times over.
const MAP_SIZE_BYTES: usize = 16 << 30;

/// heed 0.23 databases borrow their `Env`; the bench leaks one `Env` handle per run (the child
/// process exits right after) so the engine can own both.
pub struct HeedEngine {
    env: &'static Env,
    db: Database<'static, Bytes, Bytes>,
}

impl HeedEngine {
    pub fn open(dir: &Path, mode: SyncMode) -> BenchResult<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE_BYTES);
        if mode == SyncMode::End {
            // SAFETY: NO_SYNC only drops the per-commit fsync; `sync` calls `force_sync`.
            unsafe { options.flags(EnvFlags::NO_SYNC) };
        }
        // SAFETY: the directory is fresh and opened once by this process.
        let env: &'static Env = Box::leak(Box::new(unsafe { options.open(dir)? }));
        let wtxn = env.write_txn()?;
        let db = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener
                    .create_database::<Bytes, Bytes>(wtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit();
        Ok(HeedEngine { env, db })
    }
}

impl Engine for HeedEngine {
    fn write_batch(&self, entries: &[(&[u8], &[u8])], _mode: SyncMode) -> BenchResult<()> {
        let mut wtxn = self.env.write_txn()?;
        for (k, v) in entries {
            self.db.put(&mut wtxn, k, v)?;
        }
        wtxn.commit()?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.env.force_sync()?)
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        let rtxn = self.env.read_txn()?;
        Ok(found_value(self.db.get(&rtxn, key)?, found))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        let rtxn = self.env.read_txn()?;
        visit_all(self.db.prefix_iter(&rtxn, prefix)?, visit)
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let rtxn = self.env.read_txn()?;
        let range = (Bound::Included(start), Bound::Unbounded);
        visit_all(self.db.range(&rtxn, &range)?.take(limit), visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        // The leaked handle keeps the environment open until the process exits; LMDB's files do
        // not change on close, so syncing is all a clean close would add.
        Ok(self.env.force_sync()?)
    }
}
