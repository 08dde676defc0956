//! The pure compaction merge: a merged, sorted stream of entries in, the entries of the output
//! files out, each marked with where a new output file starts.
//!
//! Invariants:
//! - Input: one entry per key, keys strictly increasing (a `MergeIter` with
//!   [`crate::iter::ScanSpec::compaction`] yields exactly that); an `Err` item is passed on and ends
//!   the stream.
//! - Output keeps every input entry in order, except tombstones when `bottommost` is set: then
//!   nothing older can lie below, so the tombstone shadows nothing and is dropped.
//! - A new file starts at the first entry, and before any entry that would take the current file
//!   past `target_file_size_bytes` (by [`Entry::size_bytes`]); a file holds at least one entry, so
//!   a single entry larger than the target gets a file of its own. Keys never span two files.

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

/// The lazy compaction merge; see the module doc.
#[derive(Debug)]
pub struct CompactionStream<I> {
    input: I,
    bottommost: bool,
    target_file_size_bytes: u64,
    current_file_bytes: u64,
    /// The previous input key, kept only in debug builds for the order assertion.
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl<I: Iterator<Item = Result<Entry>>> CompactionStream<I> {
    /// Compacts `input` into files of about `target_file_size_bytes`, dropping tombstones iff
    /// `bottommost`.
    pub fn new(input: I, bottommost: bool, target_file_size_bytes: u64) -> Self {
        CompactionStream {
            input,
            bottommost,
            target_file_size_bytes,
            current_file_bytes: 0,
            last_key: None,
            finished: false,
        }
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
                self.last_key.as_ref().is_none_or(|k| *k < entry.key),
                "compaction input not strictly increasing"
            );
            // Only the assertion above reads it: release builds skip the copy.
            if cfg!(debug_assertions) {
                match &mut self.last_key {
                    Some(last) => last.clone_from(&entry.key),
                    None => self.last_key = Some(entry.key.clone()),
                }
            }
            if self.bottommost && entry.is_tombstone() {
                continue;
            }
            let size = entry.size_bytes();
            let starts_new_file = self.current_file_bytes == 0
                || self.current_file_bytes.saturating_add(size) > self.target_file_size_bytes;
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
    bottommost: bool,
    target_file_size_bytes: u64,
) -> Result<Vec<Vec<Entry>>> {
    let mut files: Vec<Vec<Entry>> = Vec::new();
    for step in CompactionStream::new(input, bottommost, target_file_size_bytes) {
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
