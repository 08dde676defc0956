//! The write-ahead log (`spec/FORMAT.md` § WAL v1): framing ([`frame`]), MessagePack payloads
//! ([`payload`]), segment naming ([`segment_file_name`]) and the pure replay classifier
//! ([`replay()`]).
//!
//! Invariants:
//! - One record = one commit; a record that changes keys takes one revision, one that changes
//!   none (a lease grant, a revoke of a lease without keys) takes none. A record never spans two
//!   segments.
//! - Logical offset of a byte = segment base offset + its position in the segment.

pub mod frame;
mod msgpack;
pub mod payload;
pub mod replay;

pub use frame::{
    FRAME_OVERHEAD_BYTES, Frame, RecordType, WAL_HEADER_LEN, WAL_PAYLOAD_LEN_MAX, WAL_VERSION,
    decode_frame, encode_frame, encode_frame_into,
};
pub use payload::{
    BatchOp, WAL_BATCH_OPS_MAX, WalBody, WalRecord, decode_payload, encode_payload,
    encode_payload_into,
};
pub use replay::{ReplayEnd, ReplayOutcome, Segment, replay};

use super::FormatError;

/// Encodes one complete record (header, MessagePack payload, trailer), ready to append.
///
/// Fails with `LengthTooLarge` when a key, a value, the op count or the payload exceeds its limit.
pub fn encode_record(record: &WalRecord) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    encode_record_into(
        &mut out,
        record.revision,
        record.created_at_ms,
        record.synced_through,
        record.stamp,
        &record.body,
    )?;
    Ok(out)
}

/// [`encode_record`] of the record these fields and `body` would make, appended to `out` (the
/// payload encoded in place, inside its frame), for a writer that keeps ownership of the body
/// and reuses one buffer from record to record. On `Err`, `out` is unchanged.
pub fn encode_record_into(
    out: &mut Vec<u8>,
    revision: u64,
    created_at_ms: u64,
    synced_through: u64,
    stamp: u64,
    body: &WalBody,
) -> Result<(), FormatError> {
    encode_frame_into(out, body.record_type(), |out| {
        encode_payload_into(out, revision, created_at_ms, synced_through, stamp, body)
    })
}

/// Decodes one complete record from the start of `bytes`; returns it and the bytes consumed.
pub fn decode_record(bytes: &[u8]) -> Result<(WalRecord, usize), FormatError> {
    let (frame, consumed) = decode_frame(bytes)?;
    let record = decode_payload(frame.record_type, frame.payload)
        .map_err(|e| e.at(WAL_HEADER_LEN as u64))?;
    Ok((record, consumed))
}

/// Number of decimal digits of the base offset in a segment file name.
pub const SEGMENT_NAME_DIGITS: usize = 20;
const _: () = assert!(SEGMENT_NAME_DIGITS >= 20, "u64::MAX has 20 decimal digits");

/// The file name of the segment whose first byte has logical offset `base_offset`:
/// `wal-<20 zero-padded decimal digits>.log`.
pub fn segment_file_name(base_offset: u64) -> String {
    format!("wal-{base_offset:020}.log")
}

/// The base offset named by a segment file name, or `None` if `name` is not a segment name
/// (exactly `wal-`, 20 ASCII digits, `.log`).
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatErrorKind;
    use proptest::prelude::*;

    proptest! {
        /// The writer's in-place encoding, appended after whatever the buffer held, is exactly
        /// the payload framed the plain way, and decodes back to the record.
        #[test]
        fn in_place_record_is_the_framed_payload(
            r in payload::tests::record(),
            before in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut out = before.clone();
            encode_record_into(&mut out, r.revision, r.created_at_ms, r.synced_through, r.stamp, &r.body)
                .unwrap();
            let framed = encode_frame(r.body.record_type(), &encode_payload(&r).unwrap()).unwrap();
            prop_assert_eq!(&out[..before.len()], &before[..]);
            prop_assert_eq!(&out[before.len()..], &framed[..]);
            let (decoded, consumed) = decode_record(&out[before.len()..]).unwrap();
            prop_assert_eq!(consumed, framed.len());
            prop_assert_eq!(decoded, r);
        }
    }

    #[test]
    fn refused_record_leaves_the_buffer_unchanged() {
        let mut out = b"earlier record".to_vec();
        let body = WalBody::Put {
            key: vec![b'k'; crate::format::KEY_LEN_MAX + 1],
            value: b"v".to_vec(),
            lease: 0,
        };
        let e = encode_record_into(&mut out, 1, 2, 3, 0, &body).unwrap_err();
        assert!(
            matches!(e.kind, FormatErrorKind::LengthTooLarge { .. }),
            "{e}"
        );
        assert_eq!(out, b"earlier record");
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(0), "wal-00000000000000000000.log");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(
            parse_segment_file_name("wal-99999999999999999999.log"),
            None
        );
        assert_eq!(parse_segment_file_name("wal-0000000000000000000.log"), None);
        assert_eq!(
            parse_segment_file_name("wal-+0000000000000000001.log"),
            None
        );
    }
}
