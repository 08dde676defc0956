//! A linearizability checker for histories of clients of an etcd-like key/value store (puts,
//! gets and compare-and-swaps on a few keys, each answered with revisions): Wing & Gong's
//! search with the memoization of Lowe and of porcupine, over the whole store.
//!
//! [`check`] answers `Ok` (with the search's [`Stats`]) when some total order of the ops
//! (1) respects real time (an op that returned before another was invoked comes first), and
//! (2) replayed on the sequential store gives every answer that was received; or else a
//! [`Counterexample`]: a smallest set of ops whose answers no order explains, printed one op a
//! line.
//!
//! The sequential store (`search::step`): one global revision, starting at
//! [`History::initial_revision`]; a put, or a compare-and-swap whose compare holds, takes the
//! next revision (`revision + 1`) and sets its key's value and mod revision; a get returns its
//! key's value and mod revision and, if recorded, the store's revision.
//!
//! Why the whole store and not one key at a time: P-compositionality (checking each key's
//! sub-history alone) is sound only for objects that share nothing, and every write here
//! takes its revision from one counter shared by all keys. Per-key checks would accept, for
//! example, a put of `a` answered revision 3 and a put of `b` answered revision 2 where a read of
//! `a` saw it before a later read of `b` found nothing: each key alone has an order, the store
//! has none. So the checker models the global revision, and the search stays fast because
//! revisions pin the order: a write can only take the revision it reported, and a revision an
//! answered write reported is never given to another one (`search`'s invariants), so a wrong
//! guess dies at its next step.
//!
//! Assumptions: the history holds every write the store applied (answered or not): revisions
//! are consecutive, one per applied write. Ops without an answer ([`Op::returned`] `None`)
//! may have taken effect at any instant after their invocation, or never.
//!
//! The counterexample is 1-minimal: [`check`] makes answered ops unknown (a get is dropped, a
//! write keeps its possible effect but loses its answer) by delta debugging for as long as the
//! rest still cannot be linearized; every op it prints is needed (making any one of them
//! unknown lets the rest linearize), within [`Limits::minimize_checks_max`].

mod history;
mod search;

use std::collections::BTreeSet;
use std::fmt;

pub use history::{Call, History, Op, Outcome, Returned, SETTLED_AT};

use history::OpLine;
use search::{Found, compile, search};

/// The most ops of a counterexample (and of its context) printed: the latest ones.
pub const SHOWN_OPS_MAX: usize = 40;

/// How much work one [`check`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Iterations of one search (one per op tried or undone); beyond it the check answers
    /// [`CheckError::BudgetExhausted`].
    pub steps_max: u64,
    /// Re-checks of smaller histories while minimizing a counterexample.
    pub minimize_checks_max: usize,
    /// Iterations of each of those re-checks (one that runs out counts as "linearizable":
    /// the counterexample only ever shrinks to a set proven impossible).
    pub minimize_steps_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            steps_max: 50_000_000,
            minimize_checks_max: 400,
            minimize_steps_max: 100_000,
        }
    }
}

/// What a search explored, for the campaigns' counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ops the search had to place (answered ones and writes without an answer).
    pub ops: usize,
    /// Iterations of every search made (the check's and the minimization's).
    pub search_steps: u64,
    /// Distinct (linearized set, state) pairs memoized.
    pub states: usize,
}

/// Why a history was not judged linearizable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No order explains the answers.
    #[error("{0}")]
    NotLinearizable(Box<Counterexample>),
    /// The search did not finish within [`Limits::steps_max`].
    #[error("the search did not finish within {steps_max} steps")]
    BudgetExhausted {
        /// The limit.
        steps_max: u64,
    },
    /// Op `index` of the history is malformed.
    #[error("op {index} of the history is malformed: {what}")]
    Malformed {
        /// The op's index in [`History::ops`].
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// More distinct keys or values than the checker numbers (2^32).
    #[error("the history has too many distinct keys or values")]
    TooLarge,
}

/// A history no order explains, narrowed to the ops that show it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The ops (in invocation order) whose answers, taken together, no order explains, every
    /// other op of the history taken as of unknown outcome.
    pub core: Vec<Op>,
    /// The writes outside the core that explain it (shown without their answers, which the
    /// core does not need): those whose value a core read saw, and those on a core key that
    /// overlap the core's time span.
    pub context: Vec<Op>,
    /// Whether minimization finished (else `core` is impossible but maybe not minimal).
    pub minimal: bool,
    /// The ops of the whole history.
    pub ops: usize,
    /// The most ops the search on the whole history linearized at once.
    pub placed_max: usize,
    /// The op whose answer came before the search could place it, at that point.
    pub blocked: Op,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self
            .core
            .iter()
            .chain(&self.context)
            .map(|op| op.invoked)
            .min()
            .unwrap_or(0);
        writeln!(
            f,
            "not linearizable: no order of these {} ops explains their answers{} (the other {} \
             ops of the history taken as of unknown outcome; times from the first one shown):",
            self.core.len(),
            if self.minimal {
                ""
            } else {
                " (minimization stopped at its limit: maybe not the smallest set)"
            },
            self.ops.saturating_sub(self.core.len()),
        )?;
        let skipped = self.core.len().saturating_sub(SHOWN_OPS_MAX);
        if skipped > 0 {
            writeln!(f, "  ... {skipped} earlier ops not shown")?;
        }
        for op in self.core.iter().skip(skipped) {
            writeln!(f, "  {}", OpLine { op, origin })?;
        }
        if !self.context.is_empty() {
            writeln!(
                f,
                "with these other writes, of unknown outcome for the purpose (what the reads saw, \
                 same keys, overlapping):"
            )?;
            for op in self.context.iter().rev().take(SHOWN_OPS_MAX).rev() {
                writeln!(f, "  {}", OpLine { op, origin })?;
            }
        }
        write!(
            f,
            "(on the whole history the search linearized at most {} of {} ops; then this op's \
             answer came before it could be placed: {})",
            self.placed_max,
            self.ops,
            OpLine {
                op: &self.blocked,
                origin
            }
        )
    }
}

/// Checks that `history` is linearizable (see the module doc).
pub fn check(history: &History, limits: &Limits) -> Result<Stats, CheckError> {
    let mut stats = Stats::default();
    let all = compile(history, &|_| true, &|_| false)?;
    stats.ops = all.len();
    let (placed_max, blocked) = match search(&all, limits.steps_max, &mut stats)? {
        Found::Linearizable => return Ok(stats),
        Found::Impossible { placed, blocked } => (placed, blocked),
    };
    let (core, minimal) = minimize(history, blocked, limits, &mut stats);
    let context = context(history, &core);
    let mut core: Vec<Op> = core
        .iter()
        .filter_map(|&i| history.ops.get(i).cloned())
        .collect();
    core.sort_by_key(|op| op.invoked);
    Err(CheckError::NotLinearizable(Box::new(Counterexample {
        core,
        context,
        minimal,
        ops: history.ops.len(),
        placed_max,
        blocked: history.ops.get(blocked).cloned().unwrap_or(Op {
            client: 0,
            call: Call::Get { key: Vec::new() },
            invoked: 0,
            returned: None,
        }),
    })))
}

/// The writes outside `core` that explain it: those whose value a core read saw, and those on
/// a core key that overlap the core's time span, each shown without its answer.
fn context(history: &History, core: &[usize]) -> Vec<Op> {
    let ops: Vec<&Op> = core.iter().filter_map(|&i| history.ops.get(i)).collect();
    let read: BTreeSet<&[u8]> = ops
        .iter()
        .filter_map(|op| match &op.returned.as_ref()?.outcome {
            Outcome::Get {
                found: Some((value, _)),
                ..
            } => Some(value.as_slice()),
            _ => None,
        })
        .collect();
    let keys: BTreeSet<&[u8]> = ops.iter().map(|op| op.call.key()).collect();
    let from = ops.iter().map(|op| op.invoked).min().unwrap_or(0);
    let until = ops
        .iter()
        .map(|op| op.returned.as_ref().map_or(u64::MAX, |r| r.at))
        .max()
        .unwrap_or(0);
    history
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            let value = match &op.call {
                Call::Put { value, .. } | Call::Cas { value, .. } => value.as_slice(),
                Call::Get { .. } => return false,
            };
            let overlaps = op.invoked <= until && op.returned.as_ref().is_none_or(|r| r.at >= from);
            !core.contains(i)
                && (read.contains(value) || (keys.contains(op.call.key()) && overlaps))
        })
        .map(|(_, op)| Op {
            returned: None,
            ..op.clone()
        })
        .collect()
}

/// Whether the history with only the answered ops in `kept` answered (the others as of
/// unknown outcome) is proven impossible within the minimization's step limit.
fn impossible(
    history: &History,
    kept: &BTreeSet<usize>,
    limits: &Limits,
    stats: &mut Stats,
) -> bool {
    let Ok(compiled) = compile(history, &|_| true, &|i| !kept.contains(&i)) else {
        return false;
    };
    matches!(
        search(&compiled, limits.minimize_steps_max, stats),
        Ok(Found::Impossible { .. })
    )
}

/// Delta debugging (Zeller's ddmin, by complements) over the answered ops of a history proven
/// impossible: the indices of a 1-minimal impossible set, and whether it finished within the
/// limits.
///
/// It starts by making unknown every op invoked after the answer of `blocked` (where the search
/// got stuck): no order could place those before it, so the rest usually stays impossible, and
/// that one check removes most of a long history.
fn minimize(
    history: &History,
    blocked: usize,
    limits: &Limits,
    stats: &mut Stats,
) -> (Vec<usize>, bool) {
    let answered = |until: u64| -> Vec<usize> {
        history
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.returned.is_some() && op.invoked <= until)
            .map(|(i, _)| i)
            .collect()
    };
    let mut kept = answered(u64::MAX);
    let stuck_at = history
        .ops
        .get(blocked)
        .and_then(|op| op.returned.as_ref())
        .map_or(u64::MAX, |r| r.at);
    let before = answered(stuck_at);
    if before.len() < kept.len()
        && impossible(history, &before.iter().copied().collect(), limits, stats)
    {
        kept = before;
    }
    let mut checks = 1;
    let mut parts = 2_usize;
    while kept.len() >= 2 {
        let chunk = kept.len().div_ceil(parts);
        let mut reduced = false;
        // Latest chunks first: relaxing ops after the contradiction keeps the search small.
        let starts: Vec<usize> = (0..kept.len()).step_by(chunk).collect();
        for start in starts.into_iter().rev() {
            if checks >= limits.minimize_checks_max {
                return (kept, false);
            }
            checks += 1;
            let rest: BTreeSet<usize> = kept
                .iter()
                .enumerate()
                .filter(|(j, _)| *j < start || *j >= start + chunk)
                .map(|(_, &i)| i)
                .collect();
            if impossible(history, &rest, limits, stats) {
                kept = rest.into_iter().collect();
                parts = parts.saturating_sub(1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if parts >= kept.len() {
                break;
            }
            parts = (parts * 2).min(kept.len());
        }
    }
    (kept, true)
}
