//! The one error type of every decoder in [`crate::format`].
//!
//! Invariants:
//! - Every error names the structure (e.g. "wal record header"), the field, and the byte offset
//!   where the bad structure or field starts, relative to the slice the decoder was given. Callers
//!   that know the file position add it (see [`FormatError::at`]).
//! - [`FormatErrorKind::name`] is the stable snake_case name the spec vectors use.

use std::fmt;

/// What is wrong with a byte sequence, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure}: field `{field}` at byte {offset}: {kind}")]
pub struct FormatError {
    /// The structure being decoded, e.g. "wal record header", "sst footer".
    pub structure: &'static str,
    /// The field that failed, e.g. "length", "crc32c".
    pub field: &'static str,
    /// Byte offset of the field (or of the structure) relative to the decoder's input slice.
    pub offset: u64,
    /// What is wrong.
    pub kind: FormatErrorKind,
}

/// The ways bytes can fail to be a valid structure. Names are frozen: spec vectors use them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatErrorKind {
    /// The input ends before the structure does.
    Truncated {
        /// Bytes the structure needs from `offset`.
        needed: u64,
        /// Bytes that were left from `offset`.
        available: u64,
    },
    /// A checksum does not match the bytes it covers.
    BadChecksum {
        /// The checksum stored in the input.
        expected: u32,
        /// The checksum computed over the covered bytes.
        actual: u32,
    },
    /// A magic number is not the one the format defines.
    BadMagic,
    /// A version number this implementation does not read.
    UnsupportedVersion {
        /// The version found.
        version: u64,
    },
    /// A length or count field exceeds its named limit or the bytes that remain.
    LengthTooLarge {
        /// The length found.
        len: u64,
        /// The largest length accepted here.
        max: u64,
    },
    /// A varint uses more bytes than its value needs (a trailing zero group).
    OverlongVarint,
    /// A varint does not fit in 64 bits.
    VarintOverflow,
    /// A tag (record type, op name, ...) that is not defined or is reserved.
    UnknownTag {
        /// The tag found, as a number when it is one, else 0.
        tag: u64,
    },
    /// A reserved field is not zero.
    ReservedNotZero,
    /// The WAL record trailer differs from its header.
    HeaderTrailerMismatch,
    /// Keys are not strictly increasing (or a first key disagrees with the index).
    KeyOrder,
    /// The bytes are not the MessagePack the schema requires.
    BadMsgpack {
        /// What was expected.
        expected: &'static str,
    },
    /// The bytes are not the JSON the schema requires.
    BadJson {
        /// The parser's message.
        message: String,
    },
    /// A field has a value outside its allowed set (not a length, not a tag).
    InvalidValue {
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Bytes remain after a structure that must end its input.
    TrailingBytes {
        /// How many.
        count: u64,
    },
    /// The LZ4 payload of a block does not decompress to the stated length.
    BadCompression,
}

impl FormatErrorKind {
    /// `LengthTooLarge { len, max }` from in-memory lengths (`usize` always fits in `u64` on the
    /// targets Rust supports; a larger value saturates).
    pub fn too_large(len: usize, max: usize) -> Self {
        let widen = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Self::LengthTooLarge {
            len: widen(len),
            max: widen(max),
        }
    }

    /// Stable snake_case name of the kind, used by `spec/vectors/**.json` (`{"error": name}`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::BadChecksum { .. } => "bad_checksum",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::LengthTooLarge { .. } => "length_too_large",
            Self::OverlongVarint => "overlong_varint",
            Self::VarintOverflow => "varint_overflow",
            Self::UnknownTag { .. } => "unknown_tag",
            Self::ReservedNotZero => "reserved_not_zero",
            Self::HeaderTrailerMismatch => "header_trailer_mismatch",
            Self::KeyOrder => "key_order",
            Self::BadMsgpack { .. } => "bad_msgpack",
            Self::BadJson { .. } => "bad_json",
            Self::InvalidValue { .. } => "invalid_value",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::BadCompression => "bad_compression",
        }
    }
}

impl fmt::Display for FormatErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} left")
            }
            Self::BadChecksum { expected, actual } => {
                write!(
                    f,
                    "bad checksum: stored {expected:#010x}, computed {actual:#010x}"
                )
            }
            Self::BadMagic => write!(f, "bad magic number"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported version {version}"),
            Self::LengthTooLarge { len, max } => write!(f, "length {len} exceeds {max}"),
            Self::OverlongVarint => write!(f, "overlong varint"),
            Self::VarintOverflow => write!(f, "varint overflows u64"),
            Self::UnknownTag { tag } => write!(f, "unknown or reserved tag {tag}"),
            Self::ReservedNotZero => write!(f, "reserved field is not zero"),
            Self::HeaderTrailerMismatch => write!(f, "trailer differs from header"),
            Self::KeyOrder => write!(f, "keys not strictly increasing"),
            Self::BadMsgpack { expected } => write!(f, "bad MessagePack: expected {expected}"),
            Self::BadJson { message } => write!(f, "bad JSON: {message}"),
            Self::InvalidValue { reason } => write!(f, "invalid value: {reason}"),
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes"),
            Self::BadCompression => write!(f, "LZ4 payload does not decompress"),
        }
    }
}

impl FormatError {
    /// A new error.
    pub fn new(
        structure: &'static str,
        field: &'static str,
        offset: u64,
        kind: FormatErrorKind,
    ) -> Self {
        Self {
            structure,
            field,
            offset,
            kind,
        }
    }

    /// The same error with `base` added to its offset (for callers that decode a sub-slice).
    #[must_use]
    pub fn at(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
}

/// A bounds-checked reader over a byte slice that tracks its offset; the building block of every
/// decoder. It never panics and never reads past its input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], structure: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            structure,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn err(&self, field: &'static str, at: usize, kind: FormatErrorKind) -> FormatError {
        FormatError::new(self.structure, field, at as u64, kind)
    }

    /// Fails with `LengthTooLarge` at `at` unless `len <= max`: every length read from the bytes
    /// passes through here (or an equivalent check) before it sizes a read or an allocation.
    pub(crate) fn check_len(
        &self,
        field: &'static str,
        at: usize,
        len: usize,
        max: usize,
    ) -> Result<(), FormatError> {
        if len > max {
            return Err(self.err(field, at, FormatErrorKind::too_large(len, max)));
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(
                field,
                self.pos,
                FormatErrorKind::Truncated {
                    needed: n as u64,
                    available: self.remaining() as u64,
                },
            )),
        }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let s = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, FormatError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        match super::varint::decode(rest) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(e) => Err(FormatError {
                structure: self.structure,
                field,
                ..e
            }
            .at(self.pos as u64)),
        }
    }

    /// Fails with `TrailingBytes` unless the input is fully consumed.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), FormatError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(
                field,
                self.pos,
                FormatErrorKind::TrailingBytes {
                    count: self.remaining() as u64,
                },
            ))
        }
    }
}
