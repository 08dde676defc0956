//! WAL recovery: read the live segments, let [`replay()`] classify them, then act on its verdict.
//!
//! Invariants:
//! - Parse, judge, act are three separate steps: bytes are read whole, classified by the pure
//!   [`replay()`], and only then is anything on disk changed.
//! - Segments wholly below `start_offset` are recognised by name and never opened.
//! - Nothing is truncated or removed except on a `TornTail` verdict (or `Corrupt` when salvaging),
//!   and only at and after the verdict's offset; never by [`recover_read_only`], which opens
//!   every segment for reading only ([`Vfs::open_read`]). The cut is synced before later
//!   segments are removed, and the removals are synced (`sync_dir`) before recovery returns.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::wal::{ReplayEnd, Segment, WalRecord, replay};
use crate::vfs::{Vfs, VfsFile};

use super::{list_segments, segment_path};

/// What recovery found: the records to replay (logical offset, record), in log order, and where
/// writing resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredWal {
    /// `(logical offset of the record, record)` for every valid record at or after the start
    /// offset, in log order.
    pub records: Vec<(u64, WalRecord)>,
    /// The logical end of the log after recovery: where the next record goes.
    pub end_offset: u64,
    /// Bases of the live segments left on disk, ascending: the segment holding the start offset
    /// (the last one whose base is at or below it) and every later one.
    pub segments: Vec<u64>,
    /// Bytes cut off (torn tail, or a salvaged corruption), summed over segments.
    pub truncated_bytes: u64,
    /// Bases of the segments wholly below the start offset, ascending: not read, still on disk
    /// until [`super::WalWriter::remove_segments_below`] deletes them.
    pub obsolete_segments: Vec<u64>,
}

/// One live segment: its base, its open handle and its bytes.
struct LiveSegment {
    base: u64,
    file: Box<dyn VfsFile>,
    bytes: Vec<u8>,
}

/// Reads every `wal-*.log` segment in `dir` through `vfs`, classifies with
/// [`crate::format::wal::replay()`] from `start_offset` (the manifest's `walOffset`), and acts:
/// clean → nothing; torn tail at X → cut the segment holding X there (`set_len` + `sync_data`),
/// remove every later segment, `sync_dir`, and log it; corrupt → [`Error::Corruption`] naming the
/// segment file and the in-file offset, unless `salvage`, which cuts like a torn tail and logs an
/// error. No segments at all → `end_offset = start_offset`.
pub fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    start_offset: u64,
    salvage: bool,
) -> Result<RecoveredWal> {
    recover_with(vfs, dir, start_offset, Act::Cut { salvage })
}

/// [`recover`] for a read-only open: the same verdict, and nothing on disk changed. A torn tail
/// ends the records at the tear (what a writer would keep after cutting it), its bytes left in
/// place; corruption is always [`Error::Corruption`] (salvaging would cut).
pub fn recover_read_only(vfs: &dyn Vfs, dir: &Path, start_offset: u64) -> Result<RecoveredWal> {
    recover_with(vfs, dir, start_offset, Act::ReadOnly)
}

/// What recovery may do about a torn tail or corruption.
#[derive(Clone, Copy)]
enum Act {
    /// Cut a torn tail (and proven corruption if `salvage`).
    Cut { salvage: bool },
    /// Change nothing on disk.
    ReadOnly,
}

fn recover_with(vfs: &dyn Vfs, dir: &Path, start_offset: u64, act: Act) -> Result<RecoveredWal> {
    let bases = list_segments(vfs, dir)?;
    // The live segments start with the last one whose base is at or below the start offset.
    let first_live = bases.iter().rposition(|b| *b <= start_offset).unwrap_or(0);
    let (obsolete, live_bases) = bases.split_at(first_live);
    let mut live = Vec::with_capacity(live_bases.len());
    for base in live_bases {
        live.push(read_segment(vfs, dir, *base, act)?);
    }
    let views: Vec<Segment<'_>> = live
        .iter()
        .map(|s| Segment {
            base_offset: s.base,
            bytes: &s.bytes,
        })
        .collect();
    let outcome = replay(&views, start_offset);
    let mut recovered = RecoveredWal {
        records: outcome.records,
        end_offset: start_offset,
        segments: live_bases.to_vec(),
        truncated_bytes: 0,
        obsolete_segments: obsolete.to_vec(),
    };
    match outcome.end {
        ReplayEnd::Clean { offset } => recovered.end_offset = offset,
        ReplayEnd::TornTail {
            offset,
            segment_base,
            error,
        } => {
            if let Act::ReadOnly = act {
                recovered.end_offset = offset;
                return Ok(recovered);
            }
            let cut = cut_tail(vfs, dir, &mut live, offset, segment_base)?;
            tracing::warn!(
                dir = %dir.display(),
                offset,
                truncated_bytes = cut,
                %error,
                "WAL torn tail truncated (unsynced writes lost in a crash)"
            );
            finish_cut(&mut recovered, &live, offset, cut);
        }
        ReplayEnd::Corrupt {
            offset,
            segment_base,
            error,
            witness_offset,
        } => {
            let path = segment_path(dir, segment_base);
            let in_file = offset.saturating_sub(segment_base);
            if let Act::ReadOnly | Act::Cut { salvage: false } = act {
                return Err(Error::corruption(&path, in_file, &error));
            }
            let cut = cut_tail(vfs, dir, &mut live, offset, segment_base)?;
            tracing::error!(
                file = %path.display(),
                offset = in_file,
                witness_offset,
                truncated_bytes = cut,
                %error,
                "WAL CORRUPTION SALVAGED: synced records at and after this offset were discarded"
            );
            finish_cut(&mut recovered, &live, offset, cut);
        }
    }
    Ok(recovered)
}

/// Records the effect of a cut at `offset` in `recovered`.
fn finish_cut(recovered: &mut RecoveredWal, live: &[LiveSegment], offset: u64, cut: u64) {
    recovered.end_offset = offset;
    recovered.truncated_bytes = cut;
    recovered.segments = live.iter().map(|s| s.base).collect();
}

/// Opens segment `base` (for reading only under [`Act::ReadOnly`], else writable, as a cut
/// needs) and reads it whole; the read is bounded by the size the file reports.
fn read_segment(vfs: &dyn Vfs, dir: &Path, base: u64, act: Act) -> Result<LiveSegment> {
    let path = segment_path(dir, base);
    let file = match act {
        Act::ReadOnly => vfs.open_read(&path),
        Act::Cut { .. } => vfs.open(&path),
    }
    .map_err(|e| Error::io("open", &path, e))?;
    let size = file.size().map_err(|e| Error::io("size", &path, e))?;
    let len = usize::try_from(size).map_err(|_| {
        Error::io(
            "size",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "segment larger than memory",
            ),
        )
    })?;
    let mut bytes = vec![0u8; len];
    file.read_at(0, &mut bytes)
        .map_err(|e| Error::io("read_at", &path, e))?;
    Ok(LiveSegment { base, file, bytes })
}

/// Cuts the log at logical `offset`, held by the segment based at `holder` (replay's
/// `segment_base`): truncates the holder there and removes every later segment from `live` and
/// from disk. A holder that ends at `offset` (a gap or an overlap follows it) loses nothing; a
/// holder that starts past `offset` (the first live segment starts after the start offset) is
/// removed too. Returns the bytes discarded.
fn cut_tail(
    vfs: &dyn Vfs,
    dir: &Path,
    live: &mut Vec<LiveSegment>,
    offset: u64,
    holder: u64,
) -> Result<u64> {
    let mut cut = 0u64;
    if let Some(seg) = live
        .iter_mut()
        .find(|s| s.base == holder && s.base <= offset)
    {
        let size = seg.bytes.len() as u64;
        let keep = offset - seg.base;
        if keep < size {
            let path = segment_path(dir, seg.base);
            seg.file
                .set_len(keep)
                .map_err(|e| Error::io("set_len", &path, e))?;
            seg.file
                .sync_data()
                .map_err(|e| Error::io("sync_data", &path, e))?;
            cut += size - keep;
            seg.bytes
                .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }
    let later = live
        .iter()
        .position(|s| s.base > holder || (s.base == holder && s.base > offset));
    if let Some(first_later) = later {
        for seg in live.drain(first_later..) {
            let path = segment_path(dir, seg.base);
            drop(seg.file);
            vfs.remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
            cut += seg.bytes.len() as u64;
        }
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(cut)
}
