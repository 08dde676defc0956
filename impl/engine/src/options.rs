//! [`Options`]: every tunable of the engine, with its default, the reason for that default, and
//! the range [`Options::validate`] accepts; and [`Durability`], what a returned write promises.
//!
//! Invariants:
//! - An engine is only ever opened with options that passed [`Options::validate`]; the checks
//!   below are the preconditions every other module may assume (non-zero sizes, at least two
//!   levels, `l0_compaction_trigger_files <= l0_stall_files <= l0_stop_files`).
//! - Every bound is a named constant with its unit last.

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::lease::LeaseExpiry;
use crate::progress::SharedProgress;

/// Smallest memtable accepted: below this, flushes are so frequent that L0 fills at once.
pub const MEMTABLE_SIZE_BYTES_MIN: u64 = 64 * 1024;
/// Largest memtable accepted: the memtable is replayed from the WAL on open, so it bounds recovery.
pub const MEMTABLE_SIZE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Smallest SST data block accepted.
pub const BLOCK_SIZE_BYTES_MIN: u64 = 1024;
/// Largest SST data block accepted: a point read decodes a whole block.
pub const BLOCK_SIZE_BYTES_MAX: u64 = 1024 * 1024;
/// Most bloom bits per key accepted: past ~20 the false-positive rate stops paying for the bytes.
pub const BLOOM_BITS_PER_KEY_MAX: u32 = 32;
/// Most L0 files any L0 threshold may name: every L0 file is consulted on a point read.
pub const L0_FILES_MAX: usize = 1000;
/// Most levels accepted (L0 included).
pub const LEVELS_MAX: usize = 16;
/// Fewest levels accepted: L0 and one sorted level.
pub const LEVELS_MIN: usize = 2;
/// Smallest level size multiplier (fan-out) accepted.
pub const LEVEL_SIZE_MULTIPLIER_MIN: u64 = 2;
/// Largest level size multiplier (fan-out) accepted.
pub const LEVEL_SIZE_MULTIPLIER_MAX: u64 = 100;
/// Most levels the manifest can name (`spec/FORMAT.md` § 5: levels `0..=LEVEL_MAX`).
pub const LEVELS_PERSISTED_MAX: usize = crate::format::manifest::LEVEL_MAX as usize + 1;
/// Smallest WAL segment accepted.
pub const WAL_SEGMENT_SIZE_BYTES_MIN: u64 = 64 * 1024;
/// Fewest open tables accepted: a point read may consult up to `l0_stop_files` L0 tables and one
/// per deeper level, so a smaller cache would reopen (and re-verify) tables on nearly every read.
pub const OPEN_TABLES_MIN: usize = 16;
/// Most open tables accepted: far beyond any process's usual file-descriptor limit.
pub const OPEN_TABLES_MAX: usize = 1 << 20;

const _: () = assert!(MEMTABLE_SIZE_BYTES_MIN <= MEMTABLE_SIZE_BYTES_MAX);
const _: () = assert!(BLOCK_SIZE_BYTES_MIN <= BLOCK_SIZE_BYTES_MAX);
const _: () = assert!(LEVELS_MIN <= LEVELS_MAX);
const _: () = assert!(LEVEL_SIZE_MULTIPLIER_MIN <= LEVEL_SIZE_MULTIPLIER_MAX);
const _: () = assert!(OPEN_TABLES_MIN <= OPEN_TABLES_MAX);

/// What a write call (put, delete, batch) guarantees about durability when it returns `Ok`.
///
/// In every mode a write is visible to readers as soon as it returns, and after any crash the
/// recovered database holds a prefix of the commit order: a write is never recovered without every
/// write committed before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// The write's WAL record, and every record before it, was synced (`sync_data` returned `Ok`)
    /// before the call returned: it survives a process crash and power loss. A write alone pays
    /// one sync; writers that arrive while a sync is in flight share the next one (the commit
    /// pipeline is the same as [`Durability::GroupCommit`]'s).
    #[default]
    Sync,
    /// Same promise as [`Durability::Sync`]: the record is synced before the call returns. Writers
    /// that arrive while a sync is in flight are queued and share the next single sync, so
    /// concurrent writers pay one fsync per group instead of one each, at the cost of waiting up
    /// to one sync longer. Today this is exactly [`Durability::Sync`]: both run the one group
    /// commit pipeline (the name says what a caller asks for).
    GroupCommit,
    /// The record was appended to the WAL but not synced when the call returned: it survives a
    /// process crash on a real OS, but power loss (or a simulated crash) may drop it and any write
    /// after it. It is durable once a later durable point covers it: [`crate::Db::sync`], a write
    /// in a syncing mode, [`crate::Db::flush`], [`crate::Db::compact_range`] or a clean
    /// [`crate::Db::close`]. A WAL rotation is not one: it syncs neither the old segment nor the
    /// directory (`spec/FORMAT.md` § 3.1). A background flush of a full memtable makes that
    /// memtable's writes durable in an SST when it completes, but no call reports when.
    Buffered,
}

/// Whether flush and compaction run on background threads or inline in the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackgroundMode {
    /// A background thread flushes immutable memtables and compacts; writers only wait on stalls.
    #[default]
    Threads,
    /// Flush and compaction run inline, on the calling thread, at deterministic points, so the same
    /// seed yields the same I/O trace (what the simulator and model checker need).
    Inline,
}

/// How much history the engine keeps by itself, beyond what [`crate::Db::compact_history`]
/// asks for (etcd's auto-compaction). The horizon it sets moves at each memtable flush, in the
/// manifest edit that installs the flushed table (so it is durable at once and costs no I/O of
/// its own), and only up: more history than asked is kept in between, never less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryRetention {
    /// The horizon moves only by `compact_history` (etcd's default): every version is kept
    /// until the application compacts, and disk use grows with every overwrite until then.
    Manual,
    /// Keep the newest `n` revisions: at a flush whose table ends at revision `r`, the horizon
    /// rises to `r - n` (etcd's `--auto-compaction-mode=revision`).
    Revisions(u64),
    /// Keep at least this many milliseconds of history by commit time: at a flush, the horizon
    /// rises to the newest revision that was already committed that long ago, as far as this
    /// process saw (after a reopen, history from before it is kept at least that long again;
    /// etcd's `--auto-compaction-mode=periodic`).
    Millis(u64),
}

/// Tunables of one database. Build with [`Options::default`] and override fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Memtable size that triggers its freeze and flush. Default 16 MiB: each flush costs about
    /// four fsyncs (SST, directory, manifest, directory again; the WAL rotation syncs nothing),
    /// so at LevelDB's 4 MiB the seed's 1M workload spent its time waiting for flushes (writes
    /// 1.9x faster at 16 MiB in one `seedbench` run, peak RSS 50 -> 76 MB); a WAL of 16 MiB
    /// still replays in well under a second.
    pub memtable_size_bytes: u64,
    /// Target uncompressed size of an SST data block. Default 4 KiB: one page, LevelDB's choice.
    pub sst_block_size_bytes: u64,
    /// Size at which compaction cuts an output SST and starts the next. Default 2 MiB (LevelDB's
    /// `max_file_size`): compactions of one file then rewrite ~fan-out files, not a whole level.
    pub sst_target_file_size_bytes: u64,
    /// Whether SST blocks are LZ4-compressed. Default on: LZ4 costs little CPU and keys compress.
    pub compression: bool,
    /// Bloom filter bits per key; 0 disables filters. Default 10: about 1% false positives.
    pub bloom_bits_per_key: u32,
    /// Number of L0 files that triggers an L0 -> L1 compaction. Default 4 (LevelDB).
    pub l0_compaction_trigger_files: usize,
    /// Number of L0 files at which writes are slowed down (a short delay each) so compaction
    /// catches up. Default 8 (LevelDB's slowdown trigger).
    pub l0_stall_files: usize,
    /// Number of L0 files at which writes wait until compaction lowers the count. Default 12
    /// (LevelDB's stop trigger): bounds the files a point read must consult.
    pub l0_stop_files: usize,
    /// Target total size of L1. Default 10 MiB (LevelDB): about as much as L0 at its trigger.
    pub l1_target_size_bytes: u64,
    /// Each level deeper than L1 targets this many times its parent's size. Default 10 (LevelDB):
    /// the classic write-amplification / space-amplification balance.
    pub level_size_multiplier: u64,
    /// Number of levels, L0 included. Default 7 (LevelDB): 10 MiB * 10^5 = 1 TB at the bottom.
    pub max_levels: usize,
    /// Bytes of decoded SST blocks kept in memory. Default 8 MiB (LevelDB); 0 disables the cache.
    pub block_cache_size_bytes: u64,
    /// Most table readers (one open file handle each) kept open between reads, like RocksDB's
    /// `max_open_files`; a table opens on first use and is closed when evicted, and reopened
    /// (and checked again) on its next use. Reads in flight may hold a few more: a table they
    /// are reading stays open until they finish with it (`spec/SEMANTICS.md`, "Open tables").
    /// Default 500: about half the usual `ulimit -n` of 1024, leaving the rest to the WAL, the
    /// manifest and the application embedding the store; a database that outgrows it pays one
    /// table open (footer, index and bloom read and checked) per evicted table it reads again.
    pub max_open_tables: usize,
    /// WAL segment size that triggers rotation to a new segment. Default 64 MiB: at most one or two
    /// segments per memtable, so old segments are deleted soon after a flush.
    pub wal_segment_size_bytes: u64,
    /// Whether flush and compaction run on background threads. Default [`BackgroundMode::Threads`].
    pub background: BackgroundMode,
    /// What a returned write promises. Default [`Durability::Sync`]: safe unless told otherwise.
    pub durability: Durability,
    /// Whether recovery salvages the records of a WAL whose damage is proven corruption (rather
    /// than refusing to open). Default off: corruption of acknowledged data is reported, not hidden.
    pub salvage_wal: bool,
    /// How much history is kept without `compact_history`. Default
    /// [`HistoryRetention::Revisions`]`(10_000)`: an embedded store used as a plain key/value
    /// store (the seed's use, one version per key) must not grow on disk with every overwrite,
    /// while ten thousand revisions leave a watcher or an optimistic transaction a window of
    /// seconds to minutes at the seed's write rates to resume or commit, for at most that many
    /// old versions on disk. Servers speaking etcd's API choose [`HistoryRetention::Manual`],
    /// etcd's default.
    pub history_retention: HistoryRetention,
    /// How leases whose deadline passed are revoked. Default [`LeaseExpiry::Every`]`(100 ms)`.
    pub lease_expiry: LeaseExpiry,
    /// Where commit timestamps and lease deadlines come from. Default the system clock; tests
    /// install a fixed, logical or manual one so the same operations write the same bytes and
    /// leases expire when the test says.
    pub clock: SharedClock,
    /// Whether the database keeps a 3-gram index of its keys (in `<db>/index/`, maintained at
    /// every commit, caught up or rebuilt at open) for [`crate::Db::search_contains`] and
    /// [`crate::Db::search_fuzzy`]. Default off: a database without it pays nothing; with it,
    /// every commit's keys are posted under their grams in a second database.
    pub key_index: bool,
    /// Whether the database is opened read-only: nothing in its directory is written, created
    /// or removed (no WAL tail truncated, no leftover deleted, no flush or compaction, not even
    /// at close); the lock is shared, so any number of read-only openers coexist while a
    /// writer is kept out; a torn WAL tail is replayed up to the tear, as a writer would keep
    /// it, without cutting it. Every write returns [`crate::Error::ReadOnly`]; leases do not
    /// expire. Needs an existing database, and refuses `key_index` and `salvage_wal` (both
    /// write). Default off.
    pub read_only: bool,
    /// Where an open reports long work: rebuilding the key index (keys posted; no total known
    /// in advance). Default [`crate::progress::NoProgress`]. Reporting changes nothing the
    /// database does.
    pub progress: SharedProgress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memtable_size_bytes: 16 * 1024 * 1024,
            sst_block_size_bytes: 4 * 1024,
            sst_target_file_size_bytes: 2 * 1024 * 1024,
            compression: true,
            bloom_bits_per_key: 10,
            l0_compaction_trigger_files: 4,
            l0_stall_files: 8,
            l0_stop_files: 12,
            l1_target_size_bytes: 10 * 1024 * 1024,
            level_size_multiplier: 10,
            max_levels: 7,
            block_cache_size_bytes: 8 * 1024 * 1024,
            max_open_tables: 500,
            wal_segment_size_bytes: 64 * 1024 * 1024,
            background: BackgroundMode::Threads,
            durability: Durability::Sync,
            salvage_wal: false,
            history_retention: HistoryRetention::Revisions(10_000),
            lease_expiry: LeaseExpiry::default(),
            clock: SharedClock::default(),
            key_index: false,
            read_only: false,
            progress: SharedProgress::default(),
        }
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<()> {
    if value < min || value > max {
        return Err(Error::InvalidArgument(format!(
            "option {name} = {value} is outside {min}..={max}"
        )));
    }
    Ok(())
}

impl Options {
    /// Checks every field against its bounds and the fields against each other; returns
    /// [`Error::InvalidArgument`] naming the first offending option.
    pub fn validate(&self) -> Result<()> {
        check_range(
            "memtable_size_bytes",
            self.memtable_size_bytes,
            MEMTABLE_SIZE_BYTES_MIN,
            MEMTABLE_SIZE_BYTES_MAX,
        )?;
        check_range(
            "sst_block_size_bytes",
            self.sst_block_size_bytes,
            BLOCK_SIZE_BYTES_MIN,
            BLOCK_SIZE_BYTES_MAX,
        )?;
        check_range(
            "sst_target_file_size_bytes",
            self.sst_target_file_size_bytes,
            self.sst_block_size_bytes,
            u64::MAX,
        )?;
        check_range(
            "bloom_bits_per_key",
            self.bloom_bits_per_key,
            0,
            BLOOM_BITS_PER_KEY_MAX,
        )?;
        check_range(
            "l0_compaction_trigger_files",
            self.l0_compaction_trigger_files,
            1,
            L0_FILES_MAX,
        )?;
        check_range(
            "l0_stall_files",
            self.l0_stall_files,
            self.l0_compaction_trigger_files,
            L0_FILES_MAX,
        )?;
        check_range(
            "l0_stop_files",
            self.l0_stop_files,
            self.l0_stall_files,
            L0_FILES_MAX,
        )?;
        check_range(
            "l1_target_size_bytes",
            self.l1_target_size_bytes,
            1,
            u64::MAX,
        )?;
        check_range(
            "level_size_multiplier",
            self.level_size_multiplier,
            LEVEL_SIZE_MULTIPLIER_MIN,
            LEVEL_SIZE_MULTIPLIER_MAX,
        )?;
        check_range("max_levels", self.max_levels, LEVELS_MIN, LEVELS_MAX)?;
        check_range(
            "max_levels",
            self.max_levels,
            LEVELS_MIN,
            LEVELS_PERSISTED_MAX,
        )?;
        check_range(
            "max_open_tables",
            self.max_open_tables,
            OPEN_TABLES_MIN,
            OPEN_TABLES_MAX,
        )?;
        check_range(
            "wal_segment_size_bytes",
            self.wal_segment_size_bytes,
            WAL_SEGMENT_SIZE_BYTES_MIN,
            u64::MAX,
        )?;
        if self.read_only && (self.key_index || self.salvage_wal) {
            return Err(Error::InvalidArgument(
                "read_only cannot keep a key_index or salvage_wal: both write".to_owned(),
            ));
        }
        if let LeaseExpiry::Every(interval) = self.lease_expiry {
            check_range(
                "lease_expiry interval (ms)",
                interval.as_millis(),
                1,
                u128::from(u32::MAX),
            )?;
        }
        Ok(())
    }

    /// Target total size of `level` (>= 1): `l1_target_size_bytes * multiplier^(level - 1)`,
    /// saturating. L0 has no size target (it is compacted by file count); it returns 0.
    pub fn level_target_size_bytes(&self, level: usize) -> u64 {
        if level == 0 {
            return 0;
        }
        let mut target = self.l1_target_size_bytes;
        for _ in 1..level {
            target = target.saturating_mul(self.level_size_multiplier);
        }
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
        assert_eq!(Options::default().durability, Durability::Sync);
    }

    type Mutation = fn(&mut Options);

    #[test]
    fn each_out_of_range_field_is_rejected_by_name() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("memtable_size_bytes", |o| o.memtable_size_bytes = 1),
            ("lease_expiry", |o| {
                o.lease_expiry = LeaseExpiry::Every(std::time::Duration::ZERO)
            }),
            ("sst_block_size_bytes", |o| {
                o.sst_block_size_bytes = 2 * BLOCK_SIZE_BYTES_MAX
            }),
            ("sst_target_file_size_bytes", |o| {
                o.sst_target_file_size_bytes = 10
            }),
            ("bloom_bits_per_key", |o| o.bloom_bits_per_key = 33),
            ("l0_compaction_trigger_files", |o| {
                o.l0_compaction_trigger_files = 0
            }),
            ("l0_stall_files", |o| o.l0_stall_files = 2),
            ("l0_stop_files", |o| o.l0_stop_files = 7),
            ("l1_target_size_bytes", |o| o.l1_target_size_bytes = 0),
            ("level_size_multiplier", |o| o.level_size_multiplier = 1),
            ("max_levels", |o| o.max_levels = 1),
            ("max_levels", |o| o.max_levels = LEVELS_MAX + 1),
            ("max_levels", |o| o.max_levels = LEVELS_PERSISTED_MAX + 1),
            ("wal_segment_size_bytes", |o| o.wal_segment_size_bytes = 100),
            ("max_open_tables", |o| {
                o.max_open_tables = OPEN_TABLES_MIN - 1
            }),
            ("max_open_tables", |o| {
                o.max_open_tables = OPEN_TABLES_MAX + 1
            }),
        ];
        for (name, mutate) in cases {
            let mut o = Options::default();
            mutate(&mut o);
            match o.validate() {
                Err(Error::InvalidArgument(msg)) => assert!(msg.contains(name), "{msg}"),
                other => panic!("{name}: expected InvalidArgument, got {other:?}"),
            }
        }
    }

    #[test]
    fn boundary_values_are_accepted() {
        let o = Options {
            memtable_size_bytes: MEMTABLE_SIZE_BYTES_MIN,
            bloom_bits_per_key: 0,
            l0_compaction_trigger_files: 1,
            l0_stall_files: 1,
            l0_stop_files: 1,
            max_levels: LEVELS_MIN,
            max_open_tables: OPEN_TABLES_MIN,
            ..Options::default()
        };
        o.validate().unwrap();
    }

    #[test]
    fn level_targets_grow_by_the_multiplier_and_saturate() {
        let o = Options::default();
        assert_eq!(o.level_target_size_bytes(0), 0);
        assert_eq!(o.level_target_size_bytes(1), 10 * 1024 * 1024);
        assert_eq!(o.level_target_size_bytes(3), 1000 * 1024 * 1024);
        let big = Options {
            level_size_multiplier: 100,
            ..o
        };
        assert_eq!(big.level_target_size_bytes(15), u64::MAX);
    }
}
