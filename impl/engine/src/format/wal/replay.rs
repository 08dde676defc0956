//! Pure WAL replay classification (`spec/FORMAT.md` § Replay): decode, then classify; the engine
//! acts on the [`ReplayOutcome`] (truncate, or report corruption). No I/O.
//!
//! Rule: walk records from `start_offset`. At the first bad record, at logical offset X, search
//! forward byte by byte through the rest of all segments for valid records. If one of them has
//! `synced_through > X`, the writer had seen X durable before writing it: X is corruption.
//! Otherwise X is a torn tail: truncate at X.
//!
//! Invariants:
//! - A record is valid only if its frame and payload decode and its `synced_through` does not
//!   exceed its own logical offset (a writer cannot have synced bytes it has not written).
//! - A gap or overlap between segments (`base[i+1] != base[i] + len[i]`) is a bad record at
//!   `base[i] + len[i]`, classified by the same rule.

use super::{WalRecord, decode_record};
use crate::format::{FormatError, FormatErrorKind};

/// One WAL segment file: its base logical offset (from its name) and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Logical offset of the segment's first byte.
    pub base_offset: u64,
    /// The segment's bytes as read from disk.
    pub bytes: &'a [u8],
}

impl Segment<'_> {
    fn end(&self) -> u64 {
        self.base_offset.saturating_add(self.bytes.len() as u64)
    }
}

/// How replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Every byte from the start offset is a valid record; the WAL ends at `offset`.
    Clean {
        /// Logical end offset of the WAL.
        offset: u64,
    },
    /// The bytes from `offset` on were never synced: truncate the segment holding `offset` there
    /// and delete every later segment.
    TornTail {
        /// Logical offset of the first bad record.
        offset: u64,
        /// Base offset of the segment holding it: the one the bad record starts in (at a segment
        /// boundary, the later segment, at its byte 0); for a gap or overlap between segments, the
        /// segment before it, which ends at `offset`.
        segment_base: u64,
        /// Why the record there is bad.
        error: FormatError,
    },
    /// The record at `offset` was synced (a later valid record says so) and is now bad.
    Corrupt {
        /// Logical offset of the bad record.
        offset: u64,
        /// Base offset of the segment holding it (its file name), as for
        /// [`ReplayEnd::TornTail`].
        segment_base: u64,
        /// What is wrong; its offset is relative to the record's start.
        error: FormatError,
        /// Logical offset of the later valid record whose `synced_through` exceeds `offset`.
        witness_offset: u64,
    },
}

/// Valid records in log order with their logical offsets, and how the log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// `(logical offset of the record's header, record)`, in log order.
    pub records: Vec<(u64, WalRecord)>,
    /// How the walk ended.
    pub end: ReplayEnd,
}

/// A valid record at logical offset `offset` starts `bytes`, or `None`.
fn valid_at(bytes: &[u8], offset: u64) -> Option<(WalRecord, usize)> {
    let (record, len) = decode_record(bytes).ok()?;
    (record.synced_through <= offset).then_some((record, len))
}

fn check_synced(record: &WalRecord, offset: u64) -> Result<(), FormatError> {
    if record.synced_through > offset {
        return Err(FormatError::new(
            "wal payload",
            "synced_through",
            0,
            FormatErrorKind::InvalidValue {
                reason: "synced_through beyond the record's own offset",
            },
        ));
    }
    Ok(())
}

/// Classifies the WAL given as `segments` (sorted by base offset), replaying from the logical
/// offset `start_offset` (a record boundary: the manifest's `walOffset`). Segments that end at
/// or before `start_offset` are skipped.
pub fn replay(segments: &[Segment<'_>], start_offset: u64) -> ReplayOutcome {
    let mut records = Vec::new();
    let live: Vec<&Segment<'_>> = segments.iter().filter(|s| s.end() > start_offset).collect();
    let mut expected_base = start_offset;
    for (i, seg) in live.iter().enumerate() {
        // Where the walk starts inside this segment.
        let skip = if seg.base_offset <= expected_base && i == 0 {
            expected_base - seg.base_offset
        } else if seg.base_offset == expected_base {
            0
        } else {
            let error = FormatError::new(
                "wal segment",
                "base_offset",
                0,
                FormatErrorKind::InvalidValue {
                    reason: "segment base does not follow the previous segment",
                },
            );
            let segment_base = live
                .get(i.wrapping_sub(1))
                .map_or(seg.base_offset, |p| p.base_offset);
            return classify(records, &live, expected_base, i, 0, segment_base, error);
        };
        let mut pos = usize::try_from(skip).unwrap_or(usize::MAX);
        while let Some(rest) = seg.bytes.get(pos..).filter(|r| !r.is_empty()) {
            let offset = seg.base_offset + pos as u64;
            let step =
                decode_record(rest).and_then(|(r, n)| check_synced(&r, offset).map(|()| (r, n)));
            match step {
                Ok((record, n)) => {
                    records.push((offset, record));
                    pos += n;
                }
                Err(error) => {
                    return classify(records, &live, offset, i, pos + 1, seg.base_offset, error);
                }
            }
        }
        expected_base = seg.end();
    }
    ReplayOutcome {
        records,
        end: ReplayEnd::Clean {
            offset: expected_base,
        },
    }
}

/// The first bad record is at logical `bad`; search from byte `from` of `live[seg]` onwards.
fn classify(
    records: Vec<(u64, WalRecord)>,
    live: &[&Segment<'_>],
    bad: u64,
    seg: usize,
    from: usize,
    segment_base: u64,
    error: FormatError,
) -> ReplayOutcome {
    for (i, s) in live.iter().enumerate().skip(seg) {
        let first = if i == seg { from } else { 0 };
        for pos in first..s.bytes.len() {
            let offset = s.base_offset + pos as u64;
            let Some(rest) = s.bytes.get(pos..) else {
                break;
            };
            if let Some((record, _)) = valid_at(rest, offset)
                && record.synced_through > bad
            {
                let end = ReplayEnd::Corrupt {
                    offset: bad,
                    segment_base,
                    error,
                    witness_offset: offset,
                };
                return ReplayOutcome { records, end };
            }
        }
    }
    ReplayOutcome {
        records,
        end: ReplayEnd::TornTail {
            offset: bad,
            segment_base,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{WalBody, encode_record};
    use super::*;

    fn put(rev: u64, synced: u64) -> WalRecord {
        WalRecord {
            revision: rev,
            created_at_ms: 1,
            synced_through: synced,
            stamp: 0,
            body: WalBody::Put {
                key: b"k".to_vec(),
                value: vec![b'v'; 10],
                lease: 0,
            },
        }
    }

    #[test]
    fn torn_vs_corrupt() {
        let a = encode_record(&put(1, 0)).unwrap();
        let len = a.len() as u64;
        let b = encode_record(&put(2, len)).unwrap();
        let b_end = len + b.len() as u64;
        let c = encode_record(&put(3, b_end)).unwrap();
        let end = b_end + c.len() as u64;
        let mut log = [a.clone(), b.clone(), c.clone()].concat();
        let clean = replay(
            &[Segment {
                base_offset: 0,
                bytes: &log,
            }],
            0,
        );
        assert_eq!(clean.records.len(), 3);
        assert_eq!(clean.end, ReplayEnd::Clean { offset: end });
        // Flip a payload bit of record 2: record 3 says 2*len was synced, so record 2 is corrupt.
        log[len as usize + 20] ^= 1;
        let out = replay(
            &[Segment {
                base_offset: 0,
                bytes: &log,
            }],
            0,
        );
        assert_eq!(out.records.len(), 1);
        assert!(
            matches!(out.end, ReplayEnd::Corrupt { offset, witness_offset, .. } if offset == len && witness_offset == b_end)
        );
        // Flip a bit in the last record: nothing after it, a torn tail.
        let mut log = [a, b, c].concat();
        let last = log.len() - 13;
        log[last] ^= 1;
        let out = replay(
            &[Segment {
                base_offset: 0,
                bytes: &log,
            }],
            0,
        );
        assert_eq!(out.records.len(), 2);
        assert!(matches!(out.end, ReplayEnd::TornTail { offset, .. } if offset == b_end));
    }

    #[test]
    fn segments_and_start() {
        let a = encode_record(&put(1, 0)).unwrap();
        let len = a.len() as u64;
        let b = encode_record(&put(2, len)).unwrap();
        let segs = [
            Segment {
                base_offset: 100,
                bytes: &a,
            },
            Segment {
                base_offset: 100 + len,
                bytes: &b,
            },
        ];
        let out = replay(&segs, 100);
        assert_eq!(
            out.records.iter().map(|r| r.0).collect::<Vec<_>>(),
            [100, 100 + len]
        );
        let out = replay(&segs, 100 + len);
        assert_eq!(out.records.len(), 1);
        assert_eq!(
            out.end,
            ReplayEnd::Clean {
                offset: 100 + 2 * len
            }
        );
        let gap = [
            Segment {
                base_offset: 100,
                bytes: &a,
            },
            Segment {
                base_offset: 101 + len,
                bytes: &b,
            },
        ];
        assert!(
            matches!(replay(&gap, 100).end, ReplayEnd::TornTail { offset, .. } if offset == 100 + len)
        );
        assert_eq!(replay(&[], 7).end, ReplayEnd::Clean { offset: 7 });
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), base in 0u64..4, start in 0u64..8) {
            let _ = replay(&[Segment { base_offset: base, bytes: &bytes }], start);
        }
    }
}
