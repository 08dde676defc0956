//! Watches: every guarantee of `spec/SEMANTICS.md` ("Watches") on the real engine: ordered,
//! unique, reliable, atomic, resumable (also across a reopen), bookmarkable, after durable; a
//! start below the horizon is `Compacted`; a watcher that falls behind ends with the revision to
//! resume from, and a watch from it continues with no gap.

use std::collections::BTreeMap;
use std::time::Duration;

use kvstore::txn::{Txn, TxnOp};
use kvstore::watch::{EventKind, WatchEvent, WatchRequest, WatchResponse, Watcher};
use kvstore::{
    Db, Durability, Error, HistoryRetention, KeyRange, Options, WriteBatch, WriteOptions,
};

/// Long enough for a delivery that must happen; a delivery that must not happen is checked
/// after a sync point instead of by waiting.
const DELIVERY: Duration = Duration::from_secs(20);

fn options(durability: Durability) -> Options {
    Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        durability,
        history_retention: HistoryRetention::Manual,
        ..Options::default()
    }
}

/// (revision, kind, key, value) of each event, as a watch of everything reports it.
type Seen = Vec<(u64, EventKind, Vec<u8>, Option<Vec<u8>>)>;

/// Reads `watcher` until it delivered revision `last`; checks each response is one revision,
/// above the previous one.
fn collect_until(watcher: &Watcher, last: u64) -> Seen {
    let mut seen = Seen::new();
    let mut previous = 0;
    while previous < last {
        let response = watcher
            .next_timeout(DELIVERY)
            .unwrap()
            .unwrap_or_else(|| panic!("no response after revision {previous} (want {last})"));
        let WatchResponse::Events { revision, events } = response else {
            continue;
        };
        assert!(revision > previous, "revision {revision} after {previous}");
        assert!(!events.is_empty());
        for event in events {
            assert_eq!(event.revision, revision);
            seen.push(flat(event));
        }
        previous = revision;
    }
    seen
}

fn flat(event: WatchEvent) -> (u64, EventKind, Vec<u8>, Option<Vec<u8>>) {
    (
        event.revision,
        event.kind,
        event.key,
        event.value.map(|v| v.value),
    )
}

/// What the writes below produce, by revision: the expected events.
fn write_some(db: &Db, round: u64, expected: &mut BTreeMap<u64, Seen>) {
    let key = |n: u64| format!("k{:02}", (round + n) % 7).into_bytes();
    let value = format!("v{round}").into_bytes();
    let r = db.put(&key(0), &value).unwrap();
    expected.insert(r, vec![(r, EventKind::Put, key(0), Some(value.clone()))]);
    let mut batch = WriteBatch::new();
    batch.put(&key(1), &value);
    batch.delete(&key(2));
    let r = db.write(batch).unwrap();
    let mut events = vec![
        (r, EventKind::Put, key(1), Some(value.clone())),
        (r, EventKind::Delete, key(2), None),
    ];
    events.sort_by(|a, b| a.2.cmp(&b.2));
    expected.insert(r, events);
}

#[test]
fn live_events_are_ordered_unique_atomic_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let all = db.watch(WatchRequest::new(KeyRange::all())).unwrap();
    let puts_only = db
        .watch(WatchRequest {
            no_delete: true,
            ..WatchRequest::prefix(b"k0")
        })
        .unwrap();
    let mut expected = BTreeMap::new();
    for round in 0..50 {
        write_some(&db, round, &mut expected);
    }
    // A txn writing three keys is one response.
    let txn = Txn {
        success: (0..3u8)
            .map(|i| TxnOp::Put {
                key: vec![b't', i],
                value: b"x".to_vec(),
                lease: 0,
            })
            .collect(),
        ..Txn::default()
    };
    let txn_revision = db.txn(txn).unwrap().revision;
    let last = txn_revision;
    let seen = collect_until(&all, last);
    let txn_events: Vec<_> = seen.iter().filter(|e| e.0 == txn_revision).collect();
    assert_eq!(txn_events.len(), 3, "a txn's events in one response");
    let want: Seen = expected.values().flatten().cloned().collect();
    assert_eq!(
        &seen[..want.len()],
        &want[..],
        "every event, once, in revision order"
    );
    let filtered = collect_until(
        &puts_only,
        expected
            .keys()
            .rev()
            .find(|r| {
                expected[r]
                    .iter()
                    .any(|e| e.2.starts_with(b"k0") && e.1 == EventKind::Put)
            })
            .copied()
            .unwrap(),
    );
    let want: Seen = expected
        .values()
        .flatten()
        .filter(|e| e.2.starts_with(b"k0") && e.1 == EventKind::Put)
        .cloned()
        .collect();
    assert_eq!(filtered, want, "prefix and NODELETE filters");
}

#[test]
fn a_watch_from_an_old_revision_replays_history_then_follows_live_with_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let mut expected = BTreeMap::new();
    for round in 0..300 {
        write_some(&db, round, &mut expected);
        if round == 150 {
            db.flush().unwrap();
        }
    }
    // Some of the history is in tables by now, some in the memtable.
    assert!(db.stats().files_per_level.iter().sum::<usize>() > 0);
    let start = *expected.keys().nth(100).unwrap();
    let request = WatchRequest {
        prev_kv: true,
        ..WatchRequest::new(KeyRange::all()).from_revision(start)
    };
    let watcher = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut more = BTreeMap::new();
            for round in 300..400 {
                write_some(&db, round, &mut more);
            }
            more
        });
        let watcher = db.watch(request).unwrap();
        expected.extend(writer.join().unwrap());
        watcher
    });
    let last = *expected.keys().last().unwrap();
    let mut prev_checked = 0;
    let mut seen = Seen::new();
    let mut previous = 0;
    while previous < last {
        let Some(WatchResponse::Events { revision, events }) =
            watcher.next_timeout(DELIVERY).unwrap()
        else {
            panic!("stalled after {previous}");
        };
        assert!(revision > previous);
        for event in events {
            let before = db.get_at(&event.key, revision - 1).unwrap();
            assert_eq!(
                event.prev, before,
                "prev_kv of {:?} at {revision}",
                event.key
            );
            prev_checked += 1;
            seen.push(flat(event));
        }
        previous = revision;
    }
    let want: Seen = expected
        .range(start..)
        .flat_map(|(_, e)| e.clone())
        .collect();
    assert_eq!(seen, want, "replay then live: no gap, no duplicate");
    assert!(prev_checked > 0);
}

#[test]
fn a_watch_resumes_after_a_reopen_from_the_last_revision_seen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let watcher = db.watch(WatchRequest::new(KeyRange::all())).unwrap();
    for round in 0..20 {
        write_some(&db, round, &mut expected);
    }
    let first_half = collect_until(&watcher, *expected.keys().last().unwrap());
    let resume = expected.keys().last().unwrap() + 1;
    db.close().unwrap();
    assert_eq!(
        watcher.next().unwrap(),
        None,
        "a close ends the watcher cleanly"
    );
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    for round in 20..40 {
        write_some(&db, round, &mut expected);
    }
    let watcher = db
        .watch(WatchRequest::new(KeyRange::all()).from_revision(resume))
        .unwrap();
    let second_half = collect_until(&watcher, *expected.keys().last().unwrap());
    let all: Seen = first_half.into_iter().chain(second_half).collect();
    let want: Seen = expected.values().flatten().cloned().collect();
    assert_eq!(all, want);
}

#[test]
fn a_start_at_or_below_the_horizon_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let first = db.put(b"a", b"1").unwrap();
    let second = db.delete(b"a").unwrap();
    let third = db.put(b"a", b"3").unwrap();
    db.compact_history(second).unwrap();
    db.compact_range(KeyRange::all()).unwrap();
    for start in [first, second] {
        let err = db
            .watch(WatchRequest::key(b"a").from_revision(start))
            .unwrap_err();
        assert!(
            matches!(err, Error::Compacted { requested, horizon } if requested == start && horizon == second),
            "{err}"
        );
    }
    let watcher = db
        .watch(WatchRequest::key(b"a").from_revision(third))
        .unwrap();
    assert!(matches!(
        watcher.next().unwrap(),
        Some(WatchResponse::Events { revision, .. }) if revision == third
    ));
    assert!(matches!(
        db.watch(WatchRequest::key(b"a").from_revision(0)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_watcher_that_falls_behind_ends_with_where_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Buffered)).unwrap();
    let request = WatchRequest {
        buffer_events_max: 10,
        ..WatchRequest::new(KeyRange::all())
    };
    let watcher = db.watch(request).unwrap();
    let unbounded = db.watch(WatchRequest::new(KeyRange::all())).unwrap();
    let first = db.put(b"k", b"0").unwrap();
    for i in 1..100u32 {
        db.put(b"k", &i.to_be_bytes()).unwrap();
    }
    db.sync().unwrap();
    // Once the unbounded watcher has the last revision, every revision was offered to both.
    collect_until(&unbounded, first + 99);
    let mut delivered = Vec::new();
    let resume_from = loop {
        match watcher.next_timeout(DELIVERY) {
            Ok(Some(WatchResponse::Events { revision, .. })) => delivered.push(revision),
            Ok(other) => panic!("{other:?}"),
            Err(Error::WatcherLagged { resume_from }) => break resume_from,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        delivered,
        (first..resume_from).collect::<Vec<_>>(),
        "nothing dropped"
    );
    assert_eq!(delivered.len(), 10, "the buffer held 10 events");
    let rest = db
        .watch(WatchRequest::new(KeyRange::all()).from_revision(resume_from))
        .unwrap();
    let seen = collect_until(&rest, first + 99);
    assert_eq!(
        seen.first().map(|e| e.0),
        Some(resume_from),
        "no gap at the resume"
    );
    assert_eq!(seen.len() as u64, first + 100 - resume_from);
}

#[test]
fn buffered_events_wait_for_the_sync_that_makes_them_durable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Buffered)).unwrap();
    let request = WatchRequest {
        progress_notify: true,
        ..WatchRequest::new(KeyRange::all())
    };
    let watcher = db.watch(request).unwrap();
    let revision = db.put(b"k", b"v").unwrap();
    // The put is readable, but not durable: it is not delivered, however long one waits (a
    // dispatcher that ignored durability would deliver it within microseconds)...
    assert_eq!(
        watcher.next_timeout(Duration::from_millis(300)).unwrap(),
        None,
        "an unsynced buffered put was delivered"
    );
    // ...and a progress request, answered after every event delivered so far, says so.
    watcher.request_progress().unwrap();
    let Some(WatchResponse::Progress { revision: bookmark }) =
        watcher.next_timeout(DELIVERY).unwrap()
    else {
        panic!("no progress response");
    };
    assert!(
        bookmark < revision,
        "an unsynced buffered put was delivered"
    );
    db.sync().unwrap();
    let Some(WatchResponse::Events { revision: got, .. }) = watcher.next_timeout(DELIVERY).unwrap()
    else {
        panic!("the synced put was not delivered");
    };
    assert_eq!(got, revision);
    let synced = WriteOptions {
        durability: Some(Durability::Sync),
        ..WriteOptions::default()
    };
    let later = db.put_with(b"k", b"w", synced).unwrap();
    assert!(matches!(
        watcher.next_timeout(DELIVERY).unwrap(),
        Some(WatchResponse::Events { revision, .. }) if revision == later
    ));
    watcher.request_progress().unwrap();
    assert_eq!(
        watcher.next_timeout(DELIVERY).unwrap(),
        Some(WatchResponse::Progress { revision: later })
    );
}

#[test]
fn cancel_ends_a_watcher_and_nothing_follows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let watcher = db.watch(WatchRequest::key(b"k")).unwrap();
    let revision = db.put(b"k", b"v").unwrap();
    assert!(matches!(
        watcher.next_timeout(DELIVERY).unwrap(),
        Some(WatchResponse::Events { revision: r, .. }) if r == revision
    ));
    assert!(!watcher.is_done());
    watcher.cancel();
    db.put(b"k", b"after").unwrap();
    assert_eq!(watcher.next().unwrap(), None, "nothing after the cancel");
    assert!(watcher.is_done());
    assert!(
        watcher.request_progress().is_err(),
        "no progress_notify asked"
    );
}

#[test]
fn a_first_watch_makes_the_buffered_history_it_replays_durable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Buffered)).unwrap();
    let first = db.put(b"k", b"v").unwrap();
    let before = db.stats().wal_synced_offset;
    let watcher = db
        .watch(WatchRequest::key(b"k").from_revision(first))
        .unwrap();
    assert!(
        db.stats().wal_synced_offset > before,
        "replayed an unsynced commit"
    );
    assert!(matches!(
        watcher.next_timeout(DELIVERY).unwrap(),
        Some(WatchResponse::Events { revision, .. }) if revision == first
    ));
}
