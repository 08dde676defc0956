//! Automatic history retention (`Options::history_retention`): the horizon moves at flushes to
//! what the policy asks, never past it, durably; reads at every retained revision stay exact;
//! overwrites do not grow the disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kvstore::clock::{Clock, SharedClock};
use kvstore::options::MEMTABLE_SIZE_BYTES_MIN;
use kvstore::{BackgroundMode, Db, Error, HistoryRetention, KeyRange, Options};

/// A clock the test sets.
#[derive(Debug, Default)]
struct SetClock(AtomicU64);

impl Clock for SetClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn options(retention: HistoryRetention) -> Options {
    Options {
        memtable_size_bytes: MEMTABLE_SIZE_BYTES_MIN,
        background: BackgroundMode::Inline,
        compression: false,
        history_retention: retention,
        ..Options::default()
    }
}

/// Every version written: key -> (revision -> value).
type History = BTreeMap<Vec<u8>, BTreeMap<u64, Vec<u8>>>;

/// The value `history` says a read of `key` at `revision` sees.
fn value_at(history: &History, key: &[u8], revision: u64) -> Option<Vec<u8>> {
    let versions = history.get(key)?;
    versions
        .range(..=revision)
        .next_back()
        .map(|(_, v)| v.clone())
}

fn key(i: u64) -> Vec<u8> {
    format!("key{:02}", i % 20).into_bytes()
}

#[test]
fn revisions_retention_keeps_the_newest_n_and_never_fewer() {
    const KEEP: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(HistoryRetention::Revisions(KEEP))).unwrap();
    let mut history = History::new();
    let mut horizon = 0;
    for i in 0..3_000u64 {
        let value = format!("value {i} {}", "x".repeat(200)).into_bytes();
        let revision = db.put(&key(i), &value).unwrap();
        history.entry(key(i)).or_default().insert(revision, value);
        let now = db.history_horizon();
        assert!(now >= horizon, "the horizon went back: {horizon} -> {now}");
        assert!(
            now <= revision.saturating_sub(KEEP),
            "horizon {now} drops history of the newest {KEEP} revisions (last {revision})"
        );
        horizon = now;
    }
    assert!(
        horizon > 0,
        "3,000 puts through a 64 KiB memtable flushed nothing"
    );
    db.flush().unwrap();
    let last = db.stats().last_revision;
    assert_eq!(
        db.history_horizon(),
        last - KEEP,
        "a flush moves it to last - n"
    );
    db.compact_range(KeyRange::all()).unwrap();
    let horizon = db.history_horizon();
    for revision in horizon..=last {
        for k in 0..20 {
            let got = db.get_at(&key(k), revision).unwrap().map(|v| v.value);
            assert_eq!(
                got,
                value_at(&history, &key(k), revision),
                "key {k} at {revision}"
            );
        }
    }
    assert!(matches!(
        db.get_at(&key(0), horizon - 1),
        Err(Error::Compacted { .. })
    ));
    db.close().unwrap();
    let db = Db::open(dir.path(), options(HistoryRetention::Revisions(KEEP))).unwrap();
    assert_eq!(db.history_horizon(), horizon, "the horizon is durable");
}

#[test]
fn manual_retention_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(HistoryRetention::Manual)).unwrap();
    let first = db.put(b"k", b"first").unwrap();
    for i in 0..2_000u64 {
        db.put(&key(i), &[b'v'; 200]).unwrap();
    }
    db.flush().unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    assert_eq!(db.history_horizon(), 0);
    assert_eq!(db.get_at(b"k", first).unwrap().unwrap().value, b"first");
}

/// Total bytes of every SST after writing `rounds` overwrites of 100 keys and compacting.
fn disk_bytes_after_overwrites(retention: HistoryRetention, rounds: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(retention)).unwrap();
    for round in 0..rounds {
        for k in 0..100u64 {
            let value: Vec<u8> = (0..1_000u64)
                .map(|i| (i.wrapping_mul(31) ^ round ^ k) as u8)
                .collect();
            db.put(format!("key{k:03}").as_bytes(), &value).unwrap();
        }
    }
    db.flush().unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    db.stats().bytes_per_level.iter().sum()
}

#[test]
fn overwrites_do_not_grow_the_disk_under_the_default_kind_of_retention() {
    let retained = disk_bytes_after_overwrites(HistoryRetention::Revisions(100), 30);
    let longer = disk_bytes_after_overwrites(HistoryRetention::Revisions(100), 60);
    let manual = disk_bytes_after_overwrites(HistoryRetention::Manual, 30);
    // 100 live keys plus at most 100 older versions, of ~1 KB each: about 200 KB whatever the
    // number of rounds; keeping every version is 3,000 versions, about 3 MB.
    assert!(retained < 300_000, "{retained} bytes for 200 versions");
    assert!(
        longer < retained + retained / 10,
        "twice the overwrites grew the disk: {retained} -> {longer}"
    );
    assert!(
        manual > 10 * retained,
        "manual {manual} vs retained {retained}"
    );
}

#[test]
fn millis_retention_keeps_at_least_the_period() {
    const PERIOD_MS: u64 = 10_000;
    let clock = Arc::new(SetClock::default());
    clock.0.store(1_000_000, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        clock: SharedClock(clock.clone()),
        ..options(HistoryRetention::Millis(PERIOD_MS))
    };
    let db = Db::open(dir.path(), options).unwrap();
    // Commit time of each revision.
    let mut committed_at: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..4_000u64 {
        let now = clock.0.fetch_add(7, Ordering::Relaxed) + 7;
        let revision = db.put(&key(i), &[b'v'; 200]).unwrap();
        committed_at.insert(revision, now);
        let horizon = db.history_horizon();
        if horizon > 0 {
            let at = committed_at[&horizon];
            assert!(
                at + PERIOD_MS <= now,
                "revision {horizon}, committed at {at}, is not {PERIOD_MS} ms old at {now}"
            );
        }
    }
    db.flush().unwrap();
    let horizon = db.history_horizon();
    let now = clock.0.load(Ordering::Relaxed);
    assert!(horizon > 0, "28 s of commits and no horizon");
    // Sampled at most once a tenth of the period, at flushes: never more than a period and a
    // flush interval older than asked.
    assert!(committed_at[&horizon] + PERIOD_MS <= now);
}
