//! Exhaustive search with stateright over the commit pipeline's protocol (`impl/engine/src/db/commit.rs`
//! and `pipeline.rs`), where interleaving is the whole question: groups are applied (decided,
//! logged, applied, under the writer lock, in any order the leaders come), each takes a
//! publishing turn as it is applied; a syncing group takes the sync lock, captures the WAL's end,
//! syncs without the writer lock while later groups are applied, and reports what it covered;
//! groups publish (become readable, notify observers, answer) strictly in turn order.
//!
//! The disk's truth is modelled beside the engine's belief: a sync makes durable exactly the
//! records appended before it captured the end (an fsync promises no more). In every interleaving
//! of three groups, every mix of modes:
//! - every acknowledged syncing commit is durable, and the engine never believes (vouches in a
//!   record's `synced_through`) that a record is durable when it is not;
//! - observers see revisions 1, 2, 3, ... in order, each once, and the published revision is
//!   always the newest observed one: nothing is readable before every commit below it;
//! - once a sync fails, nothing at or past the first revision it may have lost is ever published.
//!
//! The planted bugs it must catch: publishing out of turn, a sync reporting records appended
//! while it ran as covered, a syncing group publishing before its sync, and a group publishing
//! after an earlier group's sync failed.

use stateright::{Checker, Model, Property};

const ACKED_ARE_DURABLE: &str = "every acknowledged syncing commit is durable";
const BELIEF_IS_TRUE: &str = "the engine's synced offset is durable";
const IN_ORDER: &str = "observers see revisions in order, each once, as they become readable";
const NOTHING_PAST_A_LOSS: &str = "nothing past a failed sync is published";
const PIPELINED: &str = "a group is applied while an earlier group syncs";
const ALL_DONE: &str = "every group is published";
const FAILURE_STOPS: &str = "a failed sync fails a later group too";

/// A deliberate bug in the protocol (negative controls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    None,
    /// A group publishes without waiting for its turn.
    PublishOutOfTurn,
    /// A sync reports as covered what was appended up to its end, not up to its capture.
    SyncCoversLaterAppends,
    /// A syncing group publishes before its sync finished.
    PublishBeforeSync,
    /// A group publishes although an earlier group's sync failed.
    PublishPastFailure,
}

/// Where one group is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Queued,
    /// Applied under the writer lock: its turn and its revision (record `revision` of the WAL).
    Applied {
        turn: u8,
        revision: u8,
    },
    /// Its sync (if it syncs) finished.
    Synced {
        turn: u8,
        revision: u8,
    },
    /// Its sync failed: it takes its turn as a failure.
    SyncFailed {
        turn: u8,
    },
    Published,
    /// It failed (its sync, or an earlier group's): nothing of it is published.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    phases: Vec<Phase>,
    /// Records in the WAL (revision r is record r).
    appended: u8,
    /// What the engine believes durable (its `synced_offset`).
    synced: u8,
    /// What the disk really holds durably.
    durable: u8,
    /// The running sync, under the sync lock: its group and the end it captured.
    sync_running: Option<(usize, u8)>,
    next_turn: u8,
    turn_to_publish: u8,
    /// The published revision.
    visible: u8,
    /// Revisions observers were told of, in order.
    observed: Vec<u8>,
    /// Revisions of syncing commits acknowledged.
    acknowledged_syncing: Vec<u8>,
    /// A group was applied while an earlier one's sync ran.
    pipelined: bool,
    /// The revision of the first group whose sync failed.
    lost_from: Option<u8>,
    /// A group's turn failed: every later turn fails.
    failed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Apply(usize),
    SyncStart(usize),
    SyncFinish,
    SyncFail,
    Publish(usize),
}

struct Protocol {
    /// Per group: whether it syncs (`Sync`/`GroupCommit`) or not (`Buffered`).
    syncs: Vec<bool>,
    bug: Bug,
}

impl Protocol {
    /// The turn and (for a group that may be published) the revision of `group`, if it may
    /// take its turn now.
    fn may_take_turn(&self, state: &State, group: usize) -> Option<(u8, Option<u8>)> {
        let (turn, revision) = match state.phases.get(group)? {
            Phase::Synced { turn, revision } => (*turn, Some(*revision)),
            Phase::Applied { turn, revision }
                if !self.syncs[group] || self.bug == Bug::PublishBeforeSync =>
            {
                (*turn, Some(*revision))
            }
            Phase::SyncFailed { turn } => (*turn, None),
            _ => return None,
        };
        let in_turn = turn == state.turn_to_publish || self.bug == Bug::PublishOutOfTurn;
        in_turn.then_some((turn, revision))
    }
}

impl Model for Protocol {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            phases: vec![Phase::Queued; self.syncs.len()],
            appended: 0,
            synced: 0,
            durable: 0,
            sync_running: None,
            next_turn: 0,
            turn_to_publish: 0,
            visible: 0,
            observed: Vec::new(),
            acknowledged_syncing: Vec::new(),
            pipelined: false,
            lost_from: None,
            failed: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (group, phase) in state.phases.iter().enumerate() {
            match phase {
                Phase::Queued => actions.push(Action::Apply(group)),
                Phase::Applied { .. } if self.syncs[group] && state.sync_running.is_none() => {
                    actions.push(Action::SyncStart(group));
                }
                _ => {}
            }
            if self.may_take_turn(state, group).is_some() {
                actions.push(Action::Publish(group));
            }
        }
        if state.sync_running.is_some() {
            actions.push(Action::SyncFinish);
            actions.push(Action::SyncFail);
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let mut next = state.clone();
        match action {
            Action::Apply(group) => {
                next.appended += 1;
                next.phases[group] = Phase::Applied {
                    turn: next.next_turn,
                    revision: next.appended,
                };
                next.next_turn += 1;
                next.pipelined |= state.sync_running.is_some();
            }
            Action::SyncStart(group) => {
                let Phase::Applied { turn, revision } = state.phases[group] else {
                    return None;
                };
                if state.synced >= revision {
                    // An earlier sync covered it: no I/O.
                    next.phases[group] = Phase::Synced { turn, revision };
                } else {
                    next.sync_running = Some((group, state.appended));
                }
            }
            Action::SyncFinish => {
                let (group, captured) = state.sync_running?;
                next.durable = next.durable.max(captured);
                next.synced = match self.bug {
                    Bug::SyncCoversLaterAppends => state.appended,
                    _ => next.synced.max(captured),
                };
                next.sync_running = None;
                if let Phase::Applied { turn, revision } = state.phases[group] {
                    next.phases[group] = Phase::Synced { turn, revision };
                }
            }
            Action::SyncFail => {
                let (group, _) = state.sync_running?;
                next.sync_running = None;
                let Phase::Applied { turn, revision } = state.phases[group] else {
                    return None;
                };
                next.phases[group] = Phase::SyncFailed { turn };
                // Its record, and every later one, may be lost (earlier ones were published as
                // their modes promised: a buffered one may be lost too, as its mode allows).
                next.lost_from = Some(state.lost_from.map_or(revision, |r| r.min(revision)));
            }
            Action::Publish(group) => {
                let (_, revision) = self.may_take_turn(state, group)?;
                next.turn_to_publish += 1;
                let refused = state.failed && self.bug != Bug::PublishPastFailure;
                match revision {
                    Some(revision) if !refused => {
                        next.visible = revision;
                        next.observed.push(revision);
                        if self.syncs[group] {
                            next.acknowledged_syncing.push(revision);
                        }
                        next.phases[group] = Phase::Published;
                    }
                    _ => {
                        next.failed = true;
                        next.phases[group] = Phase::Failed;
                    }
                }
            }
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ACKED_ARE_DURABLE, |_, s: &State| {
                s.acknowledged_syncing.iter().all(|&r| r <= s.durable)
            }),
            Property::always(BELIEF_IS_TRUE, |_, s: &State| s.synced <= s.durable),
            Property::always(IN_ORDER, |_, s: &State| {
                let consecutive = s.observed.iter().zip(1u8..).all(|(&r, want)| r == want);
                consecutive && s.visible == s.observed.last().copied().unwrap_or(0)
            }),
            Property::always(NOTHING_PAST_A_LOSS, |_, s: &State| {
                let lost_from = s.lost_from.unwrap_or(u8::MAX);
                s.observed.iter().all(|&r| r < lost_from)
            }),
            Property::sometimes(PIPELINED, |_, s: &State| s.pipelined),
            Property::sometimes(ALL_DONE, |_, s: &State| {
                s.phases.iter().all(|p| *p == Phase::Published)
            }),
            Property::sometimes(FAILURE_STOPS, |_, s: &State| {
                s.lost_from.is_some()
                    && s.phases.iter().filter(|p| **p == Phase::Failed).count() > 1
            }),
        ]
    }
}

/// Every mix of modes over three groups that has at least one syncing group.
fn mixes() -> Vec<Vec<bool>> {
    (1u8..8)
        .map(|bits| (0..3).map(|i| bits & (1 << i) != 0).collect())
        .collect()
}

#[test]
fn every_interleaving_of_three_groups_keeps_durability_and_order() {
    let mut unique = 0;
    for syncs in mixes() {
        let checker = Protocol {
            syncs: syncs.clone(),
            bug: Bug::None,
        }
        .checker()
        .spawn_bfs()
        .join();
        checker.assert_properties();
        unique += checker.unique_state_count();
        eprintln!(
            "[stateright pipeline] modes {syncs:?}: {} states, {} unique",
            checker.state_count(),
            checker.unique_state_count()
        );
    }
    assert!(
        unique >= 500,
        "only {unique} unique states: the search got shallow"
    );
}

/// Each planted bug must be found: its property violated on some interleaving.
#[test]
fn planted_protocol_bugs_are_found() {
    for (bug, property) in [
        (Bug::PublishOutOfTurn, IN_ORDER),
        (Bug::SyncCoversLaterAppends, BELIEF_IS_TRUE),
        (Bug::PublishBeforeSync, ACKED_ARE_DURABLE),
        (Bug::PublishPastFailure, NOTHING_PAST_A_LOSS),
    ] {
        let found = mixes().into_iter().find_map(|syncs| {
            let checker = Protocol { syncs, bug }.checker().spawn_bfs().join();
            checker.discovery(property).map(|path| path.into_actions())
        });
        let Some(actions) = found else {
            panic!("{bug:?} was never caught by `{property}`");
        };
        eprintln!("[stateright pipeline negative control] {bug:?}: {actions:?}");
    }
}
