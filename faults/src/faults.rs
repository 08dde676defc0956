//! [`FaultConfig`]: which lies, failures and corruptions a [`crate::SimVfs`] injects, and when.
//!
//! Invariants:
//! - The default config injects nothing: a `SimVfs` with it behaves like a perfect POSIX
//!   filesystem until it is crashed.
//! - Faults are triggered by op number, by path, or by probability; probabilities draw from the
//!   disk's one PRNG, and only when they are non-zero, so enabling none costs no draws and leaves
//!   every other random choice where it was.
//! - An injected failure (EIO, ENOSPC) has no side effect, except a short write, which keeps a
//!   prefix of the append and then fails, and a failed fsync, which drops the dirty data.

use std::collections::BTreeMap;
use std::io;

use crate::trace::OpKind;

/// An error the simulated device returns.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Failure {
    /// EIO: the device failed the operation.
    Eio,
    /// ENOSPC: no space left on the device.
    Enospc,
    /// EXDEV: the two names of a `hard_link` are on different filesystems.
    CrossesDevices,
}

impl Failure {
    /// The `io::Error` an operation failing this way returns.
    pub fn to_error(self, what: &str) -> io::Error {
        match self {
            Failure::Eio => io::Error::other(format!("simulated EIO: {what}")),
            Failure::Enospc => io::Error::new(
                io::ErrorKind::StorageFull,
                format!("simulated ENOSPC: {what}"),
            ),
            Failure::CrossesDevices => io::Error::new(
                io::ErrorKind::CrossesDevices,
                format!("simulated EXDEV: {what}"),
            ),
        }
    }
}

/// A corruption of the bytes one `read_at` returns. Only a sector error changes the disk (it
/// marks the sector bad); the others corrupt the returned buffer alone.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReadFault {
    /// One random bit of the buffer flipped.
    BitFlip,
    /// The part of the buffer in one random sector zeroed.
    ZeroSector,
    /// The read fails with EIO, as on a latent sector error: the sector stays bad (every later
    /// read touching it fails, across crashes) until a write or truncation touches it.
    SectorError,
    /// The part of the buffer in one random sector holds another sector's bytes.
    Misdirected,
}

/// A fault of one `append`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WriteFault {
    /// The file grows by the append's length, but the bytes land one sector away (before the
    /// intended offset, or after it when that is the first sector); the intended range holds
    /// zeros. The append returns `Ok`.
    Misdirected,
    /// Only a random proper prefix of the bytes is appended, then the append fails with EIO.
    Short,
}

/// A failure injected into every operation whose path contains a pattern.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PathFault {
    /// A substring of the path (as displayed), e.g. `"MANIFEST"` or `".sst"`.
    pub contains: String,
    /// Only this kind of operation, or every kind if `None`.
    pub op: Option<OpKind>,
    /// The error returned.
    pub failure: Failure,
}

/// Which faults a [`crate::SimVfs`] injects. Build with the methods; start from `default()`.
#[derive(Clone, PartialEq, Debug)]
pub struct FaultConfig {
    /// Sector size in bytes for sector faults (read faults, misdirected writes). Default 512.
    pub sector_bytes: u64,
    /// Fail the operation with this number.
    pub fail_at_op: BTreeMap<u64, Failure>,
    /// Fail operations on matching paths.
    pub fail_paths: Vec<PathFault>,
    /// Fail any operation with this probability, with this failure.
    pub fail_probability: (f64, Failure),
    /// Appends and length growth past this many live bytes (all files together) fail with ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// From this op number on, `sync_data` returns `Ok` and persists nothing.
    pub sync_lies_from_op: Option<u64>,
    /// The first `sync_data` at or after this op number fails with EIO and drops the file's dirty
    /// data (it stays readable until a crash, but never becomes durable); retries succeed.
    pub sync_fails_once_at_op: Option<u64>,
    /// Corrupt the read with this op number.
    pub read_fault_at_op: BTreeMap<u64, ReadFault>,
    /// Corrupt any read with this probability, the fault chosen uniformly.
    pub read_fault_probability: f64,
    /// Fault the append with this op number.
    pub write_fault_at_op: BTreeMap<u64, WriteFault>,
    /// Fault any append with this probability, the fault chosen uniformly.
    pub write_fault_probability: f64,
    /// After a crash, keep or drop each half of a rename independently (so the destination may
    /// be missing, or both names exist), instead of the whole rename.
    pub non_atomic_rename: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            sector_bytes: SECTOR_BYTES_DEFAULT,
            fail_at_op: BTreeMap::new(),
            fail_paths: Vec::new(),
            fail_probability: (0.0, Failure::Eio),
            capacity_bytes: None,
            sync_lies_from_op: None,
            sync_fails_once_at_op: None,
            read_fault_at_op: BTreeMap::new(),
            read_fault_probability: 0.0,
            write_fault_at_op: BTreeMap::new(),
            write_fault_probability: 0.0,
            non_atomic_rename: false,
        }
    }
}

/// The default sector size of sector-granular faults.
pub const SECTOR_BYTES_DEFAULT: u64 = 512;

impl FaultConfig {
    /// Sets the sector size of read faults and misdirected writes (0 is read as 1).
    pub fn sector_bytes(mut self, bytes: u64) -> Self {
        self.sector_bytes = bytes.max(1);
        self
    }

    /// Fails operation number `op` with `failure`.
    pub fn fail_at(mut self, op: u64, failure: Failure) -> Self {
        self.fail_at_op.insert(op, failure);
        self
    }

    /// Fails every operation of kind `op` (any kind if `None`) on a path containing `contains`.
    pub fn fail_path(mut self, contains: &str, op: Option<OpKind>, failure: Failure) -> Self {
        self.fail_paths.push(PathFault {
            contains: contains.to_owned(),
            op,
            failure,
        });
        self
    }

    /// Fails each operation with probability `p`.
    pub fn fail_randomly(mut self, p: f64, failure: Failure) -> Self {
        self.fail_probability = (p, failure);
        self
    }

    /// Limits the live bytes of all files together; growth past it fails with ENOSPC.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity_bytes = Some(bytes);
        self
    }

    /// Makes every `sync_data` from op number `op` on return `Ok` while persisting nothing.
    pub fn lying_sync_from(mut self, op: u64) -> Self {
        self.sync_lies_from_op = Some(op);
        self
    }

    /// Makes the first `sync_data` at or after op number `op` fail once and drop the dirty data.
    pub fn fsyncgate_at(mut self, op: u64) -> Self {
        self.sync_fails_once_at_op = Some(op);
        self
    }

    /// Corrupts the read with op number `op`.
    pub fn read_fault_at(mut self, op: u64, fault: ReadFault) -> Self {
        self.read_fault_at_op.insert(op, fault);
        self
    }

    /// Corrupts each read with probability `p`.
    pub fn read_faults_randomly(mut self, p: f64) -> Self {
        self.read_fault_probability = p;
        self
    }

    /// Faults the append with op number `op`.
    pub fn write_fault_at(mut self, op: u64, fault: WriteFault) -> Self {
        self.write_fault_at_op.insert(op, fault);
        self
    }

    /// Faults each append with probability `p`.
    pub fn write_faults_randomly(mut self, p: f64) -> Self {
        self.write_fault_probability = p;
        self
    }

    /// The faults a disk rebooted from this one keeps: the standing ones (sector size, path
    /// faults, probabilities, capacity, non-atomic renames). The ones tied to an op number
    /// (`fail_at`, `lying_sync_from`, `fsyncgate_at`, `read_fault_at`, `write_fault_at`) refer
    /// to the crashed run's numbering and are dropped; set them anew on the rebooted disk.
    pub fn after_reboot(&self) -> FaultConfig {
        FaultConfig {
            fail_at_op: BTreeMap::new(),
            sync_lies_from_op: None,
            sync_fails_once_at_op: None,
            read_fault_at_op: BTreeMap::new(),
            write_fault_at_op: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// Lets a crash keep one half of a rename without the other.
    pub fn non_atomic_rename(mut self) -> Self {
        self.non_atomic_rename = true;
        self
    }
}
