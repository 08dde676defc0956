//! The 28-byte footer, the last bytes of every SST:
//!
//! ```text
//! offset  size  field
//! 0       8     index_offset   u64 BE: file offset of the index
//! 8       8     bloom_offset   u64 BE: file offset of the bloom block, 0 = no bloom
//! 16      4     index_crc32c   u32 BE: CRC32C of the index region [index_offset, file_len - 28)
//! 20      4     footer_crc32c  u32 BE: CRC32C of footer bytes 0..20
//! 24      4     magic          u32 BE: 0x53535446 ("SSTF")
//! ```
//!
//! Invariants: `SST_HEADER_LEN < bloom_offset < index_offset` when a bloom is present,
//! `SST_HEADER_LEN < index_offset <= file_len - 28` (checked by [`Footer::regions`]).

use super::SST_HEADER_LEN;
use crate::format::checksum::crc32c;
use crate::format::{FormatError, FormatErrorKind, Reader};
use std::ops::Range;

/// Footer length in bytes.
pub const FOOTER_LEN: usize = 28;
/// The footer magic, "SSTF" as a u32 BE.
pub const FOOTER_MAGIC: u32 = 0x5353_5446;
/// Bytes covered by `footer_crc32c`.
const FOOTER_CRC_COVERED: usize = 20;
const _: () = assert!(FOOTER_CRC_COVERED + 4 + 4 == FOOTER_LEN);

const STRUCTURE: &str = "sst footer";

/// A decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Footer {
    /// File offset of the index region.
    pub index_offset: u64,
    /// File offset of the bloom block, if any.
    pub bloom_offset: Option<u64>,
    /// CRC32C of the index region.
    pub index_crc32c: u32,
}

/// The byte ranges a footer defines inside a file of `file_len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    /// Data blocks.
    pub data: Range<u64>,
    /// The bloom block, if any.
    pub bloom: Option<Range<u64>>,
    /// The index.
    pub index: Range<u64>,
}

impl Footer {
    /// The 28 footer bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        let mut v = Vec::with_capacity(FOOTER_LEN);
        v.extend_from_slice(&self.index_offset.to_be_bytes());
        v.extend_from_slice(&self.bloom_offset.unwrap_or(0).to_be_bytes());
        v.extend_from_slice(&self.index_crc32c.to_be_bytes());
        let crc = crc32c(&v);
        v.extend_from_slice(&crc.to_be_bytes());
        v.extend_from_slice(&FOOTER_MAGIC.to_be_bytes());
        out.copy_from_slice(&v);
        out
    }

    /// Decodes exactly [`FOOTER_LEN`] bytes (the last bytes of the file). Checks, in order: length,
    /// magic, footer CRC32C.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let index_offset = r.u64("index_offset")?;
        let bloom_offset = r.u64("bloom_offset")?;
        let index_crc32c = r.u32("index_crc32c")?;
        let stored = r.u32("footer_crc32c")?;
        let magic = r.u32("magic")?;
        r.finish("magic")?;
        if magic != FOOTER_MAGIC {
            return Err(r.err("magic", 24, FormatErrorKind::BadMagic));
        }
        let actual = crc32c(bytes.get(..FOOTER_CRC_COVERED).unwrap_or_default());
        if actual != stored {
            return Err(r.err(
                "footer_crc32c",
                20,
                FormatErrorKind::BadChecksum {
                    expected: stored,
                    actual,
                },
            ));
        }
        Ok(Self {
            index_offset,
            bloom_offset: (bloom_offset != 0).then_some(bloom_offset),
            index_crc32c,
        })
    }

    /// The regions of a file of `file_len` bytes, or an error (offset = footer field) if the
    /// offsets are out of order or out of the file.
    pub fn regions(&self, file_len: u64) -> Result<Regions, FormatError> {
        let bad = |field, at, reason| {
            FormatError::new(
                STRUCTURE,
                field,
                at,
                FormatErrorKind::InvalidValue { reason },
            )
        };
        let footer_start = file_len
            .checked_sub(FOOTER_LEN as u64)
            .ok_or_else(|| bad("magic", 0, "file shorter than a footer"))?;
        let header = SST_HEADER_LEN as u64;
        if self.index_offset <= header || self.index_offset > footer_start {
            return Err(bad("index_offset", 0, "index offset outside the file body"));
        }
        let data_end = match self.bloom_offset {
            Some(b) if b <= header || b >= self.index_offset => {
                return Err(bad(
                    "bloom_offset",
                    8,
                    "bloom offset outside the data..index range",
                ));
            }
            Some(b) => b,
            None => self.index_offset,
        };
        Ok(Regions {
            data: header..data_end,
            bloom: self.bloom_offset.map(|b| b..self.index_offset),
            index: self.index_offset..footer_start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn round_trip(index_offset: u64, bloom: u64, index_crc32c: u32) -> bool {
            let f = Footer { index_offset, bloom_offset: (bloom != 0).then_some(bloom), index_crc32c };
            Footer::decode(&f.encode()) == Ok(f)
        }

        fn decode_never_panics(bytes: Vec<u8>) -> bool {
            let _ = Footer::decode(&bytes);
            true
        }
    }
}
