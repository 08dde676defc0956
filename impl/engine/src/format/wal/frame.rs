//! WAL record framing: `header(12) | payload(N) | trailer(12)`, trailer identical to header.
//!
//! ```text
//! offset  size  field
//! 0       1     version        = 1
//! 1       1     type           1 put, 2 delete, 3 batch, 5 lease grant, 6 lease revoke
//!                              (4 txn commit, 7 checkpoint reserved)
//! 2       2     reserved       = 0
//! 4       4     length         payload bytes, u32 BE, <= WAL_PAYLOAD_LEN_MAX
//! 8       4     adler32        Adler-32 of the payload, u32 BE
//! ```
//!
//! Invariants: a frame decodes only if the header is well-formed, the payload and trailer are
//! present, the trailer equals the header byte for byte, and the Adler-32 matches.

use crate::format::checksum::adler32;
use crate::format::{FormatError, FormatErrorKind, KEY_LEN_MAX, Reader, VALUE_LEN_MAX};

/// Bytes in a header, and in a trailer.
pub const WAL_HEADER_LEN: usize = 12;
/// Header plus trailer.
pub const FRAME_OVERHEAD_BYTES: usize = 2 * WAL_HEADER_LEN;
/// The only WAL version this implementation writes and reads.
pub const WAL_VERSION: u8 = 1;
/// Largest payload: 128 MiB, room for one maximal put plus MessagePack overhead.
pub const WAL_PAYLOAD_LEN_MAX: usize = 128 * 1024 * 1024;
const _: () = assert!(WAL_PAYLOAD_LEN_MAX >= KEY_LEN_MAX + VALUE_LEN_MAX + 1024);
const _: () = assert!(WAL_PAYLOAD_LEN_MAX <= u32::MAX as usize);

const HEADER: &str = "wal record header";

/// Record types. Numbers are frozen; 4 (transaction commit) and 7 (checkpoint) are reserved for
/// future versions and rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// One put.
    Put = 1,
    /// One delete.
    Delete = 2,
    /// An atomic batch of puts and deletes sharing one revision.
    Batch = 3,
    /// A lease granted.
    LeaseGrant = 5,
    /// A lease revoked, with the deletes of its keys.
    LeaseRevoke = 6,
}

impl RecordType {
    /// The type for a tag byte, if the format defines it.
    pub fn from_u8(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::Put),
            2 => Some(Self::Delete),
            3 => Some(Self::Batch),
            5 => Some(Self::LeaseGrant),
            6 => Some(Self::LeaseRevoke),
            _ => None,
        }
    }
}

/// A decoded frame, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record type from the header.
    pub record_type: RecordType,
    /// The payload bytes (checksum verified).
    pub payload: &'a [u8],
}

fn header_bytes(record_type: RecordType, payload: &[u8]) -> [u8; WAL_HEADER_LEN] {
    let mut h = [0u8; WAL_HEADER_LEN];
    let len = (payload.len() as u32).to_be_bytes();
    let cks = adler32(payload).to_be_bytes();
    let fields = [WAL_VERSION, record_type as u8, 0, 0];
    for (dst, src) in h.iter_mut().zip(fields.iter().chain(&len).chain(&cks)) {
        *dst = *src;
    }
    h
}

/// Frames `payload` as a record of `record_type`. Fails if the payload exceeds
/// [`WAL_PAYLOAD_LEN_MAX`].
pub fn encode_frame(record_type: RecordType, payload: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(payload.len().saturating_add(FRAME_OVERHEAD_BYTES));
    encode_frame_into(&mut out, record_type, |out| {
        out.extend_from_slice(payload);
        Ok(())
    })?;
    Ok(out)
}

/// Appends a record of `record_type` to `out`, its payload written in place by `write_payload`
/// (no copy of the payload): a header placeholder, the payload, then the header filled in and
/// repeated as the trailer. Fails if `write_payload` fails, shrinks `out` below the end of the
/// header placeholder (a caller bug: the header would have nowhere to go), or the payload exceeds
/// [`WAL_PAYLOAD_LEN_MAX`]; on failure `out` is truncated back to its length on entry.
pub fn encode_frame_into(
    out: &mut Vec<u8>,
    record_type: RecordType,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    let start = out.len();
    out.extend_from_slice(&[0; WAL_HEADER_LEN]);
    let framed = write_payload(out).and_then(|()| {
        let payload_start = start.saturating_add(WAL_HEADER_LEN);
        let (head, payload) = out
            .split_at_mut_checked(payload_start)
            .ok_or_else(placeholder_gone)?;
        if payload.len() > WAL_PAYLOAD_LEN_MAX {
            return Err(FormatError::new(
                HEADER,
                "length",
                4,
                FormatErrorKind::too_large(payload.len(), WAL_PAYLOAD_LEN_MAX),
            ));
        }
        let header = header_bytes(record_type, payload);
        let placeholder: &mut [u8; WAL_HEADER_LEN] = head
            .get_mut(start..)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(placeholder_gone)?;
        *placeholder = header;
        Ok(header)
    });
    match framed {
        Ok(header) => {
            out.extend_from_slice(&header);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The error of a payload writer that removed bytes from before its payload (a caller bug).
fn placeholder_gone() -> FormatError {
    FormatError::new(
        HEADER,
        "header",
        0,
        FormatErrorKind::InvalidValue {
            reason: "the payload writer shrank the buffer into the record header",
        },
    )
}

/// Decodes the frame at the start of `bytes`; returns it and the bytes consumed
/// (`24 + length`). Checks, in order: header present, version, type, reserved, length limit,
/// payload present, trailer present, trailer == header, Adler-32.
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame<'_>, usize), FormatError> {
    let mut r = Reader::new(bytes, HEADER);
    let header = r.array::<WAL_HEADER_LEN>("header")?;
    let mut h = Reader::new(&header, HEADER);
    let version = h.u8("version")?;
    let tag = h.u8("type")?;
    let reserved = h.u16("reserved")?;
    let length = h.u32("length")?;
    let stored = h.u32("adler32")?;
    if version != WAL_VERSION {
        return Err(r.err(
            "version",
            0,
            FormatErrorKind::UnsupportedVersion {
                version: version.into(),
            },
        ));
    }
    let Some(record_type) = RecordType::from_u8(tag) else {
        return Err(r.err("type", 1, FormatErrorKind::UnknownTag { tag: tag.into() }));
    };
    if reserved != 0 {
        return Err(r.err("reserved", 2, FormatErrorKind::ReservedNotZero));
    }
    let len = length as usize;
    r.check_len("length", 4, len, WAL_PAYLOAD_LEN_MAX)?;
    let payload = r.take(len, "payload")?;
    let trailer_at = r.pos();
    let trailer = r.array::<WAL_HEADER_LEN>("trailer")?;
    if trailer != header {
        return Err(FormatError::new(
            "wal record trailer",
            "trailer",
            trailer_at as u64,
            FormatErrorKind::HeaderTrailerMismatch,
        ));
    }
    let actual = adler32(payload);
    if actual != stored {
        return Err(r.err(
            "adler32",
            8,
            FormatErrorKind::BadChecksum {
                expected: stored,
                actual,
            },
        ));
    }
    Ok((
        Frame {
            record_type,
            payload,
        },
        r.pos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example() {
        let payload = br#"{"op":"put","key":"foo"}"#;
        let bytes = encode_frame(RecordType::Put, payload).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "01010000000000185c04076e".to_string()
                + "7b226f70223a22707574222c226b6579223a22666f6f227d"
                + "01010000000000185c04076e"
        );
        assert_eq!(
            decode_frame(&bytes).unwrap(),
            (
                Frame {
                    record_type: RecordType::Put,
                    payload
                },
                48
            )
        );
    }

    #[test]
    fn a_payload_writer_that_eats_the_header_is_an_error() {
        let mut out = b"earlier".to_vec();
        let e = encode_frame_into(&mut out, RecordType::Put, |out| {
            out.truncate(3);
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.kind.name(), "invalid_value");
        assert_eq!(out, b"ear");
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn round_trip(tag in 1u8..=3, payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let t = RecordType::from_u8(tag).unwrap();
            let bytes = encode_frame(t, &payload).unwrap();
            proptest::prop_assert_eq!(decode_frame(&bytes).unwrap(), (Frame { record_type: t, payload: &payload }, bytes.len()));
        }
    }
}
