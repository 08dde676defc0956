//! [`Db::export`]: the retained history at one revision as an export stream (`spec/FORMAT.md`
//! § 6), streamed while writes go on.
//!
//! Protocol:
//! 1. Pin the history horizon `H` (retrying if it moves meanwhile): compaction then keeps every
//!    version a read at `H` or later may see.
//! 2. Read the granted leases and the last revision `R` together, once every commit up to `R`
//!    is published: every lease a version up to `R` names is among them.
//! 3. Merge every memtable's and table's history of a view taken after that, keeping, per key,
//!    the versions at or below `R` that a read at a revision in `H..=R` may see: every one above
//!    `H`, and the newest at or below it unless that one is a tombstone.
//! 4. Write the header, the versions in chunks, the leases, and the trailer with the counts and
//!    the stream's CRC32C.
//!
//! Invariant: nothing is buffered but one chunk; the pin is held until the last version is
//! written.

use std::io::Write;

use crate::error::{Error, Result};
use crate::format::checksum::crc32c_append;
use crate::format::export::{
    ChunkKind, ExportHeader, Trailer, VERSIONS_CHUNK_TARGET_BYTES, encode_chunk, encode_header,
    encode_leases, encode_trailer, encode_version,
};
use crate::iter::{BoxedSource, HistoryMerge};
use crate::range::{Direction, KeyRange};

use super::Db;
use super::inner::Inner;
use super::readers::Pin;

/// What an export or an import carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The revision it is consistent at.
    pub revision: u64,
    /// The history horizon it carries.
    pub horizon: u64,
    /// Versions.
    pub versions: u64,
    /// Leases.
    pub leases: u64,
    /// Bytes of the stream.
    pub bytes: u64,
}

/// The stream being written: its bytes so far counted and checksummed.
struct StreamOut<'a> {
    out: &'a mut dyn Write,
    crc: u32,
    bytes: u64,
}

impl StreamOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", std::path::Path::new("<export stream>"), e))?;
        self.crc = crc32c_append(self.crc, bytes);
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        Ok(())
    }

    fn chunk(&mut self, kind: ChunkKind, payload: &[u8]) -> Result<()> {
        let mut chunk = Vec::with_capacity(payload.len().saturating_add(9));
        encode_chunk(kind, payload, &mut chunk);
        self.write(&chunk)
    }
}

impl Db {
    /// Writes the database's retained history at its newest revision to `out` as an export
    /// stream (`spec/FORMAT.md` § 6): every version a read at a revision from the history horizon
    /// to that one may see, with its metadata, and the granted leases. Writes may go on
    /// meanwhile; the export is consistent at one revision. [`Db::import`] reads it back.
    pub fn export(&self, out: &mut dyn Write) -> Result<ExportSummary> {
        self.inner().export(out)
    }
}

impl Inner {
    fn export(&self, out: &mut dyn Write) -> Result<ExportSummary> {
        self.check_open()?;
        let (_pin, horizon) = self.pin_horizon()?;
        let (leases, revision) = self.pipeline.leases_at_last_revision()?;
        let view = self.read_view();
        let mut sources: Vec<BoxedSource> = Vec::new();
        for mem in view.mems.iter() {
            sources.push(Box::new(mem.history_in(KeyRange::all())));
        }
        let version = &view.tree.version;
        for level in 0..version.num_levels() {
            for file in version.files(level) {
                let table = view.tree.table(&self.dir, file.number)?;
                sources.push(Box::new(table.iter(KeyRange::all(), Direction::Forward)));
            }
        }
        let mut stream = StreamOut {
            out,
            crc: 0,
            bytes: 0,
        };
        stream.write(&encode_header(ExportHeader { revision, horizon }))?;
        let mut payload = Vec::new();
        let mut versions = 0u64;
        // The key whose newest version at or below the horizon was met (kept or not).
        let mut settled: Option<Vec<u8>> = None;
        for entry in HistoryMerge::new(sources) {
            let entry = entry?;
            if entry.revision > revision {
                continue;
            }
            if entry.revision <= horizon {
                if settled.as_deref() == Some(entry.key.as_slice()) {
                    continue;
                }
                settled = Some(entry.key.clone());
                if entry.is_tombstone() {
                    continue;
                }
            }
            encode_version(entry.as_sst(), &mut payload);
            versions = versions.saturating_add(1);
            if payload.len() >= VERSIONS_CHUNK_TARGET_BYTES {
                stream.chunk(ChunkKind::Versions, &payload)?;
                payload.clear();
            }
        }
        if !payload.is_empty() {
            stream.chunk(ChunkKind::Versions, &payload)?;
        }
        stream.chunk(ChunkKind::Leases, &encode_leases(&leases))?;
        let trailer = Trailer {
            versions,
            leases: leases.len() as u64,
            stream_crc32c: stream.crc,
        };
        stream.chunk(ChunkKind::Trailer, &encode_trailer(trailer))?;
        Ok(ExportSummary {
            revision,
            horizon,
            versions,
            leases: leases.len() as u64,
            bytes: stream.bytes,
        })
    }

    /// A pin at the history horizon, and the horizon (step 1 of the module doc).
    fn pin_horizon(&self) -> Result<(Pin, u64)> {
        loop {
            let horizon = self.readers.horizon();
            match self.readers.pin(horizon) {
                Ok(pin) => return Ok((pin, horizon)),
                // The horizon moved up between the read and the pin: read it again.
                Err(Error::Compacted { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
