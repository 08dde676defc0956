//! [`Db::checkpoint`]: an openable copy of the database at one revision, in a new directory,
//! made while writes go on; and the steps a backup's restore shares with it.
//!
//! Protocol:
//! 1. Refuse a target that exists and is not empty ([`Error::InvalidArgument`]); create it.
//! 2. Freeze the active memtable even if it is empty ([`Freeze::Always`]) and flush every frozen
//!    memtable (work lock held): the tree installed then holds every commit up to its
//!    `lastRevision` `R` and the leases as of the freeze, with nothing left in the WAL for it. The
//!    tree is taken and the work lock released: its `Arc` pins its tables (a table an edit drops
//!    is removed only when the last tree listing it goes), so flushes and compactions go on.
//! 3. Hard-link each table of the tree into the target; where the filesystem cannot
//!    ([`std::io::ErrorKind::CrossesDevices`]), copy it and `sync_data` the copy. Tables are
//!    immutable once synced, so a link is a copy.
//! 4. `sync_dir` the target: every table's name is durable.
//! 5. Persist the tree's manifest in the target (`manifest.json.tmp`, `sync_data`, rename onto
//!    `manifest.json`, `sync_dir`): the commit point.
//! 6. `sync_dir` the target's parent: the target's own name is durable.
//!
//! Invariants:
//! - The source's files are only read and linked. Its one change is step 2's flush, an ordinary
//!   flush (tables synced before the manifest names them): it never lowers what is durable.
//! - A target holds `manifest.json` only once every table it lists is durable there (steps 3-4
//!   come before 5's rename), so a crash leaves either a directory without `manifest.json`,
//!   which is not a checkpoint (see [`is_complete`]), or a complete one.
//! - No WAL segment is copied: the checkpoint's manifest carries the source's `walOffset` and
//!   its log starts empty there, exactly as after a flush that left nothing in the log.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::checksum::crc32c_append;
use crate::format::manifest::{MANIFEST_FILE_NAME, Manifest, sst_file_name};
use crate::manifest;
use crate::progress::{NoProgress, Progress};
use crate::vfs::Vfs;

use super::Db;
use super::flush::Freeze;
use super::inner::Inner;
use super::versions::Tree;

/// The most bytes one read of a table copy moves.
pub const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What [`Db::checkpoint`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// The revision the checkpoint reads at: every commit up to it, none after.
    pub revision: u64,
    /// Its history horizon: reads from here to `revision` answer as the source's did.
    pub horizon: u64,
    /// Tables hard-linked (sharing the source's file).
    pub tables_linked: u64,
    /// Tables copied because they could not be linked (another filesystem).
    pub tables_copied: u64,
    /// Bytes of every table, linked or copied.
    pub table_bytes: u64,
}

impl Db {
    /// Writes a checkpoint of the database into directory `dir`, which must not exist or be
    /// empty: the live tables hard-linked (copied where `dir` is on another filesystem) and a
    /// manifest, synced, so that [`Db::open`] on `dir` reads exactly as this database did at the
    /// returned revision (history back to the horizon, leases). Writes may go on meanwhile; the
    /// memtable is flushed first (`spec/SEMANTICS.md`, "Checkpoints"). A crash leaves
    /// `dir` complete or without `manifest.json` ([`kvstore::db::checkpoint_is_complete`]).
    ///
    /// ```
    /// use kvstore::{Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path().join("db"), Options::default())?;
    /// db.put(b"k", b"v1")?;
    /// let summary = db.checkpoint(dir.path().join("ckpt"))?;
    /// db.put(b"k", b"v2")?; // not in the checkpoint
    /// let copy = Db::open(dir.path().join("ckpt"), Options::default())?;
    /// assert_eq!(copy.get(b"k")?, Some(b"v1".to_vec()));
    /// assert_eq!(copy.stats().last_revision, summary.revision);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`kvstore::db::checkpoint_is_complete`]: checkpoint_is_complete
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<CheckpointSummary> {
        let inner = self.inner();
        let target = dir.as_ref();
        let vfs = inner.vfs.as_ref();
        inner.check_usable()?;
        prepare_target(vfs, target)?;
        let tree = inner.flushed_tree()?;
        let mut summary = CheckpointSummary {
            revision: tree.version.last_revision(),
            horizon: tree.version.history_horizon(),
            tables_linked: 0,
            tables_copied: 0,
            table_bytes: 0,
        };
        for file in live_files(&tree) {
            let from = inner.sst_path(file.number);
            let to = target.join(sst_file_name(file.number));
            match vfs.hard_link(&from, &to) {
                Ok(()) => summary.tables_linked += 1,
                Err(e) if e.kind() == ErrorKind::CrossesDevices => {
                    copy_file(vfs, &from, &to, &NoProgress)?;
                    summary.tables_copied += 1;
                }
                Err(e) => return Err(Error::io("hard_link", &to, e)),
            }
            summary.table_bytes = summary.table_bytes.saturating_add(file.size_bytes);
        }
        commit_target(vfs, target, &manifest::to_manifest(&tree.version))?;
        Ok(summary)
    }
}

/// Whether directory `dir` holds a complete checkpoint (or restored backup): it does once its
/// `manifest.json` exists. A directory without one is what a crash left of an unfinished
/// checkpoint: remove it; opening it would give an empty database, or fail.
pub fn checkpoint_is_complete(vfs: &dyn Vfs, dir: &Path) -> Result<bool> {
    let path = dir.join(MANIFEST_FILE_NAME);
    vfs.exists(&path).map_err(|e| Error::io("exists", &path, e))
}

impl Inner {
    /// Step 2 of the module doc: the tree once everything the WAL held is flushed into it.
    pub(crate) fn flushed_tree(&self) -> Result<Arc<Tree>> {
        self.check_usable()?;
        self.freeze(Freeze::Always)?;
        let _work = self.worker.work();
        self.flush_frozen()?;
        Ok(self.tree())
    }
}

/// Every table of `tree`, every level.
pub(crate) fn live_files(tree: &Tree) -> impl Iterator<Item = &crate::version::FileMeta> {
    let version = &tree.version;
    (0..version.num_levels()).flat_map(|level| version.files(level).iter().map(AsRef::as_ref))
}

/// Step 1 of the module doc.
pub(crate) fn prepare_target(vfs: &dyn Vfs, target: &Path) -> Result<()> {
    let exists = vfs
        .exists(target)
        .map_err(|e| Error::io("exists", target, e))?;
    if exists {
        let names = vfs.list(target).map_err(|e| Error::io("list", target, e))?;
        if !names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} is not empty ({} entries): the target must be a new or empty directory",
                target.display(),
                names.len()
            )));
        }
    }
    vfs.create_dir_all(target)
        .map_err(|e| Error::io("create_dir_all", target, e))
}

/// Steps 4-6 of the module doc: the tables' names, then the manifest, then the directory's own
/// name made durable.
pub(crate) fn commit_target(vfs: &dyn Vfs, target: &Path, manifest: &Manifest) -> Result<()> {
    vfs.sync_dir(target)
        .map_err(|e| Error::io("sync_dir", target, e))?;
    manifest::persist(vfs, target, manifest)?;
    let parent = parent_of(target);
    vfs.sync_dir(parent)
        .map_err(|e| Error::io("sync_dir", parent, e))
}

/// A file read whole by [`read_chunks`]: its length and the CRC32C of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileSum {
    pub(crate) bytes: u64,
    pub(crate) crc32c: u32,
}

/// Reads file `path` in chunks of at most [`COPY_CHUNK_BYTES`], in order, handing each to
/// `each`; returns its length and CRC32C.
pub(crate) fn read_chunks(
    vfs: &dyn Vfs,
    path: &Path,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<FileSum> {
    let file = vfs
        .open_read(path)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file.size().map_err(|e| Error::io("size", path, e))?;
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut crc = 0u32;
    while offset < len {
        let chunk = usize::try_from(len - offset)
            .map_or(COPY_CHUNK_BYTES, |rest| rest.min(COPY_CHUNK_BYTES));
        buf.resize(chunk, 0);
        file.read_at(offset, &mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        crc = crc32c_append(crc, &buf);
        each(&buf)?;
        offset = offset.saturating_add(chunk as u64);
    }
    Ok(FileSum {
        bytes: len,
        crc32c: crc,
    })
}

/// The directory holding `path` (`.` for a bare name), whose sync makes `path`'s name durable.
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Copies file `from` to a new file `to` and syncs the copy (its name is the caller's to sync),
/// advancing `progress` by each chunk's bytes. Returns the length and CRC32C of the bytes
/// copied.
pub(crate) fn copy_file(
    vfs: &dyn Vfs,
    from: &Path,
    to: &Path,
    progress: &dyn Progress,
) -> Result<FileSum> {
    let copy = vfs.create(to).map_err(|e| Error::io("create", to, e))?;
    let sum = read_chunks(vfs, from, |chunk| {
        copy.append(chunk).map_err(|e| Error::io("append", to, e))?;
        progress.advance(chunk.len() as u64);
        Ok(())
    })?;
    copy.sync_data()
        .map_err(|e| Error::io("sync_data", to, e))?;
    Ok(sum)
}
