//! The write-ahead log's I/O (`spec/FORMAT.md` § 3): segment files on a [`Vfs`], append, sync,
//! rotation, recovery. Every decision about bytes (framing, payloads, names, torn tail versus
//! corruption) is made by the pure codecs of [`crate::format::wal`]; this module only performs the
//! effects those decisions call for.
//!
//! - [`recovery`]: [`recover`] lists the segments, reads the live ones, classifies them with
//!   [`crate::format::wal::replay()`], and truncates a torn tail (or refuses a corrupt log).
//! - [`writer`]: [`WalWriter`] appends records, syncs, rotates, and deletes obsolete segments.
//!
//! # Invariants
//! - Logical offsets are contiguous: a segment's base is the previous segment's base plus its
//!   final size, and a record never spans two segments.
//! - Every record's `synced_through` is the writer's `synced_offset` when it was encoded: the end
//!   of the log as of the last `sync_data` that returned `Ok`. So `synced_through` never exceeds
//!   the record's own offset, and never claims a byte that is not durable.
//! - Rotation does not sync: older segments may hold unsynced records too, and a sync covers
//!   them, oldest first, before the active segment. A bad record in a non-final segment can thus
//!   be a torn tail of unsynced data, which replay tells from corruption the same way as anywhere
//!   (no later record vouches for it). The new segment's name is not synced by the rotation
//!   either: the next sync makes it durable (`sync_dir`, after the data) before it advances
//!   `synced_offset`, so no record in the segment is acknowledged, nor vouches for anything,
//!   while a crash could still drop the segment.
//! - A failed `append`, `sync_data`, `create` or `sync_dir` poisons the writer: the call returns
//!   [`crate::Error::Io`], every later call [`crate::Error::Poisoned`] carrying that error, and no
//!   fsync is ever retried
//!   (after a failed fsync the page cache's state is unknown: "fsyncgate"). A failed append is
//!   fatal too: its partial bytes would sit under later records that a later sync would vouch for,
//!   turning a harmless torn write into apparent corruption.
//! - Recovery acts only on what replay decided: nothing for a clean log; for a torn tail at X,
//!   `set_len` + `sync_data` of the segment holding X, then removal of every later segment and a
//!   `sync_dir`; for corruption, an error naming the segment file and the in-file offset (unless
//!   salvaging, which truncates like a torn tail and logs an error).
//! - A segment is deleted only when every byte of it is below an offset the caller says is
//!   durable elsewhere (the manifest's `walOffset`); the active segment is never deleted.
//!
//! # Protocol, step by step
//! Append: encode with `synced_through = synced_offset` → `append` to the active segment. Sync:
//! `sync_data` every older segment a rotation left unsynced, oldest first, then the active segment
//! → `sync_dir` if a rotation created a segment since the last one → `synced_offset := end_offset`.
//! Rotate: `create` `wal-<end_offset>.log` → the new file is active; the old one, if it holds
//! records past `synced_offset`, waits for the next sync (or for its removal once its records are
//! in a durable SST: then it is never synced). Open after recovery: reopen the last segment if it
//! ends at the recovered end, `sync_data` it (so that everything recovery read is durable before a
//! record vouches for it) and `sync_dir`; otherwise create `wal-<end_offset>.log` and `sync_dir`.
//!
//! Crash cases. A crash before a rotation's `create` is durable (before the next sync, or before
//! another `sync_dir` of the directory) leaves the old segment as the last one, or, if a later
//! rotation's name survived, a gap at the lost segment's base: either way nothing after that base
//! was acknowledged and no record vouches for it, so recovery finds the old segment clean or with a
//! torn tail, cuts there and deletes what follows. A crash after the `create` is durable leaves an
//! empty (or absent) new segment whose base is the old end: clean if the old segment is whole; if
//! its unsynced tail was lost, the bad record (or the gap before the next base) at X has no later
//! record vouching for it (no sync ran after X was written, else the old segment would have been
//! synced), so it is a torn tail and every later segment is deleted: a prefix survives. A crash
//! during recovery's truncation leaves either the old tail (classified again the same way) or the
//! cut one followed by later segments that start past the cut: the gap is a bad record at the cut
//! whose later records were never vouched for, so it is a torn tail again, and the second recovery
//! finishes the job.

pub mod recovery;
pub mod writer;

use std::path::{Path, PathBuf};

pub use recovery::{RecoveredWal, recover, recover_read_only};
pub use writer::{ObsoleteSegments, SyncPoint, WalWriter};

use crate::error::{Error, Result};
use crate::format::wal::{parse_segment_file_name, segment_file_name};
use crate::vfs::Vfs;

/// The path of the segment with base `base_offset` in `dir`.
pub fn segment_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(segment_file_name(base_offset))
}

/// The base offsets of every WAL segment file in `dir`, ascending. Names that are not exactly
/// `wal-<20 digits>.log` are ignored (manifests, SSTs, temporaries).
pub fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<u64>> {
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut bases: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_segment_file_name(n))
        .collect();
    bases.sort_unstable();
    bases.dedup();
    Ok(bases)
}

/// How many of the leading `bases` (ascending) lie wholly below `offset`, judged by names
/// alone: segment `i` does when segment `i + 1` starts at or below `offset` (bases are
/// contiguous, so segment `i` ends where `i + 1` begins). The last segment is never counted.
pub fn segments_wholly_below(bases: &[u64], offset: u64) -> usize {
    bases
        .windows(2)
        .take_while(|w| w.get(1).is_some_and(|next| *next <= offset))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wholly_below_uses_next_base() {
        assert_eq!(segments_wholly_below(&[], 10), 0);
        assert_eq!(segments_wholly_below(&[0], 10), 0);
        assert_eq!(segments_wholly_below(&[0, 100, 200], 0), 0);
        assert_eq!(segments_wholly_below(&[0, 100, 200], 99), 0);
        assert_eq!(segments_wholly_below(&[0, 100, 200], 100), 1);
        assert_eq!(segments_wholly_below(&[0, 100, 200], 150), 1);
        assert_eq!(segments_wholly_below(&[0, 100, 200], 200), 2);
        // The last segment is never wholly below: its end is not known from names.
        assert_eq!(segments_wholly_below(&[0, 100, 200], u64::MAX), 2);
    }
}
