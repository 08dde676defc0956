//! The `watch` workload (issue 13): W watchers on overlapping prefixes while P puts commit.
//!
//! Keys are `p{00..99}/{index}`, written by one thread in `Sync` batches of [`BATCH_PUTS`] (one
//! revision each). Watcher `j` watches prefix `p{j % 100}/`, except every hundredth, which
//! watches `p` (every key): with W = 100, a put matches two watchers; with 10,000, 199. Two reader
//! threads drain the watchers round-robin with `try_next`. Reported: commit throughput (puts/s
//! over the writes alone; with W = 0 the baseline, the cost of watching is the ratio), events
//! delivered per second (from the first put to the last delivery), and delivery latency per
//! response, from the batch's commit returning to the response being read (p50, p99: an event
//! may arrive before the writer thread wakes, so a latency is at least 0).
//!
//! Invariant: every watcher receives exactly the events of its prefix, one per put, or the run
//! fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvstore::watch::{WatchRequest, WatchResponse, Watcher};
use kvstore::{Db, Durability, Options, WriteBatch};

use crate::BenchResult;
use crate::workload::Latencies;

/// Puts per committed batch.
pub const BATCH_PUTS: u64 = 100;

/// What one run measured.
#[derive(Debug)]
pub struct WatchReport {
    /// Watchers.
    pub watchers: usize,
    /// Puts committed.
    pub puts: u64,
    /// Puts per second over the writes.
    pub commit_rate: f64,
    /// Events delivered in all (each put counts once per watcher it matches).
    pub events: u64,
    /// Events per second from the first put to the last delivery.
    pub event_rate: f64,
    /// Delivery latency p50 and p99, microseconds.
    pub latency_us: (f64, f64),
}

fn prefix_of(watcher: usize) -> Vec<u8> {
    if watcher.is_multiple_of(100) {
        b"p".to_vec()
    } else {
        format!("p{:02}/", watcher % 100).into_bytes()
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("p{:02}/{i:08}", i % 100).into_bytes()
}

/// Runs `puts` puts with `watchers` watchers on a fresh database in `dir`.
pub fn run(dir: &std::path::Path, watchers: usize, puts: u64) -> BenchResult<WatchReport> {
    let options = Options {
        durability: Durability::Sync,
        ..Options::default()
    };
    let db = Db::open(dir, options)?;
    let all: Vec<(Vec<u8>, Watcher)> = (0..watchers)
        .map(|j| {
            let prefix = prefix_of(j);
            db.watch(WatchRequest {
                buffer_events_max: usize::MAX,
                ..WatchRequest::prefix(&prefix)
            })
            .map(|w| (prefix, w))
        })
        .collect::<Result<_, _>>()?;
    let expected: u64 = all
        .iter()
        .map(|(prefix, _)| (0..puts).filter(|&i| key(i).starts_with(prefix)).count() as u64)
        .sum();
    // Commit time of each batch's revision, by revision.
    let committed: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let delivered = AtomicU64::new(0);
    let latencies = Mutex::new(Latencies::with_capacity(1024));
    let started = Instant::now();
    let (write_elapsed, last_delivery) = std::thread::scope(|scope| -> BenchResult<_> {
        let readers: Vec<_> = (0..2usize)
            .map(|r| {
                let mine: Vec<&Watcher> = all.iter().skip(r).step_by(2).map(|(_, w)| w).collect();
                let (committed, delivered, latencies) = (&committed, &delivered, &latencies);
                scope.spawn(move || -> BenchResult<Instant> {
                    let mut last = Instant::now();
                    let mut local = Latencies::with_capacity(1024);
                    while delivered.load(Ordering::Relaxed) < expected {
                        let mut idle = true;
                        for watcher in &mine {
                            while let Some(response) = watcher.try_next()? {
                                let WatchResponse::Events { revision, events } = response else {
                                    continue;
                                };
                                idle = false;
                                last = Instant::now();
                                let at = commit_time(
                                    &committed.lock().unwrap_or_else(|e| e.into_inner()),
                                    revision,
                                );
                                local.record(
                                    at.map_or(Duration::ZERO, |t| {
                                        last.saturating_duration_since(t)
                                    }),
                                );
                                delivered.fetch_add(events.len() as u64, Ordering::Relaxed);
                            }
                        }
                        if idle {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                    latencies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(local);
                    Ok(last)
                })
            })
            .collect();
        for batch in 0..puts.div_ceil(BATCH_PUTS) {
            let mut writes = WriteBatch::new();
            for i in batch * BATCH_PUTS..((batch + 1) * BATCH_PUTS).min(puts) {
                writes.put(&key(i), &[b'v'; 100]);
            }
            let revision = db.write(writes)?;
            committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((revision, Instant::now()));
        }
        let write_elapsed = started.elapsed();
        let mut last = started;
        for reader in readers {
            let done = reader.join().map_err(|_| "a reader thread panicked")??;
            last = last.max(done);
        }
        Ok((write_elapsed, last))
    })?;
    let events = delivered.load(Ordering::Relaxed);
    if events != expected {
        return Err(format!("{events} events delivered, {expected} expected").into());
    }
    let mut latencies = latencies.into_inner().unwrap_or_else(|e| e.into_inner());
    let delivery_elapsed = last_delivery
        .saturating_duration_since(started)
        .max(write_elapsed);
    db.close()?;
    Ok(WatchReport {
        watchers,
        puts,
        commit_rate: puts as f64 / write_elapsed.as_secs_f64(),
        events,
        event_rate: events as f64 / delivery_elapsed.as_secs_f64(),
        latency_us: if events == 0 {
            (0.0, 0.0)
        } else {
            (latencies.percentile_us(0.50), latencies.percentile_us(0.99))
        },
    })
}

/// When the batch of `revision` returned (revisions come in order).
fn commit_time(committed: &[(u64, Instant)], revision: u64) -> Option<Instant> {
    committed
        .binary_search_by_key(&revision, |(r, _)| *r)
        .ok()
        .and_then(|i| committed.get(i))
        .map(|(_, at)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watcher_gets_every_event_of_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(dir.path(), 3, 1_000).unwrap();
        // Watcher 0 watches every key, 1 and 2 one prefix each (10 of the 1,000 puts).
        assert_eq!(report.events, 1_000 + 10 + 10);
        assert!(report.latency_us.1 >= report.latency_us.0);
    }
}
