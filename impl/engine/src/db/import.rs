//! [`Db::import`]: an export stream (`spec/FORMAT.md` § 6) into a database that has never been
//! written.
//!
//! Protocol:
//! 1. Open the database and refuse it unless it is empty: no table, revision 0, no lease,
//!    nothing in the memtable.
//! 2. Read the stream chunk by chunk, checking each (head, presence, CRC, payload) and the
//!    versions' order across chunks, and write the versions into tables at the bottom level as
//!    a compaction writes its outputs (each table synced, then the directory).
//! 3. Only once the trailer checked (counts, the stream's CRC32C, nothing after it but, if
//!    anything, etcd's snapshot framing with its digest right: FORMAT.md § 6.1) and every
//!    lease a live key names is in the leases chunk: install one manifest edit adding the tables
//!    with `lastRevision`, `historyHorizon` and the leases of the stream.
//! 4. Close, and open again: the handle returned recovers the imported state as any open does.
//!
//! Invariant: a failure before step 3 leaves the manifest as it was; the tables written are
//! orphans, which the next open deletes. Nothing is read into memory but one chunk.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compaction::{CompactionStream, Retention};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::format::FormatError;
use crate::format::checksum::crc32c_append;
use crate::format::etcd_snapshot::{SNAPSHOT_FRAMING_LEN_MAX, SnapshotDigest};
use crate::format::export::{
    CHUNK_CRC_LEN, CHUNK_HEAD_LEN, ChunkKind, EXPORT_HEADER_LEN, ExportHeader, VersionOrder,
    check_chunk_crc, check_counts, check_stream_crc, decode_chunk_head, decode_header,
    decode_leases, decode_trailer, decode_versions,
};
use crate::format::manifest::LeaseMeta;
use crate::options::Options;
use crate::version::VersionEdit;
use crate::vfs::{OsVfs, Vfs};

use super::Db;
use super::export::ExportSummary;

/// Reads an export stream chunk by chunk, checking it, and yields its versions in order; the
/// leases and the trailer are kept for the caller.
struct ImportReader<'a> {
    input: &'a mut dyn Read,
    /// What errors name as the stream.
    name: PathBuf,
    header: ExportHeader,
    /// Stream offset of the next byte.
    offset: u64,
    /// CRC32C of every byte before `offset`.
    crc: u32,
    /// SHA-256 of every byte before `offset`, for etcd's snapshot framing after the trailer.
    digest: SnapshotDigest,
    order: VersionOrder,
    /// The decoded versions of the current chunk not yet yielded, in reverse.
    pending: Vec<Entry>,
    versions: u64,
    leases: Option<Vec<LeaseMeta>>,
    /// The leases the live keys name (each key's newest version).
    named: BTreeSet<u64>,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl ImportReader<'_> {
    fn corrupt(&self, error: &FormatError) -> Error {
        Error::corruption(&self.name, 0, error)
    }

    fn read(&mut self, n: usize, at: u64) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            let got = self
                .input
                .read(bytes.get_mut(filled..).unwrap_or_default())
                .map_err(|e| Error::io("read", &self.name, e))?;
            if got == 0 {
                return Err(Error::Corruption {
                    file: self.name.clone(),
                    offset: at,
                    what: format!(
                        "export stream: truncated: a chunk needs {n} bytes from offset {at}, the \
                         stream ends after {filled}"
                    ),
                });
            }
            filled += got;
        }
        self.offset = self.offset.saturating_add(n as u64);
        self.digest.update(&bytes);
        Ok(bytes)
    }

    /// Reads the next chunk; `false` once the trailer checked.
    fn next_chunk(&mut self) -> Result<bool> {
        let at = self.offset;
        let crc_before = self.crc;
        let head = self.read(CHUNK_HEAD_LEN, at)?;
        let (kind, len) = decode_chunk_head(&head, at).map_err(|e| self.corrupt(&e))?;
        let rest = self.read(len + CHUNK_CRC_LEN, at)?;
        let mut chunk = head;
        chunk.extend_from_slice(&rest);
        check_chunk_crc(&chunk, at).map_err(|e| self.corrupt(&e))?;
        self.crc = crc32c_append(self.crc, &chunk);
        let payload = chunk
            .get(CHUNK_HEAD_LEN..CHUNK_HEAD_LEN + len)
            .unwrap_or_default();
        let payload_at = at + CHUNK_HEAD_LEN as u64;
        let out_of_place = |what: &str| Error::Corruption {
            file: self.name.clone(),
            offset: at,
            what: format!("export stream: {what}"),
        };
        match kind {
            ChunkKind::Versions if self.leases.is_some() => {
                return Err(out_of_place("a versions chunk after the leases chunk"));
            }
            ChunkKind::Versions => {
                let entries = decode_versions(payload, payload_at, &mut self.order)
                    .map_err(|e| self.corrupt(&e))?;
                for entry in &entries {
                    if self.last_key.as_deref() != Some(entry.key.as_slice()) {
                        self.last_key = Some(entry.key.clone());
                        if entry.value.is_some() && entry.lease != 0 {
                            self.named.insert(entry.lease);
                        }
                    }
                }
                self.versions = self.versions.saturating_add(entries.len() as u64);
                self.pending = entries
                    .iter()
                    .rev()
                    .map(|e| Entry::from_sst(e.as_ref()))
                    .collect();
            }
            ChunkKind::Leases if self.leases.is_some() => {
                return Err(out_of_place("a second leases chunk"));
            }
            ChunkKind::Leases => {
                self.leases =
                    Some(decode_leases(payload, payload_at).map_err(|e| self.corrupt(&e))?);
            }
            ChunkKind::Trailer => {
                let trailer = decode_trailer(payload, at).map_err(|e| self.corrupt(&e))?;
                let leases = self.leases.as_ref().map_or(0, Vec::len) as u64;
                check_counts(&trailer, self.versions, leases, at).map_err(|e| self.corrupt(&e))?;
                check_stream_crc(&trailer, crc_before, at).map_err(|e| self.corrupt(&e))?;
                let mut after = Vec::new();
                (&mut self.input)
                    .take(SNAPSHOT_FRAMING_LEN_MAX as u64 + 1)
                    .read_to_end(&mut after)
                    .map_err(|e| Error::io("read", &self.name, e))?;
                self.digest
                    .clone()
                    .check_framing(&after)
                    .map_err(|e| self.corrupt(&e))?;
                self.finished = true;
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Iterator for ImportReader<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(entry) = self.pending.pop() {
                return Some(Ok(entry));
            }
            if self.finished {
                return None;
            }
            match self.next_chunk() {
                Ok(_) => continue,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Db {
    /// Imports the export stream `input` into the database at `path`, which must be new or
    /// never written (`InvalidArgument` otherwise); returns the database opened on the imported
    /// state, and what the stream carried. `name` is what errors call the stream. A stream that
    /// fails any check of `spec/FORMAT.md` § 6 is `Error::Corruption` naming its offset, and
    /// the database is left as it was.
    ///
    /// ```
    /// use kvstore::{Db, Options};
    ///
    /// let (from, to) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let db = Db::open(from.path(), Options::default())?;
    /// db.put(b"k", b"v1")?;
    /// db.put(b"k", b"v2")?;
    /// let mut stream = Vec::new();
    /// db.export(&mut stream)?;
    /// let (copy, summary) = Db::import(to.path(), Options::default(), &mut stream.as_slice(), "stream")?;
    /// assert_eq!(summary.versions, 2);
    /// assert_eq!(copy.get_at(b"k", 1)?.unwrap().value, b"v1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn import(
        path: impl AsRef<Path>,
        options: Options,
        input: &mut dyn Read,
        name: &str,
    ) -> Result<(Db, ExportSummary)> {
        Self::import_with_vfs(Arc::new(OsVfs), path, options, input, name)
    }

    /// [`Db::import`] on `vfs`.
    pub fn import_with_vfs(
        vfs: Arc<dyn Vfs>,
        path: impl AsRef<Path>,
        options: Options,
        input: &mut dyn Read,
        name: &str,
    ) -> Result<(Db, ExportSummary)> {
        let path = path.as_ref();
        let db = Db::open_with_vfs(Arc::clone(&vfs), path, options.clone())?;
        let summary = db.ingest(input, name)?;
        db.close()?;
        let db = Db::open_with_vfs(vfs, path, options)?;
        Ok((db, summary))
    }

    /// Steps 1-3 of the module doc.
    fn ingest(&self, input: &mut dyn Read, name: &str) -> Result<ExportSummary> {
        let inner = self.inner();
        let stats = self.stats();
        let tree = inner.tree();
        let empty = stats.last_revision == 0
            && stats.memtable_bytes == 0
            && stats.files_per_level.iter().all(|&n| n == 0)
            && self.leases()?.is_empty();
        if !empty {
            return Err(Error::InvalidArgument(
                "import needs a database that has never been written".to_owned(),
            ));
        }
        let name = PathBuf::from(name);
        let mut header_bytes = [0u8; EXPORT_HEADER_LEN];
        input
            .read_exact(&mut header_bytes)
            .map_err(|e| Error::io("read export header", &name, e))?;
        let header = decode_header(&header_bytes).map_err(|e| Error::corruption(&name, 0, &e))?;
        let mut reader = ImportReader {
            input,
            name,
            header,
            offset: EXPORT_HEADER_LEN as u64,
            crc: crc32c_append(0, &header_bytes),
            digest: {
                let mut digest = SnapshotDigest::new();
                digest.update(&header_bytes);
                digest
            },
            order: VersionOrder::new(header.revision),
            pending: Vec::new(),
            versions: 0,
            leases: None,
            named: BTreeSet::new(),
            last_key: None,
            finished: false,
        };
        let _work = inner.worker.work();
        let bottom = tree.version.num_levels().saturating_sub(1);
        let retention = Retention {
            floor: 0,
            bottommost: false,
        };
        let stream = CompactionStream::new(
            &mut reader,
            retention,
            inner.options.sst_target_file_size_bytes,
        );
        // The stream ends (the reader yields `None`) only once its trailer checked.
        let added = inner.write_outputs(stream, bottom, tree.version.wal_offset())?;
        let leases = reader.leases.take().unwrap_or_default();
        if let Some(missing) = reader
            .named
            .iter()
            .find(|id| leases.binary_search_by_key(id, |l| &l.id).is_err())
        {
            return Err(Error::Corruption {
                file: reader.name.clone(),
                offset: 0,
                what: format!(
                    "export stream: a live key names lease {missing}, which it does not grant"
                ),
            });
        }
        let summary = ExportSummary {
            revision: reader.header.revision,
            horizon: reader.header.horizon,
            versions: reader.versions,
            leases: leases.len() as u64,
            bytes: reader.offset,
        };
        let edit = VersionEdit {
            last_revision: Some(summary.revision),
            history_horizon: Some(summary.horizon),
            leases: Some(leases.into()),
            ..inner
                .versions
                .edit_adding(&tree.version, added.iter().map(|(m, _)| m.clone()))
        };
        inner.install(&tree, &edit, added, false)?;
        Ok(summary)
    }
}
