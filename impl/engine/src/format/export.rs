//! The export stream v1 (`spec/FORMAT.md` § 6), as pure functions over byte slices; the engine's
//! streaming reader and writer (`crate::db` export and import) call them chunk by chunk.
//!
//! ```text
//! stream  := header chunk* trailer
//! header  := "KVEXPORT" version:u8 reserved:[u8;7] revision:u64 horizon:u64       (32 bytes)
//! chunk   := kind:u8 length:u32 payload crc32c:u32     (CRC32C of kind, length and payload)
//! kinds   := 1 versions (SST entries, § 4.2) | 2 leases (count, then id, ttl_ms) | 0xFF trailer
//! trailer payload := versions:u64 leases:u64 stream_crc32c:u32
//! ```
//!
//! Invariants: every length is checked against `EXPORT_CHUNK_LEN_MAX` and the bytes present
//! before anything is allocated; a decoded versions chunk holds only checked entries (§ 4.2's
//! checks, `wal_offset` 0, and the order across chunks that the caller's [`VersionOrder`]
//! carries from chunk to chunk as it streams), each error at the entry's first byte.

use super::checksum::crc32c;
use super::etcd_snapshot::SnapshotDigest;
use super::manifest::LeaseMeta;
use super::sst::{Entry, EntryRef, decode_entry_ref, encode_entry};
use super::{FormatError, FormatErrorKind, LEASE_ID_MAX, LEASE_TTL_MS_MAX, Reader, varint};

/// The stream's first bytes.
pub const EXPORT_MAGIC: &[u8; 8] = b"KVEXPORT";
/// The only version this implementation writes and reads.
pub const EXPORT_VERSION: u8 = 1;
/// Header bytes.
pub const EXPORT_HEADER_LEN: usize = 32;
/// A chunk's `kind` and `length`.
pub const CHUNK_HEAD_LEN: usize = 5;
/// A chunk's trailing CRC32C.
pub const CHUNK_CRC_LEN: usize = 4;
/// Largest chunk payload: 16 MiB.
pub const EXPORT_CHUNK_LEN_MAX: usize = 16 * 1024 * 1024;
/// The trailer's payload bytes.
pub const TRAILER_LEN: usize = 20;

const STRUCTURE: &str = "export";

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportHeader {
    /// The revision the export is consistent at.
    pub revision: u64,
    /// The history horizon when it was taken.
    pub horizon: u64,
}

/// A chunk's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// SST entries.
    Versions = 1,
    /// The leases.
    Leases = 2,
    /// The counts and the stream's CRC; the last chunk.
    Trailer = 0xFF,
}

/// What the trailer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Entries in all versions chunks.
    pub versions: u64,
    /// Leases in the leases chunk.
    pub leases: u64,
    /// CRC32C of every byte before the trailer chunk.
    pub stream_crc32c: u32,
}

fn invalid(field: &'static str, at: u64, reason: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at,
        FormatErrorKind::InvalidValue { reason },
    )
}

/// The header's 32 bytes.
pub fn encode_header(header: ExportHeader) -> [u8; EXPORT_HEADER_LEN] {
    let mut out = [0u8; EXPORT_HEADER_LEN];
    let fields = EXPORT_MAGIC
        .iter()
        .copied()
        .chain([EXPORT_VERSION, 0, 0, 0, 0, 0, 0, 0])
        .chain(header.revision.to_be_bytes())
        .chain(header.horizon.to_be_bytes());
    for (dst, src) in out.iter_mut().zip(fields) {
        *dst = src;
    }
    out
}

/// Decodes and checks the header at the start of `bytes`.
pub fn decode_header(bytes: &[u8]) -> Result<ExportHeader, FormatError> {
    let mut r = Reader::new(bytes, STRUCTURE);
    if r.take(8, "magic")? != EXPORT_MAGIC {
        return Err(r.err("magic", 0, FormatErrorKind::BadMagic));
    }
    let version = r.u8("version")?;
    if version != EXPORT_VERSION {
        let kind = FormatErrorKind::UnsupportedVersion {
            version: version.into(),
        };
        return Err(r.err("version", 8, kind));
    }
    if r.take(7, "reserved")?.iter().any(|&b| b != 0) {
        return Err(r.err("reserved", 9, FormatErrorKind::ReservedNotZero));
    }
    let revision = r.u64("revision")?;
    let horizon = r.u64("horizon")?;
    if horizon > revision {
        return Err(invalid(
            "horizon",
            24,
            "horizon above the export's revision",
        ));
    }
    Ok(ExportHeader { revision, horizon })
}

/// Appends a chunk of `kind` with `payload` to `out`. Precondition: `payload.len() <=
/// EXPORT_CHUNK_LEN_MAX`.
pub fn encode_chunk(kind: ChunkKind, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(kind as u8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A chunk's kind and payload length from its first [`CHUNK_HEAD_LEN`] bytes, the chunk starting
/// at stream offset `at`.
pub fn decode_chunk_head(head: &[u8], at: u64) -> Result<(ChunkKind, usize), FormatError> {
    let mut r = Reader::new(head, STRUCTURE);
    let kind = match r.u8("kind").map_err(|e| e.at(at))? {
        1 => ChunkKind::Versions,
        2 => ChunkKind::Leases,
        0xFF => ChunkKind::Trailer,
        tag => {
            let kind = FormatErrorKind::UnknownTag { tag: tag.into() };
            return Err(FormatError::new(STRUCTURE, "kind", at, kind));
        }
    };
    let len = r.u32("length").map_err(|e| e.at(at))? as usize;
    if len > EXPORT_CHUNK_LEN_MAX {
        let kind = FormatErrorKind::too_large(len, EXPORT_CHUNK_LEN_MAX);
        return Err(FormatError::new(STRUCTURE, "length", at + 1, kind));
    }
    Ok((kind, len))
}

/// Checks the CRC32C of a whole chunk (head, payload, CRC) starting at stream offset `at`.
pub fn check_chunk_crc(chunk: &[u8], at: u64) -> Result<(), FormatError> {
    let split = chunk.len().saturating_sub(CHUNK_CRC_LEN);
    let (covered, stored) = chunk.split_at(split);
    let stored = <[u8; 4]>::try_from(stored)
        .map(u32::from_be_bytes)
        .map_err(|_| {
            let kind = FormatErrorKind::Truncated {
                needed: CHUNK_CRC_LEN as u64,
                available: stored.len() as u64,
            };
            FormatError::new(STRUCTURE, "crc32c", at, kind)
        })?;
    let actual = crc32c(covered);
    if actual != stored {
        let kind = FormatErrorKind::BadChecksum {
            expected: stored,
            actual,
        };
        return Err(FormatError::new(STRUCTURE, "crc32c", at, kind));
    }
    Ok(())
}

/// The entries of a versions payload that starts at stream offset `at`, each checked as it is
/// decoded (§ 4.2, `wal_offset` 0, then `order`), and reported at its own first byte.
pub fn decode_versions(
    payload: &[u8],
    at: u64,
    order: &mut VersionOrder,
) -> Result<Vec<Entry>, FormatError> {
    if payload.is_empty() {
        return Err(invalid("versions", at, "an empty versions chunk"));
    }
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = payload.get(pos..).filter(|r| !r.is_empty()) {
        let entry_at = at.saturating_add(pos as u64);
        let (entry, used) = decode_entry_ref(rest).map_err(|e| e.at(entry_at))?;
        if entry.wal_offset != 0 {
            return Err(invalid(
                "wal_offset",
                entry_at,
                "an exported version's wal_offset is 0",
            ));
        }
        let entry = entry.to_entry();
        order.check(&entry, entry_at)?;
        entries.push(entry);
        pos = pos.saturating_add(used);
    }
    Ok(entries)
}

/// Appends `entry` (with `wal_offset` 0) to a versions payload.
pub fn encode_version(entry: EntryRef<'_>, payload: &mut Vec<u8>) {
    encode_entry(
        EntryRef {
            wal_offset: 0,
            ..entry
        },
        payload,
    );
}

/// A leases payload.
pub fn encode_leases(leases: &[LeaseMeta]) -> Vec<u8> {
    let mut out = Vec::new();
    varint::encode(leases.len() as u64, &mut out);
    for lease in leases {
        varint::encode(lease.id, &mut out);
        varint::encode(lease.ttl_ms, &mut out);
    }
    out
}

/// The leases of a leases payload that starts at stream offset `at`.
pub fn decode_leases(payload: &[u8], at: u64) -> Result<Vec<LeaseMeta>, FormatError> {
    let mut r = Reader::new(payload, STRUCTURE);
    let count_at = r.pos();
    let count = r.varint("lease count").map_err(|e| e.at(at))?;
    // Each lease takes at least two bytes: the count is bounded by the payload.
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    r.check_len("lease count", count_at, count, r.remaining() / 2)
        .map_err(|e| e.at(at))?;
    let mut leases: Vec<LeaseMeta> = Vec::with_capacity(count);
    for _ in 0..count {
        let lease_at = at.saturating_add(r.pos() as u64);
        let id = r.varint("lease id").map_err(|e| e.at(at))?;
        let ttl_ms = r.varint("lease ttl_ms").map_err(|e| e.at(at))?;
        if !(1..=LEASE_ID_MAX).contains(&id) {
            return Err(invalid(
                "lease id",
                lease_at,
                "lease id outside 1..=LEASE_ID_MAX",
            ));
        }
        if !(1..=LEASE_TTL_MS_MAX).contains(&ttl_ms) {
            return Err(invalid(
                "lease ttl_ms",
                lease_at,
                "TTL outside 1..=LEASE_TTL_MS_MAX",
            ));
        }
        if leases.last().is_some_and(|last| last.id >= id) {
            return Err(invalid(
                "lease id",
                lease_at,
                "lease ids not strictly increasing",
            ));
        }
        leases.push(LeaseMeta { id, ttl_ms });
    }
    r.finish("leases").map_err(|e| e.at(at))?;
    Ok(leases)
}

/// The trailer's payload.
pub fn encode_trailer(trailer: Trailer) -> [u8; TRAILER_LEN] {
    let mut out = [0u8; TRAILER_LEN];
    let fields = trailer
        .versions
        .to_be_bytes()
        .into_iter()
        .chain(trailer.leases.to_be_bytes())
        .chain(trailer.stream_crc32c.to_be_bytes());
    for (dst, src) in out.iter_mut().zip(fields) {
        *dst = src;
    }
    out
}

/// The trailer of a trailer payload whose chunk starts at stream offset `at`.
pub fn decode_trailer(payload: &[u8], at: u64) -> Result<Trailer, FormatError> {
    if payload.len() != TRAILER_LEN {
        return Err(invalid("trailer", at, "a trailer's payload is 20 bytes"));
    }
    let mut r = Reader::new(payload, STRUCTURE);
    Ok(Trailer {
        versions: r.u64("versions").map_err(|e| e.at(at))?,
        leases: r.u64("leases").map_err(|e| e.at(at))?,
        stream_crc32c: r.u32("stream_crc32c").map_err(|e| e.at(at))?,
    })
}

/// The ordering rules of the versions across chunks: SST order, each `(key, revision)` once,
/// every revision at or below the header's.
#[derive(Debug)]
pub struct VersionOrder {
    revision: u64,
    last: Option<(Vec<u8>, u64)>,
}

impl VersionOrder {
    /// The rules for an export at `revision`.
    pub fn new(revision: u64) -> VersionOrder {
        VersionOrder {
            revision,
            last: None,
        }
    }

    /// Checks the next version, `entry`, found at stream offset `at`.
    pub fn check(&mut self, entry: &Entry, at: u64) -> Result<(), FormatError> {
        if entry.revision > self.revision {
            return Err(invalid(
                "revision",
                at,
                "a version above the export's revision",
            ));
        }
        if let Some((key, revision)) = &self.last {
            let in_order = match entry.key.as_slice().cmp(key) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => entry.revision < *revision,
                std::cmp::Ordering::Less => false,
            };
            if !in_order {
                return Err(FormatError::new(
                    STRUCTURE,
                    "key",
                    at,
                    FormatErrorKind::KeyOrder,
                ));
            }
        }
        self.last = Some((entry.key.clone(), entry.revision));
        Ok(())
    }
}

/// A whole export, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportContents {
    /// The header.
    pub header: ExportHeader,
    /// Every version, in stream order.
    pub versions: Vec<Entry>,
    /// The leases.
    pub leases: Vec<LeaseMeta>,
}

/// Writers cut versions chunks once they pass this many payload bytes.
pub const VERSIONS_CHUNK_TARGET_BYTES: usize = 1024 * 1024;

/// The canonical stream of `contents`: the header, versions chunks cut after the entry that
/// passes [`VERSIONS_CHUNK_TARGET_BYTES`], one leases chunk, the trailer. Precondition: every
/// version passes § 4.2's checks.
pub fn encode_stream(contents: &ExportContents) -> Vec<u8> {
    let mut out = encode_header(contents.header).to_vec();
    let mut payload = Vec::new();
    for entry in &contents.versions {
        encode_version(entry.as_ref(), &mut payload);
        if payload.len() >= VERSIONS_CHUNK_TARGET_BYTES {
            encode_chunk(ChunkKind::Versions, &payload, &mut out);
            payload.clear();
        }
    }
    if !payload.is_empty() {
        encode_chunk(ChunkKind::Versions, &payload, &mut out);
    }
    encode_chunk(
        ChunkKind::Leases,
        &encode_leases(&contents.leases),
        &mut out,
    );
    let trailer = Trailer {
        versions: contents.versions.len() as u64,
        leases: contents.leases.len() as u64,
        stream_crc32c: crc32c(&out),
    };
    encode_chunk(ChunkKind::Trailer, &encode_trailer(trailer), &mut out);
    out
}

/// Decodes and checks a whole stream held in memory (every rule of § 6). The engine's import
/// applies the same rules chunk by chunk as it streams.
pub fn decode_stream(bytes: &[u8]) -> Result<ExportContents, FormatError> {
    let header = decode_header(bytes)?;
    let mut contents = ExportContents {
        header,
        versions: Vec::new(),
        leases: Vec::new(),
    };
    let mut order = VersionOrder::new(header.revision);
    let mut seen_leases = false;
    let mut pos = EXPORT_HEADER_LEN;
    loop {
        let at = pos as u64;
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            let kind = FormatErrorKind::Truncated {
                needed: CHUNK_HEAD_LEN as u64,
                available: 0,
            };
            return Err(FormatError::new(STRUCTURE, "trailer", at, kind));
        }
        let head = rest.get(..CHUNK_HEAD_LEN).ok_or_else(|| {
            let kind = FormatErrorKind::Truncated {
                needed: CHUNK_HEAD_LEN as u64,
                available: rest.len() as u64,
            };
            FormatError::new(STRUCTURE, "chunk", at, kind)
        })?;
        let (kind, len) = decode_chunk_head(head, at)?;
        let whole = CHUNK_HEAD_LEN + len + CHUNK_CRC_LEN;
        let chunk = rest.get(..whole).ok_or_else(|| {
            let kind = FormatErrorKind::Truncated {
                needed: whole as u64,
                available: rest.len() as u64,
            };
            FormatError::new(STRUCTURE, "chunk", at, kind)
        })?;
        check_chunk_crc(chunk, at)?;
        let payload = chunk
            .get(CHUNK_HEAD_LEN..CHUNK_HEAD_LEN + len)
            .unwrap_or_default();
        let payload_at = at + CHUNK_HEAD_LEN as u64;
        match kind {
            ChunkKind::Versions if seen_leases => {
                return Err(invalid(
                    "kind",
                    at,
                    "a versions chunk after the leases chunk",
                ));
            }
            ChunkKind::Versions => {
                let entries = decode_versions(payload, payload_at, &mut order)?;
                contents.versions.extend(entries);
            }
            ChunkKind::Leases if seen_leases => {
                return Err(invalid("kind", at, "a second leases chunk"));
            }
            ChunkKind::Leases => {
                seen_leases = true;
                contents.leases = decode_leases(payload, payload_at)?;
            }
            ChunkKind::Trailer => {
                let trailer = decode_trailer(payload, at)?;
                check_trailer(
                    &trailer,
                    &contents,
                    bytes.get(..pos).unwrap_or_default(),
                    at,
                )?;
                let (stream, after) = bytes.split_at(pos + whole);
                let mut digest = SnapshotDigest::new();
                digest.update(stream);
                digest.check_framing(after)?;
                return Ok(contents);
            }
        }
        pos += whole;
    }
}

/// Checks `trailer` (at stream offset `at`) against what came before it: `contents` and the
/// `stream` bytes before the trailer chunk.
fn check_trailer(
    trailer: &Trailer,
    contents: &ExportContents,
    stream: &[u8],
    at: u64,
) -> Result<(), FormatError> {
    check_counts(
        trailer,
        contents.versions.len() as u64,
        contents.leases.len() as u64,
        at,
    )?;
    check_stream_crc(trailer, crc32c(stream), at)
}

/// The trailer's counts against the `versions` and `leases` read.
pub fn check_counts(
    trailer: &Trailer,
    versions: u64,
    leases: u64,
    at: u64,
) -> Result<(), FormatError> {
    if trailer.versions != versions || trailer.leases != leases {
        return Err(invalid(
            "trailer",
            at,
            "the trailer's counts differ from the stream's",
        ));
    }
    Ok(())
}

/// The trailer's stream CRC against `actual`, the CRC32C of the bytes before the trailer.
pub fn check_stream_crc(trailer: &Trailer, actual: u32, at: u64) -> Result<(), FormatError> {
    if trailer.stream_crc32c != actual {
        let kind = FormatErrorKind::BadChecksum {
            expected: trailer.stream_crc32c,
            actual,
        };
        return Err(FormatError::new(STRUCTURE, "stream_crc32c", at, kind));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &[u8], revision: u64) -> Entry {
        Entry {
            key: key.to_vec(),
            value: Some(b"v".to_vec()),
            revision,
            create_revision: 1,
            version: revision,
            lease: 0,
            wal_offset: 0,
            created_at_ms: 5,
        }
    }

    #[test]
    fn header_chunks_and_trailer_round_trip() {
        let header = ExportHeader {
            revision: 9,
            horizon: 3,
        };
        assert_eq!(decode_header(&encode_header(header)), Ok(header));
        let mut bad = encode_header(header);
        bad[31] = 10;
        assert_eq!(
            decode_header(&bad).unwrap_err().kind.name(),
            "invalid_value"
        );
        let mut payload = Vec::new();
        encode_version(version(b"a", 2).as_ref(), &mut payload);
        encode_version(version(b"a", 1).as_ref(), &mut payload);
        let mut chunk = Vec::new();
        encode_chunk(ChunkKind::Versions, &payload, &mut chunk);
        assert_eq!(
            decode_chunk_head(&chunk, 0),
            Ok((ChunkKind::Versions, payload.len()))
        );
        check_chunk_crc(&chunk, 0).unwrap();
        assert_eq!(
            decode_versions(&payload, 5, &mut VersionOrder::new(9))
                .unwrap()
                .len(),
            2
        );
        let last = chunk.len() - 1;
        chunk[last] ^= 1;
        assert_eq!(
            check_chunk_crc(&chunk, 0).unwrap_err().kind.name(),
            "bad_checksum"
        );
        let leases = [
            LeaseMeta { id: 1, ttl_ms: 5 },
            LeaseMeta { id: 9, ttl_ms: 7 },
        ];
        assert_eq!(decode_leases(&encode_leases(&leases), 0).unwrap(), leases);
        let trailer = Trailer {
            versions: 2,
            leases: 2,
            stream_crc32c: 77,
        };
        assert_eq!(decode_trailer(&encode_trailer(trailer), 0), Ok(trailer));
    }

    #[test]
    fn order_is_key_then_newest_first_and_bounded_by_the_revision() {
        let mut order = VersionOrder::new(5);
        order.check(&version(b"a", 3), 0).unwrap();
        order.check(&version(b"a", 1), 0).unwrap();
        assert!(order.check(&version(b"a", 1), 0).is_err());
        let mut order = VersionOrder::new(5);
        order.check(&version(b"b", 1), 0).unwrap();
        assert!(order.check(&version(b"a", 2), 0).is_err());
        assert!(VersionOrder::new(5).check(&version(b"c", 6), 0).is_err());
    }

    #[test]
    fn a_whole_stream_round_trips_and_damage_is_reported_where_it_is() {
        let contents = ExportContents {
            header: ExportHeader {
                revision: 4,
                horizon: 1,
            },
            versions: vec![version(b"a", 4), version(b"a", 2), version(b"b", 3)],
            leases: vec![LeaseMeta { id: 3, ttl_ms: 9 }],
        };
        let bytes = encode_stream(&contents);
        assert_eq!(decode_stream(&bytes), Ok(contents.clone()));
        let cut = decode_stream(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(cut.kind.name(), "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_stream(&longer).unwrap_err().kind.name(),
            "trailing_bytes"
        );
        let mut flipped = bytes.clone();
        flipped[EXPORT_HEADER_LEN + 7] ^= 0x40;
        let e = decode_stream(&flipped).unwrap_err();
        assert_eq!(
            (e.kind.name(), e.offset),
            ("bad_checksum", EXPORT_HEADER_LEN as u64)
        );
    }
}
