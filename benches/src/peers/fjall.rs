//! fjall 3: one keyspace, write batches; `sync` mode commits each batch with `SyncData`
//! (fdatasync, what kvstore's `Sync` does), `nosync` with fjall's default (`Buffer`: the journal
//! is handed to the OS) and one `SyncAll` persist at the end.
//!
//! [`FjallTxnEngine`]: fjall's optimistic transactions (`OptimisticTxDatabase::write_tx`: a
//! snapshot at begin, the keys read checked at commit, `Err(Conflict)` if one was written since),
//! with the same durability switch per commit.

use std::path::Path;

use fjall::{
    Database, Keyspace, KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticTxKeyspace,
    PersistMode, Readable,
};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, TxnEngine, decode_counter, found_value, visit_all};

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
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
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

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        Ok(found_value(self.keyspace.get(key)?, found))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        let items = self.keyspace.prefix(prefix).map(|guard| guard.into_inner());
        visit_all(items, visit)
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let items = self.keyspace.range(start..).take(limit);
        visit_all(items.map(|guard| guard.into_inner()), visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}

pub struct FjallTxnEngine {
    db: OptimisticTxDatabase,
    keyspace: OptimisticTxKeyspace,
}

impl FjallTxnEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let db = OptimisticTxDatabase::builder(dir).open()?;
        let keyspace = db.keyspace("txn", KeyspaceCreateOptions::default)?;
        Ok(FjallTxnEngine { db, keyspace })
    }
}

impl TxnEngine for FjallTxnEngine {
    fn init(&self, keys: &[&[u8]]) -> BenchResult<()> {
        let mut tx = self.db.write_tx()?;
        for key in keys {
            tx.insert(self.keyspace.inner(), *key, 0u64.to_be_bytes());
        }
        tx.commit()?
            .map_err(|_| "fjall: the initial commit conflicted".into())
    }

    fn increment(&self, key: &[u8], mode: SyncMode) -> BenchResult<bool> {
        let mut tx = self.db.write_tx()?;
        if mode == SyncMode::Each {
            tx = tx.durability(Some(PersistMode::SyncData));
        }
        let n = decode_counter(key, tx.get(&self.keyspace, key)?.as_deref())?;
        tx.insert(self.keyspace.inner(), key, (n + 1).to_be_bytes());
        Ok(tx.commit()?.is_ok())
    }

    fn counter(&self, key: &[u8]) -> BenchResult<u64> {
        decode_counter(key, self.keyspace.get(key)?.as_deref())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}
