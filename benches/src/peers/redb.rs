//! redb 4: one table `&[u8] -> &[u8]`, one write transaction per batch; `sync` mode commits with
//! `Durability::Immediate`, `nosync` with `Durability::None` and one empty `Immediate` commit at
//! the end (which makes every earlier commit durable).

use std::path::Path;

use redb::{AccessGuard, Database, Durability, ReadableDatabase, StorageError, TableDefinition};

use crate::BenchResult;
use crate::engine::{Engine, SyncMode, found_value};

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

/// Lends every pair of `items` (redb's guards into its pages) to `visit` and counts them,
/// stopping at the first error.
fn visit_guards<'a>(
    items: impl Iterator<
        Item = Result<
            (
                AccessGuard<'a, &'static [u8]>,
                AccessGuard<'a, &'static [u8]>,
            ),
            StorageError,
        >,
    >,
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> BenchResult<u64> {
    let mut count = 0;
    for item in items {
        let (k, v) = item?;
        visit(k.value(), v.value());
        count += 1;
    }
    Ok(count)
}

impl Engine for RedbEngine {
    fn write_batch(&self, entries: &[(&[u8], &[u8])], mode: SyncMode) -> BenchResult<()> {
        let durability = match mode {
            SyncMode::Each => Durability::Immediate,
            SyncMode::End => Durability::None,
        };
        self.commit(entries, durability)
    }

    fn sync(&self) -> BenchResult<()> {
        self.commit(&[], Durability::Immediate)
    }

    fn get_with(&self, key: &[u8], found: &mut dyn FnMut(&[u8])) -> BenchResult<bool> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let value = table.get(key)?;
        Ok(found_value(value.as_ref().map(|v| v.value()), found))
    }

    fn scan_from(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> BenchResult<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        visit_guards(table.range::<&[u8]>(start..)?.take(limit), visit)
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> BenchResult<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        // An error still reaches visit_guards.
        let items = table
            .range::<&[u8]>(prefix..)?
            .take_while(|item| match item {
                Ok((key, _)) => key.value().starts_with(prefix),
                Err(_) => true,
            });
        visit_guards(items, visit)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        drop(self);
        Ok(())
    }
}
