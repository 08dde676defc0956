//! The `lease` churn workload (issue 13): N one-key leases granted (each with its key put
//! attached), kept alive once, and expired, against the same N keys put without leases.
//!
//! `threads` writer threads split the keys; each grants a lease and puts its key
//! (`put_with_lease`, two commits), or, for the baseline, puts the key alone (one commit), in
//! `Sync` mode, so concurrent writers share syncs (group commit). Then one thread keeps every
//! lease alive once (no I/O: a deadline moves), the clock (a manual one) passes every TTL, and one
//! `expire_leases` call revokes them all (one revision each, one group). Reported: grant+put
//! pairs per second and the plain puts per second (the ratio is the cost of a lease), keep-alives
//! per second, revocations per second and the expiry's wall time.
//!
//! Invariants: every lease is revoked by the one expiry, every key is gone after it, and none
//! is left granted, or the run fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvstore::clock::{Clock, ManualClock, SharedClock};
use kvstore::{Db, Durability, LeaseExpiry, Options, ScanOptions};

use crate::BenchResult;

/// Every lease's TTL; the clock then moves past it.
const TTL: Duration = Duration::from_secs(60);

/// What one run measured.
#[derive(Debug)]
pub struct LeaseReport {
    /// Leases (and keys).
    pub leases: u64,
    /// Writer threads.
    pub threads: usize,
    /// Plain puts per second (the baseline).
    pub put_rate: f64,
    /// Lease grants with their put, per second.
    pub grant_put_rate: f64,
    /// Keep-alives per second.
    pub keep_alive_rate: f64,
    /// Revocations per second in the expiry.
    pub revoke_rate: f64,
    /// The one expiry's wall time.
    pub expiry: Duration,
}

fn key(i: u64) -> Vec<u8> {
    format!("lease-key/{i:010}").into_bytes()
}

fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        durability: Durability::Sync,
        lease_expiry: LeaseExpiry::Manual,
        clock: SharedClock(Arc::clone(clock) as Arc<dyn Clock>),
        ..Options::default()
    }
}

/// Runs `per_key(db, i)` for every `i < n`, split over `threads` threads; returns the wall
/// time.
fn on_threads(
    db: &Db,
    n: u64,
    threads: usize,
    per_key: impl Fn(&Db, u64) -> kvstore::error::Result<()> + Sync,
) -> BenchResult<Duration> {
    let started = Instant::now();
    let threads_u64 = threads as u64;
    std::thread::scope(|scope| -> BenchResult<()> {
        let handles: Vec<_> = (0..threads_u64)
            .map(|t| {
                let per_key = &per_key;
                scope.spawn(move || -> kvstore::error::Result<()> {
                    (t..n).step_by(threads).try_for_each(|i| per_key(db, i))
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| "a writer thread panicked")??;
        }
        Ok(())
    })?;
    Ok(started.elapsed())
}

/// Runs the workload with `leases` leases and `threads` writers, on fresh databases under `dir`.
pub fn run(dir: &std::path::Path, leases: u64, threads: usize) -> BenchResult<LeaseReport> {
    let rate = |n: u64, elapsed: Duration| n as f64 / elapsed.as_secs_f64().max(1e-9);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));

    let baseline = Db::open(dir.join("plain"), options(&clock))?;
    let put_time = on_threads(&baseline, leases, threads, |db, i| {
        db.put(&key(i), b"v").map(|_| ())
    })?;
    baseline.close()?;

    let db = Db::open(dir.join("leased"), options(&clock))?;
    let ids: Vec<AtomicU64> = (0..leases).map(|_| AtomicU64::new(0)).collect();
    let grant_time = on_threads(&db, leases, threads, |db, i| {
        let lease = db.grant(TTL)?;
        db.put_with_lease(&key(i), b"v", lease)?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| ids.get(i)) {
            slot.store(lease, Ordering::Relaxed);
        }
        Ok(())
    })?;
    let ids: Vec<u64> = ids.into_iter().map(AtomicU64::into_inner).collect();

    let started = Instant::now();
    for &lease in &ids {
        db.keep_alive(lease)?;
    }
    let keep_alive_time = started.elapsed();

    clock.advance(u64::try_from(TTL.as_millis())? + 1);
    let started = Instant::now();
    let revoked = db.expire_leases()?;
    let expiry = started.elapsed();
    if revoked.len() as u64 != leases {
        return Err(format!("the expiry revoked {} of {leases} leases", revoked.len()).into());
    }
    let left = db
        .scan(kvstore::KeyRange::all(), ScanOptions::default())?
        .count();
    if left != 0 || !db.leases()?.is_empty() {
        return Err(format!("{left} keys and {} leases left", db.leases()?.len()).into());
    }
    db.close()?;
    Ok(LeaseReport {
        leases,
        threads,
        put_rate: rate(leases, put_time),
        grant_put_rate: rate(leases, grant_time),
        keep_alive_rate: rate(leases, keep_alive_time),
        revoke_rate: rate(leases, expiry),
        expiry,
    })
}
