//! The key layout of the index database (`spec/FORMAT.md` § 5.4): an ordinary engine database in
//! the `index/` subdirectory of the main one, whose keys are
//!
//! ```text
//! posting  = 'g' gram(3 bytes) key      -> empty   ; `key` is live and has `gram`
//! long     = 'l' key[..KEY_LEN_MAX - 1] -> empty   ; a key too long to post may be live
//! revision = 'r'                        -> 0x01 u64-be ; the main revision the rest reflects
//! ```
//!
//! Invariants:
//! - Every key written is at most `KEY_LEN_MAX` bytes: a key of up to [`POSTED_KEY_LEN_MAX`] bytes
//!   is posted under each of its distinct grams; a longer one only leaves a `long` marker of its
//!   first `KEY_LEN_MAX - 1` bytes (never removed but by a rebuild: a query reads the main
//!   database for the live keys under each marker).
//! - The postings of one gram are contiguous and in key order (the gram is a fixed-width prefix).
//! - The revision record is written in the same batch as the last postings it covers.

use std::collections::BTreeMap;

use crate::db::WriteBatch;
use crate::error::{Error, Result};
use crate::format::KEY_LEN_MAX;

use super::gram::{self, GRAM_LEN, Gram};

/// First byte of a posting.
const POSTING_TAG: u8 = b'g';
/// First byte of a long-key marker.
const LONG_TAG: u8 = b'l';
/// The revision record's key.
pub(crate) const REVISION_KEY: &[u8] = b"r";
/// The revision record's format version (its first value byte).
const REVISION_VERSION: u8 = 1;
/// Bytes of a revision record's value: version, then the revision big-endian.
const REVISION_VALUE_LEN: usize = 1 + 8;
/// Bytes a posting adds to the key it posts.
const POSTING_OVERHEAD_BYTES: usize = 1 + GRAM_LEN;
/// Longest key the index posts; longer ones get a marker.
pub(crate) const POSTED_KEY_LEN_MAX: usize = KEY_LEN_MAX - POSTING_OVERHEAD_BYTES;
/// Bytes of a main key a long-key marker keeps.
const LONG_PREFIX_LEN: usize = KEY_LEN_MAX - 1;

const _: () = assert!(POSTED_KEY_LEN_MAX < LONG_PREFIX_LEN);
const _: () = assert!(1 + LONG_PREFIX_LEN == KEY_LEN_MAX);

/// The prefix every posting of `gram` starts with.
pub(crate) fn posting_prefix(gram: &Gram) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(POSTING_OVERHEAD_BYTES);
    prefix.push(POSTING_TAG);
    prefix.extend_from_slice(gram);
    prefix
}

/// The prefix every long-key marker starts with.
pub(crate) fn long_prefix() -> [u8; 1] {
    [LONG_TAG]
}

/// The main key a posting (an index key under [`posting_prefix`]) names.
pub(crate) fn posted_key(index_key: &[u8]) -> &[u8] {
    index_key.get(POSTING_OVERHEAD_BYTES..).unwrap_or_default()
}

/// The main-key prefix a long-key marker (an index key under [`long_prefix`]) names.
pub(crate) fn marked_prefix(index_key: &[u8]) -> &[u8] {
    index_key.get(1..).unwrap_or_default()
}

/// Adds to `batch` what makes the index say `key` is live (`true`) or not.
fn key_ops(batch: &mut WriteBatch, key: &[u8], live: bool) {
    // Sabotage for negative controls (feature `failpoints`): a key no longer live keeps its
    // postings.
    fail::fail_point!("index::skip_posting_delete", !live, |_| ());
    if key.len() > POSTED_KEY_LEN_MAX {
        if live {
            let mut marker = Vec::with_capacity(KEY_LEN_MAX);
            marker.push(LONG_TAG);
            marker.extend_from_slice(key.get(..LONG_PREFIX_LEN).unwrap_or(key));
            batch.put(&marker, b"");
        }
        return;
    }
    for gram in gram::distinct(key) {
        let mut posting = posting_prefix(&gram);
        posting.extend_from_slice(key);
        if live {
            batch.put(&posting, b"");
        } else {
            batch.delete(&posting);
        }
    }
}

/// Ops a batch of postings holds at most before it is cut (a bound on one index commit's size).
pub(crate) const BATCH_OPS_MAX: usize = 16 * 1024;

/// The batches that make the index say, for each key of `states`, whether it is live, and then
/// (if `revision` is given) that it reflects that main revision: the last batch carries the
/// revision record. Without one, an empty `states` gives no batch.
pub(crate) fn batches(states: &BTreeMap<Vec<u8>, bool>, revision: Option<u64>) -> Vec<WriteBatch> {
    let mut done = Vec::new();
    let mut batch = WriteBatch::new();
    for (key, &live) in states {
        if batch.len() >= BATCH_OPS_MAX {
            done.push(std::mem::take(&mut batch));
        }
        key_ops(&mut batch, key, live);
    }
    if let Some(revision) = revision {
        batch.put(REVISION_KEY, &encode_revision(revision));
    }
    if !batch.is_empty() {
        done.push(batch);
    }
    done
}

/// The revision record's value.
fn encode_revision(revision: u64) -> [u8; REVISION_VALUE_LEN] {
    let mut value = [0; REVISION_VALUE_LEN];
    let (version, rest) = value.split_at_mut(1);
    version.copy_from_slice(&[REVISION_VERSION]);
    rest.copy_from_slice(&revision.to_be_bytes());
    value
}

/// The revision a revision record's `value` holds; [`Error::Corruption`] naming `file` if it is
/// not one.
pub(crate) fn decode_revision(value: &[u8], file: &std::path::Path) -> Result<u64> {
    let corrupt = |what: String| Error::Corruption {
        file: file.to_path_buf(),
        offset: 0,
        what: format!("key index revision record: {what}"),
    };
    let (version, rest) = value
        .split_first()
        .ok_or_else(|| corrupt("empty value".to_owned()))?;
    if *version != REVISION_VERSION {
        return Err(corrupt(format!(
            "version {version}, expected {REVISION_VERSION}"
        )));
    }
    let bytes: [u8; 8] = rest.try_into().map_err(|_| {
        corrupt(format!(
            "{} value bytes, expected {REVISION_VALUE_LEN}",
            value.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_record_round_trips_and_rejects_other_bytes() {
        let file = std::path::Path::new("index");
        for revision in [0, 1, u64::MAX] {
            assert_eq!(
                decode_revision(&encode_revision(revision), file).unwrap(),
                revision
            );
        }
        assert!(decode_revision(b"", file).is_err());
        assert!(decode_revision(&[2; REVISION_VALUE_LEN], file).is_err());
        assert!(decode_revision(&[1; 4], file).is_err());
    }

    #[test]
    fn a_posting_names_its_key() {
        let mut posting = posting_prefix(b"abc");
        posting.extend_from_slice(b"xabcy");
        assert!(posting.starts_with(&posting_prefix(b"abc")));
        assert_eq!(posted_key(&posting), b"xabcy");
    }

    #[test]
    fn every_index_key_fits_the_key_limit() {
        let long = vec![b'a'; KEY_LEN_MAX];
        let mut states = BTreeMap::new();
        states.insert(long, true);
        states.insert(vec![b'b'; POSTED_KEY_LEN_MAX], true);
        let batches = batches(&states, Some(7));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 1 + 1 + 1);
    }
}
