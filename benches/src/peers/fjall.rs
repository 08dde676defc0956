//! fjall 3: one keyspace, write batches; `sync` mode commits each batch with `SyncData`
//! (fdatasync, what kvstore's `Sync` does), `nosync` with fjall's default (`Buffer`: the journal
//! is handed to the OS) and one `SyncAll` persist at the end.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, visit_all};

pub struct FjallEngine {
    db: Database,
    keyspace: Keyspace,
}

impl FjallEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let db = Database::builder(dir).open()?;
        let keyspace = db.keyspace("seed", KeyspaceCreateOptions::default)?;
        Ok(FjallEngine { db, keyspace })
    }
}

impl Engine for FjallEngine {
    fn write_batch(&mut self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let mut batch = self.db.batch();
        for (k, v) in entries {
            batch.insert(&self.keyspace, *k, *v);
        }
        if mode == SyncMode::Each {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        batch.commit()?;
        Ok(())
    }

    fn sync(&mut self) -> BenchResult<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn get_eq(&mut self, key: &[u8], expected: &[u8]) -> BenchResult<bool> {
        Ok(self.keyspace.get(key)?.as_deref() == Some(expected))
    }

    fn scan_prefix(
        &mut self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let items = self.keyspace.prefix(prefix).map(|guard| guard.into_inner());
        visit_all(items, visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}
