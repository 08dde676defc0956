//! Engine metrics: cumulative counters and the WAL sync latency histogram an operator watches,
//! recorded by the engine's components into one `Recorder` and read as a plain [`Metrics`]
//! snapshot ([`crate::Db::metrics`]). The server's `/metrics` and `kvstore stats` print them;
//! `spec/SEMANTICS.md` ("Metrics") says what each one counts.
//!
//! Invariants:
//! - Every figure counts since the database was opened (this process), starts at 0 and only
//!   grows: recording is a relaxed `fetch_add` (a histogram observation three), never a store, so
//!   two snapshots taken one after the other by one thread are ordered field by field.
//! - Recording takes no lock, allocates nothing and never fails; it is off every path that
//!   decides what a commit or a read returns (metrics observe, never steer).
//! - A snapshot reads each figure once, without a lock: each field is exact at some instant
//!   during the call, but two fields need not be of the same instant (a commit counted, its
//!   sync not yet).
//! - The histogram's buckets are fixed powers of two of microseconds ([`LATENCY_BUCKETS`]);
//!   `count` is the sum of the buckets' counts once no observation is in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of a [`LatencyHistogram`]: bucket `i < LATENCY_BUCKETS - 1` counts latencies below
/// `2^i` microseconds (and at or above `2^(i-1)`, for `i > 0`); the last counts every longer one.
/// 2^26 µs is 67 s: a sync slower than that is an outage, not a latency.
pub const LATENCY_BUCKETS: usize = 28;

/// What a [`Recorder`] counts; each names one field of [`Metrics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Commits,
    CommitGroups,
    WalWrittenBytes,
    WalSyncs,
    Flushes,
    FlushWrittenBytes,
    Compactions,
    CompactionReadBytes,
    CompactionWrittenBytes,
    TrivialMoves,
    WriteStalls,
    WriteStallMicros,
    Gets,
    Scans,
    WatchEventsDelivered,
    LeasesExpired,
}

/// How many [`Counter`]s there are.
const COUNTERS: usize = Counter::LeasesExpired as usize + 1;

/// Every [`Counter`], in order.
#[cfg(test)]
const ALL: [Counter; COUNTERS] = [
    Counter::Commits,
    Counter::CommitGroups,
    Counter::WalWrittenBytes,
    Counter::WalSyncs,
    Counter::Flushes,
    Counter::FlushWrittenBytes,
    Counter::Compactions,
    Counter::CompactionReadBytes,
    Counter::CompactionWrittenBytes,
    Counter::TrivialMoves,
    Counter::WriteStalls,
    Counter::WriteStallMicros,
    Counter::Gets,
    Counter::Scans,
    Counter::WatchEventsDelivered,
    Counter::LeasesExpired,
];

/// A latency histogram as read: fixed log2 buckets of microseconds (see [`LATENCY_BUCKETS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative): `buckets[i]` counts those below `2^i` µs that
    /// no earlier bucket counts; the last bucket has no upper bound.
    pub buckets: [u64; LATENCY_BUCKETS],
    /// Observations so far.
    pub count: u64,
    /// The observations' total, microseconds.
    pub sum_micros: u64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            buckets: [0; LATENCY_BUCKETS],
            count: 0,
            sum_micros: 0,
        }
    }
}

impl LatencyHistogram {
    /// The exclusive upper bound of bucket `i`, microseconds; `None` for the last (unbounded)
    /// bucket and beyond.
    pub fn upper_bound_micros(i: usize) -> Option<u64> {
        (i < LATENCY_BUCKETS - 1).then(|| 1u64 << i)
    }

    /// The bucket a latency of `micros` falls in.
    pub fn bucket_of(micros: u64) -> usize {
        // 0 -> 0, 1 -> 1, 2..=3 -> 2, 4..=7 -> 3, ...: the bit length of `micros`.
        let bits = (u64::BITS - micros.leading_zeros()) as usize;
        bits.min(LATENCY_BUCKETS - 1)
    }
}

/// Cumulative engine figures since open; see [`crate::Db::metrics`]. Every field only grows
/// while the database stays open (the module doc of `metrics` says how a snapshot is read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Commits that took a revision, once published: each put, delete and batch, each `Txn` or
    /// optimistic transaction that wrote, each lease revocation that deleted keys. Lease grants,
    /// revocations of leases without keys, read-only transactions, refused and failed
    /// proposals take no revision and are not counted.
    pub commits: u64,
    /// Commit groups published that committed at least one commit: a group shares one WAL
    /// append run and at most one sync, so `commits / commit_groups` is the batching factor.
    pub commit_groups: u64,
    /// Bytes appended to the WAL (record framing included): every record logged, the commits
    /// above and lease grants and revocations alike.
    pub wal_written_bytes: u64,
    /// WAL syncs that did I/O (`sync_data` of the log, and of the directory when a segment was
    /// created), by commits in a syncing mode, `Db::sync`, watches and history compaction. A
    /// sync with nothing new to make durable is not counted.
    pub wal_syncs: u64,
    /// How long each counted WAL sync took.
    pub wal_sync_latency: LatencyHistogram,
    /// Memtables flushed to L0 tables (an empty memtable's flush, which writes no table, is
    /// counted too: it persists a manifest).
    pub flushes: u64,
    /// Bytes of the tables flushes wrote.
    pub flush_written_bytes: u64,
    /// Compactions that rewrote tables (merged their inputs into new outputs), by the policy
    /// or `Db::compact_range`.
    pub compactions: u64,
    /// Bytes of the input tables those compactions read.
    pub compaction_read_bytes: u64,
    /// Bytes of the output tables those compactions wrote.
    pub compaction_written_bytes: u64,
    /// Compactions that were trivial moves (a manifest edit moved a table down a level; no byte
    /// was read or rewritten).
    pub trivial_moves: u64,
    /// Writes delayed by a write stall (too many L0 tables or frozen memtables), each counted
    /// once however long it waited.
    pub write_stalls: u64,
    /// Total time writes spent in those stalls, microseconds.
    pub write_stall_micros: u64,
    /// Block cache hits (a table block read from memory).
    pub block_cache_hits: u64,
    /// Block cache misses (a table block read from its file).
    pub block_cache_misses: u64,
    /// Point reads: `Db::get`, `get_versioned`, `get_at`, and a snapshot's or an optimistic
    /// transaction's `get` that reached the store (not a transaction's own buffered write).
    pub gets: u64,
    /// Scans started: `Db::scan`, `scan_prefix`, and a snapshot's or a transaction's scan or
    /// count (each a scan, however many rows it returns).
    pub scans: u64,
    /// Watch events handed to watchers' readers (`Watcher::next`, `try_next`, `next_timeout`),
    /// replayed history and live events alike; one per key version.
    pub watch_events_delivered: u64,
    /// Leases revoked because their TTL ran out (`Db::expire_leases` or the expiry thread);
    /// explicit revocations are not counted.
    pub leases_expired: u64,
}

/// The unit of a [`Figure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Events counted.
    Count,
    /// Bytes.
    Bytes,
    /// Microseconds.
    Micros,
}

/// One counter of a [`Metrics`] snapshot, named, for printing and exporting: the tool and the
/// server list them from [`Metrics::counters`] so that a new counter reaches both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure {
    /// The field's name (its unit last: `_bytes`, `_micros`).
    pub name: &'static str,
    /// One line saying what it counts.
    pub help: &'static str,
    /// What its value counts in.
    pub unit: Unit,
    /// The value.
    pub value: u64,
}

impl Metrics {
    /// Every counter, in the order of the fields (the histogram is not among them).
    pub fn counters(&self) -> [Figure; COUNTERS + 2] {
        let f = |name, help, unit, value| Figure {
            name,
            help,
            unit,
            value,
        };
        use Unit::{Bytes, Count, Micros};
        [
            f(
                "commits",
                "Commits that took a revision",
                Count,
                self.commits,
            ),
            f(
                "commit_groups",
                "Commit groups that committed",
                Count,
                self.commit_groups,
            ),
            f(
                "wal_written_bytes",
                "Bytes appended to the WAL",
                Bytes,
                self.wal_written_bytes,
            ),
            f("wal_syncs", "WAL syncs that did I/O", Count, self.wal_syncs),
            f("flushes", "Memtables flushed to L0", Count, self.flushes),
            f(
                "flush_written_bytes",
                "Table bytes flushes wrote",
                Bytes,
                self.flush_written_bytes,
            ),
            f(
                "compactions",
                "Compactions that rewrote tables",
                Count,
                self.compactions,
            ),
            f(
                "compaction_read_bytes",
                "Table bytes compactions read",
                Bytes,
                self.compaction_read_bytes,
            ),
            f(
                "compaction_written_bytes",
                "Table bytes compactions wrote",
                Bytes,
                self.compaction_written_bytes,
            ),
            f(
                "trivial_moves",
                "Tables moved down a level without a rewrite",
                Count,
                self.trivial_moves,
            ),
            f(
                "write_stalls",
                "Writes delayed by a write stall",
                Count,
                self.write_stalls,
            ),
            f(
                "write_stall_micros",
                "Time writes spent stalled",
                Micros,
                self.write_stall_micros,
            ),
            f(
                "block_cache_hits",
                "Block cache hits",
                Count,
                self.block_cache_hits,
            ),
            f(
                "block_cache_misses",
                "Block cache misses",
                Count,
                self.block_cache_misses,
            ),
            f("gets", "Point reads", Count, self.gets),
            f("scans", "Scans started", Count, self.scans),
            f(
                "watch_events_delivered",
                "Watch events handed to watchers",
                Count,
                self.watch_events_delivered,
            ),
            f(
                "leases_expired",
                "Leases revoked by their TTL",
                Count,
                self.leases_expired,
            ),
        ]
    }
}

/// Where the engine records its figures: plain atomics (see the module doc).
#[derive(Debug)]
pub(crate) struct Recorder {
    counters: [AtomicU64; COUNTERS],
    sync_buckets: [AtomicU64; LATENCY_BUCKETS],
    sync_count: AtomicU64,
    sync_sum_micros: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            sync_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sync_count: AtomicU64::new(0),
            sync_sum_micros: AtomicU64::new(0),
        }
    }
}

impl Recorder {
    /// Adds `n` to `counter`.
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if let Some(c) = self.counters.get(counter as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds 1 to `counter`.
    #[inline]
    pub(crate) fn inc(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// The value of `counter` now.
    pub(crate) fn get(&self, counter: Counter) -> u64 {
        self.counters
            .get(counter as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Records one WAL sync that took `elapsed`.
    pub(crate) fn observe_sync(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = self.sync_buckets.get(LatencyHistogram::bucket_of(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        self.sync_sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.inc(Counter::WalSyncs);
    }

    /// The figures now, with the block cache's `(hits, misses)` (which the cache counts).
    pub(crate) fn snapshot(&self, cache: (u64, u64)) -> Metrics {
        use Counter as C;
        let wal_sync_latency = LatencyHistogram {
            buckets: std::array::from_fn(|i| {
                self.sync_buckets
                    .get(i)
                    .map_or(0, |b| b.load(Ordering::Relaxed))
            }),
            count: self.sync_count.load(Ordering::Relaxed),
            sum_micros: self.sync_sum_micros.load(Ordering::Relaxed),
        };
        Metrics {
            commits: self.get(C::Commits),
            commit_groups: self.get(C::CommitGroups),
            wal_written_bytes: self.get(C::WalWrittenBytes),
            wal_syncs: self.get(C::WalSyncs),
            wal_sync_latency,
            flushes: self.get(C::Flushes),
            flush_written_bytes: self.get(C::FlushWrittenBytes),
            compactions: self.get(C::Compactions),
            compaction_read_bytes: self.get(C::CompactionReadBytes),
            compaction_written_bytes: self.get(C::CompactionWrittenBytes),
            trivial_moves: self.get(C::TrivialMoves),
            write_stalls: self.get(C::WriteStalls),
            write_stall_micros: self.get(C::WriteStallMicros),
            block_cache_hits: cache.0,
            block_cache_misses: cache.1,
            gets: self.get(C::Gets),
            scans: self.get(C::Scans),
            watch_events_delivered: self.get(C::WatchEventsDelivered),
            leases_expired: self.get(C::LeasesExpired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_of_micros() {
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(1), 1);
        assert_eq!(LatencyHistogram::bucket_of(2), 2);
        assert_eq!(LatencyHistogram::bucket_of(3), 2);
        assert_eq!(LatencyHistogram::bucket_of(4), 3);
        assert_eq!(LatencyHistogram::bucket_of(1023), 10);
        assert_eq!(LatencyHistogram::bucket_of(1024), 11);
        assert_eq!(LatencyHistogram::bucket_of(u64::MAX), LATENCY_BUCKETS - 1);
        for micros in [0, 1, 5, 1000, 1 << 20, (1 << 26) - 1] {
            let i = LatencyHistogram::bucket_of(micros);
            let upper = LatencyHistogram::upper_bound_micros(i).unwrap();
            assert!(micros < upper, "{micros} in bucket {i} below {upper}");
            if let Some(lower) = i.checked_sub(1) {
                assert!(micros >= LatencyHistogram::upper_bound_micros(lower).unwrap());
            }
        }
        assert_eq!(
            LatencyHistogram::upper_bound_micros(LATENCY_BUCKETS - 1),
            None
        );
    }

    #[test]
    fn counters_list_every_counter_once_with_its_value() {
        let recorder = Recorder::default();
        for (n, counter) in (1..).zip(ALL) {
            recorder.add(counter, n);
        }
        let figures = recorder.snapshot((100, 200)).counters();
        let mut names: Vec<&str> = figures.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), figures.len());
        let mut values: Vec<u64> = figures.iter().map(|f| f.value).collect();
        values.sort_unstable();
        let mut expected: Vec<u64> = (1..=COUNTERS as u64).chain([100, 200]).collect();
        expected.sort_unstable();
        assert_eq!(values, expected, "{figures:?}");
        for figure in figures {
            let suffix = match figure.unit {
                Unit::Bytes => Some("_bytes"),
                Unit::Micros => Some("_micros"),
                Unit::Count => None,
            };
            if let Some(suffix) = suffix {
                assert!(figure.name.ends_with(suffix), "{figure:?}");
            }
        }
    }

    #[test]
    fn a_snapshot_reads_what_was_recorded() {
        let recorder = Recorder::default();
        recorder.inc(Counter::Gets);
        recorder.add(Counter::FlushWrittenBytes, 4096);
        recorder.observe_sync(Duration::from_micros(3));
        recorder.observe_sync(Duration::from_millis(2));
        let m = recorder.snapshot((7, 8));
        assert_eq!((m.gets, m.flush_written_bytes, m.scans), (1, 4096, 0));
        assert_eq!((m.block_cache_hits, m.block_cache_misses), (7, 8));
        assert_eq!(m.wal_syncs, 2);
        let h = &m.wal_sync_latency;
        assert_eq!((h.count, h.sum_micros), (2, 2003));
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets[11], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), h.count);
    }
}
