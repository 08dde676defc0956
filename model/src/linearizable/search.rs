//! The search: a history compiled to small integers ([`Compiled`]) and Wing & Gong's
//! backtracking search over it with Lowe's and porcupine's memoization ([`search`]).
//!
//! The model state is the whole store: the global revision and every key's (value, mod
//! revision). A write placed next takes revision `revision + 1`; a get placed next must have
//! read the state as it is. The search keeps the not yet linearized ops in a list of call and
//! return events sorted by time; it may linearize next any op whose call comes before the first
//! return event in the list (an op cannot be placed after the return of an op still to place).
//! When none fits, it undoes the last choice (dancing links restore the list). A memo of
//! (linearized set, state) pairs already explored cuts every repeated subtree; the set is kept
//! as a 128-bit fingerprint (see `Seen`), not a bitset, so memory stays bounded on long
//! histories (a fingerprint collision, vanishingly unlikely, could only cut a subtree wrongly).
//!
//! Invariants:
//! - An op without an answer has no return event: it never blocks the search, and it is
//!   linearized only where its effect explains an observation (a write filling a revision no
//!   answered write took); one never linearized had no effect. A get without an answer is
//!   dropped by [`compile`] (it has no effect), and so is any op whose effect would change
//!   nothing ([`step`] refuses to place it).
//! - A write may take revision `r` only if no answered write reported `r`, or it is the one that
//!   did: revisions are never shared, so any other choice is a dead end cut at once.
//! - The search succeeds when every answered op is placed; it never exceeds `steps_max`
//!   iterations.

use std::collections::{HashMap, HashSet};

use super::history::{Call, History, Outcome};
use super::{CheckError, Stats};
use crate::rng::splitmix64;

/// A call over interned keys (index into the state's cells) and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Put {
        key: usize,
        value: u32,
    },
    Get {
        key: usize,
    },
    Cas {
        key: usize,
        expected: Option<u32>,
        value: u32,
    },
}

/// An answer over interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Put {
        revision: u64,
    },
    Get {
        found: Option<(u32, u64)>,
        revision: Option<u64>,
    },
    Cas {
        succeeded: bool,
        revision: u64,
    },
}

/// One op of a compiled history; `index` names it in the original history.
#[derive(Clone, Copy, Debug)]
struct Step {
    index: usize,
    act: Act,
    answer: Option<Answer>,
    invoked: u64,
    returned: Option<u64>,
}

/// A history over small integers, ready to search.
#[derive(Debug)]
pub(crate) struct Compiled {
    initial_revision: u64,
    keys: usize,
    steps: Vec<Step>,
    /// The op (index into `steps`) each revision belongs to: the answered write that reported
    /// it, or the unanswered write whose value (written by no other op) a read saw with it.
    owners: HashMap<u64, usize>,
    /// Per step, the revision its write must take (see `owners`), if known.
    fixed: Vec<Option<u64>>,
}

impl Compiled {
    /// How many ops the search places.
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }
}

/// The store: the revision and each key's value and mod revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    revision: u64,
    cells: Vec<Option<(u32, u64)>>,
}

/// Interns byte strings as `u32`s.
#[derive(Default)]
struct Interner(HashMap<Vec<u8>, u32>);

impl Interner {
    fn id(&mut self, bytes: &[u8]) -> Result<u32, CheckError> {
        if let Some(&id) = self.0.get(bytes) {
            return Ok(id);
        }
        let id = u32::try_from(self.0.len()).map_err(|_| CheckError::TooLarge)?;
        self.0.insert(bytes.to_vec(), id);
        Ok(id)
    }
}

/// Compiles the ops of `history` whose index `keep` accepts (the others are left out; `relax`
/// ones are kept as if no answer had come). Refuses a malformed op.
pub(crate) fn compile(
    history: &History,
    keep: &dyn Fn(usize) -> bool,
    relax: &dyn Fn(usize) -> bool,
) -> Result<Compiled, CheckError> {
    let mut keys = Interner::default();
    let mut values = Interner::default();
    let mut steps = Vec::new();
    let mut owners = HashMap::new();
    let mut fixed = Vec::new();
    for (index, op) in history.ops.iter().enumerate() {
        let malformed = |what: &str| CheckError::Malformed {
            index,
            what: what.to_owned(),
        };
        let returned = op.returned.as_ref().filter(|_| !relax(index));
        if let Some(r) = returned
            && r.at < op.invoked
        {
            return Err(malformed("it returned before it was invoked"));
        }
        if !keep(index) {
            continue;
        }
        let key = usize::try_from(keys.id(op.call.key())?).map_err(|_| CheckError::TooLarge)?;
        let act = match &op.call {
            Call::Put { value, .. } => Act::Put {
                key,
                value: values.id(value)?,
            },
            Call::Get { .. } => Act::Get { key },
            Call::Cas {
                expected, value, ..
            } => Act::Cas {
                key,
                expected: expected.as_deref().map(|e| values.id(e)).transpose()?,
                value: values.id(value)?,
            },
        };
        let answer = match (&op.call, returned.map(|r| &r.outcome)) {
            (_, None) => None,
            (Call::Put { .. }, Some(Outcome::Put { revision })) => Some(Answer::Put {
                revision: *revision,
            }),
            (Call::Get { .. }, Some(Outcome::Get { found, revision })) => Some(Answer::Get {
                found: match found {
                    Some((value, mod_revision)) => Some((values.id(value)?, *mod_revision)),
                    None => None,
                },
                revision: *revision,
            }),
            (
                Call::Cas { .. },
                Some(Outcome::Cas {
                    succeeded,
                    revision,
                }),
            ) => Some(Answer::Cas {
                succeeded: *succeeded,
                revision: *revision,
            }),
            _ => return Err(malformed("its outcome is not of its call's kind")),
        };
        if answer.is_none() && matches!(act, Act::Get { .. }) {
            continue; // a read nobody saw: no effect, nothing to check
        }
        let written = match answer {
            Some(Answer::Put { revision })
            | Some(Answer::Cas {
                succeeded: true,
                revision,
            }) => Some(revision),
            _ => None,
        };
        if let Some(revision) = written {
            owners.entry(revision).or_insert(steps.len());
        }
        fixed.push(written);
        steps.push(Step {
            index,
            act,
            answer,
            invoked: op.invoked,
            returned: returned.map(|r| r.at),
        });
    }
    pin_unanswered(&steps, &mut owners, &mut fixed);
    Ok(Compiled {
        initial_revision: history.initial_revision,
        keys: keys.0.len(),
        steps,
        owners,
        fixed,
    })
}

/// An unanswered write whose value no other op writes and that an answered read saw with mod
/// revision `m` took revision `m`, if the history is linearizable at all: it is recorded as
/// `m`'s owner, and bound to `m`.
fn pin_unanswered(steps: &[Step], owners: &mut HashMap<u64, usize>, fixed: &mut [Option<u64>]) {
    let mut writers: HashMap<u32, (usize, usize)> = HashMap::new(); // value -> (count, step)
    for (i, s) in steps.iter().enumerate() {
        if let Act::Put { value, .. } | Act::Cas { value, .. } = s.act {
            let entry = writers.entry(value).or_insert((0, i));
            entry.0 += 1;
        }
    }
    for s in steps {
        let Some(Answer::Get {
            found: Some((value, m)),
            ..
        }) = s.answer
        else {
            continue;
        };
        let Some(&(1, writer)) = writers.get(&value) else {
            continue;
        };
        if let Some(slot) = fixed.get_mut(writer)
            && slot.is_none()
            && steps.get(writer).is_some_and(|w| w.answer.is_none())
            && !owners.contains_key(&m)
        {
            *slot = Some(m);
            owners.insert(m, writer);
        }
    }
}

/// The state after `step` (the op numbered `at`) is placed next, or `None` if it cannot be.
fn step(compiled: &Compiled, state: &State, at: usize, step: &Step) -> Option<State> {
    let key = match step.act {
        Act::Put { key, .. } | Act::Get { key } | Act::Cas { key, .. } => key,
    };
    let cell = *state.cells.get(key)?;
    let (write, answer_ok) = match (step.act, step.answer) {
        (Act::Get { .. }, Some(Answer::Get { found, revision })) => (
            None,
            found == cell && revision.is_none_or(|r| r == state.revision),
        ),
        (Act::Get { .. }, _) => (None, false),
        (Act::Put { value, .. }, answer) => {
            let next = state.revision.checked_add(1)?;
            let ok = match answer {
                None => true,
                Some(Answer::Put { revision }) => revision == next,
                Some(_) => false,
            };
            (Some(value), ok)
        }
        (
            Act::Cas {
                expected, value, ..
            },
            answer,
        ) => {
            let holds = cell.map(|(v, _)| v) == expected;
            let next = state.revision.checked_add(1)?;
            let ok = match answer {
                None => holds, // a refused swap nobody saw changes nothing: never place it
                Some(Answer::Cas {
                    succeeded,
                    revision,
                }) => succeeded == holds && revision == if holds { next } else { state.revision },
                Some(_) => false,
            };
            (holds.then_some(value), ok)
        }
    };
    if !answer_ok {
        return None;
    }
    let Some(value) = write else {
        return Some(state.clone());
    };
    let revision = state.revision.checked_add(1)?;
    if compiled
        .owners
        .get(&revision)
        .is_some_and(|&owner| owner != at)
        || compiled
            .fixed
            .get(at)
            .copied()
            .flatten()
            .is_some_and(|f| f != revision)
    {
        return None; // the revision belongs to another write, or this one's to another revision
    }
    let mut next = state.clone();
    next.revision = revision;
    *next.cells.get_mut(key)? = Some((value, revision));
    Some(next)
}

/// A memo entry: the linearized set, as two independent 64-bit Zobrist hashes (a 128-bit
/// fingerprint: two sets colliding among even 10^9 memoized ones has odds below 10^-20, and the
/// memo stays a few dozen bytes an entry however long the history), and the state reached.
#[derive(PartialEq, Eq, Hash)]
struct Seen {
    set_hash: [u64; 2],
    state: State,
}

/// How a search ended.
#[derive(Debug)]
pub(crate) enum Found {
    /// Every answered op was placed.
    Linearizable,
    /// No order exists: at most `placed` ops were ever linearized at once, and then the return
    /// of op `blocked` (an index into the history) came before it could be placed.
    Impossible { placed: usize, blocked: usize },
}

/// The events of the search's list: a call or a return of a step.
#[derive(Clone, Copy)]
struct Event {
    step: usize,
    call: bool,
}

/// A circular doubly linked list over event indices, `head` its sentinel; an unlinked event
/// keeps its neighbours so that relinking in the reverse order restores the list exactly.
struct Links {
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl Links {
    fn new(len: usize) -> Links {
        Links {
            next: (1..=len).chain([0]).collect(),
            prev: [len].into_iter().chain(0..len).collect(),
            head: len,
        }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn unlink(&mut self, e: usize) {
        let (p, q) = (self.prev[e], self.next[e]);
        self.next[p] = q;
        self.prev[q] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, q) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[q] = e;
    }
}

/// The linearized set, as its fingerprint (see [`Seen`]).
struct Placed {
    hash: [u64; 2],
    zobrist: Vec<[u64; 2]>,
}

impl Placed {
    fn new(n: usize) -> Placed {
        let mut seed = 0x6b76_7374_6f72_6521_u64;
        Placed {
            hash: [0; 2],
            zobrist: (0..n)
                .map(|_| [splitmix64(&mut seed), splitmix64(&mut seed)])
                .collect(),
        }
    }

    fn toggle(&mut self, i: usize) {
        let [a, b] = self.zobrist[i];
        self.hash[0] ^= a;
        self.hash[1] ^= b;
    }

    fn seen(&self, state: State) -> Seen {
        Seen {
            set_hash: self.hash,
            state,
        }
    }
}

/// Wing & Gong's search with memoization (see the module doc); `Err(BudgetExhausted)` after
/// `steps_max` iterations.
pub(crate) fn search(
    compiled: &Compiled,
    steps_max: u64,
    stats: &mut Stats,
) -> Result<Found, CheckError> {
    let n = compiled.steps.len();
    let mut timed: Vec<(u64, bool, Event)> = Vec::with_capacity(2 * n);
    for (i, s) in compiled.steps.iter().enumerate() {
        timed.push((
            s.invoked,
            false,
            Event {
                step: i,
                call: true,
            },
        ));
        if let Some(at) = s.returned {
            timed.push((
                at,
                true,
                Event {
                    step: i,
                    call: false,
                },
            ));
        }
    }
    // By time; at equal times calls first (the ops overlap: the permissive reading).
    timed.sort_by_key(|&(at, is_return, e)| (at, is_return, e.step));
    let events: Vec<Event> = timed.into_iter().map(|(_, _, e)| e).collect();
    let mut links = Links::new(events.len());
    let mut return_of = vec![None; n];
    for (i, e) in events.iter().enumerate() {
        if !e.call {
            return_of[e.step] = Some(i);
        }
    }
    let mut returns_left = return_of.iter().flatten().count();
    let mut placed = Placed::new(n);
    let mut state = State {
        revision: compiled.initial_revision,
        cells: vec![None; compiled.keys],
    };
    let mut memo: HashSet<Seen> = HashSet::new();
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let (mut placed_max, mut blocked_at_max) = (0, 0);
    let mut entry = links.first();
    // Whether the search just reached a new node (and must first look for a read to place).
    let mut fresh = true;
    while returns_left > 0 {
        stats.search_steps += 1;
        if stats.search_steps > steps_max {
            return Err(CheckError::BudgetExhausted { steps_max });
        }
        // Progress: `Some((entry, state, forced))` to place, `None` to undo the last choice.
        let mut choice = None;
        let mut blocked = None;
        if fresh {
            fresh = false;
            // A read (any op that leaves the state as it is) that fits now can be placed first
            // without loss: moving it earlier changes what no other op sees, and everything
            // that returned before it was invoked is already placed. So it is placed, forced:
            // if its subtree fails, this node fails (no other choice is tried here).
            let mut e = links.first();
            while let Some(Event {
                step: i,
                call: true,
            }) = events.get(e).copied()
            {
                if let Some(after) = step(compiled, &state, i, &compiled.steps[i])
                    && after.revision == state.revision
                {
                    choice = Some((e, after, true));
                    break;
                }
                e = links.next[e];
            }
        }
        while choice.is_none() && blocked.is_none() {
            match events.get(entry).copied() {
                Some(Event {
                    step: i,
                    call: true,
                }) => {
                    if let Some(after) = step(compiled, &state, i, &compiled.steps[i])
                        && after.revision != state.revision
                    {
                        choice = Some((entry, after, false));
                    }
                    entry = links.next[entry];
                }
                // The first return still in the list (or, defensively, the list's end): no
                // more ops can be placed before it.
                event => blocked = Some(event.map_or(0, |e| compiled.steps[e.step].index)),
            }
        }
        if let Some((e, after, forced)) = choice {
            let i = events[e].step;
            placed.toggle(i);
            if memo.insert(placed.seen(after.clone())) {
                stack.push((e, std::mem::replace(&mut state, after), forced));
                links.unlink(e);
                if let Some(r) = return_of[i] {
                    links.unlink(r);
                    returns_left -= 1;
                }
                entry = links.first();
                fresh = true;
                continue;
            }
            placed.toggle(i);
            if !forced {
                continue; // explored before: try the next candidate
            }
            // A forced read whose node was explored before (and failed): so does this one.
        }
        if let Some(blocked) = blocked
            && stack.len() >= placed_max
        {
            placed_max = stack.len();
            blocked_at_max = blocked;
        }
        // Undo choices up to the last one that was not forced.
        loop {
            let Some((top, before, forced)) = stack.pop() else {
                stats.states += memo.len();
                return Ok(Found::Impossible {
                    placed: placed_max,
                    blocked: blocked_at_max,
                });
            };
            state = before;
            let i = events[top].step;
            placed.toggle(i);
            if let Some(r) = return_of[i] {
                links.relink(r);
                returns_left += 1;
            }
            links.relink(top);
            if !forced {
                entry = links.next[top];
                break;
            }
        }
    }
    stats.states += memo.len();
    Ok(Found::Linearizable)
}
