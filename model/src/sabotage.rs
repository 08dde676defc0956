//! [`Sabotaged`]: a `Vfs` over `SimVfs` with one deliberate durability bug, for negative controls:
//! a campaign that passes with the sabotage installed proves nothing, so the controls assert that
//! the campaigns report a violation.
//!
//! Invariant: with [`Sabotage::None`] it forwards every call unchanged.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kvstore::vfs::{Vfs, VfsFile, VfsLock};
use kvstore_faults::SimVfs;

use crate::harness::{Setup, Step, recover, run_workload};

/// Which durability barrier to break.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Sabotage {
    /// No sabotage.
    None,
    /// `sync_data` on a WAL segment (`wal-*.log`) returns `Ok` and does nothing: as if the engine
    /// skipped the WAL fsync before acknowledging.
    SkipWalSync,
    /// The `sync_dir` right after a rename onto `manifest.json` returns `Ok` and does nothing.
    SkipManifestDirSync,
    /// Every `sync_dir` returns `Ok` and does nothing: new files' names are never made durable.
    SkipAllDirSync,
    /// Every `sync_dir` of this one directory returns `Ok` and does nothing (e.g. a checkpoint's
    /// target, while the source's directory syncs work).
    SkipDirSyncOf(&'static str),
}

/// `SimVfs` with a [`Sabotage`].
#[derive(Debug)]
pub struct Sabotaged {
    sim: SimVfs,
    sabotage: Sabotage,
    manifest_renamed: Arc<Mutex<bool>>,
}

impl Sabotaged {
    /// Wraps `sim`.
    pub fn new(sim: SimVfs, sabotage: Sabotage) -> Sabotaged {
        Sabotaged {
            sim,
            sabotage,
            manifest_renamed: Arc::new(Mutex::new(false)),
        }
    }

    fn flag(&self) -> std::sync::MutexGuard<'_, bool> {
        self.manifest_renamed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn is_wal(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
}

impl Vfs for Sabotaged {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.sim.create(path)?;
        Ok(self.wrap(path, inner))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.sim.open(path)?;
        Ok(self.wrap(path, inner))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let inner = self.sim.open_read(path)?;
        Ok(self.wrap(path, inner))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(from, to)?;
        if to.file_name().is_some_and(|n| n == "manifest.json") {
            *self.flag() = true;
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.sim.remove(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.hard_link(from, to)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list(dir)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.sim.exists(path)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.sabotage {
            Sabotage::SkipAllDirSync => Ok(()),
            Sabotage::SkipManifestDirSync if std::mem::take(&mut *self.flag()) => Ok(()),
            Sabotage::SkipDirSyncOf(skipped) if dir == Path::new(skipped) => Ok(()),
            _ => self.sim.sync_dir(dir),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        self.sim.lock(path)
    }
}

impl Sabotaged {
    fn wrap(&self, path: &Path, inner: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        if self.sabotage == Sabotage::SkipWalSync && is_wal(path) {
            Box::new(NoSyncFile { inner })
        } else {
            inner
        }
    }
}

/// A file whose `sync_data` is a no-op that reports success.
#[derive(Debug)]
struct NoSyncFile {
    inner: Box<dyn VfsFile>,
}

impl VfsFile for NoSyncFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

/// Runs the crash campaign of `steps` (every crash point under every persistence model, each
/// rebooted disk recovered and checked by the oracle) with `setup` and `faults`, and returns the
/// violation it reports: `Err` (with the number of crash points it passed) if it reports none,
/// i.e. the campaign cannot see the planted bug. The negative controls' one check, shared by the
/// `Vfs`-level sabotages (`tests/negative_controls.rs`) and the engine failpoints
/// (`tests/failpoint_sabotage.rs`).
pub fn campaign_catches(
    seed: u64,
    setup: &Setup,
    faults: kvstore_faults::FaultConfig,
    steps: &[Step],
) -> Result<(kvstore_faults::CampaignFailure, u64), String> {
    let mut checked = 0u64;
    let result = kvstore_faults::Campaign::new(seed).faults(faults).run(
        |vfs| run_workload(vfs, setup, steps),
        |_point, out, rebooted| {
            checked = checked.saturating_add(1);
            recover(&rebooted, setup, out?).map(drop)
        },
    );
    match result {
        Ok(report) => Err(format!(
            "the campaign passed {} crash points with the sabotage installed: it cannot detect \
             this bug",
            report.crash_points
        )),
        Err(failure) => Ok((failure, checked)),
    }
}
