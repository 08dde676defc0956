//! Compaction, the effects: run a [`CompactionTask`] chosen by the pure policy.
//!
//! Protocol:
//! 1. Merge the input files (one source per L0 file, one per deeper level whose files it opens
//!    one at a time) with [`MergeIter`] at revision `u64::MAX`, tombstones kept, through
//!    [`CompactionStream`] (tombstones dropped only when the task is bottommost), into new SSTs
//!    cut at `sst_target_file_size_bytes` (into one SST for a
//!    [`single_output`](CompactionTask::single_output) task); `finish` each, `sync_dir`.
//! 2. Persist a manifest removing the inputs and adding the outputs, then install the new tree.
//! 3. Only then, once no tree lists them (readers of an older snapshot may still open them),
//!    remove the input files and forget their cached readers and blocks: the last tree holding
//!    an input drops its [`LiveFile`](super::tables::LiveFile), which does it.
//!
//! A [trivial move](CompactionTask::trivial_move) skips steps 1 and 3: the manifest of step 2
//! moves the files to the output level and they stay on disk as they are.
//!
//! Invariants:
//! - A crash before step 2 completes leaves the old manifest: the outputs are orphans, deleted at
//!   open. A crash after it leaves the inputs as orphans, deleted at open.
//! - Manual compaction ([`range_task`]) moves all of L0 at once, like the policy, so no older L0
//!   file is ever left above a newer version of its keys.

use std::sync::Arc;

use crate::compaction::policy::{level as level_inputs, span_of, task};

use crate::compaction::{CompactionStream, CompactionTask, Retention, pick};
use crate::error::{Error, Result};
use crate::iter::{BoxedSource, ConcatSource, HistoryMerge};
use crate::metrics::Counter;
use crate::range::{Direction, KeyRange};
use crate::sst::TableIter;
use crate::version::{FileMeta, Version, VersionEdit};

use super::inner::Inner;
use super::versions::Tree;

impl Inner {
    /// Runs policy-chosen compactions until none is due. REQUIRES: work lock held.
    pub(crate) fn compact_due(&self) -> Result<()> {
        self.compact_while(|_| true)
    }

    /// Runs policy-chosen compactions while each is a trivial move (a manifest edit, no byte
    /// rewritten), stopping at the first that would rewrite files. Called between the flushes of
    /// a backlog of frozen memtables: a sustained burst keeps the flush loop busy, and without
    /// this L0 grew to the stall threshold and slowed writers (31 delayed writes in a 1M seed
    /// write), though draining it cost only manifest edits. REQUIRES: work lock held.
    pub(crate) fn compact_moves_due(&self) -> Result<()> {
        self.compact_while(|task| task.trivial_move().is_some())
    }

    /// Runs the policy's next compaction while there is one and `accept` takes it.
    fn compact_while(&self, accept: impl Fn(&CompactionTask) -> bool) -> Result<()> {
        loop {
            self.check_writable()?;
            let tree = self.tree();
            let Some(task) = pick(&tree.version, &self.options).filter(|t| accept(t)) else {
                return Ok(());
            };
            self.run_task(&tree, &task).map_err(|e| self.poison(e))?;
        }
    }

    /// Compacts every level's files overlapping `range` down to the last level. REQUIRES: work
    /// lock held.
    pub(crate) fn compact_range_locked(&self, range: &KeyRange) -> Result<()> {
        let levels = self.options.max_levels;
        for level in 0..levels.saturating_sub(1) {
            self.check_writable()?;
            let tree = self.tree();
            if let Some(task) = range_task(&tree.version, range, level) {
                self.run_task(&tree, &task).map_err(|e| self.poison(e))?;
            }
        }
        Ok(())
    }

    /// Raises the history horizon to `revision` (see [`crate::Db::compact_history`]): every
    /// revision up to the newest is made durable first (a horizon above what a crash could keep
    /// would leave the newest revision unreadable), then the manifest records the horizon, then
    /// readers and compaction see it.
    pub(crate) fn compact_history(&self, revision: u64) -> Result<()> {
        self.check_writable()?;
        let current = self.pipeline.visible();
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        // Under the work lock, so that two calls cannot install horizons out of order.
        let _work = self.worker.work();
        let horizon = self.readers.horizon();
        if revision <= horizon {
            return Err(Error::Compacted {
                requested: revision,
                horizon,
            });
        }
        self.pipeline.sync_wal().map_err(|e| self.poison(e))?;
        let tree = self.tree();
        let edit = VersionEdit {
            history_horizon: Some(revision),
            ..VersionEdit::default()
        };
        self.install(&tree, &edit, Vec::new(), false)
            .map_err(|e| self.poison(e))?;
        self.readers.raise_horizon(revision);
        Ok(())
    }

    /// Steps 1-3 of the module doc for `task` over the current `tree`.
    fn run_task(&self, tree: &Arc<Tree>, task: &CompactionTask) -> Result<()> {
        if let Some(moved) = task.trivial_move() {
            let edit = VersionEdit {
                remove: task.removed_files(),
                ..self.versions.edit_adding(&tree.version, moved.into_iter())
            };
            self.install(tree, &edit, Vec::new(), false)?;
            self.metrics.inc(Counter::TrivialMoves);
            return Ok(());
        }
        // Sources newest first (L0 files, then the output level's): only exact duplicates need
        // the order, and those carry the same bytes.
        let mut sources: Vec<BoxedSource> = Vec::new();
        for inputs in &task.inputs {
            if inputs.level == 0 {
                for file in &inputs.files {
                    let table = tree.table(&self.dir, file.number)?;
                    sources.push(Box::new(table.iter(KeyRange::all(), Direction::Forward)));
                }
                continue;
            }
            // A sorted level's inputs do not overlap: one source opening them one at a time, so
            // the merge holds one open table per level beyond L0's.
            let (tree, dir) = (Arc::clone(tree), self.dir.clone());
            let numbers: Vec<u64> = inputs.files.iter().map(|file| file.number).collect();
            let openers = numbers.into_iter().map(move |number| {
                let table = tree.table(&dir, number)?;
                Ok::<TableIter, Error>(table.iter(KeyRange::all(), Direction::Forward))
            });
            sources.push(Box::new(ConcatSource::new(openers)));
        }
        let retention = Retention {
            floor: self.readers.floor(),
            bottommost: task.bottommost,
        };
        let target_file_size_bytes = if task.single_output {
            u64::MAX
        } else {
            self.options.sst_target_file_size_bytes
        };
        let stream = CompactionStream::new(
            HistoryMerge::new(sources),
            retention,
            target_file_size_bytes,
        );
        let added = self.write_outputs(stream, task.output_level, tree.version.wal_offset())?;
        fail::fail_point!("compaction::after_outputs_written", |_| Err(
            crate::Error::failpoint("compaction::after_outputs_written")
        ));
        let edit = VersionEdit {
            remove: task.removed_files(),
            ..self
                .versions
                .edit_adding(&tree.version, added.iter().map(|(m, _)| m.clone()))
        };
        // Sabotage for negative controls (feature `failpoints`): delete the inputs before the
        // manifest that stops listing them is durable.
        fail::fail_point!("compaction::delete_inputs_before_manifest", |_| {
            for file in task.input_files() {
                let _ = self.vfs.remove(&self.sst_path(file.number));
            }
            self.install(tree, &edit, added.clone(), false)
        });
        let read: u64 = task.input_files().map(|f| f.size_bytes).sum();
        let written: u64 = added.iter().map(|(m, _)| m.size_bytes).sum();
        // Step 3 follows when the last tree listing the inputs is dropped (`LiveFile`).
        self.install(tree, &edit, added, false)?;
        self.metrics.inc(Counter::Compactions);
        self.metrics.add(Counter::CompactionReadBytes, read);
        self.metrics.add(Counter::CompactionWrittenBytes, written);
        Ok(())
    }
}

/// The manual compaction of `level` for `range`: L0 moves whole (with the L1 files overlapping
/// it) if any L0 file overlaps `range`; a deeper level moves its files overlapping `range` with
/// the overlapping files of the next level. `None` when `level` has nothing in `range` or is the
/// last level.
pub fn range_task(version: &Version, range: &KeyRange, level: usize) -> Option<CompactionTask> {
    let output_level = level.checked_add(1)?;
    if output_level >= version.num_levels() {
        return None;
    }
    let upper: Vec<Arc<FileMeta>> = if level == 0 {
        if version.overlapping(0, range).is_empty() {
            return None;
        }
        version.files(0).to_vec()
    } else {
        version.overlapping(level, range)
    };
    let span = span_of(upper.iter())?;
    let lower = version.overlapping(output_level, &span);
    Some(task(
        version,
        vec![
            level_inputs(level, upper),
            level_inputs(output_level, lower),
        ],
        output_level,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackgroundMode, Db, Options};

    /// A backlog of frozen memtables with disjoint keys: the flush loop moves L0 down between
    /// its flushes. (Without [`Inner::compact_moves_due`] the last backlog of three, frozen
    /// after the fourth put's stall flushed the first three, stays in L0.)
    #[test]
    fn moves_run_between_the_flushes_of_a_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            background: BackgroundMode::Inline,
            l0_compaction_trigger_files: 2,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).unwrap();
        let inner = db.inner();
        for i in 0..6u8 {
            db.put(&[b'k', i], b"v").unwrap();
            assert!(inner.freeze(crate::db::Freeze::NonEmpty).unwrap());
        }
        {
            let _work = inner.worker.work();
            inner.flush_frozen().unwrap();
        }
        let stats = db.stats();
        assert_eq!(stats.frozen_memtables, 0);
        assert!(
            stats.files_per_level[0] < 2,
            "L0 kept its backlog: {stats:?}"
        );
        assert_eq!(stats.files_per_level.iter().sum::<usize>(), 6);
        for i in 0..6u8 {
            assert_eq!(db.get(&[b'k', i]).unwrap(), Some(b"v".to_vec()));
        }
    }

    fn file(number: u64, level: usize, lo: &str, hi: &str) -> FileMeta {
        FileMeta {
            number,
            level,
            smallest_key: lo.as_bytes().to_vec(),
            largest_key: hi.as_bytes().to_vec(),
            size_bytes: 10,
            wal_offset: 0,
            created_at_ms: 0,
            max_revision: 1,
        }
    }

    fn version() -> Version {
        Version::new(4)
            .apply(&VersionEdit {
                add: vec![
                    file(1, 0, "a", "c"),
                    file(2, 0, "x", "z"),
                    file(3, 1, "b", "d"),
                    file(4, 1, "m", "n"),
                    file(5, 2, "m", "m"),
                ],
                next_file_number: Some(6),
                last_revision: Some(1),
                ..VersionEdit::default()
            })
            .unwrap()
    }

    #[test]
    fn l0_moves_whole_when_any_file_overlaps() {
        let v = version();
        let t = range_task(&v, &KeyRange::prefix(b"a"), 0).unwrap();
        assert_eq!(t.inputs[0].files.len(), 2);
        let lower: Vec<u64> = t.inputs[1].files.iter().map(|f| f.number).collect();
        assert_eq!(lower, vec![3, 4]);
        assert!(!t.bottommost, "file 5 at L2 lies below the span");
        assert!(range_task(&v, &KeyRange::prefix(b"q"), 0).is_none());
    }

    #[test]
    fn deeper_levels_take_only_overlapping_files() {
        let v = version();
        let t = range_task(&v, &KeyRange::prefix(b"b"), 1).unwrap();
        assert_eq!(t.inputs[0].files.len(), 1);
        assert!(t.inputs[1].files.is_empty());
        assert!(t.bottommost);
        assert!(range_task(&v, &KeyRange::all(), 3).is_none());
    }
}
