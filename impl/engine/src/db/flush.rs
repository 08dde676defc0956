//! Flush: freezing the active memtable and turning frozen memtables into L0 SSTs.
//!
//! Protocol:
//! 1. Freeze (writer lock held, so no commit is half-inserted): rotate the WAL (a new segment; the
//!    old one is synced only if a sync comes before the flush ends) to get boundary `B`, the
//!    offset where the frozen memtable's records end; move the
//!    active memtable to the frozen list with `B`; start an empty active memtable.
//! 2. Flush the oldest frozen memtable (work lock held): wait until every commit in it, and every
//!    lease grant and revocation before its boundary, is published (a commit is applied before
//!    its WAL sync, and must not reach an SST or a manifest before it is acknowledged), write the versions readers may still see, tombstones kept, to SST `n` (a
//!    fresh number), sync the file, `sync_dir`. With background
//!    threads the next frozen memtable's SST is written while this one's file syncs.
//! 3. Persist a manifest adding `n` at L0 with `walOffset = B`, `lastRevision`, `nextFileNumber`,
//!    the leases and the last stamp as of `B` (taken at the freeze) and, if [`crate::HistoryRetention`] asks for one, a higher `historyHorizon`
//!    ([`crate::manifest::persist`]). Only now is the flush durable (and the horizon raised).
//! 4. Install the new tree and drop the frozen memtable in one step under the state lock.
//! 5. Remove WAL segments wholly below `B`: the writer forgets them under the writer lock, the
//!    unlinks and the `sync_dir` follow without it, so commits never wait on them.
//!
//! Invariants:
//! - Frozen memtables are installed oldest first, so the manifest's `walOffset` only moves past
//!   records that are in SSTs. A table written ahead is named by no manifest until its own
//!   memtable's install, which follows its own sync. A crash at any step leaves either the old
//!   manifest (the SST is an orphan, deleted at open, and the WAL still holds its records) or the
//!   new one.
//! - Any failure poisons the database; nothing is retried into a false success.

use std::sync::Arc;

use crate::compaction::{CompactionStream, Retention};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::metrics::Counter;
use crate::options::BackgroundMode;

use crate::sst::{Table, TableWriter, UnsyncedTable, table_options};
use crate::version::{FileMeta, VersionEdit};

use super::inner::Inner;
use super::versions::{Frozen, Tree};

/// When [`Inner::freeze`] freezes the active memtable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Freeze {
    /// Once it passed `memtable_size_bytes` (a commit's trigger).
    WhenFull,
    /// If it holds anything (an explicit flush, close).
    NonEmpty,
    /// Even empty: its flush then persists a manifest whose `walOffset`, `lastRevision`,
    /// `lastStamp` and leases are those of the freeze, so the tree holds everything the WAL held (lease grants
    /// and revocations, which leave the memtable empty, included). A checkpoint's need.
    Always,
}

/// One SST being written.
struct Output {
    number: u64,
    writer: TableWriter,
    smallest: Vec<u8>,
    largest: Vec<u8>,
    max_revision: u64,
}

impl Inner {
    /// Step 1: freezes the active memtable when `when` says so. Returns whether it froze one.
    pub(crate) fn freeze(&self, when: Freeze) -> Result<bool> {
        let mut writer = self.pipeline.writer();
        self.check_writable()?;
        let active = self.versions.active();
        let full = active.approximate_size_bytes() >= self.options.memtable_size_bytes;
        let due = match when {
            Freeze::WhenFull => full && !active.is_empty(),
            Freeze::NonEmpty => !active.is_empty(),
            Freeze::Always => true,
        };
        if !due {
            return Ok(false);
        }
        fail::fail_point!("flush::before_wal_rotate", |_| Err(
            self.poison(Error::failpoint("flush::before_wal_rotate"))
        ));
        let boundary = writer.wal.rotate().map_err(|e| self.poison(e))?;
        self.versions.freeze_active(boundary, &writer);
        Ok(true)
    }

    /// Steps 2-5 for every frozen memtable, oldest first. REQUIRES: the work lock is held.
    ///
    /// With background threads, while one memtable's tables sync (step 2's `sync_data`, on a
    /// scoped thread) the next frozen memtable's tables are written: the sync waits on the disk,
    /// the writing on the CPU. Installs stay in order and each still follows its own tables'
    /// sync and the directory sync, so the protocol's crash states are unchanged: the next
    /// memtable's tables are orphans until their own install. Inline mode keeps one thread, so a
    /// simulation's I/O trace stays deterministic. After each install, compactions that are
    /// trivial moves run ([`Inner::compact_moves_due`]), so a backlog does not pile up in L0.
    pub(crate) fn flush_frozen(&self) -> Result<()> {
        let overlap = self.options.background == BackgroundMode::Threads;
        // The oldest frozen memtable's tables, if written ahead while the previous one synced.
        let mut written_ahead: Option<Vec<WrittenTable>> = None;
        loop {
            let Some(oldest) = self.versions.frozen(0) else {
                return Ok(());
            };
            self.check_usable()?;
            let written = match written_ahead.take() {
                Some(written) => written,
                None => self.write_memtable(&oldest).map_err(|e| self.poison(e))?,
            };
            // Looked up only now: writers may have frozen another memtable meanwhile.
            let next = self.versions.frozen(1);
            let (synced, ahead) = match next.filter(|_| overlap) {
                Some(next) => std::thread::scope(|scope| {
                    let syncing = std::thread::Builder::new()
                        .name("kvstore-sync".to_owned())
                        .spawn_scoped(scope, move || sync_tables(written));
                    let syncing = match syncing {
                        Ok(handle) => handle,
                        // The tables went with the closure: unsynced, so never installed.
                        Err(e) => return (Err(Error::io("spawn sync thread", &self.dir, e)), None),
                    };
                    let ahead = self.write_memtable(&next);
                    let synced = syncing
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (synced, Some(ahead))
                }),
                None => (sync_tables(written), None),
            };
            let metas = synced.map_err(|e| self.poison(e))?;
            written_ahead = ahead.transpose().map_err(|e| self.poison(e))?;
            self.install_memtable(&oldest, metas)
                .map_err(|e| self.poison(e))?;
            self.compact_moves_due()?;
        }
    }

    /// Step 2 without the syncs: the memtable's versions that readers may still see (every one
    /// at or above the read floor, the newest below it), tombstones kept, written to new L0
    /// tables.
    fn write_memtable(&self, frozen: &Frozen) -> Result<Vec<WrittenTable>> {
        self.pipeline.wait_turns_published(frozen.turns)?;
        let retention = Retention {
            floor: self.readers.floor(),
            bottommost: false,
        };
        let stream = CompactionStream::new(frozen.mem.history(), retention, u64::MAX);
        self.write_tables(stream, 0, frozen.wal_boundary)
    }

    /// Steps 2 (the directory sync, after the tables' own syncs) to 5 for `frozen`, whose tables
    /// `metas` were written and synced.
    fn install_memtable(&self, frozen: &Frozen, metas: Vec<FileMeta>) -> Result<()> {
        let added = self.open_tables(metas)?;
        fail::fail_point!("flush::after_sst_written", |_| Err(Error::failpoint(
            "flush::after_sst_written"
        )));
        let tree = self.tree();
        let last_revision = tree.version.last_revision().max(frozen.last_revision);
        let now_ms = || self.options.clock.now_ms();
        let horizon = (self.retention).horizon_at(now_ms, last_revision, self.readers.horizon());
        let edit = VersionEdit {
            wal_offset: Some(frozen.wal_boundary),
            last_revision: Some(last_revision),
            last_stamp: Some(frozen.last_stamp),
            history_horizon: horizon,
            leases: Some(Arc::clone(&frozen.leases)),
            ..self
                .versions
                .edit_adding(&tree.version, added.iter().map(|(m, _)| m.clone()))
        };
        let bytes: u64 = added.iter().map(|(m, _)| m.size_bytes).sum();
        self.install(&tree, &edit, added, true)?;
        self.metrics.inc(Counter::Flushes);
        self.metrics.add(Counter::FlushWrittenBytes, bytes);
        if let Some(horizon) = horizon {
            self.readers.raise_horizon(horizon);
        }
        self.pipeline.mark_durable(frozen.last_revision);
        // Detached under the writer lock, removed after it: commits never wait on the unlinks.
        let obsolete = self
            .pipeline
            .writer()
            .wal
            .detach_segments_below(frozen.wal_boundary)?;
        obsolete.remove().map(|_| ())
    }

    /// [`super::versions::VersionSet::install`], then wakes stalled writers (a flush drops a
    /// frozen memtable, a compaction lowers L0). REQUIRES: work lock held and `tree` is the
    /// current tree.
    pub(crate) fn install(
        &self,
        tree: &Tree,
        edit: &VersionEdit,
        added: Vec<(FileMeta, Arc<Table>)>,
        drop_frozen: bool,
    ) -> Result<()> {
        self.versions.install(tree, edit, added, drop_frozen)?;
        self.wake_stalled_writers();
        Ok(())
    }

    /// Writes the stream's entries to new SSTs at `level` (a new file at each cut), syncs each
    /// file and then the directory, and opens them. Returns their metadata and readers.
    pub(crate) fn write_outputs<I: Iterator<Item = Result<Entry>>>(
        &self,
        stream: CompactionStream<I>,
        level: usize,
        wal_offset: u64,
    ) -> Result<Vec<(FileMeta, Arc<Table>)>> {
        let written = self.write_tables(stream, level, wal_offset)?;
        self.open_tables(sync_tables(written)?)
    }

    /// Writes the stream's entries to new SSTs at `level` (a new file at each cut), every byte
    /// appended, none synced yet.
    fn write_tables<I: Iterator<Item = Result<Entry>>>(
        &self,
        stream: CompactionStream<I>,
        level: usize,
        wal_offset: u64,
    ) -> Result<Vec<WrittenTable>> {
        let mut done: Vec<Output> = Vec::new();
        let mut current: Option<Output> = None;
        for step in stream {
            let step = step?;
            if step.starts_new_file || current.is_none() {
                if let Some(out) = current.take() {
                    done.push(out);
                }
                let number = self.versions.allocate_file_number();
                let path = self.sst_path(number);
                let writer =
                    TableWriter::create(self.vfs.as_ref(), &path, table_options(&self.options))?;
                current = Some(Output {
                    number,
                    writer,
                    smallest: step.entry.key.clone(),
                    largest: step.entry.key.clone(),
                    max_revision: 0,
                });
            }
            if let Some(out) = current.as_mut() {
                out.writer.add(&step.entry)?;
                out.largest.clone_from(&step.entry.key);
                out.max_revision = out.max_revision.max(step.entry.revision);
            }
        }
        done.extend(current);
        let created_at_ms = self.options.clock.now_ms();
        let mut written = Vec::with_capacity(done.len());
        for out in done {
            let table = out.writer.finish_unsynced()?;
            let meta = FileMeta {
                number: out.number,
                level,
                smallest_key: out.smallest,
                largest_key: out.largest,
                size_bytes: 0,
                wal_offset,
                created_at_ms,
                max_revision: out.max_revision,
            };
            written.push(WrittenTable { meta, table });
        }
        Ok(written)
    }

    /// Syncs the directory (naming tables written and synced), then opens each table.
    fn open_tables(&self, metas: Vec<FileMeta>) -> Result<Vec<(FileMeta, Arc<Table>)>> {
        if !metas.is_empty() {
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync_dir", &self.dir, e))?;
        }
        let mut opened = Vec::with_capacity(metas.len());
        for mut meta in metas {
            let path = self.sst_path(meta.number);
            let table = Table::open(
                self.vfs.as_ref(),
                &path,
                meta.number,
                Arc::clone(&self.cache),
            )?;
            meta.size_bytes = table.size_bytes();
            opened.push((meta, table));
        }
        Ok(opened)
    }
}

/// A table written by [`Inner::write_tables`]: its metadata and its not yet durable file.
struct WrittenTable {
    meta: FileMeta,
    table: UnsyncedTable,
}

/// `sync_data`s each written table in order; returns their metadata once all are durable.
fn sync_tables(written: Vec<WrittenTable>) -> Result<Vec<FileMeta>> {
    written
        .into_iter()
        .map(|w| w.table.sync().map(|_| w.meta))
        .collect()
}
