//! Watching every member's engine during a run: each event a member's watcher delivers is
//! recorded, and the check at the end requires each to be a committed write at its revision
//! (a watch must never report a write the cluster did not commit).
//!
//! Invariants:
//! - The observer holds a member's handle only while the member runs (a kill waits for it to
//!   let go), and resumes a restarted member's watch after the last revision it saw there, so
//!   a member's events are each recorded once.
//! - Events are polled with `try_next` only: the observer never blocks the runtime's thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kvstore::watch::{WatchRequest, WatchResponse, Watcher};
use kvstore_raft::RaftNode;

use super::world::World;
use super::{Check, Violation};

/// Virtual time between two polls of the watchers.
const POLL: Duration = Duration::from_millis(5);

/// One event as a member's watch delivered it (or, with the planted bug, as the harness
/// invented it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The member.
    pub member: u64,
    /// The value put (the clients only put).
    pub value: Vec<u8>,
    /// The event's revision.
    pub revision: u64,
}

/// The events recorded so far, and the observer's stop flag.
#[derive(Default)]
pub struct Events {
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event.
    pub fn push(&self, seen: Seen) {
        self.lock().push(seen);
    }

    /// Asks the observer to stop at its next poll.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Every event recorded.
    pub fn all(&self) -> Vec<Seen> {
        self.lock().clone()
    }
}

/// A member's live watch: the handle it was opened on, and the watcher.
struct Watching {
    node: Arc<RaftNode>,
    watcher: Watcher,
}

/// Watches every running member's keys until [`Events::stop`]; records into `events`.
pub async fn observe(world: Arc<World>, events: Arc<Events>) {
    let mut watching: BTreeMap<u64, Watching> = BTreeMap::new();
    // The revision to resume each member's watch from.
    let mut resume: BTreeMap<u64, u64> = BTreeMap::new();
    while !events.stop.load(Ordering::SeqCst) {
        // Let go of killed (or killed and restarted) members first.
        watching.retain(|id, w| world.node(*id).is_some_and(|n| Arc::ptr_eq(&n, &w.node)));
        for id in world.running() {
            let Some(node) = world.node(id) else { continue };
            let from = resume.get(&id).copied().unwrap_or(1);
            if let std::collections::btree_map::Entry::Vacant(slot) = watching.entry(id)
                && let Ok(watcher) = node
                    .db()
                    .watch(WatchRequest::prefix(b"k").from_revision(from))
            {
                slot.insert(Watching { node, watcher });
            }
        }
        let mut ended = Vec::new();
        for (&id, w) in &watching {
            loop {
                match w.watcher.try_next() {
                    Ok(Some(WatchResponse::Events {
                        revision,
                        events: batch,
                    })) => {
                        resume.insert(id, revision + 1);
                        for event in batch {
                            if let Some(version) = event.value {
                                events.push(Seen {
                                    member: id,
                                    value: version.value,
                                    revision,
                                });
                            }
                        }
                    }
                    Ok(Some(WatchResponse::Progress { .. })) => {}
                    Ok(None) => {
                        if w.watcher.is_done() {
                            ended.push(id);
                        }
                        break;
                    }
                    Err(_) => {
                        // Lagged or closed: open a new watch from the last revision seen.
                        ended.push(id);
                        break;
                    }
                }
            }
        }
        for id in ended {
            watching.remove(&id);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every recorded event is a committed write at its revision (`written`: the log's writes by
/// value).
pub fn committed(seen: &[Seen], written: &BTreeMap<Vec<u8>, u64>, violations: &mut Vec<Violation>) {
    for event in seen {
        let logged = written.get(&event.value);
        if logged != Some(&event.revision) {
            violations.push(Violation {
                check: Check::WatchCommitted,
                what: format!(
                    "member {}'s watch reported {:?} at revision {}, the committed log has it at {logged:?}",
                    event.member,
                    event.value.escape_ascii().to_string(),
                    event.revision
                ),
            });
        }
    }
}
