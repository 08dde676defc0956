//! [`Stats`]: a point-in-time summary of an open database, and [`Db::metrics`], its cumulative
//! counters ([`crate::metrics`]), for operators and tests.
//!
//! Invariants: computed from one snapshot of the tree plus counters; never blocks writers for
//! longer than a lock acquisition. [`Db::metrics`] takes no lock at all.

use crate::metrics::{Counter, Metrics};

use super::{Db, lock};

/// Counters and sizes of an open database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of SST files at each level (index 0 is L0).
    pub files_per_level: Vec<usize>,
    /// Total SST bytes at each level.
    pub bytes_per_level: Vec<u64>,
    /// Approximate bytes held by the active and frozen memtables.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for their flush.
    pub frozen_memtables: usize,
    /// Last revision visible to reads.
    pub last_revision: u64,
    /// Block cache hits.
    pub cache_hits: u64,
    /// Block cache misses.
    pub cache_misses: u64,
    /// Table readers the table cache keeps open (at most `Options::max_open_tables`).
    pub open_tables: usize,
    /// WAL bytes not yet covered by SSTs (end offset minus the manifest's `walOffset`).
    pub wal_bytes: u64,
    /// WAL logical end offset.
    pub wal_end_offset: u64,
    /// WAL logical offset known durable.
    pub wal_synced_offset: u64,
    /// Commits acknowledged since open ([`Metrics::commits`]).
    pub commits: u64,
    /// WAL syncs issued since open ([`Metrics::wal_syncs`]; fewer than `commits` when group
    /// commit shared them).
    pub commit_syncs: u64,
    /// Watchers registered and not ended (cancelled, dropped, lagged or failed).
    pub watchers: usize,
}

impl Db {
    /// Sizes and counters of the database now.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let (memtable_bytes, frozen) = inner.versions.memtable_bytes();
        let tree = inner.tree();
        let (wal_end_offset, wal_synced_offset) = {
            let writer = inner.pipeline.writer();
            (writer.wal.end_offset(), writer.wal.synced_offset())
        };
        let watchers = lock(&self.handle.watches)
            .as_ref()
            .map_or(0, |watches| watches.watchers());
        let version = &tree.version;
        Stats {
            files_per_level: (0..version.num_levels())
                .map(|l| version.files(l).len())
                .collect(),
            bytes_per_level: (0..version.num_levels())
                .map(|l| version.level_size_bytes(l))
                .collect(),
            memtable_bytes,
            frozen_memtables: frozen,
            last_revision: inner.pipeline.visible(),
            cache_hits: inner.cache.hits(),
            cache_misses: inner.cache.misses(),
            open_tables: tree.tables.len(),
            wal_bytes: wal_end_offset.saturating_sub(version.wal_offset()),
            wal_end_offset,
            wal_synced_offset,
            commits: inner.metrics.get(Counter::Commits),
            commit_syncs: inner.metrics.get(Counter::WalSyncs),
            watchers,
        }
    }

    /// The cumulative counters and the WAL sync latency histogram since open (see
    /// [`Metrics`]: each field says what it counts; every one only grows). Lock-free: cheap
    /// enough to call at every scrape.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = kvstore::Db::open(dir.path(), kvstore::Options::default())?;
    /// db.put(b"k", b"v")?;
    /// db.get(b"k")?;
    /// let metrics = db.metrics();
    /// assert_eq!((metrics.commits, metrics.gets), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        let inner = self.inner();
        inner
            .metrics
            .snapshot((inner.cache.hits(), inner.cache.misses()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::clock::{ManualClock, SharedClock};
    use crate::db::flush::Freeze;
    use crate::watch::{WatchRequest, WatchResponse};
    use crate::{
        BackgroundMode, Db, Durability, HistoryRetention, KeyRange, LeaseExpiry, Metrics, Options,
        ScanOptions,
    };

    fn open(options: Options) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), options).unwrap();
        (dir, db)
    }

    fn inline() -> Options {
        Options {
            background: BackgroundMode::Inline,
            ..Options::default()
        }
    }

    /// Every field of `later` is at least the same field of `earlier`.
    fn assert_monotone(earlier: &Metrics, later: &Metrics) {
        let pairs = |m: &Metrics| {
            [
                m.commits,
                m.commit_groups,
                m.wal_written_bytes,
                m.wal_syncs,
                m.wal_sync_latency.count,
                m.wal_sync_latency.sum_micros,
                m.flushes,
                m.flush_written_bytes,
                m.compactions,
                m.compaction_read_bytes,
                m.compaction_written_bytes,
                m.trivial_moves,
                m.write_stalls,
                m.write_stall_micros,
                m.block_cache_hits,
                m.block_cache_misses,
                m.gets,
                m.scans,
                m.watch_events_delivered,
                m.leases_expired,
            ]
        };
        for (i, (a, b)) in pairs(earlier).into_iter().zip(pairs(later)).enumerate() {
            assert!(a <= b, "figure {i} went down: {earlier:?} then {later:?}");
        }
    }

    #[test]
    fn sync_puts_count_commits_wal_bytes_and_syncs() {
        let (_dir, db) = open(Options {
            durability: Durability::Sync,
            ..inline()
        });
        assert_eq!(db.metrics(), Metrics::default());
        const N: u64 = 20;
        let mut before = db.metrics();
        for i in 0..N {
            db.put(format!("k{i:02}").as_bytes(), b"value").unwrap();
            let now = db.metrics();
            assert_monotone(&before, &now);
            // One thread: every put is its own group with its own sync.
            assert_eq!(
                (now.commits, now.commit_groups, now.wal_syncs),
                (i + 1, i + 1, i + 1)
            );
            assert!(now.wal_written_bytes > before.wal_written_bytes);
            before = now;
        }
        let m = db.metrics();
        assert_eq!(m.wal_sync_latency.count, m.wal_syncs);
        assert_eq!(m.wal_sync_latency.buckets.iter().sum::<u64>(), m.wal_syncs);
        assert_eq!(m.wal_written_bytes, db.stats().wal_end_offset);
        assert_eq!((db.stats().commits, db.stats().commit_syncs), (N, N));
        // Nothing read, flushed or compacted.
        assert_eq!((m.gets, m.scans, m.flushes, m.compactions), (0, 0, 0, 0));
    }

    #[test]
    fn concurrent_sync_puts_share_groups_and_syncs() {
        let (_dir, db) = open(Options {
            durability: Durability::Sync,
            ..inline()
        });
        const THREADS: u64 = 4;
        const PUTS: u64 = 25;
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let db = &db;
                scope.spawn(move || {
                    for i in 0..PUTS {
                        db.put(format!("t{t}/{i}").as_bytes(), b"v").unwrap();
                    }
                });
            }
        });
        let m = db.metrics();
        assert_eq!(m.commits, THREADS * PUTS);
        assert!((1..=m.commits).contains(&m.commit_groups), "{m:?}");
        assert!((1..=m.commits).contains(&m.wal_syncs), "{m:?}");
    }

    #[test]
    fn buffered_puts_do_not_sync_and_a_lease_grant_is_logged_but_no_commit() {
        let (_dir, db) = open(Options {
            durability: Durability::Buffered,
            ..inline()
        });
        db.put(b"a", b"1").unwrap();
        let after_put = db.metrics();
        assert_eq!((after_put.commits, after_put.wal_syncs), (1, 0));
        db.grant(Duration::from_secs(60)).unwrap();
        let after_grant = db.metrics();
        assert_eq!(after_grant.commits, 1);
        assert!(after_grant.wal_written_bytes > after_put.wal_written_bytes);
        db.sync().unwrap();
        db.sync().unwrap(); // Nothing new to sync: no I/O, not counted.
        assert_eq!(db.metrics().wal_syncs, 1);
    }

    #[test]
    fn gets_and_scans_are_counted_once_each() {
        let (_dir, db) = open(inline());
        let first = db.put(b"a", b"1").unwrap();
        db.get(b"a").unwrap();
        db.get(b"missing").unwrap();
        db.get_at(b"a", first).unwrap();
        let snapshot = db.snapshot().unwrap();
        snapshot.get(b"a").unwrap();
        db.scan(KeyRange::all(), ScanOptions::default())
            .unwrap()
            .count();
        db.scan_prefix(b"a", ScanOptions::default()).unwrap();
        snapshot.count(KeyRange::all()).unwrap();
        let mut tx = db.transaction().unwrap();
        tx.put(b"b", b"2").unwrap();
        tx.get(b"b").unwrap(); // Its own write: not a read of the store.
        tx.get(b"a").unwrap();
        tx.scan(KeyRange::all()).unwrap();
        let m = db.metrics();
        assert_eq!((m.gets, m.scans), (5, 4), "{m:?}");
    }

    #[test]
    fn a_flush_and_a_compaction_are_counted_with_their_bytes() {
        let (_dir, db) = open(Options {
            history_retention: HistoryRetention::Manual,
            ..inline()
        });
        for i in 0..100u32 {
            db.put(format!("k{i:03}").as_bytes(), &[7; 100]).unwrap();
        }
        db.flush().unwrap();
        let m = db.metrics();
        assert_eq!(m.flushes, 1);
        assert_eq!(m.flush_written_bytes, db.stats().bytes_per_level[0]);
        assert!(m.flush_written_bytes > 0, "{m:?}");
        assert_eq!((m.compactions, m.compaction_read_bytes), (0, 0));
        // A second table over the same keys: merging the two into L1 rewrites them.
        for i in 0..100u32 {
            db.put(format!("k{i:03}").as_bytes(), &[8; 100]).unwrap();
        }
        db.compact_range(KeyRange::all()).unwrap();
        let m = db.metrics();
        assert_eq!(m.flushes, 2);
        assert!(m.compactions >= 1, "{m:?}");
        assert!(m.compaction_read_bytes >= m.flush_written_bytes, "{m:?}");
        let stats = db.stats();
        let live: u64 = stats.bytes_per_level.iter().sum();
        assert!(m.compaction_written_bytes >= live, "{m:?} {stats:?}");
        // The read went to the table, through the block cache.
        db.get(b"k050").unwrap();
        let after = db.metrics();
        assert!(
            after.block_cache_hits + after.block_cache_misses > 0,
            "{after:?}"
        );
    }

    #[test]
    fn watch_events_are_counted_when_read() {
        let (_dir, db) = open(inline());
        let first = db.put(b"w/a", b"1").unwrap();
        let watcher = db
            .watch(WatchRequest::prefix(b"w/").from_revision(first))
            .unwrap();
        assert_eq!(db.stats().watchers, 1);
        db.put(b"w/b", b"2").unwrap();
        db.put(b"other", b"3").unwrap();
        watcher.settle();
        assert_eq!(db.metrics().watch_events_delivered, 0);
        let mut events = 0;
        while let Some(response) = watcher.try_next().unwrap() {
            if let WatchResponse::Events { events: e, .. } = response {
                events += e.len() as u64;
            }
        }
        assert_eq!(events, 2);
        assert_eq!(db.metrics().watch_events_delivered, 2);
        drop(watcher);
        assert_eq!(db.stats().watchers, 0);
    }

    #[test]
    fn only_expiries_count_as_leases_expired() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (_dir, db) = open(Options {
            lease_expiry: LeaseExpiry::Manual,
            clock: SharedClock(Arc::clone(&clock) as Arc<dyn crate::clock::Clock>),
            ..inline()
        });
        let short = db.grant(Duration::from_secs(1)).unwrap();
        let other = db.grant(Duration::from_secs(1)).unwrap();
        let long = db.grant(Duration::from_secs(60)).unwrap();
        db.put_with_lease(b"s", b"1", short).unwrap();
        db.revoke(other).unwrap();
        clock.advance(2_000);
        assert_eq!(db.expire_leases().unwrap().len(), 1);
        assert_eq!(db.metrics().leases_expired, 1);
        assert_eq!(db.expire_leases().unwrap().len(), 0);
        db.revoke(long).unwrap();
        assert_eq!(db.metrics().leases_expired, 1);
    }

    /// Three frozen memtables the worker cannot flush (the test holds the work lock) stop the
    /// next write until the lock is released.
    #[test]
    fn a_stalled_write_is_counted_with_its_wait() {
        const HOLD: Duration = Duration::from_millis(200);
        let (_dir, db) = open(Options {
            background: BackgroundMode::Threads,
            ..Options::default()
        });
        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let holder = {
            let db = db.clone();
            std::thread::spawn(move || {
                let _work = db.inner().worker.work();
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                std::thread::sleep(HOLD);
            })
        };
        held_rx.recv().unwrap();
        let inner = db.inner();
        for i in 0..super::super::background::FROZEN_MEMTABLES_MAX {
            db.put(format!("k{i}").as_bytes(), b"v").unwrap();
            assert!(inner.freeze(Freeze::NonEmpty).unwrap());
        }
        assert_eq!(db.metrics().write_stalls, 0);
        go_tx.send(()).unwrap();
        db.put(b"stalled", b"v").unwrap();
        holder.join().unwrap();
        let m = db.metrics();
        assert_eq!(m.write_stalls, 1, "{m:?}");
        assert!(m.write_stall_micros >= 100_000, "{m:?}");
    }
}
