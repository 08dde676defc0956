//! Exhaustive search with stateright: every order of a few engine ops (2 keys x 2 values, put,
//! delete, a two-key batch, flush, compaction) and of crashes at chosen I/O ops inside a put, a
//! batch, a flush or a compaction under chosen persistence models, each step run on the real `Db`
//! over `SimVfs::from_image`.
//!
//! A state is the disk image (pending, unsynced changes included), the oracle, and what was seen.
//! Each step boots the image on a fixed seed, opens the database (a recovery, checked by the
//! oracle: each step begins like a process restart on a live page cache), runs one op, and records
//! the live image without closing (closing would flush); a crash action arms a crash at the k-th
//! I/O op of the op, reboots under the persistence model, and checks that recovery. BFS to a
//! bounded depth; `KVSTORE_CAMPAIGN=deep` goes deeper.

use std::time::Instant;

use kvstore::Durability;
use kvstore_faults::{DiskImage, Fill, PersistenceModel, SimVfs};
use kvstore_model::{Budget, Engine, Mutation, Oracle, Outcome, Setup, Step};
use stateright::{Checker, Model, Property};

/// The seed every step boots its disk with: the search is deterministic.
const SEED: u64 = 0x57a7_e516;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    image: DiskImage,
    oracle: Oracle,
    /// The first violation seen on the way here.
    violation: Option<String>,
    /// A flush completed on some step of the path.
    flushed: bool,
    /// A crash hit the inside of a flush and the recovery after it was checked.
    crashed_mid_flush: bool,
    /// A compaction completed on some step of the path.
    compacted: bool,
    /// A crash hit the inside of a compaction and the recovery after it was checked.
    crashed_mid_compaction: bool,
    /// A crash hit the inside of a batch and the recovery after it was checked.
    crashed_mid_batch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    /// A batch putting value `v` at key 0 and deleting key 1 under one revision.
    Batch(u8),
    Flush,
    Compact,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Run(Op),
    /// Run the op with a crash armed at its `k`-th I/O op (after the open), reboot under the model.
    CrashDuring(Op, u64, PersistenceModel),
}

struct Search {
    setup: Setup,
}

fn step_of(op: &Op) -> Step {
    match op {
        Op::Put(k, v) => Step::Write(
            // Values of 20 000 bytes: three of them fill the 64 KiB memtable.
            Mutation::Put(vec![b'k', b'0' + k], vec![b'a' + v; 20_000]),
            None,
        ),
        Op::Delete(k) => Step::Write(Mutation::Delete(vec![b'k', b'0' + k]), None),
        Op::Batch(v) => Step::Write(
            Mutation::Batch(vec![
                (b"k0".to_vec(), Some(vec![b'A' + v; 20_000])),
                (b"k1".to_vec(), None),
            ]),
            None,
        ),
        Op::Flush => Step::Flush,
        Op::Compact => Step::Compact,
    }
}

impl Search {
    /// Runs `action` from `state`; any violation is recorded in the returned state.
    fn apply(&self, state: &State, action: &Action) -> State {
        let mut next = state.clone();
        match self.try_apply(state, action, &mut next) {
            Ok(()) => next,
            Err(e) => {
                next.violation = Some(format!("{action:?}: {e}"));
                next
            }
        }
    }

    fn try_apply(&self, state: &State, action: &Action, next: &mut State) -> Result<(), String> {
        let sim = SimVfs::from_image(&state.image, SEED);
        let mut engine = Engine::open(sim.clone(), self.setup.clone(), state.oracle.clone())?;
        if !engine.is_open() {
            return Err("open failed on an uncrashed disk".to_owned());
        }
        match action {
            Action::Run(op) => {
                if engine.step(&step_of(op))? != Outcome::Done {
                    return Err("the op failed on an uncrashed disk".to_owned());
                }
                match op {
                    Op::Flush => next.flushed = true,
                    Op::Compact => next.compacted = true,
                    _ => {}
                }
                // The live image, taken before the engine is dropped: the next step starts like a
                // process restart that keeps the page cache.
                next.image = sim.image();
                let (_, oracle) = engine.crash();
                next.oracle = oracle;
            }
            Action::CrashDuring(op, k, model) => {
                sim.crash_at(sim.op_count().saturating_add(*k));
                engine.step(&step_of(op))?;
                let hit_inside = sim.is_crashed();
                let (sim, oracle) = engine.crash();
                let rebooted = sim.reboot(*model);
                next.image = rebooted.image();
                // Check the recovery now; the next step recovers again from the same image.
                let recovered = Engine::open(rebooted, self.setup.clone(), oracle.clone())?;
                if !recovered.is_open() {
                    return Err("recovery after the crash did not open".to_owned());
                }
                next.oracle = oracle;
                if hit_inside {
                    match op {
                        Op::Flush => next.crashed_mid_flush = true,
                        Op::Compact => next.crashed_mid_compaction = true,
                        Op::Batch(_) => next.crashed_mid_batch = true,
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// The property a sabotaged search must violate.
const ORACLE_PROPERTY: &str = "every recovery is a prefix of the trace";

const MODELS: [PersistenceModel; 2] = [
    PersistenceModel::UnsyncedLost,
    PersistenceModel::TornWrite {
        sector_bytes: 512,
        fill: Fill::Garbage,
    },
];

impl Model for Search {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            image: SimVfs::new(SEED).image(),
            oracle: Oracle::new(),
            violation: None,
            flushed: false,
            crashed_mid_flush: false,
            compacted: false,
            crashed_mid_compaction: false,
            crashed_mid_batch: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        for k in 0..2 {
            for v in 0..2 {
                actions.push(Action::Run(Op::Put(k, v)));
            }
            actions.push(Action::Run(Op::Delete(k)));
        }
        for v in 0..2 {
            actions.push(Action::Run(Op::Batch(v)));
        }
        actions.push(Action::Run(Op::Flush));
        actions.push(Action::Run(Op::Compact));
        for model in MODELS {
            // A put and a batch in Sync mode: crash before the append, and between append and
            // sync.
            for k in 0..2 {
                actions.push(Action::CrashDuring(Op::Put(0, 1), k, model));
                actions.push(Action::CrashDuring(Op::Batch(1), k, model));
            }
            // A flush: crash at points spread over its I/O (SST write, manifest, WAL removal).
            for k in [1, 4, 8, 12] {
                actions.push(Action::CrashDuring(Op::Flush, k, model));
            }
            // A compaction (a no-op on an empty L0): crash at points spread over its I/O (table
            // reads, output write and sync, manifest, input removal).
            for k in [1, 5, 10, 15] {
                actions.push(Action::CrashDuring(Op::Compact, k, model));
            }
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        Some(self.apply(state, &action))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ORACLE_PROPERTY, |_, s: &State| s.violation.is_none()),
            Property::sometimes("a flush completes", |_, s: &State| s.flushed),
            Property::sometimes("a crash inside a flush recovers", |_, s: &State| {
                s.crashed_mid_flush
            }),
            Property::sometimes("a compaction completes", |_, s: &State| s.compacted),
            Property::sometimes("a crash inside a compaction recovers", |_, s: &State| {
                s.crashed_mid_compaction
            }),
            Property::sometimes("a crash inside a batch recovers", |_, s: &State| {
                s.crashed_mid_batch
            }),
        ]
    }
}

#[test]
fn bfs_over_ops_and_crash_points() {
    let started = Instant::now();
    let budget = Budget::from_env();
    let depth = budget.pick(5, 6);
    let checker = Search {
        setup: Setup::new(Durability::Sync),
    }
    .checker()
    .threads(2)
    .target_max_depth(depth)
    .spawn_bfs()
    .join();
    eprintln!(
        "[stateright] depth {depth}: {} states, {} unique, max depth {}, {:.1}s (budget {budget:?})",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64()
    );
    checker.assert_properties();
    let floor = budget.pick(20_000, 150_000);
    assert!(
        checker.unique_state_count() >= floor,
        "only {} unique states explored, fewer than {floor}: the search got shallow",
        checker.unique_state_count()
    );
}

/// Negative control: with WAL fsyncs skipped (through the `Vfs`), the search must find a path to a
/// violation of the oracle.
#[test]
fn bfs_finds_a_skipped_wal_fsync() {
    let checker = Search {
        setup: Setup {
            sabotage: kvstore_model::Sabotage::SkipWalSync,
            ..Setup::new(Durability::Sync)
        },
    }
    .checker()
    .threads(2)
    .target_max_depth(3)
    .spawn_bfs()
    .join();
    let Some(path) = checker.discovery(ORACLE_PROPERTY) else {
        panic!(
            "the search explored {} states with WAL fsyncs skipped and found no violation",
            checker.unique_state_count()
        );
    };
    eprintln!(
        "[stateright negative control] violation found: {:?}",
        path.into_actions()
    );
}
