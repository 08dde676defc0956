//! The simulation's clients: each issues puts, compare-and-swaps (a txn comparing a key's mod
//! revision) and linearizable reads on a few keys, to random members, and records every call
//! as an [`Op`] of the checker's history.
//!
//! Invariants (of the correct harness; [`Bugs`] breaks them on purpose):
//! - A write is proposed through [`RaftNode::write`] at most once: it is retried on another
//!   member only after `NotLeader`, which proposed nothing.
//! - A write whose outcome is unknown (a timeout, a failure after proposing) is recorded without
//!   an answer: the checker lets it take effect at any instant after its invocation, or never.
//! - A read is answered only by a member whose `ensure_linearizable` succeeded (it leads and
//!   applied everything committed before the read), from its own engine, with no await between
//!   the call's success and the engine read.

use std::sync::Arc;
use std::time::Duration;

use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore_model::linearizable::{Call, Op, Outcome, Returned};
use kvstore_raft::{Command, Error, RaftNode, Response};
use tokio::time::Instant;

use super::Bugs;
use super::rng::Rng;
use super::watch::{Events, Seen};
use super::world::World;

/// Keys the clients share (few, so that ops conflict).
pub const KEYS: u64 = 4;
/// Members a call tries before it gives up.
const ATTEMPTS_MAX: usize = 4;
/// How long a client waits for a write's answer before taking its outcome as unknown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client waits for a read's leadership check.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Planted bug "ack before quorum": how long the leader waits for the commit before it
/// answers from its own append.
const EARLY_ACK: Duration = Duration::from_millis(100);
/// The most think time between a client's calls.
const THINK_MS_MAX: u64 = 30;

/// One client's task.
pub struct Client {
    /// The client's number in the history.
    pub id: usize,
    /// Its draws.
    pub rng: Rng,
    /// The cluster.
    pub world: Arc<World>,
    /// The watch events recorded (only the planted phantom-event bug writes to them).
    pub events: Arc<Events>,
    /// The planted bugs.
    pub bugs: Bugs,
    /// The run's time origin (history times are nanoseconds since it).
    pub origin: Instant,
}

/// What a write answered, if anything.
enum Written {
    Answered(Response),
    /// The harness's guess (planted bug "ack before quorum").
    Guessed(u64),
    Unknown,
}

/// A client's memory while it runs.
struct Session {
    client: Client,
    /// What the client last saw of each key: value and mod revision (`None`: absent).
    seen: Vec<Option<(Vec<u8>, u64)>>,
    /// Writes made (values are `c<client>-<n>`, unique in the run).
    writes: u64,
}

impl Client {
    /// Makes calls until `until`; returns them.
    pub async fn run(self, until: Instant) -> Vec<Op> {
        let mut session = Session {
            client: self,
            seen: vec![None; KEYS as usize],
            writes: 0,
        };
        let mut ops = Vec::new();
        while Instant::now() < until {
            let think = session.client.rng.below(THINK_MS_MAX + 1);
            tokio::time::sleep(Duration::from_millis(think)).await;
            let key = session.client.rng.below(KEYS);
            let op = match session.client.rng.below(10) {
                0..=3 => session.put(key).await,
                4..=5 => session.cas(key).await,
                _ => session.get(key).await,
            };
            ops.extend(op);
        }
        ops
    }
}

impl Session {
    fn now(&self) -> u64 {
        u64::try_from(self.client.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn key_bytes(key: u64) -> Vec<u8> {
        format!("k{key}").into_bytes()
    }

    fn next_value(&mut self) -> Vec<u8> {
        self.writes += 1;
        format!("c{}-{}", self.client.id, self.writes).into_bytes()
    }

    async fn put(&mut self, key: u64) -> Option<Op> {
        let value = self.next_value();
        let call = Call::Put {
            key: Self::key_bytes(key),
            value: value.clone(),
        };
        let command = Command::Put {
            key: Self::key_bytes(key),
            value: value.clone(),
            lease: 0,
        };
        let invoked = self.now();
        let outcome = match self.write(command).await {
            Written::Answered(Response::Put { revision }) => {
                self.remember(key, value, revision);
                Some(Outcome::Put { revision })
            }
            Written::Answered(other) => panic!("a put answered {other:?}"),
            Written::Guessed(revision) => Some(Outcome::Put { revision }),
            Written::Unknown => None,
        };
        Some(self.op(call, invoked, outcome))
    }

    /// A swap of `key` from what this client last saw of it (compared by mod revision, which
    /// names the value: values are unique) to a new value.
    async fn cas(&mut self, key: u64) -> Option<Op> {
        let value = self.next_value();
        let slot = usize::try_from(key).ok()?;
        let expected = self.seen.get(slot).cloned().flatten();
        let mod_revision = expected.as_ref().map_or(0, |(_, r)| *r);
        let call = Call::Cas {
            key: Self::key_bytes(key),
            expected: expected.map(|(v, _)| v),
            value: value.clone(),
        };
        let command = Command::Txn(Txn {
            compares: vec![Compare::key(
                &Self::key_bytes(key),
                CompareOp::Equal,
                CompareTarget::ModRevision(mod_revision),
            )],
            success: vec![TxnOp::Put {
                key: Self::key_bytes(key),
                value: value.clone(),
                lease: 0,
            }],
            failure: vec![],
        });
        let invoked = self.now();
        let outcome = match self.write(command).await {
            Written::Answered(Response::Txn(answer)) => {
                if answer.succeeded {
                    self.remember(key, value, answer.revision);
                }
                Some(Outcome::Cas {
                    succeeded: answer.succeeded,
                    revision: answer.revision,
                })
            }
            Written::Answered(other) => panic!("a txn answered {other:?}"),
            Written::Guessed(revision) => Some(Outcome::Cas {
                succeeded: true,
                revision,
            }),
            Written::Unknown => None,
        };
        Some(self.op(call, invoked, outcome))
    }

    async fn get(&mut self, key: u64) -> Option<Op> {
        let invoked = self.now();
        let outcome = self.read(&Self::key_bytes(key)).await?;
        if let Outcome::Get { found, .. } = &outcome
            && let Ok(slot) = usize::try_from(key)
            && let Some(seen) = self.seen.get_mut(slot)
        {
            seen.clone_from(found);
        }
        Some(self.op(
            Call::Get {
                key: Self::key_bytes(key),
            },
            invoked,
            Some(outcome),
        ))
    }

    fn remember(&mut self, key: u64, value: Vec<u8>, revision: u64) {
        if let Ok(slot) = usize::try_from(key)
            && let Some(seen) = self.seen.get_mut(slot)
        {
            *seen = Some((value, revision));
        }
    }

    fn op(&self, call: Call, invoked: u64, outcome: Option<Outcome>) -> Op {
        Op {
            client: self.client.id,
            call,
            invoked,
            returned: outcome.map(|outcome| Returned {
                at: self.now(),
                outcome,
            }),
        }
    }

    fn random_member(&mut self) -> u64 {
        1 + self.client.rng.below(self.client.world.members)
    }

    /// The member to try after `node` said `leader` leads.
    fn redirect(&mut self, leader: Option<u64>) -> u64 {
        match leader {
            Some(leader) => leader,
            None => self.random_member(),
        }
    }

    /// Proposes `command` through the leader, following `NotLeader` redirections.
    async fn write(&mut self, command: Command) -> Written {
        let bugs = self.client.bugs;
        let early = bugs.ack_before_quorum || bugs.phantom_watch_events;
        let mut target = self.random_member();
        for _ in 0..ATTEMPTS_MAX {
            let Some(node) = self.client.world.node(target) else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                target = self.random_member();
                continue;
            };
            let mut pending = std::pin::pin!(node.write(command.clone()));
            let first_wait = if early { EARLY_ACK } else { WRITE_TIMEOUT };
            let answer = match tokio::time::timeout(first_wait, &mut pending).await {
                Ok(answer) => answer,
                Err(_elapsed) if bugs.ack_before_quorum => {
                    return Written::Guessed(guess_revision(&node));
                }
                Err(_elapsed) if bugs.phantom_watch_events => {
                    self.client.events.push(Seen {
                        member: target,
                        value: written_value(&command),
                        revision: guess_revision(&node),
                    });
                    match tokio::time::timeout(WRITE_TIMEOUT - EARLY_ACK, &mut pending).await {
                        Ok(answer) => answer,
                        Err(_elapsed) => return Written::Unknown,
                    }
                }
                Err(_elapsed) => return Written::Unknown,
            };
            match answer {
                Ok(response) => return Written::Answered(response),
                Err(Error::NotLeader { leader }) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    target = self.redirect(leader);
                }
                Err(_) => return Written::Unknown,
            }
        }
        // Only `NotLeader` answers: nothing was proposed, yet "unknown" is always sound.
        Written::Unknown
    }

    /// A read of `key` from the leader's engine after `ensure_linearizable` (or, with the
    /// planted stale-read bug, from any member's engine).
    async fn read(&mut self, key: &[u8]) -> Option<Outcome> {
        let mut target = self.random_member();
        for _ in 0..ATTEMPTS_MAX {
            let Some(node) = self.client.world.node(target) else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                target = self.random_member();
                continue;
            };
            if !self.client.bugs.stale_reads {
                let checked =
                    tokio::time::timeout(READ_TIMEOUT, node.raft().ensure_linearizable()).await;
                match checked {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        let leader = e.forward_to_leader::<kvstore_raft::Node>()?.leader_id;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        target = self.redirect(leader);
                        continue;
                    }
                    Err(_elapsed) => return None,
                }
            }
            // No await from here on: the read is at the state `ensure_linearizable` vouched for.
            let db = node.db();
            let found = db.get_versioned(key).ok()?;
            return Some(Outcome::Get {
                found: found.map(|v| (v.value, v.revision)),
                revision: Some(db.stats().last_revision),
            });
        }
        None
    }
}

/// The value a client's command puts (every one puts exactly one).
fn written_value(command: &Command) -> Vec<u8> {
    match command {
        Command::Put { value, .. } => value.clone(),
        Command::Txn(txn) => txn
            .success
            .iter()
            .find_map(|op| match op {
                TxnOp::Put { value, .. } => Some(value.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        other => panic!("the clients propose no {other:?}"),
    }
}

/// Planted bugs "ack before quorum" and "phantom watch event": the revision a leader that answered right after its own
/// append would report (the next one after what it applied).
fn guess_revision(node: &RaftNode) -> u64 {
    node.db().stats().last_revision + 1
}
