//! The write pipeline: validate, queue, and let one leader decide, log, sync, apply and publish a
//! whole group of commits.
//!
//! Protocol, for every durability mode (one code path):
//! 1. The caller validates its proposal ([`super::batch::validate`], [`Txn::validate`]), waits
//!    out a write stall, and enqueues it with a ticket.
//! 2. If no leader is active, the caller becomes the leader: it takes every queued proposal and,
//!    holding the writer lock, runs them in chunks: a run of plain writes is one chunk, a
//!    transaction (etcd `Txn` or optimistic) a chunk of its own, so that it is decided against
//!    every commit before it, published.
//! 3. Per chunk, the stages: **decide** (pure functions of the published read view plus the
//!    chunk's earlier members: each write's revision and version metadata, a txn's compares and
//!    results, an optimistic transaction's conflict check; a proposal that writes nothing takes
//!    no revision, one whose decision fails is refused alone), **log** (append each record),
//!    **sync** (once, if any member asked for [`Durability::Sync`] or
//!    [`Durability::GroupCommit`]; a failed append or sync poisons the database and fails every
//!    member not yet published), **apply** (insert into the active memtable) and **publish**
//!    (the chunk's last revision becomes visible: a commit is seen whole or not at all).
//! 4. The leader releases the writer lock, posts every result and wakes the followers.
//!
//! Invariants:
//! - A write returns `Ok` in a syncing mode only after a successful sync covering its record (and
//!   every record before it, also for a proposal that logged nothing); revisions are assigned in
//!   WAL order, strictly increasing, one per commit that writes.
//! - A follower returns only the result the leader posted for its ticket; the queue is bounded by
//!   the number of writer threads (each waits for its own result before enqueueing again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::format::wal::WalBody;
use crate::options::Durability;
use crate::range::KeyRange;
use crate::txn::{Txn, TxnResponse, conflict, evaluate};

use super::batch::{into_entries, validate};
use super::decide::{Overlay, metas};
use super::inner::{Inner, Writer, lock, wait};
use super::txn_view::DecideView;

/// What a commit asks for.
#[derive(Debug)]
pub(crate) enum Proposal {
    /// A put, a delete or a batch.
    Write(WalBody),
    /// An etcd `Txn`.
    Txn(Txn),
    /// An optimistic transaction: its writes, if nothing it read at `snapshot` was written since.
    Optimistic {
        snapshot: u64,
        reads: Vec<Vec<u8>>,
        scans: Vec<KeyRange>,
        writes: Option<WalBody>,
    },
}

/// What a commit did.
#[derive(Debug)]
pub(crate) enum Committed {
    /// The revision of the commit (or, for a proposal that wrote nothing, the one it read at).
    Revision(u64),
    /// A txn's response.
    Txn(TxnResponse),
}

/// One queued commit.
#[derive(Debug)]
pub(crate) struct Request {
    proposal: Proposal,
    sync: bool,
}

/// The group-commit queue (under `Inner::queue`).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pending: Vec<(u64, Request)>,
    results: HashMap<u64, Result<Committed>>,
    next_ticket: u64,
    leader_active: bool,
}

/// What a proposal logs: its revision, its record and each op's metadata.
type Logged = (u64, WalBody, Vec<VersionMeta>);

/// A decided member of a chunk: what to log, and what to answer once it is published.
struct Decided {
    ticket: u64,
    /// `None`: nothing to log (the answer is final).
    body: Option<Logged>,
    answer: Committed,
}

impl Inner {
    /// Commits `body` with `durability`; returns its revision. See the module doc.
    pub(crate) fn commit(&self, body: WalBody, durability: Durability) -> Result<u64> {
        validate(&body)?;
        match self.propose(Proposal::Write(body), durability)? {
            Committed::Revision(revision) => Ok(revision),
            Committed::Txn(response) => Ok(response.revision),
        }
    }

    /// Runs `txn` with `durability`. See the module doc.
    pub(crate) fn commit_txn(&self, txn: Txn, durability: Durability) -> Result<TxnResponse> {
        txn.validate()?;
        match self.propose(Proposal::Txn(txn), durability)? {
            Committed::Txn(response) => Ok(response),
            Committed::Revision(revision) => Ok(TxnResponse {
                succeeded: true,
                revision,
                results: Vec::new(),
            }),
        }
    }

    /// Queues `proposal` and waits for its result (steps 1, 2 and 4 of the module doc).
    pub(crate) fn propose(&self, proposal: Proposal, durability: Durability) -> Result<Committed> {
        self.check_usable()?;
        self.stall_writes();
        let sync = durability != Durability::Buffered;
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket = queue.next_ticket.wrapping_add(1);
        queue.pending.push((ticket, Request { proposal, sync }));
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

    /// Runs one group, chunk by chunk (steps 2 and 3 of the module doc).
    fn commit_group(&self, group: Vec<(u64, Request)>) -> Vec<(u64, Result<Committed>)> {
        let mut writer = lock(&self.writer);
        let mut results = Vec::with_capacity(group.len());
        let mut chunk: Vec<(u64, Request)> = Vec::new();
        for (ticket, request) in group {
            let alone = !matches!(request.proposal, Proposal::Write(_));
            if alone && !chunk.is_empty() {
                results.extend(self.commit_chunk(&mut writer, std::mem::take(&mut chunk)));
            }
            chunk.push((ticket, request));
            if alone {
                results.extend(self.commit_chunk(&mut writer, std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            results.extend(self.commit_chunk(&mut writer, chunk));
        }
        results
    }

    /// Decides, logs, syncs, applies and publishes one chunk (step 3 of the module doc).
    fn commit_chunk(
        &self,
        writer: &mut Writer,
        chunk: Vec<(u64, Request)>,
    ) -> Vec<(u64, Result<Committed>)> {
        let tickets: Vec<u64> = chunk.iter().map(|(t, _)| *t).collect();
        let fail_all = |e: &Error| tickets.iter().map(|&t| (t, Err(e.duplicate()))).collect();
        if let Err(e) = self.check_usable() {
            return fail_all(&e);
        }
        let created_at_ms = self.options.clock.now_ms();
        let needs_sync = chunk.iter().any(|(_, r)| r.sync);
        // Decide.
        let published = writer.last_revision;
        let mut revision = published;
        let mut overlay = Overlay::default();
        let mut results: Vec<(u64, Result<Committed>)> = Vec::new();
        let mut decided: Vec<Decided> = Vec::with_capacity(chunk.len());
        let members = chunk.len();
        let view = DecideView::new(self, published);
        for (n, (ticket, request)) in chunk.into_iter().enumerate() {
            match self.decide(request.proposal, &view, &overlay, revision, created_at_ms) {
                Ok((body, answer)) => {
                    if let Some((next, body, metas)) = &body {
                        // Only a later member of the chunk reads the overlay.
                        if n.saturating_add(1) < members {
                            overlay.record(body, metas);
                        }
                        revision = *next;
                    }
                    decided.push(Decided {
                        ticket,
                        body,
                        answer,
                    });
                }
                Err(e) => results.push((ticket, Err(e))),
            }
        }
        // Log.
        let mut applied: Vec<(u64, Committed, Vec<Entry>)> = Vec::with_capacity(decided.len());
        for member in decided {
            let Some((revision, body, metas)) = member.body else {
                results.push((member.ticket, Ok(member.answer)));
                continue;
            };
            let range = match writer.wal.append(revision, created_at_ms, &body) {
                Ok(range) => range,
                Err(e) => return fail_all(&self.poison(e)),
            };
            let entries = into_entries(body, revision, range.start, created_at_ms, &metas);
            applied.push((member.ticket, member.answer, entries));
        }
        // Sync, even when nothing of the chunk was logged: a transaction that committed nothing
        // in a syncing mode read what earlier (buffered) commits wrote, and must not report what
        // a crash could still take back. With nothing unsynced the sync does no I/O.
        if needs_sync {
            if let Err(e) = writer.wal.sync() {
                return fail_all(&self.poison(e));
            }
            self.commit_syncs.fetch_add(1, Ordering::Relaxed);
        }
        if applied.is_empty() {
            return results;
        }
        // Apply, then publish.
        let active = Arc::clone(lock(&self.state).active());
        let count = u64::try_from(applied.len()).unwrap_or(u64::MAX);
        for (ticket, answer, entries) in applied {
            for entry in entries {
                active.insert(entry);
            }
            results.push((ticket, Ok(answer)));
        }
        writer.last_revision = revision;
        self.commits.fetch_add(count, Ordering::Relaxed);
        self.visible.store(revision, Ordering::Release);
        results
    }

    /// The decide stage for one proposal, after the chunk's earlier members (`overlay`, and
    /// `revision`, the last one they took) over the published `view`: what it logs (if
    /// anything) and what it answers once published.
    fn decide(
        &self,
        proposal: Proposal,
        view: &DecideView<'_>,
        overlay: &Overlay,
        revision: u64,
        created_at_ms: u64,
    ) -> Result<(Option<Logged>, Committed)> {
        let next = revision.checked_add(1).ok_or(Error::RevisionsExhausted)?;
        let decide_write = |body: WalBody| -> Result<Logged> {
            let before = |key: &[u8]| match overlay.get(key) {
                Some(meta) => Ok(Some(meta)),
                None => view.newest_meta(key),
            };
            let metas = metas(&body, next, before)?;
            Ok((next, body, metas))
        };
        let (body, answer) = match proposal {
            Proposal::Write(body) => (Some(decide_write(body)?), Committed::Revision(next)),
            Proposal::Txn(txn) => {
                let (succeeded, writes, results) = evaluate(&txn, view, next, created_at_ms)?;
                let body = if writes.is_empty() {
                    None
                } else {
                    let body = WalBody::Batch(writes);
                    validate(&body)?;
                    Some(decide_write(body)?)
                };
                let response = TxnResponse {
                    succeeded,
                    revision: if body.is_some() { next } else { revision },
                    results,
                };
                (body, Committed::Txn(response))
            }
            Proposal::Optimistic {
                snapshot,
                reads,
                scans,
                writes,
            } => {
                // Negative controls: skip the check, or check at `snapshot` (which always passes).
                let at = |view: &DecideView<'_>| conflict(view, snapshot, &reads, &scans);
                let check = || {
                    fail::fail_point!("txn::skip_conflict_check", |_| Ok(None));
                    fail::fail_point!("txn::stale_view", |_| at(&DecideView::new(self, snapshot)));
                    at(view)
                };
                if let Some(key) = check()? {
                    return Err(Error::Conflict { key });
                }
                match writes {
                    Some(body) => (Some(decide_write(body)?), Committed::Revision(next)),
                    None => (None, Committed::Revision(revision)),
                }
            }
        };
        Ok((body, answer))
    }
}
