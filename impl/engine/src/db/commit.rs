//! The write pipeline's protocol: validate, queue, and let one leader decide, log, apply, sync,
//! publish and notify a whole group of commits. The state it drives, and its locks, are
//! [`super::pipeline::Pipeline`]'s.
//!
//! Protocol, for every durability mode (one code path):
//! 1. The caller validates its proposal ([`super::batch::validate`], [`Txn::validate`]), waits
//!    out a write stall, and enqueues it with a ticket.
//! 2. If no leader is active and proposals wait, the caller becomes the leader: it takes every
//!    queued proposal and, holding the writer lock, takes the group's publishing turn and runs
//!    the proposals in chunks: a run of plain writes is one chunk, a transaction (etcd `Txn` or optimistic) a
//!    chunk of its own, so that it is decided against every commit applied before it.
//! 3. Per chunk, under the writer lock: **decide** (pure functions of the applied state plus
//!    the chunk's earlier members: each write's revision and version metadata, a txn's compares
//!    and results, an optimistic transaction's conflict check; a proposal that writes nothing
//!    takes no revision, one whose decision fails is refused alone), **log** (append each
//!    record; a failed append poisons the database and fails the rest of the group) and
//!    **apply** (insert into the active memtable, above the published revision, so no reader
//!    sees it yet).
//! 4. The leader hands leadership on (a queued caller becomes the next leader) and, without the
//!    writer lock (the next group decides, logs and applies meanwhile): **sync** (if any member
//!    asked for [`Durability::Sync`] or [`Durability::GroupCommit`]; a failure poisons the
//!    database), then, at the group's turn, **publish** (its last revision becomes
//!    visible: a commit is seen whole or not at all) and **notify** (the observers, in revision
//!    order). A group that failed, or follows one that did, publishes nothing: its members fail.
//! 5. The leader posts every result and wakes the followers.
//!
//! Invariants:
//! - A write returns `Ok` in a syncing mode only after a successful sync covering its record (and
//!   every record before it, also for a proposal that logged nothing); revisions are assigned in
//!   WAL order, strictly increasing, one per commit that writes.
//! - No answer is posted before its group's turn is published: what a decision read (possibly
//!   an earlier group's applied, unsynced writes) is visible, and durable as promised, by then.
//! - A follower returns only the result the leader posted for its ticket; the queue is bounded by
//!   the number of writer threads (each waits for its own result before enqueueing again).
//! - Stamps ([`CommitMode::stamp`]) never decrease in WAL order: a stamped proposal is refused
//!   ([`Error::StampBelowLast`]) at its decision if its stamp is below `Writer::last_stamp` or
//!   a stamp of an earlier member of its chunk; its stamp is logged in its record (none if it
//!   logs none), and `Writer::last_stamp` is the highest stamp logged and applied.

use std::sync::Arc;

use crate::entry::{Entry, VersionMeta};
use crate::error::{Error, Result};
use crate::format::wal::WalBody;
use crate::lease::{LeaseEffect, LeaseTable};
use crate::metrics::Counter;
use crate::options::Durability;
use crate::range::KeyRange;
use crate::txn::{Txn, TxnResponse, conflict, evaluate};

use super::batch::{into_entries, validate};
use super::decide::{Overlay, check_leases, metas};
use super::inner::Inner;
use super::pipeline::{Turn, Writer};
use super::txn_view::DecideView;

/// What a commit asks for.
#[derive(Debug)]
pub(crate) enum Proposal {
    /// A put, a delete or a batch.
    Write(WalBody),
    /// An etcd `Txn`.
    Txn(Txn),
    /// A lease granted for `ttl_ms`: `lease`, or an id the engine chooses.
    Grant { lease: Option<u64>, ttl_ms: u64 },
    /// A lease revoked, its keys deleted in one revision. With `due_at` (an expiry), only if
    /// its deadline is at or before that time; otherwise nothing happens.
    Revoke { lease: u64, due_at: Option<u64> },
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
    /// The id of the lease a grant granted.
    Granted(u64),
    /// A revocation's revision (of its deletes, or the one it read at if it had no key).
    Revoked(u64),
}

impl Committed {
    /// The revision a write, a txn or a revocation committed at (or read at).
    pub(crate) fn into_revision(self) -> Result<u64> {
        match self {
            Committed::Revision(revision) | Committed::Revoked(revision) => Ok(revision),
            Committed::Txn(response) => Ok(response.revision),
            Committed::Granted(_) => Err(unexpected_answer()),
        }
    }
}

/// How a commit is made, beyond what it proposes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommitMode {
    /// Its durability mode.
    pub(crate) durability: Durability,
    /// Its stamp ([`crate::WriteOptions::stamp`]); `None` and `Some(0)` record none.
    pub(crate) stamp: Option<u64>,
}

impl CommitMode {
    /// The database's own durability, no stamp: a commit the engine makes (an expiry).
    pub(crate) fn unstamped(durability: Durability) -> CommitMode {
        CommitMode {
            durability,
            stamp: None,
        }
    }
}

/// One queued commit.
#[derive(Debug)]
pub(crate) struct Request {
    proposal: Proposal,
    sync: bool,
    stamp: Option<u64>,
}

/// What a group's members answer, by ticket.
pub(crate) type Answers = Vec<(u64, Result<Committed>)>;

/// What a proposal logs: its revision, its record and each op's metadata.
type Logged = (u64, WalBody, Vec<VersionMeta>);

/// A decided member of a chunk: what to log, and what to answer once it is published.
struct Decided {
    ticket: u64,
    /// `None`: nothing to log (the answer is final).
    body: Option<Logged>,
    /// The stamp its record carries (0: none).
    stamp: u64,
    answer: Committed,
}

/// What a group's chunks did, for its sync and publish steps.
struct Applied {
    /// Its place in the publishing order.
    turn: Turn,
    /// Whether a member asked for a syncing mode.
    needs_sync: bool,
    /// Every member's result so far (final only once the group is published).
    results: Vec<(u64, Result<Committed>)>,
    /// Each applied commit's revision and entries, if the turn captures them for observers.
    changes: Vec<(u64, Arc<[Entry]>)>,
    /// How many members committed a revision.
    commits: u64,
    /// The last revision assigned once the group was applied.
    revision: u64,
    /// The highest stamp logged once the group was applied.
    stamp: u64,
    /// The failure that stopped the group (a failed append or sync, a poisoned database).
    failure: Option<Error>,
}

impl Applied {
    fn new(turn: Turn) -> Applied {
        Applied {
            turn,
            needs_sync: false,
            results: Vec::new(),
            changes: Vec::new(),
            commits: 0,
            revision: 0,
            stamp: 0,
            failure: None,
        }
    }
}

impl Inner {
    /// Commits `body` in `mode`; returns its revision. See the module doc.
    pub(crate) fn commit(&self, body: WalBody, mode: CommitMode) -> Result<u64> {
        validate(&body)?;
        self.propose(Proposal::Write(body), mode)?.into_revision()
    }

    /// Runs `txn` in `mode`. See the module doc.
    pub(crate) fn commit_txn(&self, txn: Txn, mode: CommitMode) -> Result<TxnResponse> {
        txn.validate()?;
        match self.propose(Proposal::Txn(txn), mode)? {
            Committed::Txn(response) => Ok(response),
            Committed::Revision(_) | Committed::Granted(_) | Committed::Revoked(_) => {
                Err(unexpected_answer())
            }
        }
    }

    /// Queues `proposal` and waits for its result (steps 1, 2 and 4 of the module doc).
    pub(crate) fn propose(&self, proposal: Proposal, mode: CommitMode) -> Result<Committed> {
        let mut results = self.propose_all(vec![proposal], mode)?;
        results.pop().unwrap_or_else(|| Err(unexpected_answer()))
    }

    /// Queues `proposals` together (one group, one sync, if no leader is busy) and waits for
    /// their results, in order.
    pub(crate) fn propose_all(
        &self,
        proposals: Vec<Proposal>,
        mode: CommitMode,
    ) -> Result<Vec<Result<Committed>>> {
        self.check_writable()?;
        self.stall_writes();
        let sync = mode.durability != Durability::Buffered;
        let requests = proposals
            .into_iter()
            .map(|proposal| Request {
                proposal,
                sync,
                stamp: mode.stamp,
            })
            .collect();
        let results = self.pipeline.submit_all(
            requests,
            |group| self.apply_group(group),
            |applied| self.finish_group(applied),
        );
        if results.iter().any(Result::is_ok) {
            self.after_commit();
        }
        Ok(results)
    }

    /// Step 2 and 3 of the module doc for one group, under the writer lock.
    fn apply_group(&self, group: Vec<(u64, Request)>) -> Applied {
        let mut writer = self.pipeline.writer();
        let mut applied = Applied {
            needs_sync: group.iter().any(|(_, r)| r.sync),
            ..Applied::new(writer.take_turn())
        };
        let mut chunk: Vec<(u64, Request)> = Vec::new();
        for (ticket, request) in group {
            let alone = !matches!(request.proposal, Proposal::Write(_));
            if alone && !chunk.is_empty() {
                self.commit_chunk(&mut writer, std::mem::take(&mut chunk), &mut applied);
            }
            chunk.push((ticket, request));
            if alone {
                self.commit_chunk(&mut writer, std::mem::take(&mut chunk), &mut applied);
            }
        }
        if !chunk.is_empty() {
            self.commit_chunk(&mut writer, chunk, &mut applied);
        }
        applied.revision = writer.last_revision;
        applied.stamp = writer.last_stamp;
        applied
    }

    /// Step 4 of the module doc for one applied group, without the writer lock: its results.
    fn finish_group(&self, mut applied: Applied) -> Answers {
        // Sync, even when nothing of the group was logged: a transaction that committed nothing
        // in a syncing mode read what earlier (buffered) commits wrote, and must not report what
        // a crash could still take back. With nothing unsynced the sync does no I/O.
        if applied.failure.is_none()
            && applied.needs_sync
            && let Err(e) = self.pipeline.sync_wal()
        {
            applied.failure = Some(self.poison(e));
        }
        let outcome = match applied.failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        let wrote = applied.commits > 0;
        let published = self.pipeline.publish(
            applied.turn,
            outcome,
            wrote.then_some(applied.revision),
            applied.commits,
            &applied.changes,
            applied.stamp,
        );
        match published {
            Ok(()) => applied.results,
            Err(e) => applied
                .results
                .into_iter()
                .map(|(ticket, _)| (ticket, Err(e.duplicate())))
                .collect(),
        }
    }

    /// Decides, logs and applies one chunk into `applied` (step 3 of the module doc). After a
    /// failure nothing more is logged: every member fails.
    fn commit_chunk(&self, writer: &mut Writer, chunk: Vec<(u64, Request)>, applied: &mut Applied) {
        if applied.failure.is_none()
            && let Err(e) = self.check_usable()
        {
            applied.failure = Some(e);
        }
        if let Some(e) = &applied.failure {
            let failed = chunk.into_iter().map(|(t, _)| (t, Err(e.duplicate())));
            applied.results.extend(failed);
            return;
        }
        let created_at_ms = self.options.clock.now_ms();
        // Decide.
        let before = writer.last_revision;
        let mut revision = before;
        let mut stamp = writer.last_stamp;
        let mut overlay = Overlay::default();
        let mut decided: Vec<Decided> = Vec::with_capacity(chunk.len());
        let members = chunk.len();
        let view = DecideView::new(self, before);
        for (n, (ticket, request)) in chunk.into_iter().enumerate() {
            let at = Decision {
                view: &view,
                overlay: &overlay,
                leases: &writer.leases,
                revision,
                created_at_ms,
            };
            let decision =
                check_stamp(request.stamp, stamp).and_then(|()| self.decide(request.proposal, &at));
            match decision {
                Ok((body, answer)) => {
                    let logs = body.is_some();
                    if let Some((next, body, metas)) = &body {
                        // Only a later member of the chunk reads the overlay.
                        if n.saturating_add(1) < members {
                            overlay.record(body, metas);
                        }
                        revision = *next;
                    }
                    // A proposal that logs nothing records no stamp.
                    let own = request.stamp.filter(|_| logs).unwrap_or(0);
                    stamp = stamp.max(own);
                    decided.push(Decided {
                        ticket,
                        body,
                        stamp: own,
                        answer,
                    });
                }
                Err(e) => applied.results.push((ticket, Err(e))),
            }
        }
        // Log.
        let mut logged: Vec<(u64, Committed, u64, Vec<Entry>, LeaseEffect)> =
            Vec::with_capacity(decided.len());
        let mut members = decided.into_iter();
        let mut wal_bytes: u64 = 0;
        while let Some(member) = members.next() {
            let Some((revision, body, metas)) = member.body else {
                applied.results.push((member.ticket, Ok(member.answer)));
                continue;
            };
            let range = match writer
                .wal
                .append(revision, created_at_ms, member.stamp, &body)
            {
                Ok(range) => range,
                Err(e) => {
                    let e = self.poison(e);
                    let earlier = logged.iter().map(|(ticket, ..)| *ticket);
                    let rest = std::iter::once(member.ticket).chain(members.map(|m| m.ticket));
                    let failed = earlier.chain(rest).map(|t| (t, Err(e.duplicate())));
                    applied.results.extend(failed.collect::<Vec<_>>());
                    applied.failure = Some(e);
                    self.metrics.add(Counter::WalWrittenBytes, wal_bytes);
                    return;
                }
            };
            wal_bytes = wal_bytes.saturating_add(range.end.saturating_sub(range.start));
            let effect = LeaseEffect::of(&body);
            let entries = into_entries(body, revision, range.start, created_at_ms, &metas);
            logged.push((member.ticket, member.answer, revision, entries, effect));
        }
        self.metrics.add(Counter::WalWrittenBytes, wal_bytes);
        if logged.is_empty() {
            return;
        }
        // Apply.
        let active = self.versions.active();
        for (ticket, answer, revision, entries, effect) in logged {
            writer.leases.apply(effect, &entries, created_at_ms);
            applied.results.push((ticket, Ok(answer)));
            if entries.is_empty() {
                // A grant, or a revocation without keys: no version, no revision.
                continue;
            }
            if applied.turn.capture {
                applied
                    .changes
                    .push((revision, versions_created(&entries).into()));
            }
            active.insert_commit(entries);
            applied.commits = applied.commits.saturating_add(1);
        }
        writer.last_revision = revision;
        writer.last_stamp = stamp;
    }

    /// The decide stage for one proposal at `at`: what it logs (if anything) and what it
    /// answers once published.
    fn decide(
        &self,
        proposal: Proposal,
        at: &Decision<'_, '_>,
    ) -> Result<(Option<Logged>, Committed)> {
        let Decision {
            view,
            overlay,
            leases,
            revision,
            created_at_ms,
        } = *at;
        let next = revision.checked_add(1).ok_or(Error::RevisionsExhausted)?;
        let decide_write = |body: WalBody| -> Result<Logged> {
            check_leases(&body, leases, overlay)?;
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
            Proposal::Grant { lease, ttl_ms } => {
                let lease = match lease {
                    Some(id) if leases.contains(id) => return Err(Error::LeaseExists { id }),
                    Some(id) => id,
                    None => leases.unused_id()?,
                };
                let body = WalBody::LeaseGrant { lease, ttl_ms };
                (
                    Some((revision, body, Vec::new())),
                    Committed::Granted(lease),
                )
            }
            Proposal::Revoke { lease, due_at } => {
                let revocable = match due_at {
                    Some(now_ms) => leases.is_due(lease, now_ms),
                    None => leases.contains(lease),
                };
                let keys = match leases.keys_of(lease) {
                    Some(keys) if revocable => revoked_keys(keys),
                    _ if due_at.is_some() => return Ok((None, Committed::Revision(revision))),
                    _ => return Err(Error::LeaseNotFound { id: lease }),
                };
                // A revocation that deletes nothing takes no revision.
                let at = if keys.is_empty() { revision } else { next };
                let body = WalBody::LeaseRevoke { lease, keys };
                let metas = metas(&body, at, |_| Ok(None))?;
                (Some((at, body, metas)), Committed::Revoked(at))
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

/// Where a proposal is decided: over the published `view`, after the chunk's earlier members
/// (`overlay`, and `revision`, the last one they took), with the writer's `leases`.
#[derive(Clone, Copy)]
struct Decision<'v, 'a> {
    view: &'a DecideView<'v>,
    overlay: &'a Overlay,
    leases: &'a LeaseTable,
    revision: u64,
    created_at_ms: u64,
}

/// Refuses a `stamp` below `last`, the highest stamp logged before it.
fn check_stamp(stamp: Option<u64>, last: u64) -> Result<()> {
    match stamp {
        Some(stamp) if stamp < last => Err(Error::StampBelowLast {
            stamp,
            last_stamp: last,
        }),
        _ => Ok(()),
    }
}

/// The keys a revocation deletes: every key attached to the lease.
fn revoked_keys(keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    // Sabotage for negative controls (feature `failpoints`): a revocation that deletes none of
    // its lease's keys (they stay readable, naming a lease that is gone).
    fail::fail_point!("lease::revoke_keeps_keys", |_| Vec::new());
    keys
}

/// A proposal answered with another kind of answer than it asks for: the decide stage answers
/// each kind of proposal with its own kind.
pub(crate) fn unexpected_answer() -> Error {
    Error::InvalidArgument("internal: a commit was answered with another kind of answer".to_owned())
}

/// The versions a commit's `entries` (one per op, in op order) create: one per key, the last
/// op's (a batch writing a key twice makes one version, `spec/SEMANTICS.md`), in op order.
fn versions_created(entries: &[Entry]) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    let mut created: Vec<Entry> = entries
        .iter()
        .rev()
        .filter(|entry| seen.insert(entry.key.as_slice()))
        .cloned()
        .collect();
    created.reverse();
    created
}
