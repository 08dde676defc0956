//! The linearizability checker (`kvstore_model::linearizable`): hand-written histories that are
//! and are not linearizable, and generated ones: a sequential store run over randomly
//! overlapping intervals (always linearizable) and the same with one answer changed so that no
//! order can explain it (never linearizable, and the counterexample names the changed op).
//! A failing case prints its seed and its history; proptest shrinks it first.

use kvstore_model::linearizable::{
    Call, CheckError, Counterexample, History, Limits, Op, Outcome, Returned, SETTLED_AT, check,
};
use kvstore_model::rng::below;
use proptest::prelude::*;

fn put(client: usize, key: &str, value: &str, at: (u64, u64), revision: u64) -> Op {
    Op {
        client,
        call: Call::Put {
            key: key.into(),
            value: value.into(),
        },
        invoked: at.0,
        returned: Some(Returned {
            at: at.1,
            outcome: Outcome::Put { revision },
        }),
    }
}

fn put_unknown(client: usize, key: &str, value: &str, invoked: u64) -> Op {
    Op {
        client,
        call: Call::Put {
            key: key.into(),
            value: value.into(),
        },
        invoked,
        returned: None,
    }
}

fn get(client: usize, key: &str, at: (u64, u64), found: Option<(&str, u64)>) -> Op {
    Op {
        client,
        call: Call::Get { key: key.into() },
        invoked: at.0,
        returned: Some(Returned {
            at: at.1,
            outcome: Outcome::Get {
                found: found.map(|(v, r)| (v.into(), r)),
                revision: None,
            },
        }),
    }
}

fn cas(client: usize, key: &str, expected: Option<&str>, value: &str, at: (u64, u64)) -> Op {
    Op {
        client,
        call: Call::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            value: value.into(),
        },
        invoked: at.0,
        returned: None,
    }
}

fn answered(mut op: Op, at: u64, outcome: Outcome) -> Op {
    op.returned = Some(Returned { at, outcome });
    op
}

fn history(ops: Vec<Op>) -> History {
    History {
        initial_revision: 1,
        ops,
    }
}

/// The counterexample of a history that must not linearize.
fn refuted(history: &History) -> Counterexample {
    match check(history, &Limits::default()) {
        Err(CheckError::NotLinearizable(c)) => {
            println!("{c}");
            *c
        }
        other => panic!("expected a counterexample, got {other:?}"),
    }
}

fn core_calls(c: &Counterexample) -> Vec<Call> {
    c.core.iter().map(|op| op.call.clone()).collect()
}

#[test]
fn sequential_and_overlapping_histories_linearize() {
    let h = history(vec![
        put(0, "k", "a", (0, 10), 2),
        get(1, "k", (20, 30), Some(("a", 2))),
        // Two overlapping puts: either order fits their revisions, then reads agree.
        put(0, "k", "b", (40, 60), 4),
        put(1, "j", "c", (41, 61), 3),
        get(2, "k", (45, 50), Some(("a", 2))), // may come before both
        get(2, "j", (70, 80), Some(("c", 3))),
        get(0, "k", (70, 80), Some(("b", 4))),
    ]);
    let stats = check(&h, &Limits::default()).expect("linearizable");
    assert_eq!(stats.ops, 7);
}

#[test]
fn a_stale_read_is_caught() {
    let h = history(vec![
        put(0, "k", "a", (0, 10), 2),
        put(0, "k", "b", (20, 30), 3),
        get(1, "k", (40, 50), Some(("a", 2))),
    ]);
    let c = refuted(&h);
    // Making either the second put's or the read's answer unknown lets the rest linearize;
    // the first put only explains the value read.
    assert_eq!(
        core_calls(&c),
        vec![h.ops[1].call.clone(), h.ops[2].call.clone()]
    );
    assert!(c.minimal);
    assert_eq!(c.context.len(), 1, "{c}");
    let text = c.to_string();
    assert!(text.contains("put \"k\" = \"b\" -> revision 3"), "{text}");
    assert!(
        text.contains("get \"k\" -> \"a\" (mod revision 2)"),
        "{text}"
    );
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let h = history(vec![
        put(0, "k", "a", (0, 10), 2),
        get(1, "k", (20, 30), None),
        put(1, "j", "x", (40, 50), 3),
    ]);
    let c = refuted(&h);
    assert_eq!(
        core_calls(&c),
        vec![h.ops[0].call.clone(), h.ops[1].call.clone()]
    );
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    let h = history(vec![
        put(0, "k", "a", (0, 10), 2),
        get(1, "k", (20, 30), Some(("z", 2))),
    ]);
    let c = refuted(&h);
    assert_eq!(core_calls(&c), vec![h.ops[1].call.clone()]);
}

#[test]
fn a_write_without_an_answer_may_or_may_not_have_happened() {
    // Seen: it happened, before the read.
    let seen = history(vec![
        put_unknown(0, "k", "a", 0),
        get(1, "k", (20, 30), Some(("a", 2))),
        put(1, "k", "b", (40, 50), 3),
    ]);
    check(&seen, &Limits::default()).expect("the unanswered put took revision 2");
    // Never seen: it did not happen (or happens after everything).
    let unseen = history(vec![
        put_unknown(0, "k", "a", 0),
        get(1, "k", (20, 30), None),
        put(1, "k", "b", (40, 50), 2),
        get(1, "k", (60, 70), Some(("b", 2))),
    ]);
    check(&unseen, &Limits::default()).expect("the unanswered put never took effect");
    // Seen, then gone: no deletes, so impossible.
    let gone = history(vec![
        put_unknown(0, "k", "a", 0),
        get(1, "k", (20, 30), Some(("a", 2))),
        get(1, "k", (40, 50), None),
    ]);
    let c = refuted(&gone);
    assert_eq!(c.core.len(), 2, "both reads: {c}");
    assert_eq!(c.context.len(), 1, "the unanswered put");
    // It cannot take effect before it was sent.
    let early = history(vec![
        get(1, "k", (0, 10), Some(("a", 2))),
        put_unknown(0, "k", "a", 20),
    ]);
    refuted(&early);
}

/// Unanswered ops settled by the store's record: a write found there answers its revision (at
/// `SETTLED_AT`), one not found and an unanswered read are left out; a record that contradicts
/// what the clients saw still fails the check.
#[test]
fn unanswered_ops_are_settled_by_the_stores_record() {
    let original = history(vec![
        put_unknown(0, "k", "a", 0),
        put_unknown(1, "k", "never", 5),
        Op {
            client: 2,
            call: Call::Get { key: "k".into() },
            invoked: 6,
            returned: None,
        },
        get(3, "k", (20, 30), Some(("a", 2))),
        put(3, "k", "b", (40, 50), 3),
    ]);
    let record = |value: &[u8]| match value {
        b"a" => Some(2),
        b"b" => Some(3),
        _ => None,
    };
    let settled = original.settled_by(record);
    assert_eq!(settled.ops.len(), 3, "{settled:?}");
    assert_eq!(
        settled.ops[0].returned,
        Some(Returned {
            at: SETTLED_AT,
            outcome: Outcome::Put { revision: 2 }
        })
    );
    assert_eq!(settled.ops[1..], original.ops[3..]);
    check(&settled, &Limits::default()).expect("settled, it linearizes");
    // The record puts the unanswered write after a read that already saw it: no order fits.
    let contradicted = original.settled_by(|value| match value {
        b"a" => Some(4),
        other => record(other),
    });
    refuted(&contradicted);
}

#[test]
fn revisions_are_one_counter_for_all_keys() {
    // Each key alone linearizes (the put of b may come after the read of b), but a (revision
    // 3) was read before b (revision 2) was absent: no order of the store fits.
    let h = history(vec![
        put(0, "a", "x", (0, 100), 3),
        put(1, "b", "y", (0, 100), 2),
        get(2, "a", (10, 20), Some(("x", 3))),
        get(2, "b", (30, 40), None),
    ]);
    let c = refuted(&h);
    // The reads alone: the put of x must be revision 3, so revision 2 must be the put of b's,
    // before the read of b.
    assert_eq!(
        core_calls(&c),
        vec![h.ops[2].call.clone(), h.ops[3].call.clone()]
    );
    assert_eq!(c.context.len(), 2, "{c}");
    // Two answered writes with one revision.
    let twice = history(vec![
        put(0, "a", "x", (0, 10), 2),
        put(1, "b", "y", (0, 10), 2),
    ]);
    refuted(&twice);
    // A header revision pins a read.
    let mut pinned = get(2, "a", (0, 100), Some(("x", 2)));
    pinned.returned = Some(Returned {
        at: 100,
        outcome: Outcome::Get {
            found: Some(("x".into(), 2)),
            revision: Some(3),
        },
    });
    let ok = history(vec![
        put(0, "a", "x", (0, 10), 2),
        put(1, "b", "y", (0, 100), 3),
        pinned.clone(),
    ]);
    check(&ok, &Limits::default()).expect("read between the puts");
    let mut h = ok;
    h.ops[1] = put_unknown(1, "b", "y", 0);
    check(&h, &Limits::default()).expect("revision 3: the unanswered put took it");
    h.ops.remove(1);
    refuted(&h);
}

#[test]
fn compare_and_swap() {
    let won = |c, v, rev| {
        answered(
            cas(c, "l", None, v, (0, 50)),
            50,
            Outcome::Cas {
                succeeded: true,
                revision: rev,
            },
        )
    };
    let lost = |c, v, rev| {
        answered(
            cas(c, "l", None, v, (0, 50)),
            50,
            Outcome::Cas {
                succeeded: false,
                revision: rev,
            },
        )
    };
    check(
        &history(vec![won(0, "a", 2), lost(1, "b", 2)]),
        &Limits::default(),
    )
    .expect("one wins, the other sees it");
    check(
        &history(vec![lost(1, "b", 2), won(0, "a", 2)]),
        &Limits::default(),
    )
    .expect("order in the history does not matter");
    refuted(&history(vec![won(0, "a", 2), won(1, "b", 3)]));
    refuted(&history(vec![lost(0, "a", 1), lost(1, "b", 1)]));
    // A swap without an answer happens only if its compare held.
    let h = history(vec![
        put(0, "l", "x", (0, 10), 2),
        cas(1, "l", None, "y", (20, 30)),
        get(2, "l", (40, 50), Some(("y", 3))),
    ]);
    refuted(&h);
}

#[test]
fn malformed_histories_are_refused() {
    let mut op = put(0, "k", "a", (10, 5), 2);
    assert!(matches!(
        check(&history(vec![op.clone()]), &Limits::default()),
        Err(CheckError::Malformed { index: 0, .. })
    ));
    op.returned = Some(Returned {
        at: 20,
        outcome: Outcome::Get {
            found: None,
            revision: None,
        },
    });
    assert!(matches!(
        check(&history(vec![op]), &Limits::default()),
        Err(CheckError::Malformed { index: 0, .. })
    ));
}

/// A history made by running the sequential store over random intervals: each client's ops
/// follow each other, each op takes effect at a random instant inside its interval (or, if no
/// answer came, any time after its call, or never).
fn generate(seed: u64, clients: usize, ops_per_client: usize, keys: u64) -> History {
    let mut s = seed;
    let mut planned = Vec::new(); // (effect instant or None, op)
    for client in 0..clients {
        let mut cursor = below(&mut s, 50) * 1000;
        for n in 0..ops_per_client {
            let key = format!("k{}", below(&mut s, keys));
            let value = format!("c{client}-{n}");
            let call = match below(&mut s, 10) {
                0..=3 => Call::Put {
                    key: key.into(),
                    value: value.into(),
                },
                4..=7 => Call::Get { key: key.into() },
                _ => Call::Cas {
                    key: key.into(),
                    expected: match below(&mut s, 3) {
                        0 => None,
                        _ => Some(
                            format!(
                                "c{}-{}",
                                below(&mut s, clients as u64),
                                below(&mut s, n as u64 + 1)
                            )
                            .into(),
                        ),
                    },
                    value: value.into(),
                },
            };
            let invoked = cursor;
            let duration = (1 + below(&mut s, 40)) * 1000;
            let effect = invoked + below(&mut s, duration + 1) + client as u64;
            cursor += duration + below(&mut s, 20) * 1000;
            let unknown = below(&mut s, 15) == 0;
            let effect = match (unknown, below(&mut s, 2)) {
                (false, _) => Some(effect),
                (true, 0) => None,
                (true, _) => Some(invoked + below(&mut s, 200_000)),
            };
            let returned = (!unknown).then_some(invoked + duration);
            let header = below(&mut s, 2) == 0;
            planned.push((
                effect,
                returned,
                header,
                Op {
                    client,
                    call,
                    invoked,
                    returned: None,
                },
            ));
        }
    }
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].0.is_some())
        .collect();
    order.sort_by_key(|&i| planned[i].0);
    let mut revision = 1;
    let mut cells: std::collections::HashMap<Vec<u8>, (Vec<u8>, u64)> = Default::default();
    for i in order {
        let (_, returned, header, op) = &mut planned[i];
        let outcome = match &op.call {
            Call::Put { key, value } => {
                revision += 1;
                cells.insert(key.clone(), (value.clone(), revision));
                Outcome::Put { revision }
            }
            Call::Get { key } => Outcome::Get {
                found: cells.get(key).cloned(),
                revision: header.then_some(revision),
            },
            Call::Cas {
                key,
                expected,
                value,
            } => {
                let holds = cells.get(key).map(|(v, _)| v) == expected.as_ref();
                if holds {
                    revision += 1;
                    cells.insert(key.clone(), (value.clone(), revision));
                }
                Outcome::Cas {
                    succeeded: holds,
                    revision,
                }
            }
        };
        if let Some(at) = *returned {
            op.returned = Some(Returned { at, outcome });
        }
    }
    History {
        initial_revision: 1,
        ops: planned.into_iter().map(|(_, _, _, op)| op).collect(),
    }
}

/// Changes one answer of `history` so that no order explains it; returns the changed op's
/// index, or `None` when the history has no answer such a change applies to.
fn mutate(history: &mut History, choice: u64) -> Option<usize> {
    let mut s = choice;
    let writes: Vec<(usize, u64)> = history
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op.returned.as_ref()?.outcome {
            Outcome::Put { revision }
            | Outcome::Cas {
                succeeded: true,
                revision,
            } => Some((i, revision)),
            _ => None,
        })
        .collect();
    let total_writes = history
        .ops
        .iter()
        .filter(|op| !matches!(op.call, Call::Get { .. }))
        .count() as u64;
    let answered_puts: std::collections::HashMap<Vec<u8>, u64> = history
        .ops
        .iter()
        .filter_map(|op| match (&op.call, &op.returned.as_ref()?.outcome) {
            (
                Call::Put { value, .. } | Call::Cas { value, .. },
                Outcome::Put { revision }
                | Outcome::Cas {
                    succeeded: true,
                    revision,
                },
            ) => Some((value.clone(), *revision)),
            _ => None,
        })
        .collect();
    let candidates: Vec<usize> = (0..history.ops.len())
        .filter(|&i| history.ops[i].returned.is_some())
        .collect();
    for _ in 0..candidates.len() * 4 {
        let i = candidates[below(&mut s, candidates.len() as u64) as usize];
        let Some(returned) = history.ops[i].returned.as_mut() else {
            continue;
        };
        match (&mut returned.outcome, below(&mut s, 3)) {
            // A revision another answered write reported.
            (Outcome::Put { revision }, 0) if writes.len() >= 2 => {
                let (_, other) = writes[below(&mut s, writes.len() as u64) as usize];
                if other == *revision {
                    continue;
                }
                *revision = other;
            }
            // A revision the store never reaches.
            (Outcome::Put { revision }, _) => *revision = 1 + total_writes + 1 + below(&mut s, 5),
            // A value never written.
            (Outcome::Get { found, .. }, 0) => *found = Some(("never-written".into(), 2)),
            // A key absent although the read's revision covers an answered write of what it read.
            (
                Outcome::Get {
                    found: found @ Some(_),
                    revision: Some(_),
                },
                _,
            ) => {
                let Some((value, _)) = found.as_ref() else {
                    continue;
                };
                if !answered_puts.contains_key(value) {
                    continue;
                }
                *found = None;
            }
            _ => continue,
        }
        return Some(i);
    }
    None
}

fn show(history: &History) -> String {
    history.ops.iter().map(|op| format!("  {op:?}\n")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn generated_histories_linearize(seed in any::<u64>(), clients in 1..6_usize, ops in 1..25_usize, keys in 1..4_u64) {
        let h = generate(seed, clients, ops, keys);
        let verdict = check(&h, &Limits::default());
        prop_assert!(verdict.is_ok(), "seed {seed} ({clients} clients, {ops} ops each, {keys} keys): {}\n{}", verdict.unwrap_err(), show(&h));
    }

    #[test]
    fn mutated_histories_are_caught(seed in any::<u64>(), clients in 1..6_usize, ops in 1..25_usize, keys in 1..4_u64, choice in any::<u64>()) {
        let mut h = generate(seed, clients, ops, keys);
        let Some(changed) = mutate(&mut h, choice) else { return Ok(()) };
        match check(&h, &Limits::default()) {
            Err(CheckError::NotLinearizable(c)) => prop_assert!(
                c.core.contains(&h.ops[changed]),
                "seed {seed} choice {choice}: the changed op {:?} is not in\n{c}", h.ops[changed]
            ),
            other => prop_assert!(false, "seed {seed} choice {choice} ({clients} clients, {ops} ops, {keys} keys): op {changed} changed to {:?}, got {other:?}\n{}", h.ops[changed], show(&h)),
        }
    }
}

/// The crash test's scale: 16 clients, 100 ops each, a few keys, linearizable: checked in
/// milliseconds. A mutated one is never accepted; proving it impossible can exceed a small step
/// limit when many unanswered writes compete for the revisions (a known limit of the search:
/// `BudgetExhausted` is reported, never `Ok`).
#[test]
fn large_histories_check_quickly() {
    for seed in 0..3 {
        let h = generate(seed, 16, 100, 4);
        let started = std::time::Instant::now();
        let stats = check(&h, &Limits::default()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        println!(
            "seed {seed}: {} ops, {stats:?} in {:?}",
            h.ops.len(),
            started.elapsed()
        );
        let mut bad = h.clone();
        if let Some(changed) = mutate(&mut bad, seed) {
            let limits = Limits {
                steps_max: 2_000_000,
                ..Limits::default()
            };
            match check(&bad, &limits) {
                Err(CheckError::NotLinearizable(c)) => {
                    assert!(c.core.contains(&bad.ops[changed]), "{c}");
                    println!("mutated: refused, core of {} ops", c.core.len());
                }
                Err(CheckError::BudgetExhausted { .. }) => println!("mutated: budget exhausted"),
                other => panic!("seed {seed}: {other:?}"),
            }
        }
    }
}
