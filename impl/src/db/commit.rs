//! The write pipeline: validate, queue, and let one leader log, sync, insert and publish a whole
//! group of commits.
//!
//! Protocol, for every durability mode (one code path):
//! 1. The caller validates its body ([`super::batch::validate`]), waits out a write stall, and
//!    enqueues it with a ticket.
//! 2. If no leader is active, the caller becomes the leader: it takes every queued request and,
//!    holding the writer lock, assigns each the next revision and appends its WAL record.
//! 3. If any request of the group asked for [`Durability::Sync`] or [`Durability::GroupCommit`],
//!    the leader syncs the WAL once. A failed append or sync poisons the database and fails the
//!    whole group: nothing of it is inserted or acknowledged, and no later write succeeds.
//! 4. The leader inserts the group's entries into the active memtable, then publishes the group's
//!    last revision as visible (a batch is therefore seen whole or not at all), releases the
//!    writer lock, posts every result and wakes the followers.
//!
//! Invariants:
//! - A write returns `Ok(revision)` in a syncing mode only after a successful sync covering its
//!   record; revisions are assigned in WAL order, strictly increasing, one per commit.
//! - A follower returns only the result the leader posted for its ticket; the queue is bounded by
//!   the number of writer threads (each waits for its own result before enqueueing again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::format::wal::WalBody;
use crate::options::Durability;

use super::batch::{into_entries, validate};
use super::decide::{Overlay, metas};
use super::inner::{Inner, lock, wait};

/// One queued commit.
#[derive(Debug)]
pub(crate) struct Request {
    body: WalBody,
    sync: bool,
}

/// The group-commit queue (under `Inner::queue`).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pending: Vec<(u64, Request)>,
    results: HashMap<u64, Result<u64>>,
    next_ticket: u64,
    leader_active: bool,
}

impl Inner {
    /// Commits `body` with `durability`; returns its revision. See the module doc.
    pub(crate) fn commit(&self, body: WalBody, durability: Durability) -> Result<u64> {
        validate(&body)?;
        self.check_usable()?;
        self.stall_writes();
        let sync = durability != Durability::Buffered;
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket = queue.next_ticket.wrapping_add(1);
        queue.pending.push((ticket, Request { body, sync }));
        loop {
            if let Some(result) = queue.results.remove(&ticket) {
                drop(queue);
                if result.is_ok() {
                    self.after_commit();
                }
                return result;
            }
            if !queue.leader_active {
                queue.leader_active = true;
                let group = std::mem::take(&mut queue.pending);
                drop(queue);
                let results = self.commit_group(group);
                queue = lock(&self.queue);
                queue.leader_active = false;
                queue.results.extend(results);
                self.queue_cv.notify_all();
                continue;
            }
            queue = wait(&self.queue_cv, queue);
        }
    }

    /// Logs, syncs, inserts and publishes one group (steps 2-4 of the module doc).
    fn commit_group(&self, group: Vec<(u64, Request)>) -> Vec<(u64, Result<u64>)> {
        let tickets: Vec<u64> = group.iter().map(|(t, _)| *t).collect();
        let fail_all = |e: &Error| tickets.iter().map(|&t| (t, Err(e.duplicate()))).collect();
        let mut writer = lock(&self.writer);
        if let Err(e) = self.check_usable() {
            return fail_all(&e);
        }
        let created_at_ms = self.options.clock.now_ms();
        let needs_sync = group.iter().any(|(_, r)| r.sync);
        // Decide: each commit's revision and its ops' metadata, against the state before it
        // (published commits, plus the earlier members of the group). A commit whose decision
        // fails (a read of the key's newest version failed) is refused alone: nothing was logged.
        let mut revision = writer.last_revision;
        let mut overlay = Overlay::default();
        let mut refused: Vec<(u64, Result<u64>)> = Vec::new();
        let mut decided: Vec<(u64, u64, Request, Vec<VersionMeta>)> =
            Vec::with_capacity(group.len());
        for (ticket, request) in group {
            let Some(next) = revision.checked_add(1) else {
                refused.push((ticket, Err(Error::RevisionsExhausted)));
                continue;
            };
            let before = |key: &[u8]| match overlay.get(key) {
                Some(meta) => Ok(Some(meta)),
                None => self.newest_meta(key, writer.last_revision),
            };
            match metas(&request.body, next, before) {
                Ok(metas) => {
                    overlay.record(&request.body, &metas);
                    revision = next;
                    decided.push((ticket, revision, request, metas));
                }
                Err(e) => refused.push((ticket, Err(e))),
            }
        }
        // Log: a failed append poisons the database and fails the whole group.
        let mut assigned: Vec<(u64, u64, Vec<Entry>)> = Vec::with_capacity(decided.len());
        for (ticket, revision, request, metas) in decided {
            let range = match writer.wal.append(revision, created_at_ms, &request.body) {
                Ok(range) => range,
                Err(e) => return fail_all(&self.poison(e)),
            };
            let entries = into_entries(request.body, revision, range.start, created_at_ms, &metas);
            assigned.push((ticket, revision, entries));
        }
        if needs_sync {
            if let Err(e) = writer.wal.sync() {
                return fail_all(&self.poison(e));
            }
            self.commit_syncs.fetch_add(1, Ordering::Relaxed);
        }
        let active = Arc::clone(lock(&self.state).active());
        let mut results = Vec::with_capacity(assigned.len());
        for (ticket, revision, entries) in assigned {
            for entry in entries {
                active.insert(entry);
            }
            results.push((ticket, Ok(revision)));
        }
        writer.last_revision = revision;
        results.extend(refused);
        let count = results.iter().filter(|(_, r)| r.is_ok()).count();
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        self.commits.fetch_add(count, Ordering::Relaxed);
        self.visible.store(revision, Ordering::Release);
        results
    }
}
