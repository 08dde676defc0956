//! etcd's snapshot file framing around an export stream (`spec/FORMAT.md` § 6.1).
//!
//! `etcdctl snapshot save` (3.4) refuses a file whose length is not 32 more than a multiple of
//! 512 (a bolt file's pages, then a SHA-256 of them), and `snapshot restore` checks that
//! digest. So a kvstore server's Snapshot stream frames its export the same way, and an import
//! accepts the framing after the trailer:
//!
//! ```text
//! snapshot file := stream padding digest
//! padding       := zero bytes, as few as make len(stream) + len(padding) a multiple of 512
//! digest        := SHA-256 of stream and padding (32 bytes)
//! ```
//!
//! Invariants: [`SnapshotDigest::framing`] and [`SnapshotDigest::check_framing`] agree: the
//! framing one writes is the only non-empty framing the other accepts after the same stream;
//! the check reads at most [`SNAPSHOT_FRAMING_LEN_MAX`] bytes and never panics.

use sha2::{Digest, Sha256};

use super::{FormatError, FormatErrorKind};

/// The framed file's length before the digest is a multiple of this.
pub const SNAPSHOT_ALIGN: u64 = 512;
/// The SHA-256 digest's bytes.
pub const SNAPSHOT_DIGEST_LEN: usize = 32;
/// The longest framing: the most padding, then the digest.
pub const SNAPSHOT_FRAMING_LEN_MAX: usize = SNAPSHOT_ALIGN as usize - 1 + SNAPSHOT_DIGEST_LEN;

const STRUCTURE: &str = "etcd_snapshot";

/// The padding after a stream of `stream_len` bytes.
pub fn padding_len(stream_len: u64) -> usize {
    ((SNAPSHOT_ALIGN - stream_len % SNAPSHOT_ALIGN) % SNAPSHOT_ALIGN) as usize
}

/// The SHA-256 of an export stream, fed as its bytes go by, and their count.
#[derive(Clone, Debug, Default)]
pub struct SnapshotDigest {
    sha: Sha256,
    len: u64,
}

impl SnapshotDigest {
    /// A digest of no bytes yet.
    pub fn new() -> SnapshotDigest {
        SnapshotDigest::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len = self.len.saturating_add(bytes.len() as u64);
    }

    /// The bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The framing that follows the stream fed so far: its padding, then the digest of the
    /// stream and the padding.
    pub fn framing(mut self) -> Vec<u8> {
        let mut framing = vec![0u8; padding_len(self.len)];
        self.sha.update(&framing);
        framing.extend_from_slice(&self.sha.finalize());
        framing
    }

    /// Checks `after`, the bytes that follow the stream fed so far (its trailer included):
    /// none, or exactly the framing. Offsets in errors are from the stream's first byte.
    /// Bytes of another length are `trailing_bytes` at the first of them; a padding byte that
    /// is not zero `invalid_value` at it; a digest that differs `bad_checksum` at the digest's
    /// first byte (with the digests' first four bytes, big-endian, as the checksums).
    pub fn check_framing(mut self, after: &[u8]) -> Result<(), FormatError> {
        if after.is_empty() {
            return Ok(());
        }
        let stream_len = self.len;
        let padding = padding_len(stream_len);
        if after.len() != padding + SNAPSHOT_DIGEST_LEN {
            let kind = FormatErrorKind::TrailingBytes {
                count: after.len() as u64,
            };
            return Err(FormatError::new(STRUCTURE, "stream", stream_len, kind));
        }
        let (pad, stored) = after.split_at(padding);
        if let Some(i) = pad.iter().position(|&b| b != 0) {
            let kind = FormatErrorKind::InvalidValue {
                reason: "a padding byte of etcd's snapshot framing is not zero",
            };
            return Err(FormatError::new(
                STRUCTURE,
                "padding",
                stream_len + i as u64,
                kind,
            ));
        }
        self.sha.update(pad);
        let computed = self.sha.finalize();
        if computed.as_slice() != stored {
            let kind = FormatErrorKind::BadChecksum {
                expected: first_four(stored),
                actual: first_four(&computed),
            };
            let at = stream_len + padding as u64;
            return Err(FormatError::new(STRUCTURE, "digest", at, kind));
        }
        Ok(())
    }
}

/// The first four bytes of a digest, big-endian (what an error shows of it).
fn first_four(digest: &[u8]) -> u32 {
    let mut four = [0u8; 4];
    for (to, from) in four.iter_mut().zip(digest) {
        *to = *from;
    }
    u32::from_be_bytes(four)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(bytes: &[u8]) -> SnapshotDigest {
        let mut digest = SnapshotDigest::new();
        digest.update(bytes);
        digest
    }

    #[test]
    fn padding_reaches_the_next_multiple_of_512() {
        assert_eq!(padding_len(0), 0);
        assert_eq!(padding_len(1), 511);
        assert_eq!(padding_len(512), 0);
        assert_eq!(padding_len(1000), 24);
    }

    #[test]
    fn framing_is_what_etcdctl_expects_and_checks() {
        for len in [0usize, 1, 31, 512, 700, 1024] {
            let stream = vec![7u8; len];
            let framing = digest_of(&stream).framing();
            let file_len = (len + framing.len()) as u64;
            assert_eq!(
                file_len % SNAPSHOT_ALIGN,
                SNAPSHOT_DIGEST_LEN as u64,
                "len {len}"
            );
            let mut padded = stream.clone();
            padded.extend_from_slice(&framing[..framing.len() - SNAPSHOT_DIGEST_LEN]);
            assert_eq!(
                &framing[framing.len() - 32..],
                Sha256::digest(&padded).as_slice()
            );
            assert_eq!(digest_of(&stream).check_framing(&framing), Ok(()));
            assert_eq!(digest_of(&stream).check_framing(&[]), Ok(()));
        }
    }

    #[test]
    fn damaged_framing_is_named() {
        let stream = vec![1u8; 700];
        let framing = digest_of(&stream).framing();
        let name = |after: &[u8]| {
            let e = digest_of(&stream).check_framing(after).unwrap_err();
            (e.kind.name(), e.offset)
        };
        assert_eq!(name(&framing[1..]), ("trailing_bytes", 700));
        assert_eq!(name(&[0]), ("trailing_bytes", 700));
        let mut nonzero = framing.clone();
        nonzero[3] = 1;
        assert_eq!(name(&nonzero), ("invalid_value", 703));
        let mut wrong = framing.clone();
        let last = wrong.len() - 1;
        wrong[last] ^= 1;
        assert_eq!(name(&wrong), ("bad_checksum", 1024));
    }
}
