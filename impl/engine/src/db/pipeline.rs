//! [`Pipeline`]: the commit pipeline's state and locks. The protocol that drives it is in
//! `commit`; this module owns who may do what, and in which order.
//!
//! Locks, in the only order they are ever nested:
//! - `queue`: the group-commit queue; held only to enqueue, to take a group, to hand leadership
//!   on, or to post results. Each caller waits on a condvar of its own, so a post wakes only
//!   the callers whose results it holds and a hand-over only the next leader, never every
//!   waiting writer (with 64 writers, waking all of them at each step cost 11x the throughput).
//! - `syncing` → `writer`: `syncing` serializes WAL syncs and is held across one (a
//!   [`SyncPoint`] is taken and finished under brief holds of `writer`, and run without it).
//! - `writer` → `published`: `writer` is held by the leader that decides, logs and applies a
//!   group (never across a sync); `published` by whoever takes its publishing turn, while it
//!   calls the observers.
//!
//! Invariants:
//! - Revisions are assigned under `writer`, in WAL order, one per commit that writes;
//!   `Writer::last_revision` is the newest applied (in a memtable), `visible` the newest
//!   published, and `visible <= last_revision`. Likewise `Writer::last_stamp` is the highest
//!   stamp applied and `visible_stamp` the highest published, `visible_stamp <= last_stamp`.
//! - Every group takes a turn under `writer`, in the order the groups were applied; turns are
//!   published strictly in that order, so `visible` only grows and observers see revisions in
//!   order, each once. A group that failed (its append or its sync, or an earlier group's) fails
//!   every later turn, whose members then fail too: nothing is published past a commit that may
//!   be lost.
//! - An observer registered with [`Pipeline::observe`] is told of every revision above the
//!   applied one at its registration, in order, once each, and of no other: every group applied
//!   after it captures its changes for observers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::format::manifest::LeaseMeta;
use crate::lease::LeaseTable;
use crate::metrics::{Counter, Recorder};
use crate::wal::WalWriter;

use super::commit::{Answers, Committed, Request};
use super::inner::{lock, wait};

/// Told of every committed revision's changes, in revision order, once each, after the commit is
/// published (readable) and as durable as its durability mode promises. Called while the
/// pipeline holds its publishing turn: it must return quickly (hand the changes to another
/// thread) and must not commit to the database itself.
pub trait CommitObserver: Send + Sync {
    /// The commit of `revision` wrote `changes` (every version it created, tombstones included,
    /// in the order the commit wrote them), shared: an observer that keeps them clones the `Arc`,
    /// not the entries.
    fn committed(&self, revision: u64, changes: &Arc<[Entry]>);

    /// Every commit up to `revision` is durable: its WAL record synced, or its version in a
    /// table a durable manifest names. Told in increasing order, under the same turn-taking as
    /// [`CommitObserver::committed`]; a commit may be told durable before it is told committed
    /// (a syncing commit is synced, then published). The default ignores it.
    fn durable(&self, revision: u64) {
        let _ = revision;
    }
}

/// The WAL writer, the revision counter and the lease table, owned by whoever holds the writer
/// lock.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) wal: WalWriter,
    /// The last revision assigned (and applied).
    pub(crate) last_revision: u64,
    /// The highest stamp logged (and applied); 0 if none.
    pub(crate) last_stamp: u64,
    /// The leases as of the last applied commit.
    pub(crate) leases: LeaseTable,
    /// The next publishing turn to hand out.
    next_turn: u64,
    /// Whether groups must capture their changes for observers.
    observed: bool,
}

impl Writer {
    /// Takes the next publishing turn: the group holding the writer lock publishes after every
    /// group that took one before it.
    pub(crate) fn take_turn(&mut self) -> Turn {
        let turn = Turn {
            number: self.next_turn,
            capture: self.observed,
        };
        self.next_turn = self.next_turn.wrapping_add(1);
        turn
    }

    /// How many turns were taken so far: once as many are published, every group applied
    /// before this call is.
    pub(crate) fn turns_taken(&self) -> u64 {
        self.next_turn
    }
}

/// A group's place in the publishing order.
#[derive(Debug)]
pub(crate) struct Turn {
    number: u64,
    /// Whether the group must capture its changes for observers.
    pub(crate) capture: bool,
}

/// The group-commit queue (under `Pipeline::queue`).
#[derive(Debug, Default)]
struct Queue {
    pending: Vec<(u64, Request)>,
    /// The condvar of each caller with requests in `pending`, in arrival order (non-empty
    /// exactly when `pending` is).
    pending_callers: Vec<Arc<Condvar>>,
    results: HashMap<u64, Result<Committed>>,
    next_ticket: u64,
    /// A leader is applying a group (under the writer lock).
    leader_active: bool,
}

/// The publishing order's state (under `Pipeline::published`).
struct Published {
    /// The turn to publish next.
    next_turn: u64,
    /// The error of the first group that failed: every later turn fails with it.
    failed: Option<Error>,
    /// The observers, each with the revision above which it is told of commits.
    observers: Vec<(u64, Arc<dyn CommitObserver>)>,
    /// The condvar of each group waiting for its turn, by turn: the turn published before it
    /// wakes it alone.
    turn_waiters: HashMap<u64, Arc<Condvar>>,
    /// Threads waiting on `Pipeline::published_cv`: a publish notifies it only when one is (a
    /// notification is a `futex` system call even when nobody waits, two a commit otherwise).
    publish_waiters: usize,
}

/// See the module doc.
pub(crate) struct Pipeline {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
    syncing: Mutex<()>,
    published: Mutex<Published>,
    /// Signalled at each published turn, for [`Pipeline::wait_published`] and
    /// [`Pipeline::wait_turns_published`] (groups waiting for their turn wait in `turn_waiters`).
    published_cv: Condvar,
    visible: AtomicU64,
    /// The highest stamp of a published commit.
    visible_stamp: AtomicU64,
    /// Every commit up to it is durable (under `published`, so observers hear of it in order).
    durable: AtomicU64,
    /// Where commits, groups and WAL syncs are counted.
    metrics: Arc<Recorder>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("visible", &self.visible)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// The pipeline of a database whose WAL continues with `wal` after `last_revision` and
    /// `last_stamp`, with `leases` granted, counting into `metrics`.
    pub(crate) fn new(
        wal: WalWriter,
        (last_revision, last_stamp): (u64, u64),
        leases: LeaseTable,
        metrics: Arc<Recorder>,
    ) -> Pipeline {
        Pipeline {
            queue: Mutex::default(),
            writer: Mutex::new(Writer {
                wal,
                last_revision,
                last_stamp,
                leases,
                next_turn: 0,
                observed: false,
            }),
            syncing: Mutex::new(()),
            published: Mutex::new(Published {
                next_turn: 0,
                failed: None,
                observers: Vec::new(),
                turn_waiters: HashMap::new(),
                publish_waiters: 0,
            }),
            published_cv: Condvar::new(),
            visible: AtomicU64::new(last_revision),
            visible_stamp: AtomicU64::new(last_stamp),
            durable: AtomicU64::new(last_revision),
            metrics,
        }
    }

    /// Queues `requests`, in order, and waits for their results. While no leader applies a
    /// group and requests wait, the caller leads: it takes every waiting request, runs `apply`
    /// on them (under the writer lock, which `apply` takes), hands leadership on, runs `finish`
    /// on what `apply` returned (sync and publish, without it) and posts the answers.
    pub(crate) fn submit_all<A>(
        &self,
        requests: Vec<Request>,
        apply: impl Fn(Vec<(u64, Request)>) -> A,
        finish: impl Fn(A) -> Answers,
    ) -> Vec<Result<Committed>> {
        // Its own condvar (a condvar must not serve two mutexes, so not one per thread).
        let woken = Arc::new(Condvar::new());
        let mut queue = lock(&self.queue);
        let first = queue.next_ticket;
        for request in requests {
            let ticket = queue.next_ticket;
            queue.next_ticket = queue.next_ticket.wrapping_add(1);
            queue.pending.push((ticket, request));
        }
        let tickets: Vec<u64> = (0..queue.next_ticket.wrapping_sub(first))
            .map(|n| first.wrapping_add(n))
            .collect();
        if !tickets.is_empty() {
            queue.pending_callers.push(Arc::clone(&woken));
        }
        loop {
            if tickets.iter().all(|t| queue.results.contains_key(t)) {
                return tickets
                    .iter()
                    .filter_map(|t| queue.results.remove(t))
                    .collect();
            }
            if !queue.leader_active && !queue.pending.is_empty() {
                queue.leader_active = true;
                let group = std::mem::take(&mut queue.pending);
                let members = std::mem::take(&mut queue.pending_callers);
                drop(queue);
                let applied = apply(group);
                // The next leader may apply while this group syncs: the first caller queued
                // meanwhile leads (unless a newer arrival takes the lead first).
                queue = lock(&self.queue);
                queue.leader_active = false;
                if let Some(next_leader) = queue.pending_callers.first() {
                    next_leader.notify_one();
                }
                drop(queue);
                let answers = finish(applied);
                queue = lock(&self.queue);
                queue.results.extend(answers);
                // The leader is one of the members and is not waiting.
                for member in members.iter().filter(|m| !Arc::ptr_eq(m, &woken)) {
                    member.notify_one();
                }
                continue;
            }
            queue = wait(&woken, queue);
        }
    }

    /// The writer lock (see the module doc).
    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// The newest published revision: every commit up to it is readable, whole.
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// The highest stamp of a published commit (0 if none).
    pub(crate) fn visible_stamp(&self) -> u64 {
        self.visible_stamp.load(Ordering::Acquire)
    }

    /// Makes every record appended before this call durable: waits for a sync running now,
    /// then syncs whatever it did not cover, with the writer lock held only to take and finish
    /// the sync point. A failure poisons the WAL writer and is returned.
    pub(crate) fn sync_wal(&self) -> Result<()> {
        let wanted = self.writer().wal.end_offset();
        let _syncing = lock(&self.syncing);
        let (point, last_revision) = {
            let mut writer = self.writer();
            if writer.wal.synced_offset() >= wanted {
                return Ok(());
            }
            (writer.wal.sync_point()?, writer.last_revision)
        };
        if let Some(point) = point {
            let started = Instant::now();
            let outcome = point.run();
            let elapsed = started.elapsed();
            self.writer().wal.finish_sync(&point, outcome)?;
            self.metrics.observe_sync(elapsed);
        }
        self.mark_durable(last_revision);
        Ok(())
    }

    /// Every commit up to `revision` is durable: tells the observers if that is news.
    pub(crate) fn mark_durable(&self, revision: u64) {
        let published = lock(&self.published);
        if self.durable.fetch_max(revision, Ordering::AcqRel) < revision {
            for (_, observer) in &published.observers {
                observer.durable(revision);
            }
        }
    }

    /// The newest revision every commit up to which is durable.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Waits for `turn`, then publishes it: if its group succeeded (`outcome`) and every earlier
    /// one did, `revision` (the group's last, if it wrote) becomes visible and the observers are
    /// told of `changes`, and `stamp` (the highest logged once the group was applied) becomes
    /// the visible stamp. Otherwise it fails with the group's error, or a [`Error::Poisoned`]
    /// carrying the earlier group's, and so does every later turn. `commits` is how many of its
    /// members committed.
    pub(crate) fn publish(
        &self,
        turn: Turn,
        outcome: Result<()>,
        revision: Option<u64>,
        commits: u64,
        changes: &[(u64, Arc<[Entry]>)],
        stamp: u64,
    ) -> Result<()> {
        let mut published = lock(&self.published);
        if published.next_turn != turn.number {
            let woken = Arc::new(Condvar::new());
            published
                .turn_waiters
                .insert(turn.number, Arc::clone(&woken));
            while published.next_turn != turn.number {
                published = wait(&woken, published);
            }
            published.turn_waiters.remove(&turn.number);
        }
        published.next_turn = published.next_turn.wrapping_add(1);
        if let Some(next) = published.turn_waiters.get(&published.next_turn) {
            next.notify_one();
        }
        if published.publish_waiters > 0 {
            self.published_cv.notify_all();
        }
        if let Some(failed) = &published.failed {
            return Err(Error::poisoned(failed));
        }
        if let Err(e) = outcome {
            published.failed = Some(e.duplicate());
            return Err(e);
        }
        // Also for a group that took no revision (a grant, a revocation without keys).
        self.visible_stamp.fetch_max(stamp, Ordering::AcqRel);
        if let Some(revision) = revision {
            self.visible.store(revision, Ordering::Release);
            self.metrics.add(Counter::Commits, commits);
            self.metrics.inc(Counter::CommitGroups);
            for (revision, entries) in changes {
                for (after, observer) in &published.observers {
                    if revision > after {
                        observer.committed(*revision, entries);
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until `revision` is published; the failure that means it never will be, if one
    /// does.
    pub(crate) fn wait_published(&self, revision: u64) -> Result<()> {
        let mut published = lock(&self.published);
        loop {
            if self.visible() >= revision {
                return Ok(());
            }
            if let Some(failed) = &published.failed {
                return Err(Error::poisoned(failed));
            }
            published = self.wait_for_publish(published);
        }
    }

    /// Waits until the first `turns` turns are published (see [`Writer::turns_taken`]); the
    /// failure that means they never will be, if one does.
    pub(crate) fn wait_turns_published(&self, turns: u64) -> Result<()> {
        let mut published = lock(&self.published);
        loop {
            if let Some(failed) = &published.failed {
                return Err(Error::poisoned(failed));
            }
            if published.next_turn >= turns {
                return Ok(());
            }
            published = self.wait_for_publish(published);
        }
    }

    /// Waits for the next publish, counted in `publish_waiters` meanwhile (under the lock, so a
    /// publish either sees the count or happened before the caller checked what it waits for).
    fn wait_for_publish<'a>(
        &self,
        mut published: MutexGuard<'a, Published>,
    ) -> MutexGuard<'a, Published> {
        published.publish_waiters = published.publish_waiters.saturating_add(1);
        let mut published = wait(&self.published_cv, published);
        published.publish_waiters = published.publish_waiters.saturating_sub(1);
        published
    }

    /// Runs `read` on the lease table under the writer lock, then waits until every group
    /// applied before it is published, so what it returns is as visible (and as durable as
    /// promised) as the commits it reflects: a lease read never reports a grant or a
    /// revocation a failed sync could still take back.
    pub(crate) fn read_leases<T>(&self, read: impl FnOnce(&mut LeaseTable) -> T) -> Result<T> {
        self.read_applied(|writer| read(&mut writer.leases))
    }

    /// The granted leases and the last revision, read together (as [`Pipeline::read_leases`]
    /// reads): every key a version up to that revision attaches is attached to one of them.
    pub(crate) fn leases_at_last_revision(&self) -> Result<(Arc<[LeaseMeta]>, u64)> {
        self.read_applied(|writer| (writer.leases.granted(), writer.last_revision))
    }

    /// Runs `read` under the writer lock, then waits until every group applied before it is
    /// published.
    fn read_applied<T>(&self, read: impl FnOnce(&mut Writer) -> T) -> Result<T> {
        let (value, turns) = {
            let mut writer = self.writer();
            let value = read(&mut writer);
            (value, writer.turns_taken())
        };
        self.wait_turns_published(turns)?;
        Ok(value)
    }

    /// Registers `observer`; returns the revision above which it is told of every commit (see
    /// the module doc). Does not wait for that revision to be published.
    pub(crate) fn observe(&self, observer: Arc<dyn CommitObserver>) -> u64 {
        let mut writer = self.writer();
        writer.observed = true;
        let after = writer.last_revision;
        lock(&self.published).observers.push((after, observer));
        after
    }
}
