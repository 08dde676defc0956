//! Changing the membership at run time, from any member: etcd's MemberAdd, MemberRemove,
//! MemberPromote and MemberUpdate, and a member publishing its name and client URLs. The leader
//! judges a change against its membership ([`plan`], pure) and runs it through openraft's joint
//! consensus; a follower relays it (`ChangeMembers`, `spec/FORMAT.md` § 12.7).
//!
//! Invariants:
//! - A change the membership refuses (a member or peer URL that exists, an unknown member, a
//!   promotion of a voter...) is a [`MemberRefusal`], judged by the leader, and changes nothing.
//! - At most one change runs at a time: openraft refuses a change while a joint config is
//!   uncommitted, and the leader retries it (bounded by [`RELAY_TIMEOUT`]).
//! - Every node a change writes passes [`Node::check`], and a membership never holds more than
//!   [`MEMBERS_MAX`] nodes, so every reader can decode what was written.
//! - A change of the voters leaves a quorum of started voters (those that published a name),
//!   counting an added voter as not started and a promoted learner as started (etcd's strict
//!   reconfiguration check); a single started voter may add a second.
//! - A change is answered once the entry holding it is committed, and (relayed) once this
//!   member applied it, unless the change removes this member (which may never see the entry).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, LogId};

use crate::error::Error;
use crate::format::MEMBERS_MAX;
use crate::format::peer::Relayed;
use crate::format::peer_members::{
    change_members_reply_from_proto, change_members_request_to_proto,
};
use crate::node::RaftNode;
use crate::relay::{RELAY_TIMEOUT, write_refused};
use crate::transport::client::{Client, call};
use crate::{Membership, Node};

/// How long the leader waits before retrying a change openraft refused because another one is
/// under way.
const IN_PROGRESS_RETRY: Duration = Duration::from_millis(50);

/// A learner is ready to be promoted once it holds this share (in percent) of the leader's log
/// (etcd's `readyPercent`).
const LEARNER_READY_PERCENT: u64 = 90;

/// Most learners a membership may hold (etcd 3.4's `maxLearners`).
pub const LEARNERS_MAX: usize = 1;

/// One change of the membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Adds member `id` at `node.addr`, as a voter or (`learner`) a learner.
    Add {
        /// Its id.
        id: u64,
        /// Where its peers reach it (what it published, usually nothing yet).
        node: Node,
        /// Whether it joins as a learner.
        learner: bool,
    },
    /// Removes member `id`, voter or learner.
    Remove {
        /// Its id.
        id: u64,
    },
    /// Makes learner `id` a voter.
    Promote {
        /// Its id.
        id: u64,
    },
    /// Moves member `id` to peer URL `addr`.
    UpdatePeerUrl {
        /// Its id.
        id: u64,
        /// Its new peer URL.
        addr: String,
    },
    /// Records what member `id` says about itself: its name and client URLs.
    Publish {
        /// Its id.
        id: u64,
        /// Its name.
        name: String,
        /// Its client URLs.
        client_urls: Vec<String>,
    },
}

/// Why the leader refused a change (etcd's member errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberRefusal {
    /// A member with the id exists.
    #[error("member {id:x} already exists")]
    Exists {
        /// The id.
        id: u64,
    },
    /// Another member has the peer URL.
    #[error("peer URL {url} is already a member's")]
    PeerUrlExists {
        /// The URL.
        url: String,
    },
    /// No member has the id.
    #[error("member {id:x} not found")]
    NotFound {
        /// The id.
        id: u64,
    },
    /// A promotion of a member that is not a learner.
    #[error("member {id:x} is not a learner")]
    NotLearner {
        /// The id.
        id: u64,
    },
    /// A promotion of a learner that has not caught up with the leader.
    #[error("learner {id:x} has not caught up with the leader")]
    LearnerNotReady {
        /// The id.
        id: u64,
    },
    /// An added learner beyond [`LEARNERS_MAX`].
    #[error("the cluster already has {LEARNERS_MAX} learner(s)")]
    TooManyLearners,
    /// Too few of the voters after the change would have started (published their name) to
    /// make a quorum (etcd's strict reconfiguration check).
    #[error("too few started members for a quorum after the change")]
    NotEnoughStarted,
    /// Anything else the membership does not allow (the last voter removed, a node over the
    /// format's limits, more than [`MEMBERS_MAX`] members).
    #[error("{0}")]
    Invalid(String),
}

/// What the leader proposes for a change: openraft's changes in order, none if it is already
/// so. A voter is removed in two: first made a learner (so that, if it never sees the entry
/// that removes it, it at least never campaigns), then removed.
pub type Plan = Vec<ChangeMembers<u64, Node>>;

/// Judges `change` against `membership` (see the module doc): the openraft change to run, or
/// why not. Learners' progress is the caller's to check.
pub fn plan(membership: &Membership, change: &MemberChange) -> Result<Plan, MemberRefusal> {
    let nodes: BTreeMap<u64, &Node> = membership.nodes().map(|(&id, n)| (id, n)).collect();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let exists = |id: u64| {
        nodes
            .get(&id)
            .copied()
            .ok_or(MemberRefusal::NotFound { id })
    };
    // Whether a member other than `except` has peer URL `url`.
    let url_taken = |url: &str, except: Option<u64>| {
        nodes
            .iter()
            .any(|(&other, node)| Some(other) != except && node.addr == url)
    };
    // How many voters other than `except` have started (published a name).
    let started = |except: Option<u64>| {
        voters
            .iter()
            .filter(|&&v| Some(v) != except && nodes.get(&v).is_some_and(|n| !n.name.is_empty()))
            .count()
    };
    let checked = |node: &Node| {
        node.check()
            .map_err(|e| MemberRefusal::Invalid(e.to_string()))
    };
    match change {
        MemberChange::Add { id, node, learner } => {
            checked(node)?;
            if url_taken(&node.addr, None) {
                return Err(MemberRefusal::PeerUrlExists {
                    url: node.addr.clone(),
                });
            }
            if nodes.contains_key(id) {
                return Err(MemberRefusal::Exists { id: *id });
            }
            if nodes.len() >= MEMBERS_MAX {
                return Err(MemberRefusal::Invalid(format!(
                    "a cluster holds at most MEMBERS_MAX = {MEMBERS_MAX} members"
                )));
            }
            let added = BTreeMap::from([(*id, node.clone())]);
            if *learner {
                if nodes.len() - voters.len() >= LEARNERS_MAX {
                    return Err(MemberRefusal::TooManyLearners);
                }
                Ok(vec![ChangeMembers::AddNodes(added)])
            } else {
                let single_adds_second = voters.len() == 1 && started(None) == 1;
                if !single_adds_second && !enough_started(voters.len() + 1, started(None)) {
                    return Err(MemberRefusal::NotEnoughStarted);
                }
                Ok(vec![ChangeMembers::AddVoters(added)])
            }
        }
        MemberChange::Remove { id } => {
            exists(*id)?;
            let ids = BTreeSet::from([*id]);
            if !voters.contains(id) {
                return Ok(vec![ChangeMembers::RemoveNodes(ids)]);
            }
            if voters.len() == 1 {
                return Err(MemberRefusal::Invalid(
                    "the cluster's last voter cannot be removed".to_owned(),
                ));
            }
            if !enough_started(voters.len() - 1, started(Some(*id))) {
                return Err(MemberRefusal::NotEnoughStarted);
            }
            Ok(vec![
                ChangeMembers::RemoveVoters(ids.clone()),
                ChangeMembers::RemoveNodes(ids),
            ])
        }
        MemberChange::Promote { id } => {
            exists(*id)?;
            if voters.contains(id) {
                return Err(MemberRefusal::NotLearner { id: *id });
            }
            if !enough_started(voters.len() + 1, started(None) + 1) {
                return Err(MemberRefusal::NotEnoughStarted);
            }
            Ok(vec![ChangeMembers::AddVoterIds(BTreeSet::from([*id]))])
        }
        MemberChange::UpdatePeerUrl { id, addr } => {
            let node = exists(*id)?;
            if url_taken(addr, Some(*id)) {
                return Err(MemberRefusal::PeerUrlExists { url: addr.clone() });
            }
            let updated = Node {
                addr: addr.clone(),
                ..node.clone()
            };
            set_node(*id, node, updated, checked)
        }
        MemberChange::Publish {
            id,
            name,
            client_urls,
        } => {
            let node = exists(*id)?;
            let published = Node {
                name: name.clone(),
                client_urls: client_urls.clone(),
                ..node.clone()
            };
            set_node(*id, node, published, checked)
        }
    }
}

/// Whether `started` of `voters` voters make a quorum of them (more than half).
fn enough_started(voters: usize, started: usize) -> bool {
    started > voters / 2
}

/// Replaces node `id` (`now`) with `new`, or nothing if they are equal.
fn set_node(
    id: u64,
    now: &Node,
    new: Node,
    checked: impl Fn(&Node) -> Result<(), MemberRefusal>,
) -> Result<Plan, MemberRefusal> {
    checked(&new)?;
    if *now == new {
        return Ok(Vec::new());
    }
    Ok(vec![ChangeMembers::SetNodes(BTreeMap::from([(id, new)]))])
}

/// What a change answered: the log id of the membership entry that holds it (`None`: nothing
/// to change, and no membership entry yet), or why the leader refused it.
pub type ChangeOutcome = Result<Option<LogId<u64>>, MemberRefusal>;

impl RaftNode {
    /// Runs `change` on the leader, relaying it if this member is a follower (see the module
    /// doc). A refusal is [`Error::MemberRefused`].
    pub async fn change_members(&self, change: MemberChange) -> Result<(), Error> {
        let outcome = self
            .relay(
                || self.change_members_here(change.clone()),
                |mut client: Client, addr: String| {
                    let request = change_members_request_to_proto(&change);
                    async move {
                        call(
                            &addr,
                            RELAY_TIMEOUT,
                            client.change_members(request),
                            change_members_reply_from_proto,
                        )
                        .await
                    }
                },
            )
            .await?;
        let log_id = outcome.map_err(Error::MemberRefused)?;
        let removes_me = matches!(change, MemberChange::Remove { id } if id == self.id());
        if let Some(log_id) = log_id
            && !removes_me
        {
            self.wait_applied(log_id.index).await?;
        }
        Ok(())
    }

    /// `ChangeMembers` served here: runs the change if this member is the leader.
    pub(crate) async fn change_members_here(&self, change: MemberChange) -> Relayed<ChangeOutcome> {
        let metrics = self.raft().metrics().borrow().clone();
        if metrics.current_leader != Some(self.id()) {
            return Relayed::NotLeader(metrics.current_leader);
        }
        let plan = match plan(metrics.membership_config.membership(), &change) {
            Ok(plan) => plan,
            Err(refusal) => return Relayed::Done(Err(refusal)),
        };
        if let MemberChange::Promote { id } = change
            && !learner_ready(&metrics, id)
        {
            return Relayed::Done(Err(MemberRefusal::LearnerNotReady { id }));
        }
        let mut last = *metrics.membership_config.log_id();
        for step in plan {
            match self.change_membership_step(step).await {
                Ok(log_id) => last = Some(log_id),
                Err(failed) => return failed,
            }
        }
        Relayed::Done(Ok(last))
    }

    /// Runs one openraft change, retrying while another is under way (see the module doc);
    /// returns the log id of the entry that completed it.
    async fn change_membership_step(
        &self,
        step: ChangeMembers<u64, Node>,
    ) -> Result<LogId<u64>, Relayed<ChangeOutcome>> {
        let deadline = tokio::time::Instant::now() + RELAY_TIMEOUT;
        // `retain`: a voter leaving the voters stays a learner until the next step.
        let retain = matches!(step, ChangeMembers::RemoveVoters(_));
        loop {
            match self.raft().change_membership(step.clone(), retain).await {
                Ok(written) => return Ok(written.log_id),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(IN_PROGRESS_RETRY).await;
                }
                Err(e) => return Err(write_refused(&e)),
            }
        }
    }
}

/// Whether the leader's replication to learner `id` holds [`LEARNER_READY_PERCENT`] of its log.
fn learner_ready(metrics: &openraft::RaftMetrics<u64, Node>, id: u64) -> bool {
    let last = metrics.last_log_index.unwrap_or(0);
    let matched = metrics
        .replication
        .as_ref()
        .and_then(|replication| replication.get(&id).cloned().flatten())
        .map_or(0, |log_id| log_id.index);
    matched.saturating_mul(100) >= last.saturating_mul(LEARNER_READY_PERCENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voters and learners, every one started (named `n<id>`) but those in `unstarted`.
    fn membership_with(voters: &[u64], learners: &[u64], unstarted: &[u64]) -> Membership {
        let nodes: BTreeMap<u64, Node> = voters
            .iter()
            .chain(learners)
            .map(|&id| {
                let name = if unstarted.contains(&id) {
                    String::new()
                } else {
                    format!("n{id}")
                };
                let node = Node {
                    name,
                    ..Node::new(format!("http://h:{id}"))
                };
                (id, node)
            })
            .collect();
        Membership::new(vec![voters.iter().copied().collect()], nodes)
    }

    fn membership(voters: &[u64], learners: &[u64]) -> Membership {
        membership_with(voters, learners, &[])
    }

    #[test]
    fn voter_changes_keep_a_quorum_of_started_members() {
        let add_voter = |id| MemberChange::Add {
            id,
            node: Node::new(format!("http://h:{id}")),
            learner: false,
        };
        // Voters 1, 2, 3 (3 not started) and learner 4.
        let m = membership_with(&[1, 2, 3], &[4], &[3]);
        // Four voters with two started: no quorum.
        assert_eq!(
            plan(&m, &add_voter(5)),
            Err(MemberRefusal::NotEnoughStarted)
        );
        // Removing the unstarted one leaves 2 of 2; removing a started one, 1 of 2.
        assert!(plan(&m, &MemberChange::Remove { id: 3 }).is_ok());
        assert_eq!(
            plan(&m, &MemberChange::Remove { id: 1 }),
            Err(MemberRefusal::NotEnoughStarted)
        );
        // A promoted learner counts as started: 3 of 4.
        assert!(plan(&m, &MemberChange::Promote { id: 4 }).is_ok());
        // Two unstarted of three: a promotion makes 2 of 4.
        let m = membership_with(&[1, 2, 3], &[4], &[2, 3]);
        assert_eq!(
            plan(&m, &MemberChange::Promote { id: 4 }),
            Err(MemberRefusal::NotEnoughStarted)
        );
        // A single started voter may add a second (etcd's exception); an unstarted one not.
        assert!(plan(&membership(&[1], &[]), &add_voter(2)).is_ok());
        assert_eq!(
            plan(&membership_with(&[1], &[], &[1]), &add_voter(2)),
            Err(MemberRefusal::NotEnoughStarted)
        );
        // Learners come and go whatever the voters.
        let learner = MemberChange::Add {
            id: 5,
            node: Node::new("http://h:5"),
            learner: true,
        };
        assert!(plan(&membership_with(&[1, 2, 3], &[], &[2, 3]), &learner).is_ok());
    }

    #[test]
    fn plans_each_change_and_refuses_what_etcd_refuses() {
        let m = membership(&[1, 2, 3], &[]);
        let add = |id, addr: &str, learner| MemberChange::Add {
            id,
            node: Node::new(addr),
            learner,
        };
        assert!(matches!(
            plan(&m, &add(4, "http://h:4", false)),
            Ok(ref p) if matches!(p[..], [ChangeMembers::AddVoters(_)])
        ));
        assert!(matches!(
            plan(&m, &add(4, "http://h:4", true)),
            Ok(ref p) if matches!(p[..], [ChangeMembers::AddNodes(_)])
        ));
        assert_eq!(
            plan(&m, &add(2, "http://h:9", false)),
            Err(MemberRefusal::Exists { id: 2 })
        );
        // A taken URL is named first (as etcd, whose ids never collide with a URL's).
        assert_eq!(
            plan(&m, &add(2, "http://h:2", false)),
            Err(MemberRefusal::PeerUrlExists {
                url: "http://h:2".to_owned()
            })
        );
        assert_eq!(
            plan(&m, &add(4, "http://h:2", false)),
            Err(MemberRefusal::PeerUrlExists {
                url: "http://h:2".to_owned()
            })
        );
        let with_learner = membership(&[1, 2, 3], &[4]);
        assert_eq!(
            plan(&with_learner, &add(5, "http://h:5", true)),
            Err(MemberRefusal::TooManyLearners)
        );
        assert!(matches!(
            plan(&with_learner, &MemberChange::Promote { id: 4 }),
            Ok(ref p) if matches!(p[..], [ChangeMembers::AddVoterIds(_)])
        ));
        assert_eq!(
            plan(&m, &MemberChange::Promote { id: 2 }),
            Err(MemberRefusal::NotLearner { id: 2 })
        );
        assert_eq!(
            plan(&m, &MemberChange::Remove { id: 9 }),
            Err(MemberRefusal::NotFound { id: 9 })
        );
        assert!(matches!(
            plan(&with_learner, &MemberChange::Remove { id: 4 }),
            Ok(ref p) if matches!(p[..], [ChangeMembers::RemoveNodes(_)])
        ));
        assert!(matches!(
            plan(&m, &MemberChange::Remove { id: 3 }),
            Ok(ref p) if matches!(p[..], [ChangeMembers::RemoveVoters(_), ChangeMembers::RemoveNodes(_)])
        ));
        assert!(matches!(
            plan(&membership(&[1], &[]), &MemberChange::Remove { id: 1 }),
            Err(MemberRefusal::Invalid(_))
        ));
        let publish = |name: &str| MemberChange::Publish {
            id: 1,
            name: name.to_owned(),
            client_urls: vec!["http://c:1".to_owned()],
        };
        assert!(matches!(
            plan(&m, &publish("n1")),
            Ok(ref p) if matches!(p[..], [ChangeMembers::SetNodes(_)])
        ));
        assert!(matches!(
            plan(&m, &publish(&"x".repeat(300))),
            Err(MemberRefusal::Invalid(_))
        ));
        let published = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(
                1,
                Node {
                    addr: "http://h:1".to_owned(),
                    name: "n1".to_owned(),
                    client_urls: vec!["http://c:1".to_owned()],
                },
            )]),
        );
        assert_eq!(plan(&published, &publish("n1")), Ok(Vec::new()));
        assert_eq!(
            plan(
                &m,
                &MemberChange::UpdatePeerUrl {
                    id: 1,
                    addr: "http://h:3".to_owned()
                }
            ),
            Err(MemberRefusal::PeerUrlExists {
                url: "http://h:3".to_owned()
            })
        );
    }
}
