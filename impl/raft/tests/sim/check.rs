//! The checks at the end of a run, once the cluster is healed and settled:
//! - every member applied the same index and holds the same rows (key, value, revisions,
//!   version, lease) and last revision;
//! - that state is what replaying the committed log's commands on a fresh engine gives;
//! - revisions strictly increase along the log;
//! - every acknowledged write is in the committed log at the revision it was answered;
//! - the client history is linearizable (its unanswered writes settled by the log).
//!
//! Each check adds its violations to the report rather than panicking, so a test can assert
//! which check caught a planted bug.

use std::collections::BTreeMap;
use std::time::Duration;

use kvstore::Db;
use kvstore_model::linearizable::{self, Call, CheckError, History, Limits, Op, Outcome};
use kvstore_raft::Command;
use openraft::EntryPayload;

use super::world::World;
use super::{Check, Violation};
use crate::common::{Row, dump};

/// Virtual time the healed cluster has to agree on a leader and apply everything.
const SETTLE: Duration = Duration::from_secs(60);

/// What every member holds: its applied index and its engine's rows and last revision.
type State = (u64, Vec<Row>, u64);

/// Waits until the running members agree on a leader that applied its whole log, and every
/// member applied as much; returns that index and the leader.
pub async fn settle(world: &World) -> Result<(u64, u64), Violation> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        if let Some(settled) = settled(world) {
            return Ok(settled);
        }
        if tokio::time::Instant::now() >= deadline {
            let metrics: Vec<String> = world
                .running()
                .iter()
                .filter_map(|&id| world.node(id))
                .map(|n| format!("{:?}", n.raft().metrics().borrow()))
                .collect();
            return Err(Violation {
                check: Check::Settle,
                what: format!(
                    "the healed cluster did not settle in {SETTLE:?}:\n  {}",
                    metrics.join("\n  ")
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settled(world: &World) -> Option<(u64, u64)> {
    let leader = world.leader()?;
    let last = world
        .node(leader)?
        .raft()
        .metrics()
        .borrow()
        .last_log_index?;
    let all = world.running().into_iter().all(|id| {
        world.node(id).is_some_and(|node| {
            let m = node.raft().metrics().borrow().clone();
            m.current_leader == Some(leader) && m.last_applied.map(|l| l.index) == Some(last)
        })
    });
    all.then_some((leader, last))
}

/// The first three checks: members alike, equal to the log's replay, revisions increasing.
/// Returns the revision each write of the log took effect at, by value.
pub fn state(
    world: &World,
    leader: u64,
    applied: u64,
    violations: &mut Vec<Violation>,
) -> BTreeMap<Vec<u8>, u64> {
    let states: BTreeMap<u64, State> = world
        .running()
        .into_iter()
        .filter_map(|id| world.node(id).map(|node| (id, node)))
        .map(|(id, node)| {
            let index = node
                .raft()
                .metrics()
                .borrow()
                .last_applied
                .map_or(0, |l| l.index);
            let (rows, revision) = dump(&node.db());
            (id, (index, rows, revision))
        })
        .collect();
    let reference = &states[&leader];
    for (id, state) in &states {
        if state != reference {
            violations.push(Violation {
                check: Check::MembersAgree,
                what: format!(
                    "member {id} differs from leader {leader}: applied {} vs {}, last revision {} vs {}, rows\n    {:?}\n  vs\n    {:?}",
                    state.0, reference.0, state.2, reference.2, state.1, reference.1
                ),
            });
        }
    }
    let node = world.node(leader).expect("the leader runs");
    let entries = node
        .log()
        .entries(..=applied)
        .expect("read the leader's log");
    let fresh = tempfile::tempdir().expect("tempdir");
    let db = Db::open(fresh.path(), world.options()).expect("open a fresh engine");
    let mut written = BTreeMap::new();
    let mut last_revision = 0;
    for entry in &entries {
        let EntryPayload::Normal(command) = &entry.payload else {
            continue;
        };
        let (revision, value) = replay(&db, command);
        if let Some(value) = value {
            if revision <= last_revision {
                violations.push(Violation {
                    check: Check::RevisionsIncrease,
                    what: format!(
                        "entry {} wrote at revision {revision}, after revision {last_revision}",
                        entry.log_id
                    ),
                });
            }
            last_revision = revision;
            written.insert(value, revision);
        }
    }
    let replayed = dump(&db);
    if (reference.1.clone(), reference.2) != replayed {
        violations.push(Violation {
            check: Check::LogReplay,
            what: format!(
                "leader {leader}'s engine is not the replay of its log up to {applied}: last revision {} vs {}, rows\n    {:?}\n  vs replayed\n    {:?}",
                reference.2, replayed.1, reference.1, replayed.0
            ),
        });
    }
    written
}

/// Applies one command of the log as the state machine does; returns its revision and the value
/// it wrote, if it wrote one (the clients only propose puts and one-put txns).
fn replay(db: &Db, command: &Command) -> (u64, Option<Vec<u8>>) {
    match command {
        Command::Put { key, value, lease } => {
            let revision = db.put_with_lease(key, value, *lease).expect("replay put");
            (revision, Some(value.clone()))
        }
        Command::Txn(txn) => {
            let answer = db.txn(txn.clone()).expect("replay txn");
            let value = txn.success.iter().find_map(|op| match op {
                kvstore::txn::TxnOp::Put { value, .. } => Some(value.clone()),
                _ => None,
            });
            (answer.revision, value.filter(|_| answer.succeeded))
        }
        other => panic!("the clients proposed no {other:?}"),
    }
}

/// Every acknowledged write is in the log at its revision.
pub fn acknowledged(
    history: &History,
    written: &BTreeMap<Vec<u8>, u64>,
    violations: &mut Vec<Violation>,
) {
    for op in &history.ops {
        let (value, revision) = match (&op.call, op.returned.as_ref().map(|r| &r.outcome)) {
            (Call::Put { value, .. }, Some(Outcome::Put { revision })) => (value, *revision),
            (
                Call::Cas { value, .. },
                Some(Outcome::Cas {
                    succeeded: true,
                    revision,
                }),
            ) => (value, *revision),
            _ => continue,
        };
        let logged = written.get(value);
        if logged != Some(&revision) {
            violations.push(Violation {
                check: Check::Acknowledged,
                what: format!(
                    "client {} was answered revision {revision} for {:?}, the committed log has it at {logged:?}",
                    op.client,
                    value.escape_ascii().to_string()
                ),
            });
        }
    }
}

/// The history, its unanswered writes settled by the log, is linearizable.
pub fn linearizable(
    history: &History,
    written: &BTreeMap<Vec<u8>, u64>,
    violations: &mut Vec<Violation>,
) -> Option<linearizable::Stats> {
    let settled = history.settled_by(|value| written.get(value).copied());
    match linearizable::check(&settled, &Limits::default()) {
        Ok(stats) => Some(stats),
        Err(CheckError::NotLinearizable(counterexample)) => {
            violations.push(Violation {
                check: Check::Linearizable,
                what: counterexample.to_string(),
            });
            None
        }
        Err(other) => {
            violations.push(Violation {
                check: Check::Linearizable,
                what: format!("the checker failed: {other}"),
            });
            None
        }
    }
}

/// The history as the checker takes it.
pub fn history(mut ops: Vec<Op>) -> History {
    ops.sort_by_key(|op| (op.invoked, op.client));
    History {
        initial_revision: 0,
        ops,
    }
}
