//! The pure compaction merge: a merged stream of every version in, the versions the output
//! files keep out, each marked with where a new output file starts.
//!
//! Invariants:
//! - Input: every version of every key, internal keys strictly increasing (key ascending,
//!   revision descending), as [`crate::iter::HistoryMerge`] yields them; an `Err` item is passed on
//!   and ends the stream.
//! - Retention, per key, with `floor` the oldest revision a reader may still ask for (the
//!   history horizon, or an older live snapshot): every version with revision `> floor` is kept;
//!   of the versions at or below `floor`, only the newest is kept (it is what a read at `floor`
//!   sees), and not even that one when it is a tombstone and the output is `bottommost` (nothing
//!   older lies below for it to shadow, so a reader sees the key absent either way). Older
//!   versions are dropped: no read at or above `floor` can reach them.
//! - A new file starts at the first entry, and before the first version of a key that would
//!   take the current file past `target_file_size_bytes` (by [`Entry::size_bytes`]); a file holds
//!   at least one key, so a key larger than the target gets a file of its own. A key's versions
//!   never span two files.

use crate::entry::Entry;
use crate::error::Result;

/// One output entry and whether it opens a new output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionStep {
    /// The entry to write.
    pub entry: Entry,
    /// Close the current output file (if any) and start a new one before writing `entry`.
    pub starts_new_file: bool,
}

/// What a compaction keeps; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The oldest revision a reader may still ask for.
    pub floor: u64,
    /// Nothing older than the output lies below it (tombstones below `floor` may go).
    pub bottommost: bool,
}

/// The lazy compaction merge; see the module doc.
#[derive(Debug)]
pub struct CompactionStream<I> {
    input: I,
    retention: Retention,
    target_file_size_bytes: u64,
    current_file_bytes: u64,
    /// The key whose versions are being read, and whether one of its versions at or below the
    /// floor was already seen (the newest of those is the only one that may be kept).
    current_key: Option<Vec<u8>>,
    below_floor_seen: bool,
    /// The previous input version, kept only in debug builds for the order assertion.
    last: Option<(Vec<u8>, u64)>,
    finished: bool,
}

impl<I: Iterator<Item = Result<Entry>>> CompactionStream<I> {
    /// Compacts `input` into files of about `target_file_size_bytes`, keeping what `retention`
    /// says.
    pub fn new(input: I, retention: Retention, target_file_size_bytes: u64) -> Self {
        CompactionStream {
            input,
            retention,
            target_file_size_bytes,
            current_file_bytes: 0,
            current_key: None,
            below_floor_seen: false,
            last: None,
            finished: false,
        }
    }

    /// Whether `entry`, the next version in internal-key order, is kept; tracks the key.
    /// Returns `(kept, starts_key)`.
    fn judge(&mut self, entry: &Entry) -> (bool, bool) {
        let starts_key = self.current_key.as_deref() != Some(entry.key.as_slice());
        if starts_key {
            match &mut self.current_key {
                Some(k) => k.clone_from(&entry.key),
                None => self.current_key = Some(entry.key.clone()),
            }
            self.below_floor_seen = false;
        }
        // Sabotage for negative controls (feature `failpoints`): keep only the newest version of
        // each key, whatever the floor.
        fail::fail_point!("compaction::drop_old_versions", |_| (
            starts_key, starts_key
        ));
        if entry.revision > self.retention.floor {
            return (true, starts_key);
        }
        if self.below_floor_seen {
            return (false, starts_key);
        }
        self.below_floor_seen = true;
        // Sabotage for negative controls (feature `failpoints`): drop the newest version at or
        // below the floor when it is a tombstone, even if the output is not bottommost.
        fail::fail_point!(
            "compaction::tombstone_dropped_early",
            entry.is_tombstone(),
            |_| (false, starts_key)
        );
        (
            !(self.retention.bottommost && entry.is_tombstone()),
            starts_key,
        )
    }
}

impl<I: Iterator<Item = Result<Entry>>> Iterator for CompactionStream<I> {
    type Item = Result<CompactionStep>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let entry = match self.input.next() {
                None => break,
                Some(Err(e)) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                Some(Ok(entry)) => entry,
            };
            debug_assert!(
                self.last
                    .as_ref()
                    .is_none_or(|(k, r)| crate::format::sst::internal_less(
                        (k, *r),
                        (&entry.key, entry.revision)
                    )),
                "compaction input not strictly increasing"
            );
            // Only the assertion above reads it: release builds skip the copy.
            if cfg!(debug_assertions) {
                self.last = Some((entry.key.clone(), entry.revision));
            }
            let (kept, starts_key) = self.judge(&entry);
            if !kept {
                continue;
            }
            let size = entry.size_bytes();
            let starts_new_file = self.current_file_bytes == 0
                || (starts_key
                    && self.current_file_bytes.saturating_add(size) > self.target_file_size_bytes);
            self.current_file_bytes = if starts_new_file {
                size
            } else {
                self.current_file_bytes.saturating_add(size)
            };
            return Some(Ok(CompactionStep {
                entry,
                starts_new_file,
            }));
        }
        self.finished = true;
        None
    }
}

/// Runs a [`CompactionStream`] to the end and groups its entries into output files.
pub fn split_into_files(
    input: impl Iterator<Item = Result<Entry>>,
    retention: Retention,
    target_file_size_bytes: u64,
) -> Result<Vec<Vec<Entry>>> {
    let mut files: Vec<Vec<Entry>> = Vec::new();
    for step in CompactionStream::new(input, retention, target_file_size_bytes) {
        let step = step?;
        match files.last_mut() {
            Some(file) if !step.starts_new_file => file.push(step.entry),
            _ => files.push(vec![step.entry]),
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
