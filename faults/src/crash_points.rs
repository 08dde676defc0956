//! Crash-point enumeration: run a workload once to count its operations, then rerun it crashing
//! at every operation under every persistence model, and check each rebooted disk.
//!
//! Invariants:
//! - Every run of the workload starts from a fresh disk made the same way (seed, faults, and the
//!   empty disk or the starting image), so run `k` issues the same first `k` operations as the
//!   counting run, provided the workload is deterministic.
//! - Crash points go from 0 (before the first operation) to N (after the last), both included.
//! - A failure names the crash point in a line that replays it ([`CrashPoint`]'s `Display`), and
//!   carries the trace of the crashed run.

use std::fmt;

use crate::disk::DiskImage;
use crate::faults::FaultConfig;
use crate::persistence::PersistenceModel;
use crate::sim::SimVfs;
use crate::trace::{TraceEntry, format_trace};

/// The most operations a workload may issue in a campaign: a bound on the sweep, and a guard
/// against a workload that never ends.
pub const CAMPAIGN_OPS_MAX: u64 = 100_000;

/// One crash point of a campaign: which run, where it crashed, what the crash kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CrashPoint {
    /// The seed of the disk.
    pub seed: u64,
    /// The operation the crash hit: operations `0..op_index` completed.
    pub op_index: u64,
    /// What the crash kept of the unsynced state.
    pub model: PersistenceModel,
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay: CrashPoint {{ seed: {:#x}, op_index: {}, model: PersistenceModel::{:?} }}",
            self.seed, self.op_index, self.model
        )
    }
}

/// What a finished campaign did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CampaignReport {
    /// Operations of the uncrashed workload.
    pub ops: u64,
    /// Crash points checked: `(ops + 1) * models`.
    pub crash_points: u64,
}

/// A crash point whose check failed.
#[derive(Clone, Debug)]
pub struct CampaignFailure {
    /// Where it crashed.
    pub point: CrashPoint,
    /// What the check said.
    pub message: String,
    /// The trace of the crashed run.
    pub trace: Vec<TraceEntry>,
}

impl fmt::Display for CampaignFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "crash check failed: {}", self.message)?;
        writeln!(f, "{}", self.point)?;
        write!(
            f,
            "trace of the crashed run:\n{}",
            format_trace(&self.trace)
        )
    }
}

impl std::error::Error for CampaignFailure {}

/// A crash-point campaign over one seed. See the crate doc for an example.
#[derive(Clone, Debug)]
pub struct Campaign {
    seed: u64,
    models: Vec<PersistenceModel>,
    faults: FaultConfig,
    start: Option<DiskImage>,
}

impl Campaign {
    /// A campaign on `seed` under every model of [`PersistenceModel::ALL`], no faults.
    pub fn new(seed: u64) -> Campaign {
        Campaign {
            seed,
            models: PersistenceModel::ALL.to_vec(),
            faults: FaultConfig::default(),
            start: None,
        }
    }

    /// Sweeps these models instead.
    pub fn models(mut self, models: &[PersistenceModel]) -> Campaign {
        self.models = models.to_vec();
        self
    }

    /// Injects these faults in every run.
    pub fn faults(mut self, faults: FaultConfig) -> Campaign {
        self.faults = faults;
        self
    }

    /// Starts every run from `image` instead of an empty disk: e.g. the disk a crash left, to
    /// crash the recovery that runs on it.
    pub fn starting_from(mut self, image: DiskImage) -> Campaign {
        self.start = Some(image);
        self
    }

    /// A fresh disk for one run.
    fn disk(&self, seed: u64) -> SimVfs {
        match &self.start {
            None => SimVfs::with_faults(seed, self.faults.clone()),
            Some(image) => {
                let vfs = SimVfs::from_image(image, seed);
                vfs.set_faults(self.faults.clone());
                vfs
            }
        }
    }

    /// Runs `workload` once on a fresh disk without a crash and returns its output and the disk.
    pub fn dry_run<T>(&self, mut workload: impl FnMut(&SimVfs) -> T) -> (T, SimVfs) {
        let vfs = self.disk(self.seed);
        let out = workload(&vfs);
        (out, vfs)
    }

    /// Reruns `workload` crashing at `point` and returns its output, the crashed disk (for its
    /// trace) and the rebooted one: what a failing campaign's replay line feeds back in.
    pub fn replay<T>(
        &self,
        point: &CrashPoint,
        mut workload: impl FnMut(&SimVfs) -> T,
    ) -> (T, SimVfs, SimVfs) {
        let vfs = self.disk(point.seed);
        vfs.crash_at(point.op_index);
        let out = workload(&vfs);
        let rebooted = vfs.reboot(point.model);
        (out, vfs, rebooted)
    }

    /// Counts the operations of `workload`, then for every crash point `k` in `0..=N` and every
    /// model reruns it crashing at `k`, reboots, and calls `check(point, workload output,
    /// rebooted disk)`. The workload must tolerate crash errors (see
    /// [`crate::is_crash_error`]) and return what it knows (e.g. which writes were acknowledged).
    /// Stops at the first failing check.
    pub fn run<T>(
        &self,
        mut workload: impl FnMut(&SimVfs) -> T,
        mut check: impl FnMut(&CrashPoint, T, SimVfs) -> Result<(), String>,
    ) -> Result<CampaignReport, CampaignFailure> {
        let (_, counted) = self.dry_run(&mut workload);
        let ops = counted.op_count();
        if ops > CAMPAIGN_OPS_MAX {
            return Err(CampaignFailure {
                point: CrashPoint {
                    seed: self.seed,
                    op_index: ops,
                    model: PersistenceModel::UnsyncedLost,
                },
                message: format!("workload issued {ops} ops, more than {CAMPAIGN_OPS_MAX}"),
                trace: Vec::new(),
            });
        }
        let mut crash_points = 0;
        for op_index in 0..=ops {
            for model in &self.models {
                let point = CrashPoint {
                    seed: self.seed,
                    op_index,
                    model: *model,
                };
                let (out, crashed, rebooted) = self.replay(&point, &mut workload);
                crash_points += 1;
                check(&point, out, rebooted).map_err(|message| CampaignFailure {
                    point,
                    message,
                    trace: crashed.trace(),
                })?;
            }
        }
        Ok(CampaignReport { ops, crash_points })
    }
}

/// Shorthand for `Campaign::new(seed).models(models).run(workload, check)`.
pub fn for_each_crash_point<T>(
    seed: u64,
    models: &[PersistenceModel],
    workload: impl FnMut(&SimVfs) -> T,
    check: impl FnMut(&CrashPoint, T, SimVfs) -> Result<(), String>,
) -> Result<CampaignReport, CampaignFailure> {
    Campaign::new(seed).models(models).run(workload, check)
}
