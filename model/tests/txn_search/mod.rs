//! The stateright model of two clients running read-modify-write increments as optimistic
//! transactions on the real engine, with crashes inside commits; shared by
//! `tests/stateright_txn.rs` (the search) and `tests/txn_sabotage.rs` (its negative controls).
//!
//! A transaction cannot live across stateright steps (each step boots a disk image and opens the
//! engine afresh), so the model runs the transaction's protocol over them, as a client holding
//! its snapshot revision across reconnects would:
//! - **begin** takes a snapshot (`Db::snapshot`) and keeps its revision;
//! - **read** reads each key the transaction increments at that revision (`Db::get_at`);
//! - **commit** resumes the transaction at that revision (`Db::transaction_at`), reads the keys
//!   again through it (the same values, or a violation), puts each value plus one and commits:
//!   `Ok` (the increment is committed), `Err(Conflict)` (nothing committed: the client begins
//!   again), or, with a crash armed at the k-th I/O op of the commit, the disk reboots under a
//!   persistence model, the recovery is checked by the oracle, and the commit, in doubt, is
//!   found whole or not at all: found, it counts as committed; lost, the client begins again.
//!
//! - **flush** (no client's) writes the memtable to a table, and, inline, runs the compaction it
//!   makes due: later reads at a snapshot and conflict checks find versions in tables.
//!
//! A state is the disk image, the oracle (the committed values and their history), each client's
//! program counter and what it read, and every committed increment in commit order. The
//! properties:
//! - the engine breaks no rule the oracle checks (every recovery, every read, every revision);
//! - no increment is lost: each counter equals the number of committed transactions that
//!   incremented it (acknowledged ones and in-doubt ones a recovery found);
//! - the committed history is serializable: in revision order, each committed transaction read,
//!   for each key, the number of committed transactions before it that incremented that key;
//! - and a conflict, both clients finishing, and a crash inside a commit (its increment kept,
//!   and lost) each happen somewhere.
//!
//! Begin and read write nothing the next step needs, so they keep the image (their open's own
//! recovery writes are dropped, as if that process died right after reading).

use std::time::{Duration, Instant};

use kvstore::{Db, Durability, Error};
use kvstore_faults::{DiskImage, Fill, PersistenceModel, SimVfs};
use kvstore_model::{Engine, Model, Mutation, Oracle, Outcome, Setup, Step};
use stateright::{Checker, Model as _, Property};

/// The seed every step boots its disk with: the search is deterministic.
const SEED: u64 = 0x7a_5eed;

/// The number of clients.
pub const CLIENTS: usize = 2;

/// The counters: key `i` is `c{i}`.
const KEYS: usize = 2;

/// What each client runs: its transactions, in order, each the counters it increments.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Its name in the output.
    pub name: &'static str,
    /// Per client, its transactions.
    pub programs: [&'static [&'static [usize]]; CLIENTS],
}

/// Both clients increment `c0` once: every overlap of the two conflicts.
pub const SAME_KEY: Workload = Workload {
    name: "same key",
    programs: [&[&[0]], &[&[0]]],
};

/// Both clients increment `c0` twice.
pub const SAME_KEY_TWICE: Workload = Workload {
    name: "same key, twice each",
    programs: [&[&[0], &[0]], &[&[0], &[0]]],
};

/// Both clients increment `c0` three times.
pub const SAME_KEY_THRICE: Workload = Workload {
    name: "same key, three times each",
    programs: [&[&[0], &[0], &[0]], &[&[0], &[0], &[0]]],
};

/// Client 0 increments `c0` and `c1` in one transaction, client 1 increments `c1` and then `c0`:
/// overlaps conflict on the key they share, a multi-key commit is cut by crashes.
pub const TWO_KEYS: Workload = Workload {
    name: "two keys",
    programs: [&[&[0, 1]], &[&[1], &[0]]],
};

/// [`TWO_KEYS`], then client 0 increments `c1` and client 1 both keys.
pub const TWO_KEYS_LONGER: Workload = Workload {
    name: "two keys, longer",
    programs: [&[&[0, 1], &[1]], &[&[1], &[0], &[0, 1]]],
};

/// The property a planted lost update must violate.
pub const NO_LOST_INCREMENT: &str = "no increment is lost";
/// The property a planted lost update must violate.
pub const SERIALIZABLE: &str = "every committed history is serializable";
/// The oracle's checks.
pub const NO_VIOLATION: &str = "the oracle's checks hold";
/// What every full search must reach.
pub const SOMETIMES: [&str; 4] = [CONFLICT, ALL_COMMITTED, IN_DOUBT_KEPT, IN_DOUBT_LOST];
const CONFLICT: &str = "a transaction conflicts";
const ALL_COMMITTED: &str = "every client commits its program";
const IN_DOUBT_KEPT: &str = "a crash inside a commit recovers with the commit";
const IN_DOUBT_LOST: &str = "a crash inside a commit recovers without it";

/// Where a client is in its current transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Pc {
    /// Between transactions.
    Idle,
    /// Began at this revision.
    Began(u64),
    /// Began at this revision and read these values of its keys.
    Read(u64, Vec<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Client {
    /// Transactions of its program committed.
    done: usize,
    pc: Pc,
}

/// One committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Committed {
    revision: u64,
    keys: Vec<usize>,
    /// The value it read of each key.
    reads: Vec<u64>,
}

/// See the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    image: DiskImage,
    oracle: Oracle,
    clients: [Client; CLIENTS],
    /// In commit order.
    history: Vec<Committed>,
    /// The first violation of the oracle's checks seen on the way here.
    violation: Option<String>,
    /// A commit was refused with `Conflict` on some step of the path.
    conflicted: bool,
    /// A crash hit the inside of a commit and its commit was found by the recovery.
    in_doubt_kept: bool,
    /// A crash hit the inside of a commit and its commit was not found by the recovery.
    in_doubt_lost: bool,
}

/// A step of one client (the index).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Begin(usize),
    Read(usize),
    Commit(usize),
    /// Commit with a crash armed at its `k`-th I/O op (after the open), reboot under the model.
    CrashInCommit(usize, u64, PersistenceModel),
    /// Not a client's: a flush of the memtable (and, inline, the compaction it makes due), so
    /// reads at a snapshot and conflict checks find versions in tables.
    Flush,
}

/// Persistence models of the crash actions: the unsynced record lost, kept or not (a random
/// prefix of the unsynced writes), torn.
const MODELS: [PersistenceModel; 3] = [
    PersistenceModel::UnsyncedLost,
    PersistenceModel::RandomPrefix,
    PersistenceModel::TornWrite {
        sector_bytes: 512,
        fill: Fill::Garbage,
    },
];

/// Crash points: the first I/O ops of a commit in `Sync` mode. They are the WAL append and its
/// sync (a crash past them comes right after the acknowledgement), preceded, once versions were
/// flushed, by the conflict check's reads of tables.
const CRASH_POINTS: [u64; 5] = [0, 1, 2, 3, 4];

/// See the module doc.
pub struct Search {
    /// What the clients run.
    pub workload: Workload,
    /// Options (Sync durability) and no filesystem sabotage.
    pub setup: Setup,
    /// Whether crash actions are explored.
    pub crashes: bool,
    /// Whether flushes are explored.
    pub flushes: bool,
}

impl Search {
    /// `workload` in `Sync` mode, with crashes inside commits and flushes between steps.
    pub fn new(workload: Workload) -> Search {
        Search {
            workload,
            setup: Setup::new(Durability::Sync),
            crashes: true,
            flushes: true,
        }
    }

    /// The counters client `c`'s current transaction increments.
    fn keys(&self, state: &State, c: usize) -> &'static [usize] {
        self.workload
            .programs
            .get(c)
            .and_then(|p| p.get(state.clients.get(c).map_or(usize::MAX, |cl| cl.done)))
            .copied()
            .unwrap_or(&[])
    }

    fn apply(&self, state: &State, action: &Action) -> State {
        let mut next = state.clone();
        if let Err(e) = self.try_apply(state, action, &mut next) {
            next.violation = Some(format!("{action:?}: {e}"));
        }
        next
    }

    fn try_apply(&self, state: &State, action: &Action, next: &mut State) -> Result<(), String> {
        let sim = SimVfs::from_image(&state.image, SEED);
        let mut engine = Engine::open(sim.clone(), self.setup.clone(), state.oracle.clone())?;
        if *action == Action::Flush {
            if engine.step(&Step::Flush)? != Outcome::Done {
                return Err("flush failed on an uncrashed disk".to_owned());
            }
            next.image = sim.image();
            next.oracle = engine.oracle().clone();
            return Ok(());
        }
        let Some(db) = engine.db() else {
            return Err("open failed on an uncrashed disk".to_owned());
        };
        let model = engine.oracle().current();
        match action {
            Action::Begin(c) => {
                let revision = db.snapshot().map_err(|e| e.to_string())?.revision();
                if revision != model.revision() {
                    return Err(format!(
                        "snapshot at {revision}, the model's last revision is {}",
                        model.revision()
                    ));
                }
                client(next, *c)?.pc = Pc::Began(revision);
                Ok(())
            }
            Action::Read(c) => {
                let Pc::Began(revision) = client(next, *c)?.pc else {
                    return Err("read before begin".to_owned());
                };
                let then = model
                    .state_at(revision)
                    .map_err(|e| format!("the model cannot read at {revision}: {e:?}"))?;
                let mut reads = Vec::new();
                for &k in self.keys(state, *c) {
                    let found = db
                        .get_at(&key(k), revision)
                        .map_err(|e| format!("get_at(c{k}, {revision}): {e}"))?
                        .map(|v| v.value);
                    let expected = then.get(&key(k)).map(|cell| cell.value.clone());
                    if found != expected {
                        return Err(format!(
                            "get_at(c{k}, {revision}) returned {found:?}, the model says \
                             {expected:?}"
                        ));
                    }
                    reads.push(number(found.as_deref())?);
                }
                client(next, *c)?.pc = Pc::Read(revision, reads);
                Ok(())
            }
            Action::Commit(c) => self.commit(state, *c, None, engine, next),
            Action::CrashInCommit(c, k, persistence) => {
                self.commit(state, *c, Some((*k, *persistence)), engine, next)
            }
            Action::Flush => Ok(()),
        }
    }

    /// Commits client `c`'s transaction on `engine` (with a crash armed at the `crash`'s I/O op,
    /// then a reboot and a recovery checked by the oracle).
    fn commit(
        &self,
        state: &State,
        c: usize,
        crash: Option<(u64, PersistenceModel)>,
        mut engine: Engine,
        next: &mut State,
    ) -> Result<(), String> {
        let Pc::Read(snapshot, reads) = client(next, c)?.pc.clone() else {
            return Err("commit before read".to_owned());
        };
        let keys = self.keys(state, c);
        let db: &Db = engine.db().ok_or("the engine is closed")?;
        let mut tx = db
            .transaction_at(snapshot)
            .map_err(|e| format!("transaction_at({snapshot}): {e}"))?;
        let mut ops = Vec::new();
        for (&k, &read) in keys.iter().zip(&reads) {
            let again = number(
                tx.get(&key(k))
                    .map_err(|e| format!("get(c{k}) in the transaction: {e}"))?
                    .as_deref(),
            )?;
            if again != read {
                return Err(format!(
                    "the transaction at {snapshot} reads c{k} = {again}, the read at it {read}"
                ));
            }
            let value = read.saturating_add(1).to_string().into_bytes();
            tx.put(&key(k), &value).map_err(|e| e.to_string())?;
            ops.push((key(k), Some(value)));
        }
        // The counters written after the snapshot: a conflict without one is a violation (a
        // commit despite one is what the properties catch).
        let written_since: Vec<usize> = keys
            .iter()
            .copied()
            .filter(|&k| {
                engine
                    .oracle()
                    .current()
                    .get(&key(k))
                    .is_some_and(|cell| cell.revision > snapshot)
            })
            .collect();
        let sim = engine.sim().clone();
        if let Some((k, _)) = crash {
            sim.crash_at(sim.op_count().saturating_add(k));
        }
        let predicted = engine.oracle().next_revision();
        engine.oracle_mut().issue(Mutation::Batch(ops));
        let outcome = match tx.commit() {
            Ok(revision) => {
                engine.oracle_mut().acknowledge(revision, true)?;
                Some(revision)
            }
            Err(Error::Conflict { key: conflict }) => {
                engine.oracle_mut().refused()?;
                if written_since.is_empty() {
                    return Err(format!(
                        "Conflict on {conflict:?}, but nothing it read was written after {snapshot}"
                    ));
                }
                next.conflicted = true;
                client(next, c)?.pc = Pc::Idle;
                None
            }
            Err(e) if sim.is_crashed() => {
                let _ = e;
                None
            }
            Err(e) => return Err(format!("commit failed on an uncrashed disk: {e}")),
        };
        let Some((_, persistence)) = crash else {
            if let Some(revision) = outcome {
                committed(next, c, revision, keys, reads)?;
            }
            // The live image, taken before the engine is dropped: the next step starts like a
            // process restart that keeps the page cache.
            next.image = sim.image();
            next.oracle = engine.oracle().clone();
            return Ok(());
        };
        let hit_inside = sim.is_crashed();
        let conflicted = client(next, c)?.pc == Pc::Idle;
        let (sim, oracle) = engine.crash();
        let rebooted = sim.reboot(persistence);
        next.image = rebooted.image();
        let recovered = Engine::open(rebooted, self.setup.clone(), oracle)?;
        if !recovered.is_open() {
            return Err("recovery after the crash did not open".to_owned());
        }
        next.oracle = recovered.oracle().clone();
        if conflicted {
            return Ok(());
        }
        // The commit in doubt is found whole (the oracle checked it took the revision predicted)
        // or not at all.
        match outcome {
            Some(revision) => committed(next, c, revision, keys, reads)?,
            None if next.oracle.current().revision() == predicted => {
                committed(next, c, predicted, keys, reads)?;
                next.in_doubt_kept |= hit_inside;
            }
            None => {
                client(next, c)?.pc = Pc::Idle;
                next.in_doubt_lost |= hit_inside;
            }
        }
        Ok(())
    }
}

fn client(state: &mut State, c: usize) -> Result<&mut Client, String> {
    state
        .clients
        .get_mut(c)
        .ok_or_else(|| format!("no client {c}"))
}

/// Records client `c`'s transaction as committed at `revision` and moves it to its next one.
fn committed(
    state: &mut State,
    c: usize,
    revision: u64,
    keys: &[usize],
    reads: Vec<u64>,
) -> Result<(), String> {
    state.history.push(Committed {
        revision,
        keys: keys.to_vec(),
        reads,
    });
    let client = client(state, c)?;
    client.done = client.done.saturating_add(1);
    client.pc = Pc::Idle;
    Ok(())
}

fn key(k: usize) -> Vec<u8> {
    format!("c{k}").into_bytes()
}

/// A counter's value: absent is 0.
fn number(value: Option<&[u8]>) -> Result<u64, String> {
    let Some(bytes) = value else { return Ok(0) };
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a counter holds {bytes:?}"))
}

/// Whether each counter equals the number of committed transactions that incremented it.
fn no_lost_increment(model: &Model, history: &[Committed]) -> bool {
    (0..KEYS).all(|k| {
        let count = history.iter().filter(|t| t.keys.contains(&k)).count();
        number(model.get(&key(k)).map(|cell| cell.value.as_slice()))
            .is_ok_and(|value| usize::try_from(value).is_ok_and(|v| v == count))
    })
}

/// Whether, in commit (revision) order, each transaction read what the ones before produced.
fn serializable(history: &[Committed]) -> bool {
    history.windows(2).all(|w| match w {
        [a, b] => a.revision < b.revision,
        _ => true,
    }) && history.iter().enumerate().all(|(i, t)| {
        t.keys.iter().zip(&t.reads).all(|(k, &read)| {
            let before = history
                .iter()
                .take(i)
                .filter(|earlier| earlier.keys.contains(k))
                .count();
            usize::try_from(read).is_ok_and(|r| r == before)
        })
    })
}

impl stateright::Model for Search {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            image: SimVfs::new(SEED).image(),
            oracle: Oracle::new(),
            clients: std::array::from_fn(|_| Client {
                done: 0,
                pc: Pc::Idle,
            }),
            history: Vec::new(),
            violation: None,
            conflicted: false,
            in_doubt_kept: false,
            in_doubt_lost: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        // A violating state is a leaf: its path is the counterexample.
        if state.violation.is_some()
            || !no_lost_increment(state.oracle.current(), &state.history)
            || !serializable(&state.history)
        {
            return;
        }
        for (c, client) in state.clients.iter().enumerate() {
            match client.pc {
                Pc::Idle if !self.keys(state, c).is_empty() => actions.push(Action::Begin(c)),
                Pc::Idle => {}
                Pc::Began(_) => actions.push(Action::Read(c)),
                Pc::Read(..) => {
                    actions.push(Action::Commit(c));
                    if self.crashes {
                        for persistence in MODELS {
                            for k in CRASH_POINTS {
                                actions.push(Action::CrashInCommit(c, k, persistence));
                            }
                        }
                    }
                }
            }
        }
        if self.flushes {
            actions.push(Action::Flush);
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        Some(self.apply(state, &action))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(NO_VIOLATION, |_, s: &State| s.violation.is_none()),
            Property::always(NO_LOST_INCREMENT, |_, s: &State| {
                no_lost_increment(s.oracle.current(), &s.history)
            }),
            Property::always(SERIALIZABLE, |_, s: &State| serializable(&s.history)),
            Property::sometimes(CONFLICT, |_, s: &State| s.conflicted),
            Property::sometimes(ALL_COMMITTED, |m: &Search, s: &State| {
                s.clients
                    .iter()
                    .zip(m.workload.programs)
                    .all(|(c, p)| c.done == p.len())
            }),
            Property::sometimes(IN_DOUBT_KEPT, |_, s: &State| s.in_doubt_kept),
            Property::sometimes(IN_DOUBT_LOST, |_, s: &State| s.in_doubt_lost),
        ]
    }
}

/// What a search did.
pub struct Report {
    /// States explored (with repeats).
    pub states: usize,
    /// Unique states.
    pub unique: usize,
    /// The deepest path explored.
    pub max_depth: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Per property violated or reached, its name and the actions of its discovery.
    pub discoveries: Vec<(&'static str, Vec<Action>)>,
}

/// Runs `search` breadth first to `depth` on 2 threads.
pub fn bfs(search: Search, depth: usize) -> Report {
    let started = Instant::now();
    let checker = search
        .checker()
        .threads(2)
        .target_max_depth(depth)
        .spawn_bfs()
        .join();
    let discoveries = checker
        .discoveries()
        .into_iter()
        .map(|(name, path)| (name, path.into_actions()))
        .collect();
    Report {
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed: started.elapsed(),
        discoveries,
    }
}

impl Report {
    /// The discovery of `property`, if any.
    pub fn discovery(&self, property: &str) -> Option<&[Action]> {
        self.discoveries
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, actions)| actions.as_slice())
    }
}
