//! [`Oracle`]: what a recovered database may hold (db_stress's expected-state idea).
//!
//! The oracle keeps the model's state at the last point known durable and the trace of commits
//! issued after it. After a crash and recovery the engine must hold exactly the state after some
//! prefix of that trace (revisions included): every acknowledged-durable commit is in the durable
//! state, so it survives; a prefix means no reordering and no phantom; a commit is applied whole or
//! not, so batches are all-or-nothing; exact revisions mean revisions never go backwards for
//! acknowledged data. Each commit is issued with its stamp, and the model's last stamp is part of
//! the state compared, so a recovered `last_stamp` must be exactly the stamp of the last commit of
//! the prefix recovered that recorded one: the stamp and the data agree.
//!
//! Invariants:
//! - `pending[..acked]` were acknowledged (in order, with the revision the model predicted);
//!   `pending[acked..]` were issued and failed or were cut by a crash: they may or may not survive.
//! - Nothing is ever acknowledged after a failed commit without a recovery in between (a failed
//!   write poisons the engine), so the durable point never moves past an unacknowledged commit.

use std::collections::BTreeMap;

use crate::model::{Model, Mutation, WatchedEvent};

/// Expected state across crashes: the durable state and the trace after it.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct Oracle {
    durable: Model,
    /// The horizon of a `compact_history` that failed: a recovery may find it or the old one.
    horizon_in_doubt: Option<u64>,
    /// Each commit issued after the durable point, with its stamp (0: none).
    pending: Vec<(Mutation, u64)>,
    acked: usize,
    /// The state after every acknowledged commit: what reads must return now.
    current: Model,
    /// The watch of every key the campaign keeps, across crashes.
    watched: Option<Watched>,
    /// Each lease's deadline by the campaign's clock, for the leases `current` grants (an entry
    /// of a lease no longer granted is ignored). Not durable: a recovery restarts them.
    deadlines: BTreeMap<u64, u64>,
}

/// A watch of every key, kept across crashes: where it started and every event it delivered.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct Watched {
    start: u64,
    seen: Vec<WatchedEvent>,
}

impl Oracle {
    /// The oracle of an empty, new database.
    pub fn new() -> Oracle {
        Oracle::default()
    }

    /// The revision the next commit must get.
    pub fn next_revision(&self) -> u64 {
        self.current.revision().saturating_add(1)
    }

    /// Records that `mutation` was issued without a stamp (before the call returns).
    pub fn issue(&mut self, mutation: Mutation) {
        self.issue_stamped(mutation, 0);
    }

    /// Records that `mutation` was issued stamped `stamp` (0: none), before the call returns.
    pub fn issue_stamped(&mut self, mutation: Mutation, stamp: u64) {
        self.pending.push((mutation, stamp));
    }

    /// The last issued commit returned `Ok(revision)`; `durable` if the mode promises it survives a
    /// crash. Errs if the revision is not the next one or if an earlier commit failed.
    pub fn acknowledge(&mut self, revision: u64, durable: bool) -> Result<(), String> {
        if self.acked.saturating_add(1) != self.pending.len() {
            return Err(format!(
                "a commit was acknowledged (revision {revision}) after {} unacknowledged ones",
                self.pending
                    .len()
                    .saturating_sub(self.acked)
                    .saturating_sub(1)
            ));
        }
        let Some((mutation, stamp)) = self.pending.last() else {
            return Err("acknowledged a commit that was never issued".to_owned());
        };
        let expected = self.current.apply_stamped(mutation, *stamp);
        if revision != expected {
            return Err(format!(
                "commit acknowledged with revision {revision}, the model says {expected}"
            ));
        }
        self.acked = self.pending.len();
        if durable {
            self.all_acknowledged_durable();
        }
        Ok(())
    }

    /// The last issued commit was refused before it was logged (`Error::Conflict`): it
    /// committed nothing and leaves the trace. Errs if there is no unacknowledged commit.
    pub fn refused(&mut self) -> Result<(), String> {
        if self.acked >= self.pending.len() {
            return Err("a commit was refused that was never issued".to_owned());
        }
        self.pending.pop();
        Ok(())
    }

    /// Every acknowledged commit is now durable (a sync, flush, compaction or clean close returned
    /// `Ok`, or a commit in a syncing mode was acknowledged).
    pub fn all_acknowledged_durable(&mut self) {
        let acked: Vec<(Mutation, u64)> = self.pending.drain(..self.acked).collect();
        for (m, stamp) in &acked {
            self.durable.apply_stamped(m, *stamp);
        }
        self.acked = 0;
    }

    /// `compact_history(horizon)` returned `Ok`: it synced every commit before it and made the
    /// horizon durable.
    pub fn history_compacted(&mut self, horizon: u64) -> Result<(), String> {
        self.all_acknowledged_durable();
        self.horizon_in_doubt = None;
        for model in [&mut self.durable, &mut self.current] {
            model.compact_history(horizon).map_err(|e| {
                format!("compact_history({horizon}) acknowledged, the model says {e:?}")
            })?;
        }
        Ok(())
    }

    /// `compact_history(horizon)` failed: after a crash the horizon may be the old one or this.
    pub fn history_compaction_failed(&mut self, horizon: u64) {
        self.horizon_in_doubt = Some(horizon);
    }

    /// Checks the horizon a recovery found (after [`Oracle::recovered`]): the durable one, or one
    /// whose `compact_history` was in flight; the models adopt it.
    pub fn recovered_horizon(&mut self, found: u64) -> Result<(), String> {
        let durable = self.durable.horizon();
        if found != durable && Some(found) != self.horizon_in_doubt {
            return Err(format!(
                "recovered history horizon {found}, the model says {durable} (in doubt: {:?})",
                self.horizon_in_doubt
            ));
        }
        self.horizon_in_doubt = None;
        if found > durable {
            for model in [&mut self.durable, &mut self.current] {
                model
                    .compact_history(found)
                    .map_err(|e| format!("recovered horizon {found}: {e:?}"))?;
            }
        }
        Ok(())
    }

    /// A watch of every key started at revision `start` (replacing any earlier one).
    pub fn watch_started(&mut self, start: u64) {
        self.watched = Some(Watched {
            start,
            seen: Vec::new(),
        });
    }

    /// The watch delivered `events`.
    pub fn watch_delivered(&mut self, events: Vec<WatchedEvent>) {
        if let Some(watched) = &mut self.watched {
            watched.seen.extend(events);
        }
    }

    /// Every event the watch delivered since it started (none without one).
    pub fn watched_events(&self) -> &[WatchedEvent] {
        self.watched.as_ref().map_or(&[], |w| w.seen.as_slice())
    }

    /// Checks that the watch delivered exactly the model's events from its start through
    /// `through`: none missing, none twice, none out of order.
    pub fn watch_check(&self, through: u64) -> Result<(), String> {
        let Some(watched) = &self.watched else {
            return Ok(());
        };
        let want = self.current.events(watched.start, through);
        if watched.seen != want {
            return Err(format!(
                "the watch from revision {} delivered {:?}, the model says {:?}",
                watched.start, watched.seen, want
            ));
        }
        Ok(())
    }

    /// After a recovery (and [`Oracle::recovered`]): every event the watch delivered must be in
    /// the recovered history (no event for a commit the crash took back). Returns the revision
    /// to resume the watch from, or `None` if there is no watch or it is no longer above the
    /// horizon (where a watch must start).
    pub fn watch_after_recovery(&mut self) -> Result<Option<u64>, String> {
        let Some(watched) = &self.watched else {
            return Ok(None);
        };
        let last_seen = watched.seen.last().map(|e| e.0);
        if let Some(last) = last_seen {
            let want = self.current.events(watched.start, last);
            if watched.seen != want {
                return Err(format!(
                    "the watch delivered {:?}, but recovery holds {want:?}: an event for a \
                     commit the crash took back",
                    watched.seen
                ));
            }
        }
        let resume = last_seen.map_or(watched.start, |last| last.saturating_add(1));
        if resume <= self.current.horizon() {
            self.watched = None;
            return Ok(None);
        }
        Ok(Some(resume))
    }

    /// Lease `id` was granted (acknowledged) for `ttl_ms` at `now_ms`.
    pub fn lease_granted(&mut self, id: u64, ttl_ms: u64, now_ms: u64) {
        self.deadlines.insert(id, now_ms.saturating_add(ttl_ms));
    }

    /// What `keep_alive(id)` at `now_ms` must return: the TTL (and the deadline moves), or
    /// `None` if the lease is not granted or its deadline passed (`LeaseNotFound`).
    pub fn keep_alive(&mut self, id: u64, now_ms: u64) -> Option<u64> {
        let ttl_ms = *self.current.leases().get(&id)?;
        let deadline = self.deadlines.get_mut(&id)?;
        if *deadline <= now_ms {
            return None;
        }
        *deadline = now_ms.saturating_add(ttl_ms);
        Some(ttl_ms)
    }

    /// The granted leases whose deadline is at or before `now_ms`, in the order an expiry
    /// revokes them (deadline, then id).
    pub fn due(&self, now_ms: u64) -> Vec<u64> {
        let mut due: Vec<(u64, u64)> = self
            .current
            .leases()
            .keys()
            .filter_map(|id| Some((*self.deadlines.get(id)?, *id)))
            .filter(|(deadline, _)| *deadline <= now_ms)
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// After a recovery at `now_ms`: every granted lease has its whole TTL again.
    pub fn leases_restarted(&mut self, now_ms: u64) {
        self.deadlines = self
            .current
            .leases()
            .iter()
            .map(|(&id, &ttl_ms)| (id, now_ms.saturating_add(ttl_ms)))
            .collect();
    }

    /// What reads must return now (only meaningful while no commit has failed).
    pub fn current(&self) -> &Model {
        &self.current
    }

    /// Whether a commit failed or was cut since the last recovery: the live state is then unknown
    /// until the next recovery.
    pub fn in_doubt(&self) -> bool {
        self.acked < self.pending.len()
    }

    /// The state at the last durable point.
    pub fn durable(&self) -> &Model {
        &self.durable
    }

    /// Commits issued after the durable point, each with its stamp (0: none).
    pub fn pending(&self) -> &[(Mutation, u64)] {
        &self.pending
    }

    /// Checks a recovered state: it must equal the durable state plus some prefix of the pending
    /// trace. On success the oracle restarts from it (that state is now the durable one: a later
    /// crash cannot go back before what recovery found, since recovery made it durable) and the
    /// prefix length is returned.
    pub fn recovered(&mut self, found: &Model) -> Result<usize, String> {
        let mut state = self.durable.clone();
        // The model state matched keeps its history (`found`, read back, has none).
        let mut matched = (state == *found).then(|| (0, state.clone()));
        for (i, (m, stamp)) in self.pending.iter().enumerate() {
            if matched.is_some() {
                break;
            }
            state.apply_stamped(m, *stamp);
            if state == *found {
                matched = Some((i.saturating_add(1), state.clone()));
            }
        }
        let Some((prefix, recovered)) = matched else {
            return Err(format!(
                "recovered state is no prefix of the trace: {} acknowledged and {} in-doubt \
                 commits after the durable point (revision {}); against the durable state: {}; \
                 against everything issued: {}; pending trace: {:?}",
                self.acked,
                self.pending.len().saturating_sub(self.acked),
                self.durable.revision(),
                self.durable.diff(found),
                state.diff(found),
                self.pending
            ));
        };
        self.durable = recovered.clone();
        self.current = recovered;
        self.pending.clear();
        self.acked = 0;
        Ok(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Mutation {
        Mutation::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn accepts_every_prefix_after_the_durable_point_and_nothing_else() {
        let mut o = Oracle::new();
        o.issue(put("a", "1"));
        o.acknowledge(1, true).unwrap();
        o.issue(put("a", "2"));
        o.acknowledge(2, false).unwrap();
        o.issue(put("b", "3"));
        let mut lost_all = Model::new();
        lost_all.apply(&put("a", "1"));
        assert_eq!(o.clone().recovered(&lost_all), Ok(0));
        let mut all = lost_all.clone();
        all.apply(&put("a", "2"));
        all.apply(&put("b", "3"));
        assert_eq!(o.clone().recovered(&all), Ok(2));
        // Lost the durable commit.
        assert!(o.clone().recovered(&Model::new()).is_err());
        // A phantom: b without a=2 (reordering).
        let mut reordered = lost_all.clone();
        reordered.apply(&put("b", "3"));
        assert!(o.clone().recovered(&reordered).is_err());
    }

    #[test]
    fn a_refused_commit_leaves_the_trace() {
        let mut o = Oracle::new();
        assert!(o.refused().is_err());
        o.issue(put("a", "1"));
        o.refused().unwrap();
        o.issue(put("a", "2"));
        o.acknowledge(1, true).unwrap();
        assert!(o.refused().is_err());
        assert_eq!(
            o.current().get(b"a").map(|c| c.value.clone()),
            Some(b"2".to_vec())
        );
    }

    #[test]
    fn a_wrong_revision_is_reported() {
        let mut o = Oracle::new();
        o.issue(put("a", "1"));
        assert!(o.acknowledge(5, true).is_err());
    }
}
