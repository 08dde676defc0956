//! The leveled compaction policy: a pure function from the live files to the next task.
//!
//! Invariants:
//! - L0 is compacted when it holds at least `l0_compaction_trigger_files` files: all of L0 plus
//!   every L1 file overlapping their key span go to L1 (L0 files overlap, so all must move at once
//!   to keep "newest first" meaningful).
//! - Otherwise the level `n` in `1..num_levels-1` with the largest `size / target(n)` above 1 is
//!   compacted: its oldest file (lowest number: files rotate as compactions rewrite them) plus the
//!   overlapping files of `n + 1` go to `n + 1`. The last level is never a source.
//! - A task is `bottommost` iff no level below its output holds a file overlapping the task's key
//!   span: only then may its merge drop tombstones.
//! - A task whose output level has no overlapping file and whose input files do not overlap each
//!   other is a trivial move ([`CompactionTask::trivial_move`]): the files change level in the
//!   manifest and no byte is rewritten. Moving keeps "newer above older" because no key of a
//!   moved file exists in the output level, and it keeps tombstones (a move never drops data).
//! - Otherwise the first run (upper levels first, then by key) of at least
//!   [`SMALL_RUN_FILES_MIN`] adjacent files of one level `n >= 1`, each at most
//!   `sst_target_file_size_bytes / SMALL_FILE_DIVISOR` (so together at most the target), is
//!   merged into one file at the same level `n` ([`CompactionTask::single_output`]); a run is
//!   cut at [`SMALL_RUN_FILES_MAX`] files. Tiny
//!   flushes of disjoint keys only ever move (a move rewrites nothing), so without this rule
//!   every one of them stayed a file of its own. Adjacent files of a level `>= 1` do not overlap
//!   and no file of the level lies between them, so the output sits where they sat; one output
//!   file from a run of at least two makes the level's file count drop with every such merge,
//!   so they always end.
//! - Stalls grow with L0's backlog: none below `l0_stall_files`, a short delay per write up to
//!   `l0_stop_files`, a full stop at or beyond it.

use std::ops::Bound;
use std::sync::Arc;

use crate::options::Options;
use crate::range::KeyRange;
use crate::version::{FileMeta, RemovedFile, Version};

/// Delay applied to each write while L0 holds between `l0_stall_files` and `l0_stop_files`
/// files (LevelDB's choice): enough to hand the CPU to compaction, too little for users to notice.
pub const STALL_DELAY_MS: u64 = 1;

/// A file of at most `sst_target_file_size_bytes / SMALL_FILE_DIVISOR` bytes (32 KiB at the
/// 2 MiB default) is small. Such files come from flushes of nearly empty memtables (a process
/// that writes a few keys and closes); a flush of a filled memtable is far larger, so the normal
/// write path never rewrites a table for this rule. (At 4, the workcount benchmark's 256 KiB
/// flushes were merged again after their trivial moves: +45 % bytes written.)
pub const SMALL_FILE_DIVISOR: u64 = 64;
/// Fewest adjacent small files merged at once: fewer would rewrite small files for a small gain.
pub const SMALL_RUN_FILES_MIN: usize = 4;
/// Most small files merged at once: a merge holds every input table open while it runs.
pub const SMALL_RUN_FILES_MAX: usize = 64;

const _: () = assert!(2 <= SMALL_RUN_FILES_MIN && SMALL_RUN_FILES_MIN <= SMALL_RUN_FILES_MAX);
// A run of small files never passes the target size, so the merge writes one file of at most it.
const _: () = assert!(SMALL_RUN_FILES_MAX as u64 <= SMALL_FILE_DIVISOR);

/// The input files of one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelInputs {
    /// The level.
    pub level: usize,
    /// Its files taking part, in the level's order.
    pub files: Vec<Arc<FileMeta>>,
}

/// One compaction to run: merge the inputs, write the result to `output_level`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionTask {
    /// Input files per level, upper level first.
    pub inputs: Vec<LevelInputs>,
    /// Level the output files go to.
    pub output_level: usize,
    /// No level below `output_level` holds data in the task's key span: tombstones may be dropped.
    pub bottommost: bool,
    /// Write all the output to one file instead of cutting it at `sst_target_file_size_bytes`:
    /// a merge of small files, whose stored sizes sum to at most the target, must end with
    /// fewer files than it read, whatever the entries weigh uncompressed.
    pub single_output: bool,
}

impl CompactionTask {
    /// The removals of the edit that installs this task's result.
    pub fn removed_files(&self) -> Vec<RemovedFile> {
        self.inputs
            .iter()
            .flat_map(|l| {
                l.files.iter().map(|f| RemovedFile {
                    level: l.level,
                    number: f.number,
                })
            })
            .collect()
    }

    /// Every input file, upper level first: the order their merge sources are listed in.
    pub fn input_files(&self) -> impl Iterator<Item = &Arc<FileMeta>> {
        self.inputs.iter().flat_map(|l| l.files.iter())
    }

    /// The files as they would sit at the output level, when this task can be done by moving
    /// them there unchanged: nothing at the output level overlaps them and they do not overlap
    /// each other (L0 files may). `None` when the task must merge.
    pub fn trivial_move(&self) -> Option<Vec<FileMeta>> {
        let output_has_files = self
            .inputs
            .iter()
            .any(|l| l.level == self.output_level && !l.files.is_empty());
        if output_has_files {
            return None;
        }
        let mut moved: Vec<FileMeta> = self.input_files().map(|f| (**f).clone()).collect();
        moved.sort_by(|a, b| a.smallest_key.cmp(&b.smallest_key));
        let disjoint = moved
            .iter()
            .zip(moved.iter().skip(1))
            .all(|(a, b)| a.largest_key < b.smallest_key);
        if moved.is_empty() || !disjoint {
            return None;
        }
        for file in &mut moved {
            file.level = self.output_level;
        }
        Some(moved)
    }
}

/// What a writer should do given the L0 backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallDecision {
    /// Write at full speed.
    Proceed,
    /// Sleep `delay_ms` before the write, then write.
    SlowDown {
        /// How long to sleep.
        delay_ms: u64,
    },
    /// Wait until a compaction lowers the L0 file count.
    Stop,
}

/// Whether writes must slow down or stop so compaction can catch up with L0.
pub fn stall(version: &Version, opts: &Options) -> StallDecision {
    let l0 = version.files(0).len();
    if l0 >= opts.l0_stop_files {
        StallDecision::Stop
    } else if l0 >= opts.l0_stall_files {
        StallDecision::SlowDown {
            delay_ms: STALL_DELAY_MS,
        }
    } else {
        StallDecision::Proceed
    }
}

/// The next compaction to run, or `None` when every level is within its budget.
pub fn pick(version: &Version, opts: &Options) -> Option<CompactionTask> {
    let l0 = version.files(0);
    if l0.len() >= opts.l0_compaction_trigger_files && version.num_levels() >= 2 {
        let span = span_of(l0.iter())?;
        let l1 = version.overlapping(1, &span);
        return Some(task(version, vec![level(0, l0.to_vec()), level(1, l1)], 1));
    }
    let Some(source) = most_oversized_level(version, opts) else {
        return small_file_run(version, opts);
    };
    let file = version.files(source).iter().min_by_key(|f| f.number)?;
    let span = span_of(std::iter::once(file))?;
    let below = version.overlapping(source.checked_add(1)?, &span);
    let output = source.checked_add(1)?;
    Some(task(
        version,
        vec![level(source, vec![Arc::clone(file)]), level(output, below)],
        output,
    ))
}

/// The level in `1..num_levels-1` with the largest size/target ratio above 1.
fn most_oversized_level(version: &Version, opts: &Options) -> Option<usize> {
    let last = version.num_levels().checked_sub(1)?;
    let mut best: Option<(usize, u64, u64)> = None;
    for n in 1..last {
        let size = version.level_size_bytes(n);
        let target = opts.level_target_size_bytes(n).max(1);
        if size <= target {
            continue;
        }
        // size/target > best_size/best_target, compared without division or floats.
        let better = best.is_none_or(|(_, bs, bt)| {
            u128::from(size) * u128::from(bt) > u128::from(bs) * u128::from(target)
        });
        if better {
            best = Some((n, size, target));
        }
    }
    best.map(|(n, _, _)| n)
}

/// The merge of the first run of small adjacent files (see the module doc), if any.
fn small_file_run(version: &Version, opts: &Options) -> Option<CompactionTask> {
    let target = opts.sst_target_file_size_bytes;
    let small = target / SMALL_FILE_DIVISOR;
    for n in 1..version.num_levels() {
        let files = version.files(n);
        for start in 0..files.len() {
            let run: Vec<Arc<FileMeta>> = files
                .iter()
                .skip(start)
                .take(SMALL_RUN_FILES_MAX)
                .take_while(|f| f.size_bytes <= small)
                .cloned()
                .collect();
            if run.len() >= SMALL_RUN_FILES_MIN {
                let mut merge = task(version, vec![level(n, run)], n);
                merge.single_output = true;
                return Some(merge);
            }
        }
    }
    None
}

pub(crate) fn level(level: usize, files: Vec<Arc<FileMeta>>) -> LevelInputs {
    LevelInputs { level, files }
}

/// The task moving `inputs` to `output_level`, `bottommost` computed from `version`.
pub(crate) fn task(
    version: &Version,
    inputs: Vec<LevelInputs>,
    output_level: usize,
) -> CompactionTask {
    let span = span_of(inputs.iter().flat_map(|l| l.files.iter()));
    let bottommost = span.is_none_or(|span| {
        (output_level.saturating_add(1)..version.num_levels())
            .all(|deeper| version.overlapping(deeper, &span).is_empty())
    });
    CompactionTask {
        inputs,
        output_level,
        bottommost,
        single_output: false,
    }
}

/// The smallest inclusive range covering every file, or `None` for no files.
/// The key span covering `files`, or `None` for no files.
pub(crate) fn span_of<'a>(files: impl Iterator<Item = &'a Arc<FileMeta>>) -> Option<KeyRange> {
    let mut span: Option<(&[u8], &[u8])> = None;
    for f in files {
        let (lo, hi) = span.get_or_insert((f.smallest_key.as_slice(), f.largest_key.as_slice()));
        *lo = (*lo).min(f.smallest_key.as_slice());
        *hi = (*hi).max(f.largest_key.as_slice());
    }
    span.map(|(lo, hi)| KeyRange::new(Bound::Included(lo.to_vec()), Bound::Included(hi.to_vec())))
}

#[cfg(test)]
mod tests;
