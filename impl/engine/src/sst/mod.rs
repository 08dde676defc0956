//! The I/O side of SST files (`spec/FORMAT.md` § 4): writing a table to a file as its blocks
//! fill, opening and verifying one, point reads and range scans through a shared block cache.
//! The bytes themselves are encoded and decoded by the pure codecs of [`crate::format::sst`].
//!
//! One concept a file:
//! - [`writer`]: [`TableWriter`], streaming entries to a new file; [`table_options`].
//! - [`reader`]: [`Table`], an open verified table: open, `get`, block loading.
//! - [`iter`](mod@iter): [`TableIter`], a lazy range scan, forward or reverse.
//! - [`cache`]: [`BlockCache`], decoded blocks keyed by (file number, block offset).
//!
//! Invariants:
//! - Nothing from a table's bytes reaches a caller unverified: the footer, index and bloom are
//!   checked (CRC32C, bounds, layout) at open; every block is checked (CRC32C, entry order, first
//!   key against the index, last key against the next block) right after it is read and before
//!   it is cached. A check that fails is an [`crate::Error::Corruption`] naming the file and a
//!   file offset inside the bad region, never a wrong answer and never a panic.
//! - Every length is bounded by the file size before anything is read or allocated.
//! - A writer never holds the whole table: finished blocks go to the file at once; `finish`
//!   returns only after `sync_data` succeeded.
//! - A [`Table`] is immutable after open and `Send + Sync`; concurrent readers share it through
//!   `Arc<Table>` and read with `read_at` (positional, no shared cursor).

pub mod cache;
pub mod iter;
pub mod reader;
pub mod writer;

pub use cache::{BlockCache, CachedBlock};
pub use iter::TableIter;
pub use reader::Table;
pub use writer::{TableWriter, UnsyncedTable, table_options};

#[cfg(test)]
mod tests;
