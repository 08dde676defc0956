//! Arbitrary bytes as each record kvstore-raft stores (`spec/FORMAT.md` § 12.3-12.6): the first
//! byte picks the decoder, the rest is its input. No decoder panics, and whatever decodes
//! re-encodes to bytes that decode to the same value (and encode to the same bytes again).
//!
//! | first byte % 9 | decoder |
//! |---|---|
//! | 0 | `decode_entry` (a log entry's value) |
//! | 1 | `decode_vote` |
//! | 2 | `decode_log_id` (committed, last purged) |
//! | 3 | `decode_stored_membership` |
//! | 4 | `decode_command` (what an entry carries) |
//! | 5 | `decode_state_pointer` (the whole `SM_CURRENT` file) |
//! | 6 | `decode_state_pointer` of the rest as its message, under a valid head and CRC, so the
//! |   | fuzzer reaches the snapshot meta and its membership past the checksum |
//! | 7 | `decode_log_key` |
//! | 8 | the rest as a `CommandResponse` (an applied command's answer, § 12.7), through
//! |   | `propose_reply_from_proto` |
#![no_main]

use std::fmt::Debug;

use kvstore_raft::format::peer::{Relayed, propose_reply_from_proto, propose_reply_to_proto};
use kvstore_raft::format::peer_proto as p;
use kvstore_raft::format::{
    self, FormatError, STATE_POINTER_HEAD_LEN, STATE_POINTER_MAGIC, STATE_POINTER_VERSION,
    decode_command, decode_entry, decode_log_id, decode_log_key, decode_state_pointer,
    decode_stored_membership, decode_vote, encode_command, encode_entry, encode_log_id,
    encode_state_pointer, encode_stored_membership, encode_vote, log_key,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Decoders this target dispatches to (the first byte modulo this).
const DECODERS: u8 = 9;

/// `decode(bytes)` either refuses them or gives `x`; then `encode(x)` decodes to `x` again and
/// re-encodes to the same bytes.
fn round_trip<T: PartialEq + Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, FormatError>,
    encode: impl Fn(&T) -> Vec<u8>,
) {
    let Ok(x) = decode(bytes) else { return };
    let again = encode(&x);
    let y = decode(&again).expect("a decoded record's encoding decodes");
    assert_eq!(x, y);
    assert_eq!(encode(&y), again);
}

/// The whole `SM_CURRENT` file for message bytes `message`: a valid head, then the message.
fn framed_state_pointer(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_POINTER_HEAD_LEN + message.len());
    out.extend_from_slice(&STATE_POINTER_MAGIC);
    out.push(STATE_POINTER_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(message).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The rest as a `CommandResponse`, carried as an applied proposal's answer.
fn command_response(bytes: &[u8]) {
    let Ok(response) = p::CommandResponse::decode(bytes) else {
        return;
    };
    let reply = p::ProposeReply {
        result: Some(p::ProposeResult::Applied(p::Applied {
            log_id: Some(format::proto::LogId::default()),
            response: Some(response),
        })),
    };
    let Ok(x) = propose_reply_from_proto(&reply) else {
        return;
    };
    assert!(matches!(x, Relayed::Done(_)));
    let again = propose_reply_to_proto(&x).encode_to_vec();
    let decoded = p::ProposeReply::decode(again.as_slice()).expect("prost reads its own bytes");
    let y = propose_reply_from_proto(&decoded).expect("a decoded response's encoding decodes");
    assert_eq!(x, y);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % DECODERS {
        0 => round_trip(rest, decode_entry, encode_entry),
        1 => round_trip(rest, decode_vote, encode_vote),
        2 => round_trip(rest, decode_log_id, encode_log_id),
        3 => round_trip(rest, decode_stored_membership, encode_stored_membership),
        4 => round_trip(rest, decode_command, encode_command),
        5 => round_trip(rest, decode_state_pointer, encode_state_pointer),
        6 => round_trip(
            &framed_state_pointer(rest),
            decode_state_pointer,
            encode_state_pointer,
        ),
        7 => {
            if let Ok(index) = decode_log_key(rest) {
                assert_eq!(log_key(index).as_slice(), rest);
            }
        }
        _ => command_response(rest),
    }
});
