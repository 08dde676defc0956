//! The input of the checker: a [`History`] of [`Op`]s on an etcd-like key/value store, each a
//! [`Call`] made by a client at an instant and, if an answer came, the [`Outcome`] and the
//! instant it arrived; and how a history prints (one op a line, times relative to the first
//! invocation).
//!
//! Invariants a well-formed history keeps (checked by `compile`, refused with
//! [`super::CheckError::Malformed`] otherwise):
//! - an op's outcome is of its call's kind (a put answers a revision, a get what it found);
//! - an op returns at or after it was invoked.

use std::fmt;

/// One call a client made.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// Set `key` to `value` (etcd's Put): one new revision.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value (unique per history in the tests, so a read names the put it saw).
        value: Vec<u8>,
    },
    /// Read `key` at the current revision (etcd's Range of one key).
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// If `key`'s value is `expected` (`None`: the key does not exist), set it to `value`
    /// (etcd's Txn with one value compare and one put): a new revision only if it holds.
    Cas {
        /// The key.
        key: Vec<u8>,
        /// The value compared with.
        expected: Option<Vec<u8>>,
        /// The value put when the compare holds.
        value: Vec<u8>,
    },
}

impl Call {
    /// The key the call touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Call::Put { key, .. } | Call::Get { key } | Call::Cas { key, .. } => key,
        }
    }
}

/// What a call answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A put's revision (the store's revision after it).
    Put {
        /// The revision.
        revision: u64,
    },
    /// A get's answer.
    Get {
        /// The value and its mod revision, or `None` when the key did not exist.
        found: Option<(Vec<u8>, u64)>,
        /// The store's revision the read was served at (the response header's), when recorded.
        revision: Option<u64>,
    },
    /// A compare-and-swap's answer.
    Cas {
        /// Whether the compare held (and the put was made).
        succeeded: bool,
        /// The store's revision after it: the put's when it succeeded, else the one read.
        revision: u64,
    },
}

/// An answer and when it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Returned {
    /// When the answer arrived (any monotonic unit shared by the history; nanoseconds in the
    /// tests).
    pub at: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// Who made it (for the report only: the checker orders ops by their times alone).
    pub client: usize,
    /// What was asked.
    pub call: Call,
    /// When it was sent.
    pub invoked: u64,
    /// The answer, or `None` when none came (an error, a cut connection, a killed server): its
    /// effect may have happened at any instant after `invoked`, or never.
    pub returned: Option<Returned>,
}

/// A history: every operation the clients made, in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The store's revision before the first op (etcd's empty store: 1).
    pub initial_revision: u64,
    /// The operations.
    pub ops: Vec<Op>,
}

/// The answer instant of a write [`History::settled_by`] settled: it never answered, so it
/// may have taken effect at any instant after it was sent.
pub const SETTLED_AT: u64 = u64::MAX;

impl History {
    /// This history with every unanswered op settled by the store's own record of what it
    /// applied: `applied(value)` is the revision the store holds `value` at, if any (values
    /// being unique, a value names the write that made it; the record must be complete, e.g.
    /// the whole history read back from revision 1 with nothing compacted).
    /// - An unanswered put or compare-and-swap whose value is there took effect at that
    ///   revision, at some instant after it was sent: it answers that revision (a swap that
    ///   succeeded) at [`SETTLED_AT`], so no op is required to follow it.
    /// - One whose value is not there changed nothing (never ran, or its compare failed), nor
    ///   does an unanswered get: they are left out.
    ///
    /// A linearization of the result is one of the original that also agrees with the store's
    /// record, so checking it proves the original linearizable; and the search no longer
    /// guesses which unanswered writes happened, or where (the cost that grows fastest).
    #[must_use]
    pub fn settled_by(&self, applied: impl Fn(&[u8]) -> Option<u64>) -> History {
        let ops = self
            .ops
            .iter()
            .filter_map(|op| {
                if op.returned.is_some() {
                    return Some(op.clone());
                }
                let outcome = match &op.call {
                    Call::Get { .. } => None,
                    Call::Put { value, .. } => {
                        applied(value).map(|revision| Outcome::Put { revision })
                    }
                    Call::Cas { value, .. } => applied(value).map(|revision| Outcome::Cas {
                        succeeded: true,
                        revision,
                    }),
                }?;
                Some(Op {
                    returned: Some(Returned {
                        at: SETTLED_AT,
                        outcome,
                    }),
                    ..op.clone()
                })
            })
            .collect();
        History {
            initial_revision: self.initial_revision,
            ops,
        }
    }
}

/// An op printed on one line, with times relative to `origin`.
pub(crate) struct OpLine<'a> {
    pub(crate) op: &'a Op,
    pub(crate) origin: u64,
}

/// `at - origin` in milliseconds with microsecond digits.
fn millis(at: u64, origin: u64) -> String {
    let delta = at.saturating_sub(origin);
    format!("{}.{:06}ms", delta / 1_000_000, delta % 1_000_000)
}

fn text(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

impl fmt::Display for OpLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.op;
        let until = match &op.returned {
            None => "no answer".to_owned(),
            Some(r) if r.at == SETTLED_AT => "no answer, settled".to_owned(),
            Some(r) => millis(r.at, self.origin),
        };
        write!(
            f,
            "client {:>3} [{} .. {}] ",
            op.client,
            millis(op.invoked, self.origin),
            until
        )?;
        match &op.call {
            Call::Put { key, value } => write!(f, "put {} = {}", text(key), text(value))?,
            Call::Get { key } => write!(f, "get {}", text(key))?,
            Call::Cas {
                key,
                expected,
                value,
            } => {
                let expected = expected
                    .as_deref()
                    .map_or_else(|| "absent".to_owned(), text);
                write!(
                    f,
                    "cas {} if {} then = {}",
                    text(key),
                    expected,
                    text(value)
                )?;
            }
        }
        match op.returned.as_ref().map(|r| &r.outcome) {
            None => write!(f, " -> ? (outcome unknown)"),
            Some(Outcome::Put { revision }) => write!(f, " -> revision {revision}"),
            Some(Outcome::Get { found, revision }) => {
                match found {
                    None => write!(f, " -> absent")?,
                    Some((value, mod_revision)) => {
                        write!(f, " -> {} (mod revision {mod_revision})", text(value))?;
                    }
                }
                match revision {
                    Some(revision) => write!(f, " at revision {revision}"),
                    None => Ok(()),
                }
            }
            Some(Outcome::Cas {
                succeeded,
                revision,
            }) => {
                let verdict = if *succeeded { "swapped" } else { "refused" };
                write!(f, " -> {verdict} at revision {revision}")
            }
        }
    }
}
