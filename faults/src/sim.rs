//! [`SimVfs`]: the simulated filesystem, implementing `kvstore::vfs::Vfs` over a [`Disk`].
//!
//! Invariants:
//! - Every `Vfs` and `VfsFile` call takes the next op number and leaves exactly one trace entry
//!   (up to [`TRACE_ENTRIES_MAX`]), in the order: crash check, injected failure, the operation itself, injected corruption.
//! - Once the op number armed by [`SimVfs::crash_at`] is reached (or [`SimVfs::crash`] is called),
//!   every operation on this disk, through any handle, fails with a crash error and changes nothing.
//! - A handle works on its inode, not its name: renames and removals do not affect it (POSIX).
//! - All state sits behind one mutex; the simulation is deterministic as long as the workload
//!   issues its operations in a deterministic order.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use kvstore::vfs::{Vfs, VfsFile, VfsLock};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::disk::{Disk, DiskImage, InodeId, Pending, normalize, not_found, parent};
use crate::faults::{Failure, FaultConfig, ReadFault, WriteFault};
use crate::persistence::{self, PersistenceModel};
use crate::rng;
use crate::trace::{OpKind, Outcome, TraceEntry};

/// The most trace entries kept; later operations are still numbered and served, not recorded.
/// A campaign's workloads stay far below it ([`crate::CAMPAIGN_OPS_MAX`]).
pub const TRACE_ENTRIES_MAX: usize = 1 << 20;

const _: () = assert!(crate::CAMPAIGN_OPS_MAX <= TRACE_ENTRIES_MAX as u64);

/// The payload of the error every operation returns once the disk has crashed.
#[derive(Debug)]
pub struct SimulatedCrash;

impl fmt::Display for SimulatedCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated crash")
    }
}

impl std::error::Error for SimulatedCrash {}

/// Whether `err` is the error of a crashed [`SimVfs`] (kind `Other`, message "simulated crash").
pub fn is_crash_error(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<SimulatedCrash>())
}

fn crash_error() -> io::Error {
    io::Error::other(SimulatedCrash)
}

/// The mutable state of one simulated disk and the process using it.
#[derive(Clone, Debug)]
struct Sim {
    disk: Disk,
    faults: FaultConfig,
    rng: ChaCha8Rng,
    seed: u64,
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    fsyncgate_fired: bool,
    trace: Vec<TraceEntry>,
    locks: BTreeSet<PathBuf>,
}

/// What one operation reports for its trace entry, besides its outcome.
#[derive(Default)]
struct Note {
    offset: Option<u64>,
    len: Option<u64>,
    fault: Option<&'static str>,
}

impl Sim {
    fn new(disk: Disk, seed: u64, faults: FaultConfig) -> Sim {
        Sim {
            disk,
            faults,
            rng: rng::seeded(seed),
            seed,
            ops: 0,
            crash_at: None,
            crashed: false,
            fsyncgate_fired: false,
            trace: Vec::new(),
            locks: BTreeSet::new(),
        }
    }

    /// Numbers, crash-checks, fault-injects, runs and traces one operation.
    fn run<T>(
        &mut self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        body: impl FnOnce(&mut Sim, u64, &mut Note) -> io::Result<T>,
    ) -> io::Result<T> {
        let index = self.ops;
        self.ops = self.ops.saturating_add(1);
        let mut note = Note::default();
        let result = if self.crashed || self.crash_at.is_some_and(|at| index >= at) {
            self.crashed = true;
            Err(crash_error())
        } else if let Some(failure) = self.injected_failure(index, op, path, to) {
            note.fault = Some("injected failure");
            Err(failure.to_error(&format!("{op} {}", path.display())))
        } else {
            body(self, index, &mut note)
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(err) if is_crash_error(err) => Outcome::Crashed,
            Err(err) => Outcome::Failed(err.kind(), err.to_string()),
        };
        if self.trace.len() < TRACE_ENTRIES_MAX {
            self.trace.push(TraceEntry {
                index,
                op,
                path: path.to_path_buf(),
                to: to.map(Path::to_path_buf),
                offset: note.offset,
                len: note.len,
                outcome,
                fault: note.fault,
            });
        }
        result
    }

    fn injected_failure(
        &mut self,
        index: u64,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
    ) -> Option<Failure> {
        if let Some(failure) = self.faults.fail_at_op.get(&index) {
            return Some(*failure);
        }
        let shown = path.to_string_lossy();
        let shown_to = to.map(|to| to.to_string_lossy().into_owned());
        for fault in &self.faults.fail_paths {
            let matches = shown.contains(&fault.contains)
                || shown_to
                    .as_ref()
                    .is_some_and(|to| to.contains(&fault.contains));
            if matches && fault.op.is_none_or(|kind| kind == op) {
                return Some(fault.failure);
            }
        }
        let (p, failure) = self.faults.fail_probability;
        rng::chance(&mut self.rng, p).then_some(failure)
    }

    fn check_capacity(&self, growth: u64) -> io::Result<()> {
        match self.faults.capacity_bytes {
            Some(cap) if self.disk.used_bytes().saturating_add(growth) > cap => {
                Err(Failure::Enospc.to_error("capacity reached"))
            }
            _ => Ok(()),
        }
    }

    fn inode_of(&self, path: &Path) -> io::Result<InodeId> {
        if self.disk.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", path.display()),
            ));
        }
        self.disk
            .live
            .get(path)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn create(&mut self, path: &Path) -> io::Result<InodeId> {
        self.disk.check_parent(path)?;
        if self.disk.dirs.contains(path) {
            return self.inode_of(path);
        }
        if let Some(ino) = self.disk.live.get(path).copied() {
            // O_TRUNC: the same inode, emptied.
            if self.disk.live_len(ino) > 0 {
                self.disk.write(ino, Pending::SetLen(0));
            }
            return Ok(ino);
        }
        let ino = self.disk.new_inode();
        let group = self.disk.new_group();
        self.disk.set_entry(path, Some(ino), group);
        Ok(ino)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let ino = self.inode_of(from)?;
        self.disk.check_parent(to)?;
        if self.disk.dirs.contains(to) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", to.display()),
            ));
        }
        if from == to {
            return Ok(());
        }
        let group = self.disk.new_group();
        self.disk.set_entry(to, Some(ino), group);
        self.disk.set_entry(from, None, group);
        Ok(())
    }

    /// A second name `to` for the inode of `from`: one logged entry op, like a create's.
    fn hard_link(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let ino = self.inode_of(from)?;
        self.disk.check_parent(to)?;
        if self.disk.dirs.contains(to) || self.disk.live.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", to.display()),
            ));
        }
        let group = self.disk.new_group();
        self.disk.set_entry(to, Some(ino), group);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        if !self.disk.is_dir(dir) {
            return Err(not_found(dir));
        }
        let mut names = Vec::new();
        let children = self.disk.live.keys().chain(self.disk.dirs.iter());
        for child in children.filter(|child| parent(child) == dir) {
            let name = child.file_name().and_then(|name| name.to_str());
            let name = name.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {child:?} is not UTF-8"),
                )
            })?;
            names.push(name.to_owned());
        }
        names.sort_unstable();
        Ok(names)
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut cursor = Some(dir);
        while let Some(current) = cursor {
            if self.disk.is_dir(current) {
                break;
            }
            if self.disk.live.contains_key(current) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: a file exists there", current.display()),
                ));
            }
            missing.push(current.to_path_buf());
            cursor = current.parent();
        }
        self.disk.dirs.extend(missing);
        Ok(())
    }

    fn sync_data(&mut self, index: u64, ino: InodeId, note: &mut Note) -> io::Result<()> {
        if self
            .faults
            .sync_fails_once_at_op
            .is_some_and(|at| index >= at)
            && !self.fsyncgate_fired
        {
            self.fsyncgate_fired = true;
            note.fault = Some("fsyncgate: dirty data dropped");
            if let Some(inode) = self.disk.inodes.get_mut(&ino) {
                inode.pending.clear();
            }
            return Err(Failure::Eio.to_error("fsync failed, dirty pages dropped"));
        }
        if self.faults.sync_lies_from_op.is_some_and(|at| index >= at) {
            note.fault = Some("lying fsync");
            return Ok(());
        }
        self.disk.sync_inode(ino);
        Ok(())
    }

    fn read_at(
        &mut self,
        index: u64,
        ino: InodeId,
        offset: u64,
        buf: &mut [u8],
        note: &mut Note,
    ) -> io::Result<()> {
        note.offset = Some(offset);
        note.len = Some(buf.len() as u64);
        let live = self
            .disk
            .inodes
            .get(&ino)
            .map(|inode| Arc::clone(&inode.live))
            .unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| live.get(start..end))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {} bytes at {offset} past the end", buf.len()),
                )
            })?;
        buf.copy_from_slice(src);
        let end = offset.saturating_add(buf.len() as u64);
        if let Some((lo, _)) = self.disk.bad_range(ino, offset, end) {
            note.fault = Some("latent sector error");
            return Err(Failure::Eio.to_error(&format!("latent sector error at byte {lo}")));
        }
        let fault = match self.faults.read_fault_at_op.get(&index) {
            Some(fault) => Some(*fault),
            None if rng::chance(&mut self.rng, self.faults.read_fault_probability) => {
                const KINDS: [ReadFault; 4] = [
                    ReadFault::BitFlip,
                    ReadFault::ZeroSector,
                    ReadFault::SectorError,
                    ReadFault::Misdirected,
                ];
                KINDS
                    .get(usize::try_from(rng::below(&mut self.rng, 4)).unwrap_or(0))
                    .copied()
            }
            None => None,
        };
        match fault {
            Some(fault) if !buf.is_empty() => {
                note.fault = Some(match fault {
                    ReadFault::BitFlip => "bit flip",
                    ReadFault::ZeroSector => "zeroed sector",
                    ReadFault::SectorError => "latent sector error",
                    ReadFault::Misdirected => "misdirected read",
                });
                self.corrupt_read(fault, ino, &live, offset, buf)
            }
            _ => Ok(()),
        }
    }

    /// Applies a read fault to `buf`, the bytes of `live` at `offset`.
    fn corrupt_read(
        &mut self,
        fault: ReadFault,
        ino: InodeId,
        live: &[u8],
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let sector = self.faults.sector_bytes.max(1);
        let len = buf.len() as u64;
        let victim_byte = offset + rng::below(&mut self.rng, len);
        let victim_sector = victim_byte / sector;
        // The part of `buf` that lies in the victim sector.
        let lo = (victim_sector * sector).max(offset) - offset;
        let hi = ((victim_sector + 1) * sector).min(offset + len) - offset;
        let range = usize::try_from(lo).unwrap_or(0)..usize::try_from(hi).unwrap_or(0);
        match fault {
            ReadFault::BitFlip => {
                let bit = rng::below(&mut self.rng, 8);
                if let Some(byte) = buf.get_mut(usize::try_from(victim_byte - offset).unwrap_or(0))
                {
                    *byte ^= 1 << bit;
                }
            }
            ReadFault::ZeroSector => {
                if let Some(part) = buf.get_mut(range) {
                    part.fill(0);
                }
            }
            ReadFault::SectorError => {
                let start = victim_sector * sector;
                let range = (start, start.saturating_add(sector));
                self.disk.bad.entry(ino).or_default().insert(range);
                return Err(Failure::Eio
                    .to_error(&format!("latent sector error at sector {victim_sector}")));
            }
            ReadFault::Misdirected => {
                let sectors = (live.len() as u64).div_ceil(sector).max(2);
                let mut other = rng::below(&mut self.rng, sectors - 1);
                if other >= victim_sector {
                    other += 1;
                }
                if let Some(part) = buf.get_mut(range) {
                    for (i, byte) in part.iter_mut().enumerate() {
                        let absolute = offset + lo + i as u64;
                        let at = other * sector + absolute % sector;
                        let at = usize::try_from(at).unwrap_or(usize::MAX);
                        *byte = live.get(at).copied().unwrap_or(0);
                    }
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, index: u64, ino: InodeId, data: &[u8], note: &mut Note) -> io::Result<()> {
        let end = self.disk.live_len(ino);
        note.offset = Some(end);
        note.len = Some(data.len() as u64);
        self.check_capacity(data.len() as u64)?;
        let fault = match self.faults.write_fault_at_op.get(&index) {
            Some(fault) => Some(*fault),
            None if rng::chance(&mut self.rng, self.faults.write_fault_probability) => {
                Some(if rng::chance(&mut self.rng, 0.5) {
                    WriteFault::Misdirected
                } else {
                    WriteFault::Short
                })
            }
            None => None,
        };
        match fault {
            None => {
                self.disk.write(
                    ino,
                    Pending::Write {
                        offset: end,
                        data: data.into(),
                    },
                );
                Ok(())
            }
            Some(WriteFault::Short) => {
                note.fault = Some("short write");
                let kept = rng::below(&mut self.rng, data.len() as u64);
                let kept = data
                    .get(..usize::try_from(kept).unwrap_or(0))
                    .unwrap_or_default();
                if !kept.is_empty() {
                    self.disk.write(
                        ino,
                        Pending::Write {
                            offset: end,
                            data: kept.into(),
                        },
                    );
                }
                Err(Failure::Eio.to_error(&format!(
                    "short write: {} of {} bytes",
                    kept.len(),
                    data.len()
                )))
            }
            Some(WriteFault::Misdirected) => {
                note.fault = Some("misdirected write");
                let sector = self.faults.sector_bytes.max(1);
                let wrong = if end >= sector {
                    end - sector
                } else {
                    end + sector
                };
                let new_len = end.saturating_add(data.len() as u64);
                self.disk.write(ino, Pending::SetLen(new_len));
                self.disk.write(
                    ino,
                    Pending::Write {
                        offset: wrong,
                        data: data.into(),
                    },
                );
                Ok(())
            }
        }
    }

    fn set_len(&mut self, ino: InodeId, len: u64) -> io::Result<()> {
        let growth = len.saturating_sub(self.disk.live_len(ino));
        self.check_capacity(growth)?;
        self.disk.write(ino, Pending::SetLen(len));
        Ok(())
    }
}

/// A simulated disk. Cloning gives another handle onto the same disk; [`SimVfs::snapshot`] gives
/// an independent copy. See the crate doc for the fault model.
#[derive(Clone)]
pub struct SimVfs {
    sim: Arc<Mutex<Sim>>,
}

impl fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sim = self.state();
        f.debug_struct("SimVfs")
            .field("seed", &sim.seed)
            .field("ops", &sim.ops)
            .field("crashed", &sim.crashed)
            .finish_non_exhaustive()
    }
}

impl SimVfs {
    /// An empty disk, no faults, every random choice drawn from `seed`.
    pub fn new(seed: u64) -> SimVfs {
        SimVfs::with_faults(seed, FaultConfig::default())
    }

    /// An empty disk injecting the faults of `faults`.
    pub fn with_faults(seed: u64, faults: FaultConfig) -> SimVfs {
        SimVfs::wrap(Sim::new(Disk::default(), seed, faults))
    }

    /// A disk holding `image` (pending changes included), with op count 0 and no faults.
    pub fn from_image(image: &DiskImage, seed: u64) -> SimVfs {
        SimVfs::wrap(Sim::new(
            image.0.as_ref().clone(),
            seed,
            FaultConfig::default(),
        ))
    }

    fn wrap(sim: Sim) -> SimVfs {
        SimVfs {
            sim: Arc::new(Mutex::new(sim)),
        }
    }

    fn state(&self) -> MutexGuard<'_, Sim> {
        // A panic while holding the lock cannot leave the disk half-updated in a way that matters
        // to a test that is already failing; keep serving.
        self.sim
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the fault config (e.g. after setting up a database without faults).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.state().faults = faults;
    }

    /// The seed this disk draws from.
    pub fn seed(&self) -> u64 {
        self.state().seed
    }

    /// Arms a crash: operation number `op` (0-based, counting every `Vfs` and `VfsFile` call)
    /// and every later one fail with a crash error (see [`is_crash_error`]).
    pub fn crash_at(&self, op: u64) {
        self.state().crash_at = Some(op);
    }

    /// Crashes now: every later operation fails.
    pub fn crash(&self) {
        self.state().crashed = true;
    }

    /// Whether the disk has crashed.
    pub fn is_crashed(&self) -> bool {
        self.state().crashed
    }

    /// How many operations have been numbered so far.
    pub fn op_count(&self) -> u64 {
        self.state().ops
    }

    /// The numbered log of every operation so far.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.state().trace.clone()
    }

    /// An independent deep copy of the disk and its counters; handles stay with `self`.
    pub fn snapshot(&self) -> SimVfs {
        let mut sim = self.state().clone();
        sim.locks.clear();
        SimVfs::wrap(sim)
    }

    /// The canonical value of the disk (see [`DiskImage`]).
    pub fn image(&self) -> DiskImage {
        DiskImage(Arc::new(self.state().disk.canonical()))
    }

    /// Cuts the power (crashing this disk if it was not) and returns the disk that boots after it
    /// under `model`: durable state plus what the model keeps of the pending state, chosen by the
    /// PRNG. The new disk has nothing pending, no locks, op count 0, the standing faults of this
    /// disk ([`FaultConfig::after_reboot`]), and a seed drawn from this disk's PRNG. Handles onto
    /// this disk stay dead.
    pub fn reboot(&self, model: PersistenceModel) -> SimVfs {
        let mut guard = self.state();
        let sim = &mut *guard;
        sim.crashed = true;
        let non_atomic = sim.faults.non_atomic_rename;
        let disk = persistence::reboot(&sim.disk, model, non_atomic, &mut sim.rng);
        let seed = sim.rng.next_u64();
        SimVfs::wrap(Sim::new(disk, seed, sim.faults.after_reboot()))
    }

    /// The live bytes of `path` read without an operation number (for checks, not workloads).
    pub fn peek(&self, path: &Path) -> Option<Vec<u8>> {
        let sim = self.state();
        let path = normalize(path).ok()?;
        let ino = sim.disk.live.get(&path)?;
        Some(sim.disk.inodes.get(ino)?.live.as_ref().clone())
    }

    fn run<T>(
        &self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        body: impl FnOnce(&mut Sim, u64, &mut Note) -> io::Result<T>,
    ) -> io::Result<T> {
        self.state().run(op, path, to, body)
    }

    fn file(&self, ino: InodeId, path: PathBuf) -> Box<dyn VfsFile> {
        Box::new(SimFile {
            vfs: self.clone(),
            ino,
            path,
            read_only: false,
        })
    }
}

impl Vfs for SimVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.run(OpKind::Create, path, None, |sim, _, _| {
            sim.create(&normalize(path)?)
        })?;
        Ok(self.file(ino, path.to_path_buf()))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.run(OpKind::Open, path, None, |sim, _, _| {
            sim.inode_of(&normalize(path)?)
        })?;
        Ok(self.file(ino, path.to_path_buf()))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.run(OpKind::OpenRead, path, None, |sim, _, _| {
            sim.inode_of(&normalize(path)?)
        })?;
        Ok(Box::new(SimFile {
            vfs: self.clone(),
            ino,
            path: path.to_path_buf(),
            read_only: true,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.run(OpKind::Rename, from, Some(to), |sim, _, _| {
            sim.rename(&normalize(from)?, &normalize(to)?)
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.run(OpKind::Remove, path, None, |sim, _, _| {
            let path = normalize(path)?;
            sim.inode_of(&path)?;
            let group = sim.disk.new_group();
            sim.disk.set_entry(&path, None, group);
            Ok(())
        })
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.run(OpKind::HardLink, from, Some(to), |sim, _, _| {
            sim.hard_link(&normalize(from)?, &normalize(to)?)
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.run(OpKind::List, dir, None, |sim, _, _| {
            sim.list(&normalize(dir)?)
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.run(OpKind::Exists, path, None, |sim, _, _| {
            let path = normalize(path)?;
            Ok(sim.disk.is_dir(&path) || sim.disk.live.contains_key(&path))
        })
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.run(OpKind::CreateDirAll, dir, None, |sim, _, _| {
            sim.create_dir_all(&normalize(dir)?)
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.run(OpKind::SyncDir, dir, None, |sim, _, _| {
            let dir = normalize_dir(dir)?;
            if !sim.disk.is_dir(&dir) {
                return Err(not_found(&dir));
            }
            sim.disk.sync_dir(&dir);
            Ok(())
        })
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let path = self.run(OpKind::Lock, path, None, |sim, _, _| {
            let path = normalize(path)?;
            if sim.locks.contains(&path) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is locked by another handle", path.display()),
                ));
            }
            if !sim.disk.live.contains_key(&path) {
                sim.create(&path)?;
            }
            sim.locks.insert(path.clone());
            Ok(path)
        })?;
        Ok(Box::new(SimLock {
            vfs: self.clone(),
            path,
        }))
    }
}

/// [`normalize`], except that a root (`/`, `.`, empty) is itself: the root directory, which
/// holds the entries of absolute (`/`) or relative (empty) top-level paths.
fn normalize_dir(dir: &Path) -> io::Result<PathBuf> {
    match normalize(dir) {
        Ok(dir) => Ok(dir),
        Err(_)
            if dir
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::CurDir)) =>
        {
            Ok(if dir.has_root() {
                PathBuf::from("/")
            } else {
                PathBuf::new()
            })
        }
        Err(e) => Err(e),
    }
}

/// An open simulated file: a handle onto an inode.
struct SimFile {
    vfs: SimVfs,
    ino: InodeId,
    path: PathBuf,
    /// Opened by `open_read`: `append` and `set_len` fail, as on a read-only descriptor.
    read_only: bool,
}

impl SimFile {
    /// The error of a write through a handle opened for reading only (`EBADF`).
    fn check_writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} was opened for reading only", self.path.display()),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VfsFile for SimFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let ino = self.ino;
        self.vfs
            .run(OpKind::ReadAt, &self.path, None, |sim, index, note| {
                sim.read_at(index, ino, offset, buf, note)
            })
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.check_writable()?;
        let ino = self.ino;
        self.vfs
            .run(OpKind::Append, &self.path, None, |sim, index, note| {
                sim.append(index, ino, data, note)
            })
    }

    fn sync_data(&self) -> io::Result<()> {
        let ino = self.ino;
        self.vfs
            .run(OpKind::SyncData, &self.path, None, |sim, index, note| {
                sim.sync_data(index, ino, note)
            })
    }

    fn size(&self) -> io::Result<u64> {
        let ino = self.ino;
        self.vfs.run(OpKind::Size, &self.path, None, |sim, _, _| {
            Ok(sim.disk.live_len(ino))
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let ino = self.ino;
        self.vfs
            .run(OpKind::SetLen, &self.path, None, |sim, _, note| {
                note.len = Some(len);
                sim.set_len(ino, len)
            })
    }
}

/// A held simulated lock; dropping it releases the lock.
struct SimLock {
    vfs: SimVfs,
    path: PathBuf,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("path", &self.path).finish()
    }
}

impl VfsLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.vfs.state().locks.remove(&self.path);
    }
}
