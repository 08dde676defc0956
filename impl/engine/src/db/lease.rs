//! Leases on the [`Db`] handle (`spec/SEMANTICS.md`, "Leases"): grant, keep alive, revoke,
//! read, and expire, each through the commit pipeline or its lease table.
//!
//! Invariants:
//! - A grant and a revocation are commits: decided against the writer's lease table, logged,
//!   applied, and answered once published and as durable as the database's mode promises. A
//!   revocation deletes every key attached to the lease in one revision (none if it has no key).
//! - An expiry is a revocation decided only if the lease's deadline has passed by the clock
//!   reading the expiry took: a lease kept alive in between is left alone.
//! - Lease reads ([`Db::time_to_live`], [`Db::leases`], [`Db::keep_alive`]) wait until every
//!   commit applied before them is published, so they never report a grant or a revocation a
//!   failed sync could still take back.
//! - The expiry thread ([`crate::LeaseExpiry::Every`]) holds no lock while it sleeps and stops
//!   before the database closes.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::manifest::MANIFEST_FILE_NAME;
use crate::lease::{LEASE_TTL_MS_MAX, LeaseStatus};
use crate::metrics::Counter;
use crate::range::KeyRange;

use super::batch::check_lease_id;
use super::commit::{CommitMode, Committed, Proposal, unexpected_answer};
use super::inner::{Inner, lock};
use super::read::ScanOptions;
use super::{Db, WriteOptions};

/// A TTL in the format's milliseconds: `1..=LEASE_TTL_MS_MAX`.
fn ttl_ms(ttl: Duration) -> Result<u64> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    if !(1..=LEASE_TTL_MS_MAX).contains(&ms) {
        return Err(Error::InvalidArgument(format!(
            "lease TTL of {ttl:?} is outside 1 ms..=LEASE_TTL_MS_MAX ({LEASE_TTL_MS_MAX} ms)"
        )));
    }
    Ok(ms)
}

impl Db {
    /// Grants a lease of `ttl` (at least a millisecond, at most etcd's 9·10^9 s) under an id the
    /// engine chooses; returns the id. Keys attached to it ([`Db::put_with_lease`]) are deleted
    /// when it is revoked or expires.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kvstore::{Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let lease = db.grant(Duration::from_secs(10))?;
    /// db.put_with_lease(b"session/alice", b"online", lease)?;
    /// assert_eq!(db.time_to_live(lease)?.unwrap().keys, vec![b"session/alice".to_vec()]);
    /// db.keep_alive(lease)?; // ten more seconds
    /// db.revoke(lease)?; // deletes session/alice in one revision
    /// assert_eq!(db.get(b"session/alice")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grant(&self, ttl: Duration) -> Result<u64> {
        self.grant_lease(None, ttl, WriteOptions::default())
    }

    /// Grants lease `id` (`1..=LEASE_ID_MAX`) for `ttl`; [`Error::LeaseExists`] if it is
    /// granted.
    pub fn grant_id(&self, id: u64, ttl: Duration) -> Result<u64> {
        self.grant_id_with(id, ttl, WriteOptions::default())
    }

    /// [`Db::grant_id`] with per-write options: its durability and stamp
    /// ([`WriteOptions::stamp`]; a grant is logged, so it records its stamp). `opts.lease` is
    /// ignored.
    pub fn grant_id_with(&self, id: u64, ttl: Duration, opts: WriteOptions) -> Result<u64> {
        if id == 0 {
            return Err(Error::InvalidArgument(
                "lease id 0 means no lease".to_owned(),
            ));
        }
        check_lease_id(id)?;
        self.grant_lease(Some(id), ttl, opts)
    }

    fn grant_lease(&self, lease: Option<u64>, ttl: Duration, opts: WriteOptions) -> Result<u64> {
        let proposal = Proposal::Grant {
            lease,
            ttl_ms: ttl_ms(ttl)?,
        };
        match self.inner().propose(proposal, self.mode(opts))? {
            Committed::Granted(id) => Ok(id),
            _ => Err(unexpected_answer()),
        }
    }

    /// Sets `key` to `value` attached to `lease`; returns the revision. [`Error::LeaseNotFound`]
    /// if the lease is not granted (never, revoked, or expired and revoked).
    pub fn put_with_lease(&self, key: &[u8], value: &[u8], lease: u64) -> Result<u64> {
        self.put_with(
            key,
            value,
            WriteOptions {
                lease,
                ..WriteOptions::default()
            },
        )
    }

    /// Sugar for a key that lives `ttl`: grants a lease of its own, then puts `key` attached to
    /// it. Returns the lease and the put's revision. Two commits: if the put fails, the lease
    /// stays granted, without keys, until it expires.
    pub fn put_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(u64, u64)> {
        let lease = self.grant(ttl)?;
        let revision = self.put_with_lease(key, value, lease)?;
        Ok((lease, revision))
    }

    /// Refreshes `lease`'s deadline to its whole TTL from now; returns the TTL.
    /// [`Error::LeaseNotFound`] if it is not granted or its deadline has passed (its
    /// revocation is pending), as in etcd. Not logged: deadlines are not durable.
    pub fn keep_alive(&self, lease: u64) -> Result<Duration> {
        let inner = self.inner();
        inner.check_writable()?;
        let now_ms = inner.options.clock.now_ms();
        let ttl = inner
            .pipeline
            .read_leases(|leases| leases.keep_alive(lease, now_ms))??;
        Ok(Duration::from_millis(ttl))
    }

    /// Revokes `lease`: deletes every key attached to it in one revision, and returns that
    /// revision (the current one if it had no key). [`Error::LeaseNotFound`] if it is not
    /// granted.
    pub fn revoke(&self, lease: u64) -> Result<u64> {
        self.revoke_with(lease, WriteOptions::default())
    }

    /// [`Db::revoke`] with per-write options: its durability and stamp
    /// ([`WriteOptions::stamp`]; a revocation is logged, also one without keys, so it records
    /// its stamp). `opts.lease` is ignored.
    pub fn revoke_with(&self, lease: u64, opts: WriteOptions) -> Result<u64> {
        let proposal = Proposal::Revoke {
            lease,
            due_at: None,
        };
        match self.inner().propose(proposal, self.mode(opts))? {
            Committed::Revoked(revision) => Ok(revision),
            _ => Err(unexpected_answer()),
        }
    }

    /// `lease`'s TTL, time left and attached keys; `None` if it is not granted.
    pub fn time_to_live(&self, lease: u64) -> Result<Option<LeaseStatus>> {
        let inner = self.inner();
        inner.check_open()?;
        let now_ms = inner.options.clock.now_ms();
        inner
            .pipeline
            .read_leases(|leases| leases.status(lease, now_ms))
    }

    /// The ids of the granted leases, ascending.
    pub fn leases(&self) -> Result<Vec<u64>> {
        let inner = self.inner();
        inner.check_open()?;
        inner.pipeline.read_leases(|leases| leases.ids())
    }

    /// Revokes every lease whose deadline has passed by the clock now, earliest deadline
    /// first, one revocation each, in one group (one sync); returns each lease revoked with the
    /// revision of its revocation (the one before, for a lease without keys). The expiry
    /// thread calls it; with [`crate::LeaseExpiry::Manual`] only callers do.
    pub fn expire_leases(&self) -> Result<Vec<(u64, u64)>> {
        self.inner().expire_leases()
    }
}

impl Inner {
    /// [`Db::expire_leases`].
    pub(crate) fn expire_leases(&self) -> Result<Vec<(u64, u64)>> {
        self.check_writable()?;
        let now_ms = self.options.clock.now_ms();
        let due = self.pipeline.read_leases(|leases| leases.due(now_ms))?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let proposals = due
            .iter()
            .map(|&lease| Proposal::Revoke {
                lease,
                due_at: Some(now_ms),
            })
            .collect();
        let mode = CommitMode::unstamped(self.options.durability);
        let results = self.propose_all(proposals, mode)?;
        let mut revoked = Vec::new();
        for (lease, result) in due.into_iter().zip(results) {
            if let Committed::Revoked(revision) = result? {
                self.metrics.inc(Counter::LeasesExpired);
                revoked.push((lease, revision));
            }
        }
        Ok(revoked)
    }

    /// Step 7 of recovery (`open`): attaches every live key whose newest version names a lease
    /// to it.
    pub(crate) fn attach_leased_keys(&self) -> Result<()> {
        let rows = self.scan(KeyRange::all(), ScanOptions::default())?;
        let mut writer = self.pipeline.writer();
        for row in rows.versioned() {
            let (key, version) = row?;
            if version.lease != 0 && !writer.leases.attach_recovered(&key, version.lease) {
                return Err(Error::Corruption {
                    file: self.dir.join(MANIFEST_FILE_NAME),
                    offset: 0,
                    what: format!(
                        "live key {} names lease {}, which neither the manifest nor the WAL \
                         grants",
                        hex::encode(&key),
                        version.lease
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The expiry thread of [`crate::LeaseExpiry::Every`].
#[derive(Debug)]
pub(super) struct ExpiryThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl ExpiryThread {
    /// Starts a thread that calls [`Inner::expire_leases`] every `every` until stopped or the
    /// database is closed or poisoned.
    pub(super) fn start(inner: Arc<Inner>, every: Duration) -> Result<ExpiryThread> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let dir = inner.dir.clone();
        let thread = std::thread::Builder::new()
            .name("kvstore-lease-expiry".to_owned())
            .spawn(move || {
                let (stopped, cv) = &*signal;
                let mut guard = lock(stopped);
                loop {
                    guard = match cv.wait_timeout(guard, every) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                    if *guard {
                        return;
                    }
                    drop(guard);
                    if let Err(error) = inner.expire_leases() {
                        if inner.check_usable().is_err() {
                            return;
                        }
                        tracing::warn!(%error, "lease expiry failed; retrying");
                    }
                    guard = lock(stopped);
                }
            })
            .map_err(|e| Error::io("spawn lease expiry thread", &dir, e))?;
        Ok(ExpiryThread { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if self.thread.join().is_err() {
            tracing::warn!("the lease expiry thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_outside_the_format_are_refused() {
        assert!(ttl_ms(Duration::ZERO).is_err());
        assert!(ttl_ms(Duration::from_micros(999)).is_err());
        assert_eq!(ttl_ms(Duration::from_millis(1)).unwrap(), 1);
        assert!(ttl_ms(Duration::from_millis(LEASE_TTL_MS_MAX + 1)).is_err());
    }
}
