//! The nemesis: at random instants drawn from the seed, one fault (or a heal), each logged to the
//! run's trace. At the end it heals everything, restarts every killed member and makes every
//! member a voter again.
//!
//! Invariants:
//! - At most a minority of the members is killed at once (a killed majority would only stall
//!   the run), but partitions may leave no majority anywhere.
//! - Membership changes go through the leader's `change_members`, one step at a time and at
//!   most one removal started while every member votes: remove a voter (the leader too), add
//!   it back as a learner (with its old log and state), promote it. A step cut short by its
//!   deadline may still complete later, so two members may end up out; learners are promoted
//!   before members are added back. A removed member keeps running, as one that has not
//!   noticed its removal would.

use std::sync::Arc;
use std::time::Duration;

use kvstore_raft::{Command, MemberChange};
use openraft::EntryPayload;
use tokio::time::Instant;

use super::Bugs;
use super::net::LOSS_SCALE;
use super::rng::Rng;
use super::world::{World, node_of};

/// The most loss per [`LOSS_SCALE`] the nemesis sets (each direction of a call).
const LOSS_MAX: u64 = 100;
/// The most extra delay of a call it sets.
const JITTER_MS_MAX: u64 = 20;
/// Virtual time between two faults.
const PAUSE_MS: (u64, u64) = (100, 800);
/// Virtual time one membership step may take (it waits for a quorum the faults may deny).
const CHANGE_WAIT: Duration = Duration::from_secs(5);
/// Virtual time the healed cluster has to make every member a voter again.
const RESTORE_WAIT: Duration = Duration::from_secs(60);

/// What the nemesis did, one line a fault, with virtual milliseconds since the run began.
pub type Trace = Vec<String>;

/// Injects faults until `until`, then heals; returns its trace.
pub async fn run(
    world: Arc<World>,
    mut rng: Rng,
    bugs: Bugs,
    origin: Instant,
    until: Instant,
) -> Trace {
    let mut trace = Trace::new();
    let mut replayed = false;
    loop {
        let pause = rng.between(PAUSE_MS.0, PAUSE_MS.1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if Instant::now() >= until {
            break;
        }
        let at = origin.elapsed().as_millis();
        if bugs.apply_twice && !replayed && Instant::now() >= origin + (until - origin) / 2 {
            // The planted bug, once, half-way through the run (after writes were applied).
            replayed = true;
            trace.push(format!("{at:>6} ms  {}", apply_again(&world, &mut rng)));
            continue;
        }
        let members: Vec<u64> = (1..=world.members).collect();
        let what = match rng.below(10) {
            0 => {
                let from = rng.pick(&members).unwrap_or(1);
                let to = rng.pick(&members).unwrap_or(1);
                world.router.cut(from, to);
                format!("cut {from} -> {to}")
            }
            1 => {
                let size = rng.between(1, (world.members - 1) / 2);
                let mut minority = Vec::new();
                while (minority.len() as u64) < size {
                    let id = rng.pick(&members).unwrap_or(1);
                    if !minority.contains(&id) {
                        minority.push(id);
                    }
                }
                for &inside in &minority {
                    for outside in members.iter().filter(|id| !minority.contains(id)) {
                        world.router.cut(inside, *outside);
                        world.router.cut(*outside, inside);
                    }
                }
                format!("partition {minority:?} from the rest")
            }
            2 => match world.leader() {
                Some(leader) => {
                    world.router.isolate(leader);
                    format!("isolate leader {leader}")
                }
                None => "isolate leader: none".to_owned(),
            },
            3 | 4 => {
                world.router.heal();
                "heal".to_owned()
            }
            5 => {
                let stopped = world.stopped().len() as u64;
                match rng.pick(&world.running()) {
                    Some(id) if stopped < (world.members - 1) / 2 => {
                        world.kill(id).await;
                        format!("kill {id}")
                    }
                    _ => "kill: a minority is down already".to_owned(),
                }
            }
            6 => match rng.pick(&world.stopped()) {
                Some(id) => {
                    world.restart(id).await;
                    format!("restart {id}")
                }
                None => "restart: none down".to_owned(),
            },
            7 => {
                let loss = rng.below(LOSS_MAX + 1);
                let jitter = rng.below(JITTER_MS_MAX + 1);
                world.net.set(loss, jitter);
                format!("network: loss {loss}/{LOSS_SCALE}, jitter 0..={jitter} ms")
            }
            8 => reconfigure(&world, &mut rng).await,
            _ => "nothing".to_owned(),
        };
        trace.push(format!("{at:>6} ms  {what}"));
    }
    world.net.set(0, 0);
    world.router.heal();
    for id in world.stopped() {
        world.restart(id).await;
    }
    trace.push(format!(
        "{:>6} ms  heal, restart every member",
        origin.elapsed().as_millis()
    ));
    let deadline = Instant::now() + RESTORE_WAIT;
    while Instant::now() < deadline {
        if world.leader().is_some() {
            let Some(step) = restoring_step(&world) else {
                break;
            };
            let what = change(&world, step).await;
            trace.push(format!("{:>6} ms  {what}", origin.elapsed().as_millis()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    trace
}

/// The next step bringing a member of the run back among the leader's voters, if one is out:
/// a learner's promotion first (a removal cut short leaves one, and only one learner may be
/// added), else a member added back as a learner. `None` also when no member leads: callers
/// look for a leader first.
fn restoring_step(world: &World) -> Option<MemberChange> {
    let leader = world.node(world.leader()?)?;
    let metrics = leader.raft().metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voter = |id: u64| membership.voter_ids().any(|v| v == id);
    let learner = |id: u64| !voter(id) && membership.get_node(&id).is_some();
    if let Some(id) = (1..=world.members).find(|&id| learner(id)) {
        return Some(MemberChange::Promote { id });
    }
    let id = (1..=world.members).find(|&id| !voter(id))?;
    Some(MemberChange::Add {
        id,
        node: node_of(id),
        learner: true,
    })
}

/// One membership step: remove a random member if every member votes, else bring the one out
/// back one step (see the module doc).
async fn reconfigure(world: &World, rng: &mut Rng) -> String {
    if world.leader().is_none() {
        return "reconfigure: no leader".to_owned();
    }
    match restoring_step(world) {
        Some(step) => change(world, step).await,
        None => {
            let members: Vec<u64> = (1..=world.members).collect();
            let id = rng.pick(&members).unwrap_or(1);
            change(world, MemberChange::Remove { id }).await
        }
    }
}

/// Runs `step` on the leader, waiting at most [`CHANGE_WAIT`]; what happened, for the trace.
async fn change(world: &World, step: MemberChange) -> String {
    let Some((leader, node)) = world.leader().and_then(|l| Some((l, world.node(l)?))) else {
        return format!("{step:?}: no leader");
    };
    match tokio::time::timeout(CHANGE_WAIT, node.change_members(step.clone())).await {
        Ok(Ok(())) => format!("{step:?} through leader {leader}: done"),
        Ok(Err(e)) => format!("{step:?} through leader {leader}: {e}"),
        Err(_) => format!("{step:?} through leader {leader}: not done in {CHANGE_WAIT:?}"),
    }
}

/// Planted bug "apply an entry twice": applies the newest put a random running member applied
/// to its engine once more, as a state machine that lost track of its applied index would.
fn apply_again(world: &World, rng: &mut Rng) -> String {
    let Some(id) = rng.pick(&world.running()) else {
        return "apply twice: no member".to_owned();
    };
    let Some(node) = world.node(id) else {
        return "apply twice: no member".to_owned();
    };
    let applied = node
        .raft()
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |l| l.index);
    let entries = node.log().entries(..=applied).expect("read log");
    let last_put = entries.iter().rev().find_map(|entry| match &entry.payload {
        EntryPayload::Normal(Command::Put { key, value, .. }) => {
            Some((entry.log_id.index, key, value))
        }
        _ => None,
    });
    match last_put {
        Some((index, key, value)) => {
            let db = node.db();
            let revision = db.put(key, value).expect("apply again");
            format!("apply twice: member {id} applies entry {index} again (revision {revision})")
        }
        None => "apply twice: nothing applied yet".to_owned(),
    }
}
