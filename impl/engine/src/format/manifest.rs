//! `manifest.json` (`spec/FORMAT.md` § Manifest):
//!
//! ```text
//! {"body":{"formatVersion":4,"nextFileNumber":N,"walOffset":N,"lastRevision":N,"historyHorizon":N,
//!          ["lastStamp":N,] "files":[{"file":S,"level":N,"minKeyHex":S,"maxKeyHex":S,"size":N,"walOffset":N,"createdAt":N},...],
//!          "leases":[{"id":N,"ttlMs":N},...]},
//!  "crc32c":N}
//! ```
//!
//! `crc32c` is the CRC32C of the exact bytes of the `body` value as they appear in the file.
//!
//! Invariants: the body's `formatVersion` is checked before its schema (a later version's new
//! fields are `unsupported_version`, not `bad_json`); unknown or missing fields are errors; key
//! hex is lowercase and even-length; keys are at most `KEY_LEN_MAX`; `minKey <= maxKey`; file
//! names are `<20 digits>.sst` ([`parse_sst_file_name`]), unique, numbered below
//! `nextFileNumber`; levels are `0..=LEVEL_MAX`; files at levels >= 1 do not overlap within their
//! level; lease ids are `1..=LEASE_ID_MAX` and strictly increasing, TTLs `1..=LEASE_TTL_MS_MAX`;
//! `lastStamp` is written only when not 0 (a present 0 is `invalid_value`), so one manifest has
//! one encoding; the whole file is at most `MANIFEST_LEN_MAX` bytes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::checksum::crc32c;
use super::{FormatError, FormatErrorKind, KEY_LEN_MAX, LEASE_ID_MAX, LEASE_TTL_MS_MAX};

/// The manifest format version this implementation writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 4;
/// The manifest's file name in the database directory.
pub const MANIFEST_FILE_NAME: &str = "manifest.json";
/// The temporary name written, fsynced, then renamed over [`MANIFEST_FILE_NAME`].
pub const MANIFEST_TMP_FILE_NAME: &str = "manifest.json.tmp";
/// Largest manifest accepted: 64 MiB.
pub const MANIFEST_LEN_MAX: usize = 64 * 1024 * 1024;
/// Deepest level (levels are `0..=LEVEL_MAX`).
pub const LEVEL_MAX: u32 = 6;
const _: () = assert!(MANIFEST_LEN_MAX > 4 * KEY_LEN_MAX);

const STRUCTURE: &str = "manifest";

/// The durable state of the LSM tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT_VERSION`] when written by this implementation.
    pub format_version: u32,
    /// The next SST file number to allocate (never reused).
    pub next_file_number: u64,
    /// Logical WAL offset up to which every record is in SSTs: replay starts here.
    pub wal_offset: u64,
    /// The highest revision ever committed into the SSTs (the counter survives compaction).
    pub last_revision: u64,
    /// The oldest revision reads may ask for (etcd's compacted revision); never decreases.
    pub history_horizon: u64,
    /// The highest commit stamp of the WAL records below `wal_offset` (0: none, the field is
    /// absent); never decreases.
    pub last_stamp: u64,
    /// Live SST files.
    pub files: Vec<FileMeta>,
    /// The leases granted and not revoked by the WAL records below `wal_offset`, by id.
    pub leases: Vec<LeaseMeta>,
}

impl Default for Manifest {
    /// The manifest of a new, empty database: current format version, file numbers from 1.
    fn default() -> Self {
        Self {
            format_version: MANIFEST_FORMAT_VERSION,
            next_file_number: 1,
            wal_offset: 0,
            last_revision: 0,
            history_horizon: 0,
            last_stamp: 0,
            files: Vec::new(),
            leases: Vec::new(),
        }
    }
}

/// One live SST.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// File name relative to the database directory (see [`sst_file_name`]).
    pub file: String,
    /// LSM level.
    pub level: u32,
    /// Smallest key in the file.
    pub min_key: Vec<u8>,
    /// Largest key in the file.
    pub max_key: Vec<u8>,
    /// File size in bytes.
    pub size: u64,
    /// Logical WAL offset covered by the file (every record below it that it holds is in it).
    pub wal_offset: u64,
    /// Creation time, unix milliseconds.
    pub created_at_ms: u64,
}

/// One lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseMeta {
    /// Its id, `1..=LEASE_ID_MAX`.
    pub id: u64,
    /// Its time to live, ms, `1..=LEASE_TTL_MS_MAX`.
    pub ttl_ms: u64,
}

/// The file name of SST number `n`: 20 zero-padded decimal digits and `.sst`.
pub fn sst_file_name(n: u64) -> String {
    format!("{n:020}.sst")
}

/// Parses an SST file name (`<20 digits>.sst`, at most `u64::MAX`) into its number; `None` for
/// any other name. The inverse of [`sst_file_name`].
pub fn parse_sst_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The body's `formatVersion` alone, every other field ignored: decoded before the schema.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(rename = "formatVersion")]
    format_version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BodyJson {
    format_version: u32,
    next_file_number: u64,
    wal_offset: u64,
    last_revision: u64,
    history_horizon: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_stamp: Option<u64>,
    files: Vec<FileJson>,
    leases: Vec<LeaseJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileJson {
    file: String,
    level: u32,
    min_key_hex: String,
    max_key_hex: String,
    size: u64,
    wal_offset: u64,
    created_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LeaseJson {
    id: u64,
    ttl_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OuterJson<'a> {
    #[serde(borrow)]
    body: &'a RawValue,
    crc32c: u32,
}

fn invalid(field: &'static str, offset: u64, reason: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        offset,
        FormatErrorKind::InvalidValue { reason },
    )
}

/// Byte offset of a serde_json error (line and column are 1-based) in `text`.
fn json_error(text: &[u8], base: u64, field: &'static str, e: &serde_json::Error) -> FormatError {
    let mut line_start = 0usize;
    let mut line = 1usize;
    for (i, &b) in text.iter().enumerate() {
        if line >= e.line() {
            break;
        }
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let offset = (line_start + e.column().saturating_sub(1)).min(text.len()) as u64;
    FormatError::new(
        STRUCTURE,
        field,
        base + offset,
        FormatErrorKind::BadJson {
            message: e.to_string(),
        },
    )
}

fn key_from_hex(s: &str, field: &'static str, at: u64) -> Result<Vec<u8>, FormatError> {
    if s.len() > 2 * KEY_LEN_MAX {
        let kind = FormatErrorKind::too_large(s.len() / 2, KEY_LEN_MAX);
        return Err(FormatError::new(STRUCTURE, field, at, kind));
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid(field, at, "key hex must be lowercase"));
    }
    hex::decode(s).map_err(|_| invalid(field, at, "key hex must be an even number of hex digits"))
}

/// Checks that `name` is an SST name (`<20 digits>.sst`) whose number is below
/// `next_file_number`.
fn check_file_name(name: &str, next_file_number: u64, at: u64) -> Result<(), FormatError> {
    match parse_sst_file_name(name) {
        None => Err(invalid("file", at, "file must be named <20 digits>.sst")),
        Some(n) if n >= next_file_number => {
            Err(invalid("file", at, "file number not below nextFileNumber"))
        }
        Some(_) => Ok(()),
    }
}

/// Files at the same level >= 1 must not overlap: sorted by smallest key, each one's largest key
/// is strictly below the next one's smallest.
fn check_no_overlap(files: &[FileMeta], at: u64) -> Result<(), FormatError> {
    let mut sorted: Vec<&FileMeta> = files.iter().filter(|f| f.level >= 1).collect();
    sorted.sort_by(|a, b| (a.level, &a.min_key).cmp(&(b.level, &b.min_key)));
    for pair in sorted.windows(2) {
        if let [a, b] = pair
            && a.level == b.level
            && a.max_key >= b.min_key
        {
            return Err(FormatError::new(
                STRUCTURE,
                "minKeyHex",
                at,
                FormatErrorKind::KeyOrder,
            ));
        }
    }
    Ok(())
}

/// The manifest file's bytes (UTF-8 JSON, one line, newline-terminated).
pub fn encode(manifest: &Manifest) -> Vec<u8> {
    let body = BodyJson {
        format_version: manifest.format_version,
        next_file_number: manifest.next_file_number,
        wal_offset: manifest.wal_offset,
        last_revision: manifest.last_revision,
        history_horizon: manifest.history_horizon,
        last_stamp: (manifest.last_stamp != 0).then_some(manifest.last_stamp),
        files: manifest
            .files
            .iter()
            .map(|f| FileJson {
                file: f.file.clone(),
                level: f.level,
                min_key_hex: hex::encode(&f.min_key),
                max_key_hex: hex::encode(&f.max_key),
                size: f.size,
                wal_offset: f.wal_offset,
                created_at: f.created_at_ms,
            })
            .collect(),
        leases: manifest
            .leases
            .iter()
            .map(|l| LeaseJson {
                id: l.id,
                ttl_ms: l.ttl_ms,
            })
            .collect(),
    };
    #[expect(
        clippy::expect_used,
        reason = "serde_json fails only on a failing Serialize impl or a map with non-string \
                  keys; BodyJson is derived over strings, integers and a Vec of such structs"
    )]
    let body = serde_json::to_string(&body).expect("a manifest body always serializes");
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(b"{\"body\":");
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(format!(",\"crc32c\":{}}}\n", crc32c(body.as_bytes())).as_bytes());
    out
}

/// Decodes and validates a manifest file. Offsets are byte offsets in `bytes`, approximate to
/// the JSON token for schema errors.
pub fn decode(bytes: &[u8]) -> Result<Manifest, FormatError> {
    if bytes.len() > MANIFEST_LEN_MAX {
        let kind = FormatErrorKind::too_large(bytes.len(), MANIFEST_LEN_MAX);
        return Err(FormatError::new(STRUCTURE, "file", 0, kind));
    }
    let outer: OuterJson<'_> =
        serde_json::from_slice(bytes).map_err(|e| json_error(bytes, 0, "document", &e))?;
    let body_text = outer.body.get().as_bytes();
    let body_at = (body_text.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize) as u64;
    let actual = crc32c(body_text);
    if actual != outer.crc32c {
        let kind = FormatErrorKind::BadChecksum {
            expected: outer.crc32c,
            actual,
        };
        return Err(FormatError::new(STRUCTURE, "crc32c", body_at, kind));
    }
    // The version first: a later version may change the schema. A body whose formatVersion
    // cannot be read as an integer fails the schema below instead (bad_json).
    if let Ok(VersionProbe { format_version }) = serde_json::from_slice(body_text)
        && format_version != u64::from(MANIFEST_FORMAT_VERSION)
    {
        let kind = FormatErrorKind::UnsupportedVersion {
            version: format_version,
        };
        return Err(FormatError::new(STRUCTURE, "formatVersion", body_at, kind));
    }
    let body: BodyJson = serde_json::from_slice(body_text)
        .map_err(|e| json_error(body_text, body_at, "body", &e))?;
    let mut names = std::collections::BTreeSet::new();
    let mut files = Vec::with_capacity(body.files.len());
    for f in body.files {
        check_file_name(&f.file, body.next_file_number, body_at)?;
        if !names.insert(f.file.clone()) {
            return Err(invalid("file", body_at, "duplicate file"));
        }
        if f.level > LEVEL_MAX {
            let kind = FormatErrorKind::LengthTooLarge {
                len: f.level.into(),
                max: LEVEL_MAX.into(),
            };
            return Err(FormatError::new(STRUCTURE, "level", body_at, kind));
        }
        let min_key = key_from_hex(&f.min_key_hex, "minKeyHex", body_at)?;
        let max_key = key_from_hex(&f.max_key_hex, "maxKeyHex", body_at)?;
        if min_key > max_key {
            return Err(FormatError::new(
                STRUCTURE,
                "maxKeyHex",
                body_at,
                FormatErrorKind::KeyOrder,
            ));
        }
        files.push(FileMeta {
            file: f.file,
            level: f.level,
            min_key,
            max_key,
            size: f.size,
            wal_offset: f.wal_offset,
            created_at_ms: f.created_at,
        });
    }
    check_no_overlap(&files, body_at)?;
    let leases = check_leases(&body.leases, body_at)?;
    if body.last_stamp == Some(0) {
        return Err(invalid(
            "lastStamp",
            body_at,
            "lastStamp 0 is written as no field",
        ));
    }
    Ok(Manifest {
        format_version: body.format_version,
        next_file_number: body.next_file_number,
        wal_offset: body.wal_offset,
        last_revision: body.last_revision,
        history_horizon: body.history_horizon,
        last_stamp: body.last_stamp.unwrap_or(0),
        files,
        leases,
    })
}

/// Check-order step 8: each lease's id, then its TTL, in range; ids strictly increasing.
fn check_leases(leases: &[LeaseJson], at: u64) -> Result<Vec<LeaseMeta>, FormatError> {
    let mut previous = 0;
    let mut checked = Vec::with_capacity(leases.len());
    for lease in leases {
        if !(1..=LEASE_ID_MAX).contains(&lease.id) {
            return Err(invalid(
                "leases.id",
                at,
                "lease id outside 1..=LEASE_ID_MAX",
            ));
        }
        if !(1..=LEASE_TTL_MS_MAX).contains(&lease.ttl_ms) {
            return Err(invalid(
                "leases.ttlMs",
                at,
                "TTL outside 1..=LEASE_TTL_MS_MAX",
            ));
        }
        if lease.id <= previous {
            return Err(invalid(
                "leases.id",
                at,
                "lease ids not strictly increasing",
            ));
        }
        previous = lease.id;
        checked.push(LeaseMeta {
            id: lease.id,
            ttl_ms: lease.ttl_ms,
        });
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn manifest() -> impl Strategy<Value = Manifest> {
        let file = (
            any::<u64>(),
            0..=LEVEL_MAX,
            prop::collection::vec(any::<u8>(), 0..6),
            prop::collection::vec(any::<u8>(), 0..6),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(n, level, a, b, size, wal_offset, created_at_ms)| {
                let (mut min_key, mut max_key) = if a <= b { (a, b) } else { (b, a) };
                // Distinct files get distinct first key bytes below, so no level overlaps.
                min_key.insert(0, 0);
                max_key.insert(0, 0);
                FileMeta {
                    file: sst_file_name(n),
                    level,
                    min_key,
                    max_key,
                    size,
                    wal_offset,
                    created_at_ms,
                }
            });
        (
            0..u64::MAX / 2,
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop_oneof![Just(0), any::<u64>()],
            prop::collection::btree_map(0..u64::MAX / 2, file, 0..5),
            prop::collection::btree_map(1..=LEASE_ID_MAX, 1..=LEASE_TTL_MS_MAX, 0..4),
        )
            .prop_map(
                |(extra, wal_offset, last_revision, history_horizon, last_stamp, files, leases)| {
                    let next_file_number = files
                        .keys()
                        .next_back()
                        .map_or(0, |n| n + 1)
                        .saturating_add(extra);
                    Manifest {
                        format_version: MANIFEST_FORMAT_VERSION,
                        next_file_number,
                        wal_offset,
                        last_revision,
                        history_horizon,
                        last_stamp,
                        files: files
                            .into_iter()
                            .enumerate()
                            .map(|(i, (n, mut f))| {
                                f.file = sst_file_name(n);
                                let first = u8::try_from(i).unwrap();
                                f.min_key[0] = first;
                                f.max_key[0] = first;
                                f
                            })
                            .collect(),
                        leases: leases
                            .into_iter()
                            .map(|(id, ttl_ms)| LeaseMeta { id, ttl_ms })
                            .collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(m in manifest()) {
            prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn mutated_never_panics(m in manifest(), i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut bytes = encode(&m);
            let i = i.index(bytes.len());
            bytes[i] = b;
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn bit_rot_is_detected() {
        let m = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            next_file_number: 3,
            wal_offset: 100,
            last_revision: 9,
            history_horizon: 4,
            last_stamp: 0,
            files: vec![],
            leases: vec![LeaseMeta { id: 7, ttl_ms: 100 }],
        };
        let mut bytes = encode(&m);
        let pos = bytes.windows(3).position(|w| w == b"100").unwrap();
        bytes[pos] = b'2';
        assert_eq!(decode(&bytes).unwrap_err().kind.name(), "bad_checksum");
    }
}
