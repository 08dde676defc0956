//! The MessagePack subset WAL payloads use (`spec/FORMAT.md` § 3.4): canonical writers and a
//! lenient, bounded reader, with the schema errors every payload reports the same way.
//!
//! Invariants:
//! - Writers emit the smallest encoding of every item (what `rmp` writes).
//! - The reader never reads past its input and checks every length against its limit and the
//!   remaining input before allocating; it accepts any legal width of a header.

use crate::format::{FormatError, FormatErrorKind, Reader};

/// The structure every payload error names.
pub(super) const STRUCTURE: &str = "wal payload";

pub(super) fn too_large(field: &'static str, len: usize, max: usize) -> FormatError {
    FormatError::new(STRUCTURE, field, 0, FormatErrorKind::too_large(len, max))
}

// Writing to a Vec cannot fail; rmp's error type is still a Result, which we map away.
pub(super) fn w<T, E>(r: Result<T, E>) -> Result<(), FormatError> {
    r.map(|_| ()).map_err(|_| {
        FormatError::new(
            STRUCTURE,
            "encode",
            0,
            FormatErrorKind::InvalidValue { reason: "write" },
        )
    })
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), FormatError> {
    w(rmp::encode::write_str(out, s))
}

pub(super) fn put_uint(out: &mut Vec<u8>, name: &str, v: u64) -> Result<(), FormatError> {
    put_str(out, name)?;
    w(rmp::encode::write_uint(out, v))
}

pub(super) fn put_bin(out: &mut Vec<u8>, name: &str, v: &[u8]) -> Result<(), FormatError> {
    put_str(out, name)?;
    w(rmp::encode::write_bin(out, v))
}

/// A MessagePack reader over the subset the payload schema uses.
pub(super) struct Mp<'a> {
    pub(super) r: Reader<'a>,
}

impl<'a> Mp<'a> {
    pub(super) fn bad(
        &self,
        field: &'static str,
        at: usize,
        expected: &'static str,
    ) -> FormatError {
        self.r
            .err(field, at, FormatErrorKind::BadMsgpack { expected })
    }

    fn len_be(&mut self, n: usize, field: &'static str) -> Result<usize, FormatError> {
        Ok(match n {
            1 => usize::from(self.r.u8(field)?),
            2 => usize::from(self.r.u16(field)?),
            _ => self.r.u32(field)? as usize,
        })
    }

    pub(super) fn map_len(&mut self, field: &'static str) -> Result<usize, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        match m {
            0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.len_be(2, field),
            0xdf => self.len_be(4, field),
            _ => Err(self.bad(field, at, "map")),
        }
    }

    pub(super) fn array_len(&mut self, field: &'static str) -> Result<usize, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.len_be(2, field),
            0xdd => self.len_be(4, field),
            _ => Err(self.bad(field, at, "array")),
        }
    }

    pub(super) fn str(&mut self, field: &'static str) -> Result<&'a [u8], FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len_be(1, field)?,
            0xda => self.len_be(2, field)?,
            0xdb => self.len_be(4, field)?,
            _ => return Err(self.bad(field, at, "str")),
        };
        self.r.take(len, field)
    }

    pub(super) fn bin(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        let len = match m {
            0xc4 => self.len_be(1, field)?,
            0xc5 => self.len_be(2, field)?,
            0xc6 => self.len_be(4, field)?,
            _ => return Err(self.bad(field, at, "bin")),
        };
        self.r.check_len(field, at, len, max)?;
        Ok(self.r.take(len, field)?.to_vec())
    }

    pub(super) fn uint(&mut self, field: &'static str) -> Result<u64, FormatError> {
        let at = self.r.pos();
        let m = self.r.u8(field)?;
        Ok(match m {
            0x00..=0x7f => u64::from(m),
            0xcc => u64::from(self.r.u8(field)?),
            0xcd => u64::from(self.r.u16(field)?),
            0xce => u64::from(self.r.u32(field)?),
            0xcf => self.r.u64(field)?,
            _ => return Err(self.bad(field, at, "unsigned integer")),
        })
    }
}

fn dup(at: usize, field: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "duplicate field",
        },
    )
}

/// Reads a field's value with `read` into `slot`. A field seen before is a duplicate, reported
/// at its name (`at`) before its value is read.
pub(super) fn set<T>(
    slot: &mut Option<T>,
    at: usize,
    field: &'static str,
    read: impl FnOnce() -> Result<T, FormatError>,
) -> Result<(), FormatError> {
    if slot.is_some() {
        return Err(dup(at, field));
    }
    *slot = Some(read()?);
    Ok(())
}

pub(super) fn missing(at: usize, field: &'static str) -> FormatError {
    FormatError::new(
        STRUCTURE,
        field,
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "missing field",
        },
    )
}

pub(super) fn unknown(at: usize) -> FormatError {
    FormatError::new(
        STRUCTURE,
        "name",
        at as u64,
        FormatErrorKind::InvalidValue {
            reason: "unknown field",
        },
    )
}
