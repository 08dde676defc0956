//! redb 4: one table `&[u8] -> &[u8]`, one write transaction per batch; `sync` mode commits with
//! `Durability::Immediate`, `nosync` with `Durability::None` and one empty `Immediate` commit at
//! the end (which makes every earlier commit durable).

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("seed");

pub struct RedbEngine {
    db: Database,
}

impl RedbEngine {
    pub fn open(dir: &Path) -> BenchResult<Self> {
        let db = Database::create(dir.join("seed.redb"))?;
        Ok(RedbEngine { db })
    }

    fn commit(&self, entries: &[(&[u8], &[u8])], durability: Durability) -> BenchResult<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (k, v) in entries {
                table.insert(*k, *v)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Engine for RedbEngine {
    fn write_batch(&mut self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let durability = match mode {
            SyncMode::Each => Durability::Immediate,
            SyncMode::End => Durability::None,
        };
        self.commit(entries, durability)
    }

    fn sync(&mut self) -> BenchResult<()> {
        self.commit(&[], Durability::Immediate)
    }

    fn get_eq(&mut self, key: &[u8], expected: &[u8]) -> BenchResult<bool> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.is_some_and(|v| v.value() == expected))
    }

    fn scan_prefix(
        &mut self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let mut count = 0;
        for item in table.range::<&[u8]>(prefix..)? {
            let (k, v) = item?;
            if !k.value().starts_with(prefix) {
                break;
            }
            visit(k.value(), v.value());
            count += 1;
        }
        Ok(count)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        drop(self);
        Ok(())
    }
}
