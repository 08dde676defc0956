//! The state machine's generators and runner, shared by `tests/state_machine.rs` (the campaign
//! and its `Vfs` negative control) and `tests/failpoint_sabotage.rs` (a bug planted in the engine
//! that the state machine must find and shrink).
//!
//! Invariant: [`run`] is a pure function of its seed and ops (inline background work, fixed
//! clock, `SimVfs`), so a shrunk failure replays exactly.

use std::sync::atomic::{AtomicU64, Ordering};

use kvstore::Durability;
use kvstore_faults::{PersistenceModel, SimVfs};
use kvstore_model::{Engine, Expect, Mutation, Nested, Oracle, Setup, Step};
use proptest::prelude::*;

/// One op of a generated sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// A plain step (writes carry their durability).
    Step(Step),
    /// Crash at I/O op `after` inside `step` (or right after it, if it issues fewer), reboot
    /// under `PersistenceModel::ALL[model]`, recover and check.
    CrashDuring {
        step: Step,
        after: u64,
        model: usize,
    },
}

fn key(keys: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..keys).prop_map(|k| format!("k{k}").into_bytes())
}

/// Small values, and large ones that fill the 64 KiB memtable in a few writes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (0u8..4).prop_map(|v| vec![b'a' + v; 8]),
        1 => (0u8..4).prop_map(|v| vec![b'A' + v; 20_000]),
    ]
}

fn durability() -> impl Strategy<Value = Option<Durability>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Durability::Buffered)),
        1 => Just(Some(Durability::GroupCommit)),
    ]
}

/// A txn branch: up to three ops, each key once.
fn branch(keys: usize) -> impl Strategy<Value = Vec<(Vec<u8>, Option<Vec<u8>>)>> {
    prop::collection::btree_map(key(keys), prop::option::of(value()), 0..3)
        .prop_map(|ops| ops.into_iter().collect())
}

fn compares(keys: usize) -> impl Strategy<Value = Vec<(Vec<u8>, Expect)>> {
    prop::collection::vec((key(keys), expect()), 0..3)
}

/// A txn to nest in a txn's success branch.
fn nested(keys: usize) -> impl Strategy<Value = Nested> {
    (compares(keys), branch(keys), branch(keys)).prop_map(|(compares, success, failure)| Nested {
        compares,
        success,
        failure,
    })
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        value().prop_map(Expect::Value),
        Just(Expect::Absent),
        (0u64..3).prop_map(Expect::Version),
    ]
}

fn mutation(keys: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (key(keys), value()).prop_map(|(k, v)| Mutation::Put(k, v)),
        2 => key(keys).prop_map(Mutation::Delete),
        2 => prop::collection::vec((key(keys), prop::option::of(value())), 1..4)
            .prop_map(Mutation::Batch),
        2 => (compares(keys), branch(keys), branch(keys), prop::option::of(nested(keys)))
            .prop_map(|(compares, success, failure, nested)| {
                // A key once per branch: the nested txn leaves out the success branch's keys.
                let nested = nested.map(|mut n: Nested| {
                    let outer = |k: &Vec<u8>| success.iter().any(|(s, _)| s == k);
                    n.success.retain(|(k, _)| !outer(k));
                    n.failure.retain(|(k, _)| !outer(k));
                    n
                });
                Mutation::Txn { compares, success, failure, nested }
            }),
        1 => (key(keys), key(keys)).prop_map(|(a, b)| {
            let (start, end) = if a <= b { (a, b) } else { (b, a) };
            Mutation::DeleteRange(start, [end, vec![0]].concat())
        }),
        2 => (key(keys), value(), lease()).prop_map(|(k, v, l)| Mutation::PutLease(k, v, l)),
        1 => (1..=LEASES, prop_oneof![Just(20u64), Just(50)])
            .prop_map(|(l, ttl)| Mutation::Grant(l, ttl)),
        1 => lease().prop_map(Mutation::Revoke),
    ]
}

/// Lease ids the campaign uses (1..=LEASES); a grant of a granted one is refused.
const LEASES: u64 = 2;

/// A lease id, sometimes 0 (no lease, or one never granted for a revoke).
fn lease() -> impl Strategy<Value = u64> {
    0..=LEASES
}

fn step(keys: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (mutation(keys), durability()).prop_map(|(m, d)| Step::Write(m, d)),
        2 => key(keys).prop_map(Step::Get),
        1 => Just(Step::Scan),
        1 => (0u64..6).prop_map(Step::ReadAt),
        1 => (0u64..6).prop_map(Step::CompactHistory),
        1 => Just(Step::TakeSnapshot),
        1 => Just(Step::CheckSnapshot),
        1 => Just(Step::Flush),
        1 => Just(Step::Compact),
        1 => Just(Step::Sync),
        1 => Just(Step::Reopen),
        1 => (0u64..6).prop_map(Step::Watch),
        1 => Just(Step::CheckWatch),
        1 => lease().prop_map(Step::KeepAlive),
        1 => prop_oneof![Just(10u64), Just(30)].prop_map(Step::Advance),
        1 => Just(Step::Expire),
    ]
}

fn op(keys: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => step(keys).prop_map(Op::Step),
        1 => (step(keys), 0u64..40, 0..PersistenceModel::ALL.len())
            .prop_map(|(step, after, model)| Op::CrashDuring { step, after, model }),
    ]
}

/// Runs [`run`] finished, in this process.
pub static CASES_RUN: AtomicU64 = AtomicU64::new(0);
/// Crash recoveries [`run`] checked, in this process.
pub static CRASHES_CHECKED: AtomicU64 = AtomicU64::new(0);

/// Runs `ops` on a fresh disk seeded `seed`; `Err` names the violation, the step and the disk.
pub fn run(seed: u64, ops: &[Op], setup: &Setup) -> Result<(), String> {
    let mut engine = Engine::open(SimVfs::new(seed), setup.clone(), Oracle::new())?;
    for (i, op) in ops.iter().enumerate() {
        let at = |e: String| format!("op {i} ({op:?}), disk seed {seed:#x}: {e}");
        match op {
            Op::Step(step) => {
                engine.step(step).map_err(at)?;
            }
            Op::CrashDuring { step, after, model } => {
                let sim = engine.sim().clone();
                sim.crash_at(sim.op_count().saturating_add(*after));
                engine.step(step).map_err(at)?;
                let (sim, oracle) = engine.crash();
                let model = PersistenceModel::ALL
                    .get(*model)
                    .copied()
                    .unwrap_or(PersistenceModel::UnsyncedLost);
                engine = Engine::open(sim.reboot(model), setup.clone(), oracle).map_err(at)?;
                if !engine.is_open() {
                    return Err(at("recovery did not open".to_owned()));
                }
                CRASHES_CHECKED.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !engine.is_open() {
            return Err(at("the engine failed on an uncrashed disk".to_owned()));
        }
    }
    // End with a power cut: what was durable must be there.
    let (sim, oracle) = engine.crash();
    let engine = Engine::open(
        sim.reboot(PersistenceModel::RandomSubset),
        setup.clone(),
        oracle,
    )
    .map_err(|e| format!("final power cut, disk seed {seed:#x}: {e}"))?;
    if !engine.is_open() {
        return Err("final recovery did not open".to_owned());
    }
    CASES_RUN.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A disk seed and 1-39 ops on 2-4 keys.
pub fn ops() -> impl Strategy<Value = (u64, Vec<Op>)> {
    (
        any::<u64>(),
        (2usize..=4).prop_flat_map(|keys| prop::collection::vec(op(keys), 1..40)),
    )
}
