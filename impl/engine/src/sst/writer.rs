//! [`TableWriter`]: streams a table to a file through the [`Vfs`], block by block.
//!
//! Invariants:
//! - Memory is bounded by [`APPEND_CHUNK_BYTES`] of finished blocks, one open block, the bloom's
//!   key hashes and the index: finished blocks are appended in chunks of that size (one system
//!   call per chunk rather than per 4 KiB block). Nothing is durable before `finish` anyway.
//! - Entries are validated (key order, key and value limits) by the builder before any of their
//!   bytes are written; a rejected entry leaves the writer usable and the file unchanged.
//! - After an I/O error the file's content is unknown: the writer is poisoned and every later
//!   call fails, so a half-written table can never be finished and reported as good.
//! - `finish` returns only after `sync_data` returned `Ok`; it never syncs the directory (the
//!   caller does, before naming the table in the manifest). `finish_unsynced` writes the same
//!   bytes and hands the sync to an [`UnsyncedTable`], so it can overlap other work.

use std::path::{Path, PathBuf};

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::format::FormatErrorKind;
use crate::format::sst::{BLOCK_SIZE_BYTES, Compression, TableBuilder, TableOptions, TableSummary};
use crate::options::Options;
use crate::vfs::{Vfs, VfsFile};

/// Finished blocks are appended to the file once this many bytes of them are waiting.
pub const APPEND_CHUNK_BYTES: usize = 64 * 1024;

/// Maps engine options to the format's table options.
pub fn table_options(options: &Options) -> TableOptions {
    TableOptions {
        block_size_bytes: usize::try_from(options.sst_block_size_bytes).unwrap_or(BLOCK_SIZE_BYTES),
        compression: if options.compression {
            Compression::Lz4
        } else {
            Compression::None
        },
        bloom_bits_per_key: options.bloom_bits_per_key,
    }
}

/// Streams a table to `path`: bytes go to the file as blocks fill (never the whole table in
/// memory). See the module invariants.
pub struct TableWriter {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    builder: TableBuilder,
    written_bytes: u64,
    poisoned: bool,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("path", &self.path)
            .field("written_bytes", &self.written_bytes)
            .field("entry_count", &self.builder.entry_count())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl TableWriter {
    /// Creates (or truncates) `path` and starts a table with `options`. The new name is durable
    /// only after the caller syncs the parent directory.
    pub fn create(vfs: &dyn Vfs, path: &Path, options: TableOptions) -> Result<Self> {
        let file = vfs.create(path).map_err(|e| Error::io("create", path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            builder: TableBuilder::new(options),
            written_bytes: 0,
            poisoned: false,
        })
    }

    fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::InvalidArgument(format!(
                "table writer for {} used after an I/O error",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Appends the builder's finished bytes to the file; poisons the writer on failure.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.append(bytes) {
            self.poisoned = true;
            return Err(Error::io("append", &self.path, e));
        }
        self.written_bytes = self.written_bytes.saturating_add(bytes.len() as u64);
        Ok(())
    }

    /// Adds an entry. Keys must be strictly increasing, keys and values within the format's
    /// limits; otherwise `Err(InvalidArgument)` (a caller bug, never a panic) and nothing changes.
    pub fn add(&mut self, entry: &Entry) -> Result<()> {
        self.check_usable()?;
        self.builder.add(entry.as_sst()).map_err(|e| {
            let why = match e.kind {
                FormatErrorKind::KeyOrder => "keys must be strictly increasing",
                _ => "entry outside the format's limits",
            };
            Error::InvalidArgument(format!("table {}: {why}: {e}", self.path.display()))
        })?;
        if self.builder.ready_len() < APPEND_CHUNK_BYTES {
            return Ok(());
        }
        let ready = self.builder.take_ready();
        self.append(&ready)
    }

    /// Bytes written or buffered so far (an upper bound on the file size if finished now, bar
    /// the bloom, index and footer), to cut compaction output at a target size.
    pub fn estimated_size_bytes(&self) -> u64 {
        self.written_bytes
            .saturating_add(self.builder.buffered_bytes())
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.builder.entry_count()
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the rest (last block, bloom, index, footer), `sync_data`s the file and returns the
    /// summary. A table with no entry is `Err(InvalidArgument)`. The caller syncs the directory.
    pub fn finish(self) -> Result<TableSummary> {
        self.finish_unsynced()?.sync()
    }

    /// [`TableWriter::finish`] without the `sync_data`: the table's bytes are all appended, and
    /// it is durable once [`UnsyncedTable::sync`] returns `Ok`.
    pub fn finish_unsynced(mut self) -> Result<UnsyncedTable> {
        self.check_usable()?;
        let builder = std::mem::replace(
            &mut self.builder,
            TableBuilder::new(TableOptions::default()),
        );
        let (rest, summary) = builder
            .finish()
            .map_err(|e| Error::InvalidArgument(format!("table {}: {e}", self.path.display())))?;
        self.append(&rest)?;
        debug_assert_eq!(
            summary.file_size, self.written_bytes,
            "the summary's size is what was appended"
        );
        Ok(UnsyncedTable {
            file: self.file,
            path: self.path,
            summary,
        })
    }
}

/// A finished table not yet durable: every byte is appended, the `sync_data` is still to come
/// (see [`TableWriter::finish_unsynced`]). `Send`, so the sync can run on another thread.
pub struct UnsyncedTable {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    summary: TableSummary,
}

impl std::fmt::Debug for UnsyncedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsyncedTable")
            .field("path", &self.path)
            .field("file_size", &self.summary.file_size)
            .finish()
    }
}

impl UnsyncedTable {
    /// `sync_data`s the file and returns the table's summary. The caller syncs the directory.
    pub fn sync(self) -> Result<TableSummary> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync_data", &self.path, e))?;
        Ok(self.summary)
    }
}
