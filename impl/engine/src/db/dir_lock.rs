//! The database directory's `LOCK` (`spec/FORMAT.md` § 5.3): an advisory lock, exclusive for a
//! writer and shared for read-only handles. An opener kept out says who holds it when the
//! filesystem can tell ([`Vfs::lock_holder`]: `OsVfs` records a writer's pid in the file).
//!
//! Invariant: the lock, not the file's contents, is what excludes; the holder's pid is
//! informative only and never read to decide anything.

use std::path::Path;

use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsLock};

/// The lock file's name in the database directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Takes `dir/LOCK` exclusively ([`Error::Locked`], naming the holder if the filesystem can,
/// if another handle holds it).
pub(crate) fn lock_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn VfsLock>> {
    let path = dir.join(LOCK_FILE_NAME);
    locked(vfs, vfs.lock(&path), &path)
}

/// Takes `dir/LOCK` shared, for a read-only open ([`Error::Locked`] if a writer holds it).
pub(crate) fn lock_dir_shared(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn VfsLock>> {
    let path = dir.join(LOCK_FILE_NAME);
    locked(vfs, vfs.lock_shared(&path), &path)
}

/// A lock's outcome as the engine reports it: held elsewhere is [`Error::Locked`], with the
/// holder's pid if a writer holds it and wrote one.
fn locked(
    vfs: &dyn Vfs,
    taken: std::io::Result<Box<dyn VfsLock>>,
    path: &Path,
) -> Result<Box<dyn VfsLock>> {
    taken.map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: path.to_path_buf(),
                holder: vfs.lock_holder(path),
            }
        } else {
            Error::io("lock", path, e)
        }
    })
}
