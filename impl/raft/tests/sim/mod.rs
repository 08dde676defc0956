//! The deterministic cluster simulation (issue 17): a whole cluster in one process on the
//! router, under a paused current-thread tokio clock, with clients, a nemesis and a faulty
//! network all drawing from one seed; then the checks of [`check`].
//!
//! Modules: [`rng`] (the seeded draws), [`net`] (loss and random delays over the router),
//! [`world`] (the members), [`client`] (the calls and their history), [`nemesis`] (the
//! faults), [`watch`] (every member's watch events), [`check`] (the end-of-run checks).
//!
//! Invariants:
//! - Every random choice of a run (openraft's election timeouts, each client's calls, the
//!   nemesis, the network) comes from the run's seed, one generator per task.
//! - A run reports its violations; it panics only when the harness itself cannot go on.

pub mod check;
pub mod client;
pub mod nemesis;
pub mod net;
pub mod rng;
pub mod watch;
pub mod world;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kvstore_model::linearizable::{History, Stats};
use kvstore_raft::runtime::seed_thread_rng;
use tokio::time::Instant;

use client::Client;
use rng::Rng;
use watch::Events;
use world::World;

/// The most violations a report prints (the first ones; the count of the rest follows).
const VIOLATIONS_SHOWN_MAX: usize = 12;

/// Bugs the harness plants on purpose, to show the checks catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// A write not committed within 100 ms is answered with the leader's own guess of its
    /// revision, as a leader acknowledging after its local append (before a quorum) would.
    pub ack_before_quorum: bool,
    /// Once in the run, a member applies the newest put it applied a second time.
    pub apply_twice: bool,
    /// Reads are answered from any member's engine without `ensure_linearizable` (a deposed
    /// leader or a lagging follower serves them).
    pub stale_reads: bool,
    /// A write not committed within 100 ms is reported to the watchers as if applied at the
    /// leader's guess of its revision (a watch fed from the leader's append, not from the
    /// committed entries it applied).
    pub phantom_watch_events: bool,
}

/// One run's shape.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The seed of every draw.
    pub seed: u64,
    /// Members.
    pub members: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Virtual time the clients and the nemesis run.
    pub duration: Duration,
    /// The planted bugs (none for the campaign).
    pub bugs: Bugs,
}

/// The check a violation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The healed cluster settles (one leader, everything applied everywhere).
    Settle,
    /// Every member's applied index and state equal the leader's.
    MembersAgree,
    /// The leader's state equals the replay of its committed log.
    LogReplay,
    /// Revisions strictly increase along the log.
    RevisionsIncrease,
    /// Every acknowledged write is in the log at its answered revision.
    Acknowledged,
    /// The client history is linearizable.
    Linearizable,
    /// Every watch event is a committed write at its revision.
    WatchCommitted,
}

/// One failed check.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which check.
    pub check: Check,
    /// What it found.
    pub what: String,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Report {
    /// The run's shape.
    pub scenario: Scenario,
    /// The nemesis' faults, then the history, one line each: equal for equal seeds.
    pub trace: Vec<String>,
    /// Ops in the history (answered or not).
    pub ops: usize,
    /// Of which answered.
    pub answered: usize,
    /// The last applied index.
    pub applied: u64,
    /// Watch events recorded (every member's).
    pub events: usize,
    /// The linearizability search's counts, when it passed.
    pub stats: Option<Stats>,
    /// What failed.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether check `check` found a violation.
    pub fn caught(&self, check: Check) -> bool {
        self.violations.iter().any(|v| v.check == check)
    }

    /// The membership steps the nemesis completed (its trace's `...: done` lines).
    pub fn membership_steps(&self) -> usize {
        self.trace
            .iter()
            .filter(|line| line.contains(" through leader ") && line.ends_with(": done"))
            .count()
    }

    /// The line that replays this run.
    pub fn replay_line(&self) -> String {
        format!(
            "SIM_SEED={} cargo nextest run -p kvstore-raft --test simulation",
            self.scenario.seed
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scenario;
        write!(
            f,
            "seed {} ({} members, {} clients, {:?}, bugs {:?}): {} ops ({} answered), {} entries applied, {} watch events, {} membership steps",
            s.seed,
            s.members,
            s.clients,
            s.duration,
            s.bugs,
            self.ops,
            self.answered,
            self.applied,
            self.events,
            self.membership_steps()
        )?;
        if let Some(stats) = self.stats {
            write!(
                f,
                ", checker: {} states, {} steps",
                stats.states, stats.search_steps
            )?;
        }
        for violation in self.violations.iter().take(VIOLATIONS_SHOWN_MAX) {
            write!(f, "\nVIOLATION ({:?}): {}", violation.check, violation.what)?;
        }
        let hidden = self.violations.len().saturating_sub(VIOLATIONS_SHOWN_MAX);
        if hidden > 0 {
            let mut checks: Vec<Check> = self.violations.iter().map(|v| v.check).collect();
            checks.dedup();
            write!(f, "\n... and {hidden} more violations (of {checks:?})")?;
        }
        if !self.violations.is_empty() {
            write!(f, "\nnemesis and history:\n  {}", self.trace.join("\n  "))?;
        }
        write!(f, "\nreplay: {}", self.replay_line())
    }
}

/// Runs `scenario` (on the current thread's paused runtime) and checks it.
pub async fn run(scenario: Scenario) -> Report {
    seed_thread_rng(scenario.seed);
    let world =
        Arc::new(World::new(scenario.members, Rng::stream(scenario.seed, 0).next_u64()).await);
    let events = Arc::new(Events::default());
    let observer = tokio::spawn(watch::observe(Arc::clone(&world), Arc::clone(&events)));
    let origin = Instant::now();
    let until = origin + scenario.duration;
    let clients: Vec<_> = (0..scenario.clients)
        .map(|id| {
            let rng = Rng::stream(scenario.seed, 2 + id as u64);
            let client = Client {
                id,
                rng,
                world: Arc::clone(&world),
                events: Arc::clone(&events),
                bugs: scenario.bugs,
                origin,
            };
            tokio::spawn(client.run(until))
        })
        .collect();
    let nemesis = tokio::spawn(nemesis::run(
        Arc::clone(&world),
        Rng::stream(scenario.seed, 1),
        scenario.bugs,
        origin,
        until,
    ));
    let mut ops = Vec::new();
    for client in clients {
        ops.extend(client.await.expect("client task"));
    }
    let mut trace = nemesis.await.expect("nemesis task");
    let history = check::history(ops);
    trace.extend(history.ops.iter().map(|op| format!("{op:?}")));
    let mut report = Report {
        scenario,
        trace,
        ops: history.ops.len(),
        answered: history
            .ops
            .iter()
            .filter(|op| op.returned.is_some())
            .count(),
        applied: 0,
        events: 0,
        stats: None,
        violations: Vec::new(),
    };
    let settled = check::settle(&world).await;
    // The last events of the settled cluster, then the observer lets go of the members.
    tokio::time::sleep(Duration::from_millis(50)).await;
    events.stop();
    observer.await.expect("observer task");
    let seen = events.all();
    report.events = seen.len();
    match settled {
        Ok((leader, applied)) => {
            report.applied = applied;
            checks(&world, leader, applied, &history, &seen, &mut report);
        }
        Err(violation) => report.violations.push(violation),
    }
    world.shutdown().await;
    report
}

fn checks(
    world: &World,
    leader: u64,
    applied: u64,
    history: &History,
    seen: &[watch::Seen],
    report: &mut Report,
) {
    let written = check::state(world, leader, applied, &mut report.violations);
    watch::committed(seen, &written, &mut report.violations);
    check::acknowledged(history, &written, &mut report.violations);
    report.stats = check::linearizable(history, &written, &mut report.violations);
}

/// The seeds to run: `SIM_SEED` alone if set, else `SIM_SEEDS` (or `default_count`) seeds
/// from `SIM_FIRST_SEED` (or `first`).
pub fn seeds(first: u64, default_count: u64) -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = var("SIM_SEED") {
        return vec![seed];
    }
    let first = var("SIM_FIRST_SEED").unwrap_or(first);
    let count = var("SIM_SEEDS").unwrap_or(default_count);
    (first..first + count).collect()
}
