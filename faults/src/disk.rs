//! The simulated disk as a value: inodes, the live and the durable namespace, the log of directory
//! entries not yet made durable, and [`DiskImage`], its canonical form.
//!
//! Invariants:
//! - An inode's `live` bytes are what reads return. Its `durable` bytes are what survives any
//!   crash. Its `pending` list holds, in issue order, the unsynced writes and length changes that a
//!   crash may or may not keep. Normally `live == apply(durable, pending)`; the one exception is a
//!   failed fsync ("fsyncgate"), which drops `pending` while `live` keeps the bytes.
//! - `live` maps each visible name to its inode; `durable` maps each name that survives a crash
//!   that keeps no directory entry. `entry_log` holds, in issue order, the name changes that took
//!   `durable` towards `live` but were not yet made durable by a directory sync: applying the whole
//!   log to `durable` gives `live`.
//! - Entry ops of one `rename` share a `group`: a crash keeps a group whole unless the fault config
//!   asks for non-atomic renames.
//! - Directories are durable as soon as they are created (a simplification, see the crate doc).
//! - A latent sector error is a property of the medium: it survives crashes, and goes away only
//!   when a write or a truncation touches its bytes.
//! - Every container is ordered (`BTreeMap`, `Vec`): iteration order never depends on hashing, so
//!   the same operations give the same disk, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Identifies an inode within one [`Disk`]. Not part of the canonical image.
pub(crate) type InodeId = u64;

/// One unsynced change to a file's bytes.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Pending {
    /// `data` written at `offset` (an append is a write at the old end).
    Write { offset: u64, data: Arc<[u8]> },
    /// The file truncated or extended (with zeros) to this length.
    SetLen(u64),
}

/// A file's contents: what survives a crash, what is in flight, what reads see.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct Inode {
    pub(crate) durable: Arc<Vec<u8>>,
    pub(crate) pending: Vec<Pending>,
    pub(crate) live: Arc<Vec<u8>>,
}

/// One unsynced change of a name: `path` now names `target` (or nothing, if `None`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct EntryOp {
    pub(crate) path: PathBuf,
    pub(crate) target: Option<InodeId>,
    pub(crate) group: u64,
}

/// The whole simulated disk. See the module doc for its invariants.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct Disk {
    pub(crate) dirs: BTreeSet<PathBuf>,
    pub(crate) inodes: BTreeMap<InodeId, Inode>,
    pub(crate) live: BTreeMap<PathBuf, InodeId>,
    pub(crate) durable: BTreeMap<PathBuf, InodeId>,
    pub(crate) entry_log: Vec<EntryOp>,
    pub(crate) next_inode: InodeId,
    pub(crate) next_group: u64,
    /// Latent sector errors: byte ranges `start..end` of an inode whose reads fail with EIO until
    /// a write or truncation touches them (the drive remaps a sector when it is rewritten).
    pub(crate) bad: BTreeMap<InodeId, BTreeSet<(u64, u64)>>,
}

/// Applies one pending change to `bytes`, zero-filling any gap (a hole reads as zeros).
pub(crate) fn apply(bytes: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            if let Some(dst) = bytes.get_mut(start..end) {
                dst.copy_from_slice(data);
            }
        }
        Pending::SetLen(len) => bytes.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
    }
}

/// Normalises `path` lexically: `.` dropped, `..` pops, no trailing separator.
pub(crate) fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir => out.push("/"),
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: path prefixes are not supported", path.display()),
                ));
            }
        }
    }
    if out.as_os_str().is_empty() || out == Path::new("/") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?}: not a file or directory path", path.display()),
        ));
    }
    Ok(out)
}

/// The directory holding `path` (`""` or `"/"` for the root, which always exists).
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

impl Disk {
    /// Whether `dir` is an existing directory (the root always is).
    pub(crate) fn is_dir(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || dir == Path::new("/") || self.dirs.contains(dir)
    }

    /// Fails with `NotFound` unless the parent directory of `path` exists.
    pub(crate) fn check_parent(&self, path: &Path) -> io::Result<()> {
        if self.is_dir(parent(path)) {
            Ok(())
        } else {
            Err(not_found(parent(path)))
        }
    }

    /// Allocates a fresh, empty inode.
    pub(crate) fn new_inode(&mut self) -> InodeId {
        let id = self.next_inode;
        self.next_inode = self.next_inode.saturating_add(1);
        self.inodes.insert(id, Inode::default());
        id
    }

    /// Binds `path` to `target` in the live namespace and logs the change as not yet durable.
    pub(crate) fn set_entry(&mut self, path: &Path, target: Option<InodeId>, group: u64) {
        match target {
            Some(ino) => self.live.insert(path.to_path_buf(), ino),
            None => self.live.remove(path),
        };
        self.entry_log.push(EntryOp {
            path: path.to_path_buf(),
            target,
            group,
        });
    }

    /// A fresh group id for the entry ops of one namespace operation.
    pub(crate) fn new_group(&mut self) -> u64 {
        let group = self.next_group;
        self.next_group = self.next_group.saturating_add(1);
        group
    }

    /// Makes durable every logged entry op of directory `dir`, in issue order.
    pub(crate) fn sync_dir(&mut self, dir: &Path) {
        let log = std::mem::take(&mut self.entry_log);
        for op in log {
            if parent(&op.path) == dir {
                apply_entry(&mut self.durable, &op);
            } else {
                self.entry_log.push(op);
            }
        }
    }

    /// Makes every pending change of inode `ino` durable.
    pub(crate) fn sync_inode(&mut self, ino: InodeId) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            let pending = std::mem::take(&mut inode.pending);
            if !pending.is_empty() {
                let durable = Arc::make_mut(&mut inode.durable);
                for op in &pending {
                    apply(durable, op);
                }
            }
        }
    }

    /// Records `op` on inode `ino`: applied to the live bytes now, pending until synced.
    pub(crate) fn write(&mut self, ino: InodeId, op: Pending) {
        if let Some(bad) = self.bad.get_mut(&ino) {
            match &op {
                Pending::Write { offset, data } => {
                    let end = offset.saturating_add(data.len() as u64);
                    bad.retain(|(lo, hi)| *hi <= *offset || *lo >= end);
                }
                Pending::SetLen(len) => bad.retain(|(_, hi)| *hi <= *len),
            }
        }
        if let Some(inode) = self.inodes.get_mut(&ino) {
            apply(Arc::make_mut(&mut inode.live), &op);
            inode.pending.push(op);
        }
    }

    /// The latent sector error overlapping bytes `start..end` of inode `ino`, if any.
    pub(crate) fn bad_range(&self, ino: InodeId, start: u64, end: u64) -> Option<(u64, u64)> {
        let bad = self.bad.get(&ino)?;
        bad.iter()
            .copied()
            .find(|(lo, hi)| *lo < end && *hi > start)
    }

    /// The live length of inode `ino`.
    pub(crate) fn live_len(&self, ino: InodeId) -> u64 {
        self.inodes
            .get(&ino)
            .map_or(0, |inode| inode.live.len() as u64)
    }

    /// The sum of the live lengths of every inode: what counts against the capacity.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| inode.live.len() as u64)
            .sum()
    }

    /// The canonical image: inodes renumbered in order of first appearance (live names, then
    /// durable names, then the entry log), unreachable inodes dropped, groups renumbered.
    pub(crate) fn canonical(&self) -> Disk {
        let mut renumber: BTreeMap<InodeId, InodeId> = BTreeMap::new();
        let reachable = self
            .live
            .values()
            .chain(self.durable.values())
            .chain(self.entry_log.iter().filter_map(|op| op.target.as_ref()));
        for ino in reachable {
            let next = renumber.len() as InodeId;
            renumber.entry(*ino).or_insert(next);
        }
        let map = |ino: &InodeId| renumber.get(ino).copied().unwrap_or(InodeId::MAX);
        let mut groups: BTreeMap<u64, u64> = BTreeMap::new();
        let mut entry_log = Vec::with_capacity(self.entry_log.len());
        for op in &self.entry_log {
            let next = groups.len() as u64;
            let group = *groups.entry(op.group).or_insert(next);
            entry_log.push(EntryOp {
                path: op.path.clone(),
                target: op.target.as_ref().map(map),
                group,
            });
        }
        let inodes = renumber
            .iter()
            .filter_map(|(old, new)| Some((*new, self.inodes.get(old)?.clone())))
            .collect();
        Disk {
            dirs: self.dirs.clone(),
            inodes,
            live: self.live.iter().map(|(p, i)| (p.clone(), map(i))).collect(),
            durable: self
                .durable
                .iter()
                .map(|(p, i)| (p.clone(), map(i)))
                .collect(),
            entry_log,
            next_inode: renumber.len() as InodeId,
            next_group: groups.len() as u64,
            bad: self
                .bad
                .iter()
                .filter(|(_, ranges)| !ranges.is_empty())
                .filter_map(|(old, ranges)| Some((*renumber.get(old)?, ranges.clone())))
                .collect(),
        }
    }
}

/// Applies one entry op to a namespace.
pub(crate) fn apply_entry(namespace: &mut BTreeMap<PathBuf, InodeId>, op: &EntryOp) {
    match op.target {
        Some(ino) => namespace.insert(op.path.clone(), ino),
        None => namespace.remove(&op.path),
    };
}

/// The `NotFound` error for `path`.
pub(crate) fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

/// The whole simulated disk as a canonical value: durable bytes, unsynced writes, live and
/// durable directory entries, unsynced entry changes. No op counters, seeds, inode or handle
/// numbers: two disks with the same contents and the same pending changes are equal and hash
/// equally. Cloning is O(1) (an `Arc`); file bytes are shared with the disk it came from.
///
/// Made by [`crate::SimVfs::image`]; turned back into a disk by [`crate::SimVfs::from_image`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DiskImage(pub(crate) Arc<Disk>);

impl std::fmt::Debug for DiskImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (path, ino) in &self.0.live {
            let (durable, pending, live) = self.0.inodes.get(ino).map_or((0, 0, 0), |i| {
                (i.durable.len(), i.pending.len(), i.live.len())
            });
            map.entry(
                &path.display(),
                &format_args!("live {live} B, durable {durable} B, {pending} pending"),
            );
        }
        map.finish()?;
        write!(f, " ({} unsynced entries)", self.0.entry_log.len())
    }
}

impl DiskImage {
    /// The names visible now (live namespace), sorted.
    pub fn live_paths(&self) -> Vec<PathBuf> {
        self.0.live.keys().cloned().collect()
    }

    /// The live bytes of the file named `path`, if it exists.
    pub fn live_bytes(&self, path: &Path) -> Option<&[u8]> {
        let ino = self.0.live.get(&normalize(path).ok()?)?;
        Some(self.0.inodes.get(ino)?.live.as_slice())
    }

    /// Whether nothing is pending: every byte and every name is durable.
    pub fn is_quiescent(&self) -> bool {
        self.0.entry_log.is_empty() && self.0.inodes.values().all(|i| i.pending.is_empty())
    }
}
