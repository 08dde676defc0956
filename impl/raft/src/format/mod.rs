//! Pure encoders and decoders of every byte kvstore-raft stores (`spec/FORMAT.md` § 12): the keys
//! of the raft log database, its values (messages of `spec/raft.proto`), and the state pointer
//! file. No I/O.
//!
//! Invariants:
//! - Every decoder takes `&[u8]`, refuses more than its named limit before decoding, and returns
//!   a [`FormatError`] naming the structure and field; none panics.
//! - decode(encode(x)) == x for every value the encoders accept (tests below and
//!   `tests/format_vectors.rs`).
//! - A log key is [`TAG_LOG`] followed by the index as 8 big-endian bytes, so the engine's key
//!   order is index order.

mod command;
mod convert;
pub mod peer;
pub mod peer_members;
pub mod peer_proto;
pub mod proto;
mod response;

use crate::member::NODE_ENCODED_LEN_MAX;

pub use command::{decode_command, encode_command};
pub use convert::{
    StatePointer, decode_entry, decode_log_id, decode_state_pointer, decode_stored_membership,
    decode_vote, encode_entry, encode_log_id, encode_state_pointer, encode_stored_membership,
    encode_vote,
};

/// Key tag of the format header record (`[TAG_HEADER]`).
pub const TAG_HEADER: u8 = 0x01;
/// Key tag of the vote (`[TAG_VOTE]`).
pub const TAG_VOTE: u8 = 0x02;
/// Key tag of the committed log id (`[TAG_COMMITTED]`).
pub const TAG_COMMITTED: u8 = 0x03;
/// Key tag of the last purged log id (`[TAG_PURGED]`).
pub const TAG_PURGED: u8 = 0x04;
/// Key tag of the last applied membership (`[TAG_MEMBERSHIP]`).
pub const TAG_MEMBERSHIP: u8 = 0x05;
/// Key tag of log entries (`[TAG_LOG] index:u64be`).
pub const TAG_LOG: u8 = 0x10;

/// Bytes of a log entry's key: the tag and the index.
pub const LOG_KEY_LEN: usize = 1 + 8;

/// The header record's value: what a raft database of this version holds under
/// [`TAG_HEADER`]. Eight ASCII bytes of magic, then the version as one byte.
pub const HEADER_VALUE: [u8; 9] = *b"KVRAFTDB\x01";

/// Most bytes of any stored value (an entry, a vote...): the engine's largest value.
pub const VALUE_LEN_MAX: usize = kvstore::limits::VALUE_LEN_MAX;

/// Most bytes of the state pointer file's message (a snapshot meta: a membership of at most
/// [`MEMBERS_MAX`] nodes of at most [`NODE_ENCODED_LEN_MAX`] bytes each, and its configs).
pub const STATE_POINTER_LEN_MAX: usize = 4 * 1024 * 1024;

/// Most nodes (voters and learners) a decoded membership may name, and most voters per config.
pub const MEMBERS_MAX: usize = 1024;

/// Most configs of a membership: one, or two during a joint change.
pub const MEMBERSHIP_CONFIGS_MAX: usize = 2;

/// Magic of the state pointer file `SM_CURRENT`.
pub const STATE_POINTER_MAGIC: [u8; 8] = *b"KVRSMPTR";
/// Version of the state pointer file.
pub const STATE_POINTER_VERSION: u8 = 1;
/// Bytes before the pointer's message: magic, version, 3 reserved zero bytes, length (u32
/// big-endian), CRC32C of the message (u32 big-endian).
pub const STATE_POINTER_HEAD_LEN: usize = 8 + 1 + 3 + 4 + 4;

const _: () = assert!(STATE_POINTER_LEN_MAX <= u32::MAX as usize);
const _: () = assert!(
    MEMBERS_MAX * (NODE_ENCODED_LEN_MAX + 2 * 11) + 1024 <= STATE_POINTER_LEN_MAX,
    "the largest membership fits a state pointer"
);

/// Bytes that are not what `spec/FORMAT.md` § 12 allows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// More bytes than the structure's limit; nothing was decoded.
    #[error("{structure}: {len} bytes, more than the limit of {max}")]
    TooLong {
        /// The structure.
        structure: &'static str,
        /// Its length.
        len: usize,
        /// Its limit.
        max: usize,
    },
    /// Not a protobuf message of the schema (prost's reason).
    #[error("{structure}: not a valid message: {reason}")]
    Decode {
        /// The structure.
        structure: &'static str,
        /// What prost found.
        reason: String,
    },
    /// A well-formed message whose field breaks a rule of § 12.
    #[error("{structure}: field {field}: {what}")]
    Invalid {
        /// The structure.
        structure: &'static str,
        /// The field.
        field: &'static str,
        /// The rule broken.
        what: String,
    },
}

impl FormatError {
    pub(crate) fn invalid(
        structure: &'static str,
        field: &'static str,
        what: impl Into<String>,
    ) -> Self {
        FormatError::Invalid {
            structure,
            field,
            what: what.into(),
        }
    }

    pub(crate) fn missing(structure: &'static str, field: &'static str) -> Self {
        Self::invalid(structure, field, "absent")
    }
}

/// Decodes a message of `structure` from at most `max` bytes.
pub(crate) fn decode_message<M: prost::Message + Default>(
    structure: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<M, FormatError> {
    if bytes.len() > max {
        return Err(FormatError::TooLong {
            structure,
            len: bytes.len(),
            max,
        });
    }
    M::decode(bytes).map_err(|e| FormatError::Decode {
        structure,
        reason: e.to_string(),
    })
}

/// The key of log entry `index`.
pub fn log_key(index: u64) -> [u8; LOG_KEY_LEN] {
    let [a, b, c, d, e, f, g, h] = index.to_be_bytes();
    [TAG_LOG, a, b, c, d, e, f, g, h]
}

/// The index a log entry's key names.
pub fn decode_log_key(key: &[u8]) -> Result<u64, FormatError> {
    match key {
        [TAG_LOG, rest @ ..] => {
            let bytes: [u8; 8] = rest.try_into().map_err(|_| {
                FormatError::invalid("log key", "index", format!("{} bytes, not 8", rest.len()))
            })?;
            Ok(u64::from_be_bytes(bytes))
        }
        _ => Err(FormatError::invalid(
            "log key",
            "tag",
            format!("not 0x{TAG_LOG:02x}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_in_index_order_and_round_trip() {
        let indexes = [0u64, 1, 255, 256, 65_536, u64::MAX - 1, u64::MAX];
        for pair in indexes.windows(2) {
            assert!(log_key(pair[0]) < log_key(pair[1]));
        }
        for index in indexes {
            assert_eq!(decode_log_key(&log_key(index)), Ok(index));
        }
        assert!(decode_log_key(&[TAG_LOG, 1, 2]).is_err());
        assert!(decode_log_key(&[TAG_VOTE]).is_err());
        assert!(decode_log_key(&[]).is_err());
    }
}
