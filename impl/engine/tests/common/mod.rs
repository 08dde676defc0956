//! What several engine test binaries share: the small-database options under which a few
//! hundred writes exercise flushes, compactions, stalls and WAL rotation, deterministically.

use kvstore::clock::{LogicalClock, SharedClock};
use kvstore::{BackgroundMode, Durability, Options};

/// Small memtables, blocks, tables and WAL segments, inline background work, `Sync` durability
/// and a logical clock: the same seed gives the same I/O.
pub fn small_options() -> Options {
    Options {
        memtable_size_bytes: 64 * 1024,
        sst_block_size_bytes: 1024,
        sst_target_file_size_bytes: 16 * 1024,
        l0_compaction_trigger_files: 2,
        l0_stall_files: 4,
        l0_stop_files: 6,
        l1_target_size_bytes: 64 * 1024,
        wal_segment_size_bytes: 64 * 1024,
        background: BackgroundMode::Inline,
        durability: Durability::Sync,
        clock: SharedClock::new(LogicalClock::new(1_700_000_000_000)),
        ..Options::default()
    }
}
