//! The filesystem seam: every byte the engine reads or writes goes through [`Vfs`].
//!
//! Two implementations exist: [`OsVfs`] over `std::fs` with real durability, and `SimVfs` in the
//! `kvstore-faults` crate, an in-memory filesystem that crashes, tears writes and lies about fsync.
//!
//! # Why a trait object
//! The trait is object-safe and the engine holds an `Arc<dyn Vfs>`. Generic parameters would spread
//! `<V: Vfs>` through every engine type and double compile times, while the cost of one virtual call
//! is noise next to the system call behind it.
//!
//! # The contract (what the engine may assume, and nothing more)
//! - Data written by [`VfsFile::append`] is durable only after a later [`VfsFile::sync_data`] on the
//!   same handle returns `Ok`. Before that, a crash may keep any subset of it, torn at any sector.
//! - A file's *name* (its creation, a rename onto it, its removal) is durable only after
//!   [`Vfs::sync_dir`] on its parent directory returns `Ok`.
//! - A failed `sync_data` leaves the dirty data in an unknown state: the engine must treat it as fatal
//!   for that file and never retry it into a false success (Linux "fsyncgate").
//! - `rename` replaces the destination if it exists; it is atomic for readers of a live system, but
//!   after a crash without `sync_dir` either name may be present, or both.
//!
//! - Directory syncs are the caller's job: no method of [`Vfs`] syncs a directory by itself. After
//!   `create`, `rename`, `hard_link` or `remove`, call [`Vfs::sync_dir`] on the parent (on both parents for a
//!   rename across directories) before relying on the name after a crash. New directories made by
//!   [`Vfs::create_dir_all`] need a `sync_dir` of their parent too.
//! - A handle works on the file, not the name: renaming or removing the name leaves open handles
//!   reading and appending the same file (POSIX).
//!
//! `spec/SEMANTICS.md` ("What the engine assumes of a filesystem") states this contract for other
//! implementers and compares it with what real filesystems do.
//!
//! Errors are plain `std::io::Error`s; the engine wraps them into [`crate::Error::Io`] with the path.
//! A lock held by another handle is reported as [`std::io::ErrorKind::WouldBlock`].

mod os;

use std::fmt;
use std::io;
use std::path::Path;

pub use os::OsVfs;

/// A filesystem the engine can run on. See the module doc for the durability contract.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `path` empty (truncating it if it exists) and opens it for appending and reading.
    /// The new name is durable only after [`Vfs::sync_dir`] on the parent.
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;

    /// Opens the existing file `path` for appending (at its end) and reading.
    /// Fails with [`io::ErrorKind::NotFound`] if it does not exist.
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;

    /// Opens the existing file `path` for reading only (`O_RDONLY`): the handle's
    /// [`VfsFile::append`] and [`VfsFile::set_len`] fail. What every reader of a file it never
    /// changes uses (tables, the manifest, a read-only open's WAL), so that a read-only open
    /// opens nothing writable and works on files it may not write.
    /// Fails with [`io::ErrorKind::NotFound`] if it does not exist.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;

    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Makes `to` a second name of the existing file `from` (`link(2)`): both names reach the
    /// same contents, so data made durable through one is durable under the other. Fails with
    /// [`io::ErrorKind::AlreadyExists`] if `to` exists, and with
    /// [`io::ErrorKind::CrossesDevices`] (`EXDEV`) where the two names cannot share a file
    /// (different filesystems); the caller then copies. The new name is durable only after
    /// [`Vfs::sync_dir`] on its parent.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Lists the names (not paths) of the entries of directory `dir`, sorted bytewise.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Whether `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Creates directory `dir` and any missing parents; succeeds if it already exists.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Makes the entries of directory `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes an exclusive advisory lock on `path` (created if missing), held until the returned
    /// guard is dropped. Fails with [`io::ErrorKind::WouldBlock`] if another handle holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>>;

    /// Takes a shared advisory lock on the existing file `path` (for a read-only open, which
    /// must not create it): any number of shared holders coexist, and an exclusive
    /// [`Vfs::lock`] fails while one is held, as a shared one fails while an exclusive one is.
    /// Fails with [`io::ErrorKind::WouldBlock`] if an exclusive holder has it. An
    /// implementation without shared locks may take the exclusive one (the default).
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        self.lock(path)
    }

    /// The process id of the exclusive holder of the lock on `path`, if one holds it now and
    /// this filesystem records holders (for an error message only: never trusted to decide
    /// anything). Default `None`.
    fn lock_holder(&self, _path: &Path) -> Option<u32> {
        None
    }
}

/// An open file: appended to by one writer, read at offsets by any number of readers, and synced
/// by any thread, also while the writer appends (a sync makes durable at least every byte
/// appended before it began).
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    /// Fails with [`io::ErrorKind::UnexpectedEof`] if the file is shorter than that.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Appends all of `data` at the end of the file. Not durable until [`VfsFile::sync_data`].
    fn append(&self, data: &[u8]) -> io::Result<()>;

    /// Makes every byte appended so far, and the file's length, durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;

    /// The file's current length in bytes, including bytes not yet durable.
    fn size(&self) -> io::Result<u64>;

    /// Truncates or extends the file to `len` bytes (used to cut a torn WAL tail). Not durable
    /// until [`VfsFile::sync_data`].
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// An exclusive lock on a database directory; released when dropped.
pub trait VfsLock: Send + Sync + fmt::Debug {}
