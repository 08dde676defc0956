//! Background work (flush, then compaction) and write stalls, in both [`BackgroundMode`]s.
//!
//! - [`BackgroundMode::Inline`]: the thread whose commit filled the memtable freezes it, flushes
//!   and compacts before its write call returns, so on `SimVfs` the same operations give the same
//!   I/O trace.
//! - [`BackgroundMode::Threads`]: that thread only freezes the memtable (cheap, bounds memory) and
//!   wakes the one worker thread, which flushes every frozen memtable, then compacts until the
//!   policy is satisfied, then sleeps on a condvar.
//!
//! [`Worker`] owns the work lock, the worker's wake-up flags and the condvars; the protocols
//! here are `Inner`'s, as they also freeze (the pipeline's writer lock) and read the version set.
//!
//! Invariants:
//! - Both modes run the same [`Inner::background_work`] under the work lock; explicit `flush()`
//!   and `compact_range()` take the same lock, so at most one flush or compaction runs at a time.
//! - Writes stop while `FROZEN_MEMTABLES_MAX` frozen memtables wait for their flush, so memory
//!   stays bounded when the disk is slower than the writers.
//! - Writes never fail because of a stall: on `SlowDown` they sleep `STALL_DELAY_MS`, on `Stop`
//!   they wait (in bounded slices) for the worker to lower L0, or, inline, compact themselves. A
//!   poisoned or closed database stops the wait (the write then fails on its own check).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::compaction::{StallDecision, stall};
use crate::error::Result;
use crate::metrics::Counter;
use crate::options::BackgroundMode;

use super::flush::Freeze;
use super::inner::{Inner, lock, wait};

/// How long one slice of a `Stop` stall waits before re-checking.
const STALL_WAIT_SLICE_MS: u64 = 10;
/// Most frozen memtables waiting for a flush before writes stop (threads mode): bounds the memory
/// a slow disk lets writers pile up, like LevelDB's single immutable memtable but with slack.
/// Three, because a flush overlaps the next memtable's table with the current one's sync only if
/// that memtable is already frozen (`Inner::flush_frozen`): with 16 MiB memtables, 3 and the
/// overlap wrote the seed workload at 600-729 kops/s (nosync) where 2 wrote 452-535, for 97 MB of
/// peak RSS instead of 75; 3 without the overlap, or the overlap with 2, gained nothing (two
/// `seedbench` runs each).
pub(crate) const FROZEN_MEMTABLES_MAX: usize = 3;

/// The worker's wake-up flags (under `Worker::bg`).
#[derive(Debug, Default)]
struct BgState {
    /// Work was requested since the worker last started a round.
    pending: bool,
    /// The worker must exit.
    shutdown: bool,
}

/// The background worker's locks and wake-ups.
#[derive(Debug, Default)]
pub(crate) struct Worker {
    /// Held by whoever flushes, compacts or persists a manifest.
    work: Mutex<()>,
    bg: Mutex<BgState>,
    bg_cv: Condvar,
    stall_cv: Condvar,
}

impl Worker {
    /// The work lock.
    pub(crate) fn work(&self) -> MutexGuard<'_, ()> {
        lock(&self.work)
    }

    /// Asks the worker for a round.
    fn wake(&self) {
        lock(&self.bg).pending = true;
        self.bg_cv.notify_all();
    }

    /// Waits for a round to be asked for; `false` once shutdown is requested.
    fn next_round(&self) -> bool {
        let mut bg = lock(&self.bg);
        while !bg.pending && !bg.shutdown {
            bg = wait(&self.bg_cv, bg);
        }
        bg.pending = false;
        !bg.shutdown
    }

    /// Stops the worker at its next wake-up.
    pub(crate) fn request_shutdown(&self) {
        lock(&self.bg).shutdown = true;
        self.bg_cv.notify_all();
    }

    /// Wakes writers waiting in a stall (notifies under `bg`, the waiters' mutex).
    fn wake_stalled(&self) {
        let _bg = lock(&self.bg);
        self.stall_cv.notify_all();
    }

    /// One slice of a `Stop` stall: `false` at once on shutdown (stop stalling); at once if
    /// `still_stopped` (checked under `bg`: an install changes the state and then notifies under
    /// `bg`, so it either happened before this check or its notification reaches this wait)
    /// says the stall is over; else after up to [`STALL_WAIT_SLICE_MS`] or a wake-up.
    fn stall_slice(&self, still_stopped: impl FnOnce() -> bool) -> bool {
        let bg = lock(&self.bg);
        if bg.shutdown {
            return false;
        }
        if !still_stopped() {
            return true;
        }
        let slice = Duration::from_millis(STALL_WAIT_SLICE_MS);
        drop(
            self.stall_cv
                .wait_timeout(bg, slice)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        true
    }
}

impl Inner {
    /// Called after each successful commit: freezes a full memtable and gets it flushed.
    pub(crate) fn after_commit(&self) {
        let full =
            self.versions.active().approximate_size_bytes() >= self.options.memtable_size_bytes;
        if !full {
            return;
        }
        // Errors poison the database inside; the commit itself already succeeded.
        match self.options.background {
            BackgroundMode::Inline => {
                if self.freeze(Freeze::WhenFull).is_ok() {
                    let _ = self.background_work();
                }
            }
            BackgroundMode::Threads => {
                if self.freeze(Freeze::WhenFull).is_ok() {
                    self.wake_worker();
                }
            }
        }
    }

    /// Flushes every frozen memtable, then compacts until no compaction is due.
    pub(crate) fn background_work(&self) -> Result<()> {
        let _work = self.worker.work();
        self.flush_frozen()?;
        let result = self.compact_due();
        // Also on failure: a stalled writer then sees the poisoned database and stops waiting.
        self.wake_stalled_writers();
        result
    }

    /// Asks the worker for a round (a no-op in inline mode).
    pub(crate) fn wake_worker(&self) {
        if self.options.background == BackgroundMode::Threads {
            self.worker.wake();
        }
    }

    /// The worker thread's loop: one round per wake-up, until shutdown.
    pub(crate) fn worker_loop(&self) {
        while self.worker.next_round() {
            if let Err(error) = self.background_work() {
                tracing::error!(%error, "background flush/compaction failed");
            }
        }
    }

    /// Delays a write while L0 is over its stall thresholds (see the module doc); a write that
    /// waited is counted, with how long it waited, in the metrics.
    pub(crate) fn stall_writes(&self) {
        if self.stall_decision() == StallDecision::Proceed {
            return;
        }
        let started = Instant::now();
        self.stall_until_proceed();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.inc(Counter::WriteStalls);
        self.metrics.add(Counter::WriteStallMicros, micros);
    }

    /// The wait of [`Inner::stall_writes`].
    fn stall_until_proceed(&self) {
        loop {
            match self.stall_decision() {
                StallDecision::Proceed => return,
                StallDecision::SlowDown { delay_ms } => {
                    std::thread::sleep(Duration::from_millis(delay_ms));
                    return;
                }
                StallDecision::Stop => {
                    if self.check_usable().is_err() {
                        return;
                    }
                    match self.options.background {
                        BackgroundMode::Inline => {
                            // Compaction failing poisons; either way do not wait forever.
                            let _ = self.background_work();
                            return;
                        }
                        BackgroundMode::Threads => {
                            self.wake_worker();
                            let stopped = || self.stall_decision() == StallDecision::Stop;
                            if !self.worker.stall_slice(stopped) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether a write must wait now: too many frozen memtables, or L0 over its thresholds.
    fn stall_decision(&self) -> StallDecision {
        let (tree, frozen) = self.versions.backlog();
        if frozen >= FROZEN_MEMTABLES_MAX {
            StallDecision::Stop
        } else {
            stall(&tree.version, &self.options)
        }
    }

    /// Wakes writers waiting in [`Inner::stall_writes`]; called after every install (a flush
    /// drops a frozen memtable, a compaction lowers L0), so a stalled writer resumes as soon as
    /// it may, not at the end of its wait slice. Notifies under `bg`, the waiters' mutex.
    pub(crate) fn wake_stalled_writers(&self) {
        self.worker.wake_stalled();
    }
}
