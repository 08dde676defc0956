//! A backup's metadata file (`<20 digits>.backup`, `spec/FORMAT.md` § 7): which tables a backup
//! is made of, and the manifest that records them.
//!
//! ```text
//! meta  := magic:"KVBACKUP" version:u8 reserved:[u8;7] id:u64 revision:u64 horizon:u64
//!          created_at_ms:u64 table_count:u32 table{table_count}
//!          manifest_len:u32 manifest:[u8; manifest_len] crc32c:u32
//! table := number:u64 size:u64 crc32c:u32                                  (20 bytes)
//! ```
//!
//! Integers are big-endian; the last `crc32c` covers every byte before it.
//!
//! Invariants:
//! - [`decode`] never panics and allocates only what the input holds: `table_count` is bounded
//!   by [`BACKUP_TABLES_MAX`] and by the bytes left, `manifest_len` by [`MANIFEST_LEN_MAX`] and
//!   by the bytes left, before anything is read or allocated.
//! - Fields are checked in order (magic, version, reserved, horizon, count, each table, the
//!   manifest's length, the CRC, nothing after it); the first failure is the one reported.
//! - decode(encode(m)) == m for every `m` whose tables are in increasing number order.

use super::checksum::crc32c;
use super::manifest::MANIFEST_LEN_MAX;
use super::{FormatError, FormatErrorKind, Reader};

/// The first 8 bytes of a backup metadata file.
pub const BACKUP_MAGIC: &[u8; 8] = b"KVBACKUP";
/// The version this implementation writes and reads.
pub const BACKUP_VERSION: u8 = 1;
/// Bytes of the fixed head, up to and including `table_count`.
pub const BACKUP_HEAD_LEN: usize = 8 + 1 + 7 + 8 * 4 + 4;
/// Bytes of one table record.
pub const BACKUP_TABLE_LEN: usize = 8 + 8 + 4;
/// The most tables one backup names.
pub const BACKUP_TABLES_MAX: usize = 1 << 20;
/// The suffix of a backup metadata file's name.
pub const BACKUP_FILE_SUFFIX: &str = ".backup";

const STRUCTURE: &str = "backup meta";

const _: () = assert!(BACKUP_HEAD_LEN == 52);
const _: () = assert!(BACKUP_TABLES_MAX * BACKUP_TABLE_LEN < u32::MAX as usize);

/// One table of a backup: its number in the database, and its bytes' length and CRC32C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupTable {
    /// The table's file number (its name in a database directory is `<20 digits>.sst`).
    pub number: u64,
    /// Its length in bytes.
    pub size: u64,
    /// The CRC32C of its bytes.
    pub crc32c: u32,
}

/// A decoded backup metadata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupMeta {
    /// The backup's id, unique in its backup directory, increasing.
    pub id: u64,
    /// The revision the backup reads at.
    pub revision: u64,
    /// Its history horizon, at most `revision`.
    pub horizon: u64,
    /// When it was taken, ms since the Unix epoch (the database's clock).
    pub created_at_ms: u64,
    /// Its tables, numbers strictly increasing.
    pub tables: Vec<BackupTable>,
    /// The `manifest.json` (§ 5) a restore writes, as bytes.
    pub manifest: Vec<u8>,
}

/// The file name of backup `id`: `<20 digits>.backup`.
pub fn backup_file_name(id: u64) -> String {
    format!("{id:020}{BACKUP_FILE_SUFFIX}")
}

/// The id of a backup metadata file name, if `name` is one (`<20 digits>.backup`).
pub fn parse_backup_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(BACKUP_FILE_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The file name a table is kept under in a backup's `tables/` directory:
/// `<20 digits number>-<8 hex crc32c>-<size>.sst`, so two different files never share a name.
pub fn backup_table_file_name(table: &BackupTable) -> String {
    format!(
        "{:020}-{:08x}-{}.sst",
        table.number, table.crc32c, table.size
    )
}

/// Encodes `meta`. Preconditions: at most [`BACKUP_TABLES_MAX`] tables, in increasing number
/// order, and a manifest of at most [`MANIFEST_LEN_MAX`] bytes.
pub fn encode(meta: &BackupMeta) -> Vec<u8> {
    debug_assert!(meta.tables.len() <= BACKUP_TABLES_MAX);
    debug_assert!(meta.manifest.len() <= MANIFEST_LEN_MAX);
    let mut out = Vec::with_capacity(
        BACKUP_HEAD_LEN + meta.tables.len() * BACKUP_TABLE_LEN + 8 + meta.manifest.len(),
    );
    out.extend_from_slice(BACKUP_MAGIC);
    out.push(BACKUP_VERSION);
    out.extend_from_slice(&[0; 7]);
    for field in [meta.id, meta.revision, meta.horizon, meta.created_at_ms] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(&(meta.tables.len() as u32).to_be_bytes());
    for table in &meta.tables {
        out.extend_from_slice(&table.number.to_be_bytes());
        out.extend_from_slice(&table.size.to_be_bytes());
        out.extend_from_slice(&table.crc32c.to_be_bytes());
    }
    out.extend_from_slice(&(meta.manifest.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta.manifest);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn invalid(field: &'static str, at: usize, reason: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at as u64,
        FormatErrorKind::InvalidValue { reason },
    )
}

/// Decodes a whole backup metadata file (see the module doc for the checks and their order).
pub fn decode(bytes: &[u8]) -> Result<BackupMeta, FormatError> {
    let mut r = Reader::new(bytes, STRUCTURE);
    if r.take(8, "magic")? != BACKUP_MAGIC {
        return Err(r.err("magic", 0, FormatErrorKind::BadMagic));
    }
    let version = r.u8("version")?;
    if version != BACKUP_VERSION {
        let kind = FormatErrorKind::UnsupportedVersion {
            version: version.into(),
        };
        return Err(r.err("version", 8, kind));
    }
    if r.take(7, "reserved")?.iter().any(|&b| b != 0) {
        return Err(r.err("reserved", 9, FormatErrorKind::ReservedNotZero));
    }
    let id = r.u64("id")?;
    let revision = r.u64("revision")?;
    let horizon = r.u64("horizon")?;
    if horizon > revision {
        return Err(invalid(
            "horizon",
            32,
            "horizon above the backup's revision",
        ));
    }
    let created_at_ms = r.u64("created_at_ms")?;
    let count_at = r.pos();
    let count = usize::try_from(r.u32("table_count")?).unwrap_or(usize::MAX);
    r.check_len("table_count", count_at, count, BACKUP_TABLES_MAX)?;
    r.check_len(
        "table_count",
        count_at,
        count,
        r.remaining() / BACKUP_TABLE_LEN,
    )?;
    let mut tables: Vec<BackupTable> = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.pos();
        let table = BackupTable {
            number: r.u64("number")?,
            size: r.u64("size")?,
            crc32c: r.u32("crc32c")?,
        };
        if tables
            .last()
            .is_some_and(|last| last.number >= table.number)
        {
            return Err(r.err("number", at, FormatErrorKind::KeyOrder));
        }
        tables.push(table);
    }
    let len_at = r.pos();
    let len = usize::try_from(r.u32("manifest_len")?).unwrap_or(usize::MAX);
    r.check_len("manifest_len", len_at, len, MANIFEST_LEN_MAX)?;
    let manifest = r.take(len, "manifest")?.to_vec();
    let crc_at = r.pos();
    let stored = r.u32("crc32c")?;
    let actual = crc32c(bytes.get(..crc_at).unwrap_or_default());
    if stored != actual {
        let kind = FormatErrorKind::BadChecksum {
            expected: stored,
            actual,
        };
        return Err(r.err("crc32c", crc_at, kind));
    }
    if !r.is_empty() {
        let kind = FormatErrorKind::TrailingBytes {
            count: r.remaining() as u64,
        };
        return Err(r.err("crc32c", r.pos(), kind));
    }
    Ok(BackupMeta {
        id,
        revision,
        horizon,
        created_at_ms,
        tables,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupMeta {
        BackupMeta {
            id: 3,
            revision: 40,
            horizon: 12,
            created_at_ms: 1_700_000_000_000,
            tables: vec![
                BackupTable {
                    number: 5,
                    size: 4096,
                    crc32c: 0xdead_beef,
                },
                BackupTable {
                    number: 9,
                    size: 77,
                    crc32c: 1,
                },
            ],
            manifest: b"{\"formatVersion\":1}".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let meta = sample();
        assert_eq!(decode(&encode(&meta)), Ok(meta));
        let empty = BackupMeta {
            tables: Vec::new(),
            manifest: Vec::new(),
            ..sample()
        };
        assert_eq!(decode(&encode(&empty)), Ok(empty));
    }

    #[test]
    fn every_prefix_is_truncated_and_every_flip_is_caught() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            // A cut inside the tables shows as a count above the bytes left, before any table.
            let err = decode(&bytes[..len]).unwrap_err();
            let kind = err.kind.name();
            assert!(
                kind == "truncated" || (kind == "length_too_large" && err.offset == 48),
                "prefix {len}: {err}"
            );
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {at} decoded");
        }
    }

    #[test]
    fn counts_and_lengths_are_bounded_before_allocation() {
        let mut bytes = encode(&sample());
        bytes[48..52].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode(&bytes).unwrap_err();
        assert_eq!((err.kind.name(), err.offset), ("length_too_large", 48));
        let mut bytes = encode(&sample());
        let len_at = BACKUP_HEAD_LEN + 2 * BACKUP_TABLE_LEN;
        bytes[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode(&bytes).unwrap_err();
        assert_eq!(
            (err.kind.name(), err.offset),
            ("length_too_large", len_at as u64)
        );
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(parse_backup_file_name(&backup_file_name(42)), Some(42));
        assert_eq!(parse_backup_file_name("42.backup"), None);
        assert_eq!(
            parse_backup_file_name("00000000000000000042.backup.tmp"),
            None
        );
    }
}
