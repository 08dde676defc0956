//! [`CountingVfs`]: a [`Vfs`] wrapper that counts the bytes the engine appends and the syncs it
//! issues, for the write-amplification figure (bytes written to the Vfs / bytes of user data).
//!
//! Invariants: every call is forwarded unchanged to the wrapped Vfs; counting never changes the
//! result of a call. Bytes are counted only when the inner append returned `Ok`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kvstore::vfs::{Vfs, VfsFile, VfsLock};

/// Counters shared by a [`CountingVfs`] and every file it opened.
#[derive(Debug, Default)]
pub struct Counters {
    appended_bytes: AtomicU64,
    syncs: AtomicU64,
}

impl Counters {
    /// Bytes appended through the Vfs so far.
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes.load(Ordering::Relaxed)
    }

    /// `sync_data` and `sync_dir` calls so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// Wraps a [`Vfs`] and counts what goes through it.
#[derive(Debug)]
pub struct CountingVfs {
    inner: Arc<dyn Vfs>,
    counters: Arc<Counters>,
}

impl CountingVfs {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Vfs>) -> Self {
        CountingVfs {
            inner,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The counters, shared with every file opened through this Vfs.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    fn wrap(&self, file: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        Box::new(CountingFile {
            inner: file,
            counters: Arc::clone(&self.counters),
        })
    }
}

impl Vfs for CountingVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.inner.create(path).map(|f| self.wrap(f))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.inner.open(path).map(|f| self.wrap(f))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.inner.open_read(path).map(|f| self.wrap(f))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        self.inner.lock(path)
    }
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn VfsFile>,
    counters: Arc<Counters>,
}

impl VfsFile for CountingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)?;
        self.counters
            .appended_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appended_bytes_and_syncs() {
        let vfs = CountingVfs::new(Arc::new(kvstore_faults::SimVfs::new(1)));
        let counters = vfs.counters();
        vfs.create_dir_all(Path::new("/d")).unwrap();
        let f = vfs.create(Path::new("/d/f")).unwrap();
        f.append(b"hello").unwrap();
        f.append(b"!").unwrap();
        f.sync_data().unwrap();
        vfs.sync_dir(Path::new("/d")).unwrap();
        assert_eq!(counters.appended_bytes(), 6);
        assert_eq!(counters.syncs(), 2);
        assert_eq!(f.size().unwrap(), 6);
    }
}
