//! Pure encoders and decoders for every on-disk structure, byte for byte as `spec/FORMAT.md` says.
//! No I/O here: decoders take `&[u8]` and return `Result<_, FormatError>` naming the offset.
//!
//! Invariants kept by every decoder in this module:
//! - It never panics, never reads past its input, and never allocates more than the input can
//!   justify: every length field is checked against its named limit and against the bytes left
//!   before anything is allocated.
//! - Errors carry the structure, the field and the byte offset relative to the input slice.
//! - decode(encode(x)) == x for every encoder (property tests beside each codec).
//!
//! Modules, one on-disk structure each:
//! - [`varint`]: LEB128 varints; [`checksum`]: Adler-32 and CRC32C.
//! - [`wal`]: WAL record framing, MessagePack payloads, and the pure replay classifier.
//! - [`sst`]: SST entries, blocks, bloom filter, index, footer and the table builder/decoder.
//! - [`manifest`]: `manifest.json` with its CRC32C-protected body.
//! - [`export`]: the export stream (a database's retained history at one revision).
//! - [`etcd_snapshot`]: etcd's snapshot file framing around an export stream.
//! - [`backup`]: a backup's metadata file (its tables and manifest).

pub mod backup;
pub mod checksum;
mod error;
pub mod etcd_snapshot;
pub mod export;
pub mod manifest;
pub mod sst;
pub mod varint;
pub mod wal;

pub(crate) use error::Reader;
pub use error::{FormatError, FormatErrorKind};

/// Longest key accepted anywhere in the format (WAL payloads, SST entries, manifest key ranges).
pub const KEY_LEN_MAX: usize = 64 * 1024;
/// Longest value accepted anywhere in the format.
pub const VALUE_LEN_MAX: usize = 64 * 1024 * 1024;
/// Largest lease id (etcd's lease ids are positive `int64`); 0 means "no lease".
pub const LEASE_ID_MAX: u64 = i64::MAX as u64;
/// Longest lease TTL, ms: etcd's maximum of 9·10^9 seconds.
pub const LEASE_TTL_MS_MAX: u64 = 9_000_000_000_000;
const _: () = assert!(KEY_LEN_MAX < VALUE_LEN_MAX && VALUE_LEN_MAX < u32::MAX as usize);
