//! [`OsVfs`]: the [`Vfs`] over `std::fs`, with real durability (`fdatasync`, directory `fsync`) and
//! an advisory `flock`-style lock so two processes cannot open one database.
//!
//! Invariants:
//! - This is the only file of the engine that touches `std::fs`.
//! - No method syncs anything the caller did not ask for: `create`, `rename`, `remove` and
//!   `hard_link` and `create_dir_all` change names that stay volatile until the caller's [`Vfs::sync_dir`] on
//!   the parent directory (an `fsync` of the directory itself). Keeping directory syncs explicit
//!   lets the engine batch them (one directory sync after a flush that created several files)
//!   and keeps `OsVfs` and `SimVfs` under one contract.
//! - [`VfsFile::sync_data`] is `fdatasync(2)`: it makes the bytes and the length durable, not the
//!   name. On macOS it is a plain `fsync`, which does not flush the drive's cache (`F_FULLFSYNC`);
//!   durability is claimed on Linux.
//! - Files are opened `O_APPEND`, so every append lands at the current end, also after `set_len`.
//!   An append that fails may have written a prefix of its bytes (a short write); the engine
//!   treats any failed write as fatal for the file, as `SimVfs`'s short-write fault checks.
//! - The lock is `flock(2)` (via `File::try_lock`) on a lock file: it belongs to the open file
//!   description, so a second `lock` fails with `WouldBlock` even inside the same process, and
//!   the kernel drops it when the process dies. The lock file's creation is not synced: its name
//!   carries no data.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Vfs, VfsFile, VfsLock};

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

#[derive(Debug)]
struct OsFile {
    file: File,
}

#[derive(Debug)]
struct OsLock {
    // Held for its lock; the OS releases the lock when the descriptor closes.
    file: File,
    /// An exclusive lock, whose holder's pid the file holds.
    exclusive: bool,
}

impl VfsLock for OsLock {}

impl Drop for OsLock {
    fn drop(&mut self) {
        // Empty the pid before the lock goes, so no later opener names this process. A failure
        // only leaves a stale pid, which `lock_holder` never reports while nobody writes.
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
    }
}

/// Longest pid text read back from a lock file (a `u32` in decimal and a newline).
const LOCK_HOLDER_TEXT_LEN_MAX: u64 = 16;

impl Vfs for OsVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        // `append` and `truncate` cannot be combined in one open: truncate first, then reopen in
        // append mode so that every write lands at the end even after `set_len`.
        drop(File::create(path)?);
        self.open(path)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        Ok(Box::new(OsFile { file }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(Box::new(OsFile {
            file: File::open(path)?,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.into_string().map_err(|raw| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {raw:?} is not UTF-8"),
                )
            })?;
            names.push(name);
        }
        names.sort_unstable();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let lock = OsVfs::guard(path, file, true, File::try_lock)?;
        Ok(lock)
    }

    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let file = File::open(path)?;
        OsVfs::guard(path, file, false, File::try_lock_shared)
    }

    fn lock_holder(&self, path: &Path) -> Option<u32> {
        // A shared lock taken at once means only readers hold it (or nobody any more): any pid
        // in the file is stale.
        if self.lock_shared(path).is_ok() {
            return None;
        }
        let mut text = String::new();
        File::open(path)
            .ok()?
            .take(LOCK_HOLDER_TEXT_LEN_MAX)
            .read_to_string(&mut text)
            .ok()?;
        text.trim().parse().ok()
    }
}

impl OsVfs {
    /// `file`'s advisory lock taken by `try_lock`, as [`Vfs::lock`] reports it; an
    /// `exclusive` one writes this process's pid into the file (not synced: informative only).
    fn guard(
        path: &Path,
        file: File,
        exclusive: bool,
        try_lock: impl FnOnce(&File) -> Result<(), fs::TryLockError>,
    ) -> io::Result<Box<dyn VfsLock>> {
        match try_lock(&file) {
            Ok(()) => {
                if exclusive {
                    // Failing to record the pid changes nothing but the error message others see.
                    let _ = file.set_len(0).and_then(|()| {
                        (&file).write_all(format!("{}\n", std::process::id()).as_bytes())
                    });
                }
                Ok(Box::new(OsLock { file, exclusive }))
            }
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another handle", path.display()),
            )),
            Err(fs::TryLockError::Error(err)) => Err(err),
        }
    }
}

impl VfsFile for OsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        (&self.file).write_all(data)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}
