//! Which state machine database is live: generations and the pointer file `SM_CURRENT`
//! (`spec/FORMAT.md` § 12.5).
//!
//! A member's state machine is the engine database in `<dir>/sm-<generation:020>/`. Installing
//! a snapshot imports it into the next generation's directory, then switches `SM_CURRENT` to it
//! with one atomic rename: the pointer names the generation *and* the snapshot it was installed
//! from, so the data and the log id it stands for change together.
//!
//! Invariants:
//! - `SM_CURRENT` is only ever replaced whole: written to `SM_CURRENT.tmp`, synced, renamed
//!   over, and the directory synced. A crash leaves the old pointer or the new one.
//! - A generation's directory is complete (imported, synced) before a pointer names it; a
//!   directory no pointer names is a leftover, emptied at the next open or install.
//! - No `SM_CURRENT` means generation 0 with no snapshot (a member that never installed one).

use std::io;
use std::path::{Path, PathBuf};

use kvstore::vfs::Vfs;

use crate::error::Error;
use crate::format::{self, StatePointer};

/// The pointer file's name in the member's directory.
pub const POINTER_FILE: &str = "SM_CURRENT";
/// Its temporary name while it is replaced.
pub const POINTER_TMP_FILE: &str = "SM_CURRENT.tmp";
/// The prefix of generation directories.
pub const GENERATION_PREFIX: &str = "sm-";

/// The directory of generation `generation`.
pub fn generation_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{GENERATION_PREFIX}{generation:020}"))
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `SM_CURRENT` (the default pointer if there is none).
pub fn read_pointer(vfs: &dyn Vfs, dir: &Path) -> Result<StatePointer, Error> {
    let path = dir.join(POINTER_FILE);
    if !vfs.exists(&path).map_err(io_error("exists", &path))? {
        return Ok(StatePointer::default());
    }
    let file = vfs.open_read(&path).map_err(io_error("open", &path))?;
    let len = file.size().map_err(io_error("size", &path))?;
    let max = (format::STATE_POINTER_HEAD_LEN + format::STATE_POINTER_LEN_MAX) as u64;
    if len > max {
        return Err(Error::Corrupt {
            path,
            what: "state pointer".to_owned(),
            source: format::FormatError::TooLong {
                structure: POINTER_FILE,
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: usize::try_from(max).unwrap_or(usize::MAX),
            },
        });
    }
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_at(0, &mut bytes)
        .map_err(io_error("read", &path))?;
    format::decode_state_pointer(&bytes).map_err(|source| Error::Corrupt {
        path,
        what: "state pointer".to_owned(),
        source,
    })
}

/// Replaces `SM_CURRENT` with `pointer`, durably (see the module invariants).
pub fn write_pointer(vfs: &dyn Vfs, dir: &Path, pointer: &StatePointer) -> Result<(), Error> {
    let tmp = dir.join(POINTER_TMP_FILE);
    let path = dir.join(POINTER_FILE);
    let file = vfs.create(&tmp).map_err(io_error("create", &tmp))?;
    file.append(&format::encode_state_pointer(pointer))
        .map_err(io_error("append", &tmp))?;
    file.sync_data().map_err(io_error("sync_data", &tmp))?;
    drop(file);
    vfs.rename(&tmp, &path).map_err(io_error("rename", &tmp))?;
    vfs.sync_dir(dir).map_err(io_error("sync_dir", dir))
}

/// Removes the files of `path` (a generation directory no pointer names), best effort for
/// what is not a file; the empty directory stays.
pub fn clear_dir(vfs: &dyn Vfs, path: &Path) -> Result<(), Error> {
    if !vfs.exists(path).map_err(io_error("exists", path))? {
        return Ok(());
    }
    for name in vfs.list(path).map_err(io_error("list", path))? {
        let file = path.join(&name);
        if let Err(error) = vfs.remove(&file) {
            tracing::warn!(%error, path = %file.display(), "could not remove a leftover");
        }
    }
    vfs.sync_dir(path).map_err(io_error("sync_dir", path))
}

/// Empties every generation directory but `live`'s.
pub fn clear_others(vfs: &dyn Vfs, dir: &Path, live: u64) -> Result<(), Error> {
    let live_name = format!("{GENERATION_PREFIX}{live:020}");
    for name in vfs.list(dir).map_err(io_error("list", dir))? {
        if name.starts_with(GENERATION_PREFIX) && name != live_name {
            clear_dir(vfs, &dir.join(&name))?;
        }
    }
    Ok(())
}
