//! [`WalWriter`]: appends records to the newest segment, syncs it, rotates, and removes segments
//! the manifest no longer needs. See the module doc of [`crate::wal`] for the protocol.
//!
//! Invariants:
//! - `synced_offset <= end_offset`, and `base <= end_offset`; `end_offset - base` is the active
//!   segment's size.
//! - `segments` lists every segment file this writer knows on disk, ascending; its last entry is
//!   the active segment, which is never removed.
//! - `unsynced` holds the older segments a rotation left with records beyond `synced_offset`,
//!   oldest first; each is still in `segments`. A sync ([`WalWriter::sync`], or a
//!   [`SyncPoint`] run without the writer's lock) syncs them before the active segment, and
//!   `synced_offset` (and every record's `synced_through`) advances only after it succeeded, so
//!   it never covers a byte that is not durable. A segment removed because its records are in a
//!   durable SST is dropped from `unsynced` and never synced: in `Buffered` mode a flushed
//!   memtable's WAL never reaches the disk.
//! - `dir_synced` is false from the creation of a segment by [`WalWriter::rotate`] until a sync
//!   point that includes a `sync_dir` of the WAL directory is taken after it. The sync does that
//!   `sync_dir` after syncing the data and before `synced_offset` advances, so no record is
//!   reported durable while the name of the segment holding it could still vanish in a crash.
//! - Sync points are run one at a time, each taken after the previous one finished (the caller
//!   serializes them): a point taken while another runs could otherwise report bytes durable
//!   that only the other one's older segments hold.
//! - Once `poisoned` (it holds the first failed I/O's error), no I/O is issued again: every call
//!   returns [`Error::Poisoned`] carrying that error.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::wal::{WalBody, encode_record_into};
use crate::vfs::{Vfs, VfsFile};

use super::{RecoveredWal, segment_path, segments_wholly_below};

/// The record buffer's capacity kept between appends: a record up to this size is encoded with no
/// allocation (a 1,000-entry batch of 256-byte values is about 280 KiB); a larger one's buffer is
/// released after its append, so one huge batch does not pin its size in memory.
pub const RECORD_BUFFER_KEPT_BYTES_MAX: usize = 1024 * 1024;

/// Appends records to the newest segment. Not thread-safe (`&mut self`): the Db serializes
/// writers and does group commit above it.
#[derive(Debug)]
pub struct WalWriter {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    segment_size_bytes: u64,
    /// The active segment (shared with a [`SyncPoint`] syncing it).
    file: Arc<dyn VfsFile>,
    /// Its path.
    path: PathBuf,
    /// Its base offset.
    base: u64,
    end_offset: u64,
    synced_offset: u64,
    /// Every segment on disk, ascending; the last is the active one.
    segments: Vec<u64>,
    /// Older segments with records not yet synced, oldest first.
    unsynced: Vec<UnsyncedSegment>,
    /// Whether every segment name this writer created is durable (see the module doc).
    dir_synced: bool,
    /// The record being appended, encoded in place; reused from append to append.
    record: Vec<u8>,
    /// The error of the failed I/O that poisoned the writer, if one did.
    poisoned: Option<Error>,
}

impl WalWriter {
    /// Resumes writing after `recovered`: reopens its last segment for append if that segment
    /// ends at `recovered.end_offset` (and syncs it and the directory, so that everything
    /// recovery read is durable before a new record vouches for it), or else creates
    /// `wal-<end_offset>.log` and syncs the directory.
    ///
    /// REQUIRES: `recovered` came from [`super::recover`] on the same `dir`, and nothing wrote
    /// to the segments since.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        recovered: &RecoveredWal,
        segment_size_bytes: u64,
    ) -> Result<Self> {
        let end = recovered.end_offset;
        let mut segments = recovered.obsolete_segments.clone();
        segments.extend_from_slice(&recovered.segments);
        let resumed = match recovered.segments.last() {
            Some(&last) => {
                let path = segment_path(dir, last);
                let file = vfs.open(&path).map_err(|e| Error::io("open", &path, e))?;
                let size = file.size().map_err(|e| Error::io("size", &path, e))?;
                let seg_end = last.saturating_add(size);
                if seg_end > end {
                    return Err(Error::Corruption {
                        offset: end.saturating_sub(last),
                        file: path,
                        what: format!(
                            "wal segment: ends at logical offset {seg_end}, past the recovered \
                             end {end} (written to since recovery?)"
                        ),
                    });
                }
                if seg_end == end {
                    file.sync_data()
                        .map_err(|e| Error::io("sync_data", &path, e))?;
                    Some((file, path, last))
                } else {
                    None
                }
            }
            None => None,
        };
        let (file, path, base) = match resumed {
            Some(active) => active,
            None => {
                let path = segment_path(dir, end);
                let file = vfs
                    .create(&path)
                    .map_err(|e| Error::io("create", &path, e))?;
                segments.push(end);
                (file, path, end)
            }
        };
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
        debug_assert!(segments.windows(2).all(|w| w.first() < w.get(1)));
        debug_assert_eq!(segments.last(), Some(&base));
        Ok(WalWriter {
            vfs,
            dir: dir.to_path_buf(),
            segment_size_bytes,
            file: Arc::from(file),
            path,
            base,
            end_offset: end,
            synced_offset: end,
            segments,
            unsynced: Vec::new(),
            dir_synced: true,
            record: Vec::new(),
            poisoned: None,
        })
    }

    /// A writer for a read-only open ([`crate::Options::read_only`]): it holds no segment and
    /// refuses every append and sync as a poisoned writer does, with [`Error::ReadOnly`] as the
    /// cause, so no byte reaches the log. (The database refuses writes before they get here.)
    pub fn read_only(vfs: Arc<dyn Vfs>, dir: &Path, recovered: &RecoveredWal) -> Self {
        let end = recovered.end_offset;
        WalWriter {
            vfs,
            dir: dir.to_path_buf(),
            segment_size_bytes: u64::MAX,
            file: Arc::new(NoFile),
            path: segment_path(dir, end),
            base: end,
            end_offset: end,
            synced_offset: end,
            segments: recovered.segments.clone(),
            unsynced: Vec::new(),
            dir_synced: true,
            record: Vec::new(),
            poisoned: Some(Error::ReadOnly),
        }
    }

    /// Encodes one record (`stamp` 0: none) with `synced_through = self.synced_offset()` and
    /// appends it, rotating first when the active segment already holds `>= segment_size_bytes`
    /// (a record never spans segments; an oversized record gets a segment of its own). Returns
    /// the logical offset range the record occupies. Not durable until [`WalWriter::sync`].
    ///
    /// A record the encoder refuses (too long a key, value or batch) is
    /// [`Error::InvalidArgument`] and leaves the writer usable; a failed I/O poisons it.
    pub fn append(
        &mut self,
        revision: u64,
        created_at_ms: u64,
        stamp: u64,
        body: &WalBody,
    ) -> Result<Range<u64>> {
        self.check_usable()?;
        if self.end_offset - self.base >= self.segment_size_bytes && self.end_offset > self.base {
            self.rotate()?;
        }
        // `synced_through` is what the last `sync` made durable; a rotation does not sync.
        debug_assert!(self.synced_offset <= self.end_offset);
        let mut record = std::mem::take(&mut self.record);
        record.clear();
        let appended = self.append_encoded(&mut record, revision, created_at_ms, stamp, body);
        if record.capacity() <= RECORD_BUFFER_KEPT_BYTES_MAX {
            self.record = record;
        }
        appended
    }

    /// Encodes the record into `record` (empty) and appends it (see [`WalWriter::append`]).
    fn append_encoded(
        &mut self,
        record: &mut Vec<u8>,
        revision: u64,
        created_at_ms: u64,
        stamp: u64,
        body: &WalBody,
    ) -> Result<Range<u64>> {
        encode_record_into(
            record,
            revision,
            created_at_ms,
            self.synced_offset,
            stamp,
            body,
        )
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let start = self.end_offset;
        let end = start
            .checked_add(record.len() as u64)
            .ok_or_else(|| Error::InvalidArgument("WAL logical offset overflows u64".into()))?;
        if let Err(e) = self.file.append(record) {
            return Err(self.poison(Error::io("append", &self.path, e)));
        }
        self.end_offset = end;
        Ok(start..end)
    }

    /// `sync_data` on every older segment a rotation left unsynced, oldest first, then on the
    /// active segment (then `sync_dir` if a segment was created since the last sync); on success
    /// `synced_offset = end_offset`. On failure the writer is poisoned: this call returns
    /// [`Error::Io`], every later one [`Error::Poisoned`] carrying it, and the fsync is never
    /// retried. A sync with nothing new to sync returns `Ok` without I/O.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(point) = self.sync_point()? {
            self.finish_sync(&point, point.run())?;
        }
        Ok(())
    }

    /// What a sync must do to make every record appended so far durable, to run without this
    /// writer (so that appends go on meanwhile), then to report with
    /// [`WalWriter::finish_sync`]; `None` if everything is already synced. REQUIRES: no other
    /// sync point is running (see the module doc).
    pub fn sync_point(&mut self) -> Result<Option<SyncPoint>> {
        self.check_usable()?;
        if self.synced_offset == self.end_offset {
            return Ok(None);
        }
        let mut files: Vec<(PathBuf, Arc<dyn VfsFile>)> = std::mem::take(&mut self.unsynced)
            .into_iter()
            .map(|segment| (segment.path, segment.file))
            .collect();
        files.push((self.path.clone(), Arc::clone(&self.file)));
        let dir = (!self.dir_synced).then(|| (Arc::clone(&self.vfs), self.dir.clone()));
        self.dir_synced = true;
        Ok(Some(SyncPoint {
            files,
            dir,
            end_offset: self.end_offset,
        }))
    }

    /// Records how `point` (taken by [`WalWriter::sync_point`]) ended: on success the records
    /// up to its end are durable; a failure poisons the writer and is returned.
    pub fn finish_sync(&mut self, point: &SyncPoint, outcome: Result<()>) -> Result<()> {
        match outcome {
            Ok(()) => {
                self.synced_offset = self.synced_offset.max(point.end_offset);
                Ok(())
            }
            Err(e) => Err(self.poison(e)),
        }
    }

    /// The logical offset the next record will start at.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// The logical end of the log as of the last successful sync.
    pub fn synced_offset(&self) -> u64 {
        self.synced_offset
    }

    /// Starts a new segment at `end_offset` and returns its base. Neither the new segment's name
    /// nor the old segment is synced here: the name is made durable by the next
    /// [`WalWriter::sync`], before any record in the segment is reported durable (RocksDB defers
    /// its WAL directory sync the same way), so a `Buffered` commit that rotates does not wait
    /// on the file system's journal. An old segment that holds unsynced records joins
    /// `unsynced`, for the next [`WalWriter::sync`] (or for removal, once a flush made its records
    /// durable in an SST).
    /// If the active segment is empty it already starts at `end_offset`: nothing is done and its
    /// base is returned. Called by the Db when a memtable is frozen, so that a flushed memtable's
    /// records end at a segment boundary.
    pub fn rotate(&mut self) -> Result<u64> {
        self.check_usable()?;
        if self.end_offset == self.base {
            return Ok(self.base);
        }
        let base = self.end_offset;
        let path = segment_path(&self.dir, base);
        let file = match self.vfs.create(&path) {
            Ok(file) => file,
            Err(e) => return Err(self.poison(Error::io("create", &path, e))),
        };
        self.dir_synced = false;
        let old_file = std::mem::replace(&mut self.file, Arc::from(file));
        let old_path = std::mem::replace(&mut self.path, path);
        if self.synced_offset < base {
            self.unsynced.push(UnsyncedSegment {
                base: self.base,
                path: old_path,
                file: old_file,
            });
        }
        self.base = base;
        self.segments.push(base);
        Ok(base)
    }

    /// Removes the segments whose every byte lies below `offset` (the manifest's `walOffset`,
    /// already durable), then `sync_dir`: [`WalWriter::detach_segments_below`], then
    /// [`ObsoleteSegments::remove`]. Returns how many were removed.
    pub fn remove_segments_below(&mut self, offset: u64) -> Result<usize> {
        self.detach_segments_below(offset)?.remove()
    }

    /// Forgets the segments whose every byte lies below `offset` (the manifest's `walOffset`,
    /// already durable) and hands them over for removal, with any handle a rotation left open on
    /// them (their records are durable in an SST: they need no sync). No I/O: the caller removes
    /// them with [`ObsoleteSegments::remove`] after releasing whatever lock guards this writer,
    /// so that appends do not wait on unlinks, on the close that frees an unlinked file's blocks
    /// (a synchronous discard on a filesystem mounted with `discard`), or on the `sync_dir`. The
    /// active segment is never detached.
    pub fn detach_segments_below(&mut self, offset: u64) -> Result<ObsoleteSegments> {
        self.check_usable()?;
        let n = segments_wholly_below(&self.segments, offset);
        let bases: Vec<u64> = self.segments.drain(..n).collect();
        let first_kept = self.segments.first().copied().unwrap_or(u64::MAX);
        let (handles, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unsynced)
            .into_iter()
            .partition(|segment| segment.base < first_kept);
        self.unsynced = kept;
        Ok(ObsoleteSegments {
            vfs: Arc::clone(&self.vfs),
            dir: self.dir.clone(),
            paths: bases.iter().map(|&b| segment_path(&self.dir, b)).collect(),
            handles: handles.into_iter().map(|segment| segment.file).collect(),
        })
    }

    /// Whether a failed I/O has made the writer refuse every call.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Bases of the segments this writer knows on disk, ascending; the last is active.
    pub fn segments(&self) -> &[u64] {
        &self.segments
    }

    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::poisoned(cause)),
            None => Ok(()),
        }
    }

    /// Poisons the writer with `error` (a failed I/O) and returns it, for the failing call.
    fn poison(&mut self, error: Error) -> Error {
        self.poisoned = Some(error.duplicate());
        error
    }
}

/// An older segment a rotation left with records not yet synced.
#[derive(Debug)]
struct UnsyncedSegment {
    base: u64,
    path: PathBuf,
    file: Arc<dyn VfsFile>,
}

/// One sync of the log, taken by [`WalWriter::sync_point`]: the segment files to `sync_data`,
/// oldest first, and the directory to sync after them if a segment name is not yet durable.
#[derive(Debug)]
pub struct SyncPoint {
    files: Vec<(PathBuf, Arc<dyn VfsFile>)>,
    dir: Option<(Arc<dyn Vfs>, PathBuf)>,
    end_offset: u64,
}

impl SyncPoint {
    /// The logical offset every record below which this sync makes durable.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Syncs the files, then the directory. Stops at the first failure, which it returns.
    pub fn run(&self) -> Result<()> {
        for (path, file) in &self.files {
            file.sync_data()
                .map_err(|e| Error::io("sync_data", path, e))?;
        }
        if let Some((vfs, dir)) = &self.dir {
            vfs.sync_dir(dir)
                .map_err(|e| Error::io("sync_dir", dir, e))?;
        }
        Ok(())
    }
}

/// Segments a [`WalWriter`] no longer tracks, to be removed from the directory (see
/// [`WalWriter::detach_segments_below`]). Dropped without [`ObsoleteSegments::remove`], they
/// stay on disk until the next open removes them (recovery treats segments below the
/// manifest's `walOffset` as obsolete).
pub struct ObsoleteSegments {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    paths: Vec<PathBuf>,
    /// Handles a rotation left open on some of them; closed after the unlinks.
    handles: Vec<Arc<dyn VfsFile>>,
}

impl std::fmt::Debug for ObsoleteSegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObsoleteSegments")
            .field("paths", &self.paths)
            .field("open_handles", &self.handles.len())
            .finish()
    }
}

impl ObsoleteSegments {
    /// Removes every segment (one already gone counts as removed), closes the handles, then
    /// syncs the directory if anything was removed. Returns how many were removed.
    pub fn remove(self) -> Result<usize> {
        for path in &self.paths {
            match self.vfs.remove(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path, e)),
            }
        }
        drop(self.handles);
        if self.paths.is_empty() {
            return Ok(0);
        }
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("sync_dir", &self.dir, e))?;
        Ok(self.paths.len())
    }
}

/// The file of a read-only writer: it has no bytes and refuses every change.
#[derive(Debug)]
struct NoFile;

impl NoFile {
    fn refuse() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the database is open read-only",
        )
    }
}

impl VfsFile for NoFile {
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> std::io::Result<()> {
        Err(NoFile::refuse())
    }

    fn append(&self, _data: &[u8]) -> std::io::Result<()> {
        Err(NoFile::refuse())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Err(NoFile::refuse())
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(0)
    }

    fn set_len(&mut self, _len: u64) -> std::io::Result<()> {
        Err(NoFile::refuse())
    }
}
