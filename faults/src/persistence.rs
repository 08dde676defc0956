//! Crash models: what a power cut keeps of the unsynced state, and the reboot that builds the
//! post-crash disk from it.
//!
//! Invariants:
//! - Durable bytes and durable names always survive; only pending changes are chosen from.
//! - Each inode's pending changes are chosen independently of every other inode's, and of the
//!   directory entries: unsynced writes to different files persist in any order.
//! - Every random choice is drawn from the one PRNG handed in, in a fixed order (inodes by id,
//!   pending ops in issue order, then entry ops in issue order), so a seed replays a reboot.
//! - The rebooted disk has nothing pending: its live state is its durable state.

use std::fmt;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use crate::disk::{Disk, Inode, Pending, apply, apply_entry};
use crate::rng;

/// What the bytes of a torn sector or a data-less append become.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Fill {
    /// Zeros, as a filesystem that zero-fills newly allocated blocks shows them.
    Zeros,
    /// Random bytes from the seeded PRNG: stale disk contents.
    Garbage,
}

/// What a crash keeps of the writes, length changes and directory entries not yet made durable.
///
/// In every model, durable data and durable names survive intact. The directory entry log is
/// independent of file data: under [`PersistenceModel::UnsyncedLost`] it is dropped whole, under
/// [`PersistenceModel::RandomPrefix`] a random prefix of it is kept, under the others a random
/// subset of its operations (a rename kept or dropped whole unless
/// [`crate::FaultConfig::non_atomic_rename`] is set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PersistenceModel {
    /// Every unsynced write, length change and entry is lost: the disk is exactly its durable state.
    UnsyncedLost,
    /// Per file, a random prefix (in issue order) of its unsynced changes is kept.
    RandomPrefix,
    /// Per file, a random subset of its unsynced changes is kept, out of order, as a page cache
    /// writes back dirty pages in any order. A kept write past a dropped one leaves a hole of zeros.
    RandomSubset,
    /// Per file, every unsynced change before its last write is kept and the last write is torn:
    /// the sectors before a random sector of it land, that sector keeps a random prefix of the new
    /// bytes and the rest of it becomes `fill`, the sectors after it do not land. The changes
    /// after the last write are lost.
    TornWrite {
        /// Sector size in bytes (512 or 4096 on real devices); 0 is read as 1.
        sector_bytes: u32,
        /// What the rest of the torn sector holds.
        fill: Fill,
    },
    /// Per file, every unsynced change is kept except that the last write's bytes never land:
    /// the file's size grew (metadata) but its data did not, so its range holds `fill` (ALICE's
    /// "append is not atomic": zeros or garbage at the tail).
    SizeWithoutData {
        /// What the range of the last write holds.
        fill: Fill,
    },
}

impl PersistenceModel {
    /// Every model, with both fills and sector sizes 512 and 4096: what a campaign should sweep.
    pub const ALL: [PersistenceModel; 9] = [
        PersistenceModel::UnsyncedLost,
        PersistenceModel::RandomPrefix,
        PersistenceModel::RandomSubset,
        PersistenceModel::TornWrite {
            sector_bytes: 512,
            fill: Fill::Zeros,
        },
        PersistenceModel::TornWrite {
            sector_bytes: 512,
            fill: Fill::Garbage,
        },
        PersistenceModel::TornWrite {
            sector_bytes: 4096,
            fill: Fill::Zeros,
        },
        PersistenceModel::TornWrite {
            sector_bytes: 4096,
            fill: Fill::Garbage,
        },
        PersistenceModel::SizeWithoutData { fill: Fill::Zeros },
        PersistenceModel::SizeWithoutData {
            fill: Fill::Garbage,
        },
    ];
}

impl fmt::Display for PersistenceModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Builds the disk that a crash of `disk` under `model` leaves, drawing every choice from `rng`.
pub(crate) fn reboot(
    disk: &Disk,
    model: PersistenceModel,
    non_atomic_rename: bool,
    rng: &mut ChaCha8Rng,
) -> Disk {
    let mut out = Disk {
        dirs: disk.dirs.clone(),
        next_inode: disk.next_inode,
        ..Disk::default()
    };
    let mut files = std::collections::BTreeMap::new();
    for (ino, inode) in &disk.inodes {
        files.insert(*ino, crash_file(inode, model, rng));
    }
    let mut namespace = disk.durable.clone();
    for op in kept_entries(disk, model, non_atomic_rename, rng) {
        apply_entry(&mut namespace, op);
    }
    for ino in namespace.values() {
        if let Some(bytes) = files.get(ino) {
            let bytes = Arc::new(bytes.clone());
            out.inodes.insert(
                *ino,
                Inode {
                    durable: Arc::clone(&bytes),
                    pending: Vec::new(),
                    live: bytes,
                },
            );
        }
    }
    for ino in out.inodes.keys() {
        if let Some(ranges) = disk.bad.get(ino) {
            out.bad.insert(*ino, ranges.clone());
        }
    }
    out.live = namespace.clone();
    out.durable = namespace;
    out
}

/// The entry ops a crash keeps, in issue order.
fn kept_entries<'d>(
    disk: &'d Disk,
    model: PersistenceModel,
    non_atomic_rename: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<&'d crate::disk::EntryOp> {
    let log = &disk.entry_log;
    match model {
        PersistenceModel::UnsyncedLost => Vec::new(),
        PersistenceModel::RandomPrefix => {
            // Cut only between groups, so a rename is kept whole unless told otherwise.
            let mut cuts = vec![0];
            for (index, pair) in log.windows(2).enumerate() {
                let split = matches!(pair, [a, b] if a.group != b.group);
                if non_atomic_rename || split {
                    cuts.push(index + 1);
                }
            }
            if !log.is_empty() {
                cuts.push(log.len());
            }
            let pick = rng::below(rng, cuts.len() as u64);
            let keep = cuts
                .get(usize::try_from(pick).unwrap_or(0))
                .copied()
                .unwrap_or(0);
            log.iter().take(keep).collect()
        }
        _ => {
            // One coin per group (or per op, when renames are not atomic), drawn in log order.
            let mut decided: std::collections::BTreeMap<u64, bool> = Default::default();
            let mut kept = Vec::new();
            for op in log {
                let keep = if non_atomic_rename {
                    rng::chance(rng, 0.5)
                } else {
                    *decided
                        .entry(op.group)
                        .or_insert_with(|| rng::chance(rng, 0.5))
                };
                if keep {
                    kept.push(op);
                }
            }
            kept
        }
    }
}

/// The bytes one file holds after the crash.
fn crash_file(inode: &Inode, model: PersistenceModel, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes: Vec<u8> = inode.durable.as_ref().clone();
    let pending = &inode.pending;
    match model {
        PersistenceModel::UnsyncedLost => {}
        PersistenceModel::RandomPrefix => {
            let keep = rng::below(rng, pending.len() as u64 + 1);
            for op in pending.iter().take(usize::try_from(keep).unwrap_or(0)) {
                apply(&mut bytes, op);
            }
        }
        PersistenceModel::RandomSubset => {
            for op in pending {
                if rng::chance(rng, 0.5) {
                    apply(&mut bytes, op);
                }
            }
        }
        PersistenceModel::TornWrite { sector_bytes, fill } => {
            let last = last_write(pending);
            for (index, op) in pending.iter().enumerate() {
                if Some(index) == last {
                    if let Pending::Write { offset, data } = op {
                        tear(
                            &mut bytes,
                            *offset,
                            data,
                            u64::from(sector_bytes.max(1)),
                            fill,
                            rng,
                        );
                    }
                    break;
                }
                apply(&mut bytes, op);
            }
        }
        PersistenceModel::SizeWithoutData { fill } => {
            let last = last_write(pending);
            for (index, op) in pending.iter().enumerate() {
                match op {
                    Pending::Write { offset, data } if Some(index) == last => {
                        let filled: Arc<[u8]> = fill_bytes(data.len(), fill, rng).into();
                        apply(
                            &mut bytes,
                            &Pending::Write {
                                offset: *offset,
                                data: filled,
                            },
                        );
                    }
                    _ => apply(&mut bytes, op),
                }
            }
        }
    }
    bytes
}

/// The index of the last `Write` in `pending`.
fn last_write(pending: &[Pending]) -> Option<usize> {
    pending
        .iter()
        .rposition(|op| matches!(op, Pending::Write { .. }))
}

/// Applies the write of `data` at `offset` torn at a random sector (see [`PersistenceModel`]).
fn tear(
    bytes: &mut Vec<u8>,
    offset: u64,
    data: &[u8],
    sector_bytes: u64,
    fill: Fill,
    rng: &mut ChaCha8Rng,
) {
    let len = data.len() as u64;
    if len == 0 {
        return;
    }
    let end = offset.saturating_add(len);
    let first_sector = offset / sector_bytes;
    let last_sector = (end - 1) / sector_bytes;
    let torn_sector = first_sector + rng::below(rng, last_sector - first_sector + 1);
    // The write's range within the torn sector, and how much of it lands intact.
    let torn_start = offset.max(torn_sector * sector_bytes);
    let torn_end = end.min((torn_sector + 1) * sector_bytes);
    let intact = rng::below(rng, torn_end - torn_start + 1);
    let split = torn_start + intact;
    let landed = usize::try_from(split - offset).unwrap_or(0);
    if let Some(head) = data.get(..landed) {
        apply(
            bytes,
            &Pending::Write {
                offset,
                data: head.into(),
            },
        );
    }
    let rest = usize::try_from(torn_end - split).unwrap_or(0);
    apply(
        bytes,
        &Pending::Write {
            offset: split,
            data: fill_bytes(rest, fill, rng).into(),
        },
    );
}

/// `len` bytes of `fill`.
fn fill_bytes(len: usize, fill: Fill, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = vec![0; len];
    if fill == Fill::Garbage {
        rand::RngCore::fill_bytes(rng, &mut out);
    }
    out
}
