//! The lease search shared by `tests/stateright_lease.rs` (it must pass) and
//! `tests/lease_sabotage.rs` (planted bugs it must find): stateright explores every order of a
//! commit (a put attached to a lease, a plain put), a lease's grant, its expiry (the clock moved
//! past its TTL, then `expire_leases`) and a watch of every key, with crashes at chosen I/O ops
//! inside the puts, the expiry and the grant under two persistence models, each step on the real
//! engine over `SimVfs::from_image`.
//!
//! Every step reopens the database from the image (a recovery, checked by the oracle, with the
//! lease table read back) and resumes the watch from the revision after the last event it
//! delivered, so every path exercises a watcher's resume after a restart or a crash; a watch
//! check syncs and compares everything the watch delivered with the model's history.

use kvstore::Durability;
use kvstore_faults::{DiskImage, Fill, PersistenceModel, SimVfs};
use kvstore_model::{CLOCK_MS, Engine, Mutation, Oracle, Outcome, Setup, Step};
use stateright::{Model, Property};

/// The seed every step boots its disk with: the search is deterministic.
const SEED: u64 = 0x1ea5_e5ea;

/// The lease's TTL; an expiry moves the clock this far.
const TTL_MS: u64 = 10;

/// A search state: the disk, the oracle, the clock, and what happened on the way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    image: DiskImage,
    oracle: Oracle,
    now_ms: u64,
    /// The first violation seen on the way here.
    pub violation: Option<String>,
    /// An expiry deleted a key (its lease had one attached).
    expired_a_key: bool,
    /// A crash hit the inside of an expiry and the recovery after it was checked.
    crashed_mid_expiry: bool,
    /// The watch delivered an event after a crash was recovered on the path.
    resumed_after_crash: bool,
    crashed: bool,
}

/// One op of the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Grant lease 1 (refused if granted).
    Grant,
    /// Put key `k0` attached to lease 1 (refused if it is not granted).
    PutLeased,
    /// A buffered put of `k1`, then a watch check (what the watch delivered before the check's
    /// sync must survive a crash in that sync).
    Put,
    /// Move the clock past the lease's TTL and expire.
    Expire,
    /// Start a watch of every key from the newest revision on (replacing any).
    Watch,
    /// Read the watch (after a sync) and compare it with the model.
    CheckWatch,
}

/// An action: an op, or an op with a crash armed at its `k`-th I/O op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run the op.
    Run(Op),
    /// Run it with a crash at its `k`-th I/O op, reboot under the model, check the recovery.
    CrashDuring(Op, u64, PersistenceModel),
}

fn steps_of(op: Op) -> Vec<Step> {
    match op {
        Op::Grant => vec![Step::Write(Mutation::Grant(1, TTL_MS), None)],
        Op::PutLeased => vec![Step::Write(
            Mutation::PutLease(b"k0".to_vec(), b"v".to_vec(), 1),
            None,
        )],
        Op::Put => vec![
            Step::Write(
                Mutation::Put(b"k1".to_vec(), b"w".to_vec()),
                // Buffered: its event waits for a sync, which a crash may take back.
                Some(Durability::Buffered),
            ),
            Step::CheckWatch,
        ],
        Op::Expire => vec![Step::Advance(TTL_MS), Step::Expire],
        Op::Watch => vec![Step::Watch(0)],
        Op::CheckWatch => vec![Step::CheckWatch],
    }
}

const MODELS: [PersistenceModel; 2] = [
    PersistenceModel::UnsyncedLost,
    PersistenceModel::TornWrite {
        sector_bytes: 512,
        fill: Fill::Garbage,
    },
];

/// The property a sabotaged search must violate.
pub const ORACLE_PROPERTY: &str = "every recovery, read and watch matches the model";

/// The search over one setup.
pub struct Search {
    /// The engine's setup.
    pub setup: Setup,
}

impl Search {
    fn apply(&self, state: &State, action: &Action) -> State {
        let mut next = state.clone();
        if let Err(e) = self.try_apply(state, action, &mut next) {
            next.violation = Some(format!("{action:?}: {e}"));
        }
        next
    }

    fn try_apply(&self, state: &State, action: &Action, next: &mut State) -> Result<(), String> {
        let sim = SimVfs::from_image(&state.image, SEED);
        let mut engine = Engine::open_at(
            sim.clone(),
            self.setup.clone(),
            state.oracle.clone(),
            state.now_ms,
        )?;
        if !engine.is_open() {
            return Err("open failed on an uncrashed disk".to_owned());
        }
        let revision = engine.oracle().current().revision();
        let (op, crash) = match action {
            Action::Run(op) => (*op, None),
            Action::CrashDuring(op, k, model) => (*op, Some((*k, *model))),
        };
        if let Some((k, _)) = crash {
            sim.crash_at(sim.op_count().saturating_add(k));
        }
        for step in steps_of(op) {
            if engine.step(&step)? != Outcome::Done {
                if crash.is_none() {
                    return Err("the op failed on an uncrashed disk".to_owned());
                }
                break;
            }
        }
        let expired_a_key = op == Op::Expire && engine.oracle().current().revision() > revision;
        next.expired_a_key |= expired_a_key && !engine.oracle().in_doubt();
        next.now_ms = engine.now_ms();
        match crash {
            None => {
                next.image = sim.image();
                if next.crashed && !engine.oracle().watched_events().is_empty() {
                    next.resumed_after_crash |= op == Op::CheckWatch;
                }
                next.oracle = engine.crash().1;
            }
            Some((_, model)) => {
                let hit_inside = sim.is_crashed();
                let (sim, oracle) = engine.crash();
                let rebooted = sim.reboot(model);
                next.image = rebooted.image();
                let recovered =
                    Engine::open_at(rebooted, self.setup.clone(), oracle.clone(), next.now_ms)?;
                if !recovered.is_open() {
                    return Err("recovery after the crash did not open".to_owned());
                }
                next.oracle = oracle;
                next.crashed |= hit_inside;
                next.crashed_mid_expiry |= hit_inside && op == Op::Expire;
            }
        }
        Ok(())
    }
}

impl Model for Search {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            image: SimVfs::new(SEED).image(),
            oracle: Oracle::new(),
            now_ms: CLOCK_MS,
            violation: None,
            expired_a_key: false,
            crashed_mid_expiry: false,
            resumed_after_crash: false,
            crashed: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        let ops = [
            Op::Grant,
            Op::PutLeased,
            Op::Put,
            Op::Expire,
            Op::Watch,
            Op::CheckWatch,
        ];
        actions.extend(ops.map(Action::Run));
        for model in MODELS {
            // Before the append, between append and sync, and after the sync.
            for k in 0..3 {
                actions.push(Action::CrashDuring(Op::Expire, k, model));
                actions.push(Action::CrashDuring(Op::PutLeased, k, model));
                actions.push(Action::CrashDuring(Op::Put, k, model));
            }
            actions.push(Action::CrashDuring(Op::Grant, 1, model));
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        Some(self.apply(state, &action))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ORACLE_PROPERTY, |_, s: &State| s.violation.is_none()),
            Property::sometimes("an expiry deletes a key", |_, s: &State| s.expired_a_key),
            Property::sometimes("a crash inside an expiry recovers", |_, s: &State| {
                s.crashed_mid_expiry
            }),
            Property::sometimes(
                "a watch resumed after a crash is checked",
                |_, s: &State| s.resumed_after_crash,
            ),
        ]
    }
}
