//! The simulated cluster: members in tempdir directories on the router with the faulty
//! network, shared by the clients (which look members up at each call) and the nemesis (which
//! kills and restarts them).
//!
//! Invariants:
//! - A member is in [`World::running`] exactly while it is on the router.
//! - A killed member is restarted from its directory only once no client holds its handle
//!   (its databases' directory locks are released).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kvstore::clock::ManualClock;
use kvstore::vfs::OsVfs;
use kvstore_raft::Node;
use kvstore_raft::{PeerAccess, RaftNode, Router};
use openraft::{Config, SnapshotPolicy};

use super::net::Net;
use crate::common;

/// Member `id`'s node in the membership: started (named), as a server's member is once it
/// published itself, so membership changes pass the started-members check.
pub fn node_of(id: u64) -> Node {
    Node {
        name: format!("n{id}"),
        ..Node::new(format!("node-{id}"))
    }
}

/// Virtual time a restart waits for clients to let go of a killed member's handle.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// The members of one run and their network.
pub struct World {
    /// The one-way cuts, partitions and membership of the network.
    pub router: Router,
    /// Loss and random delays.
    pub net: Net,
    /// Members `1..=members`.
    pub members: u64,
    clock: Arc<ManualClock>,
    config: Arc<Config>,
    root: tempfile::TempDir,
    running: Mutex<BTreeMap<u64, Arc<RaftNode>>>,
}

impl World {
    /// Members `1..=members` started and initialized, network faults drawn from `net_seed`.
    pub async fn new(members: u64, net_seed: u64) -> World {
        // No snapshots: the whole log stays, so the checks can replay it from entry 1.
        let world = World {
            router: Router::new(Duration::from_millis(1)),
            net: Net::new(net_seed),
            members,
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
            config: common::config(SnapshotPolicy::Never, 1_000_000),
            root: tempfile::tempdir().expect("tempdir"),
            running: Mutex::new(BTreeMap::new()),
        };
        for id in 1..=members {
            world.start(id).await;
        }
        let voters: BTreeMap<u64, Node> = (1..=members).map(|id| (id, node_of(id))).collect();
        world
            .node(1)
            .expect("member 1")
            .raft()
            .initialize(voters)
            .await
            .expect("initialize");
        world
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<RaftNode>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("n{id}"))
    }

    /// Member `id`'s handle while it runs.
    pub fn node(&self, id: u64) -> Option<Arc<RaftNode>> {
        self.lock().get(&id).cloned()
    }

    /// The running members' ids.
    pub fn running(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }

    /// The killed members' ids.
    pub fn stopped(&self) -> Vec<u64> {
        let running = self.lock();
        (1..=self.members)
            .filter(|id| !running.contains_key(id))
            .collect()
    }

    /// A running member that believes it leads, if any (the lowest id if several do).
    pub fn leader(&self) -> Option<u64> {
        self.lock()
            .iter()
            .find(|(_, node)| node.raft().metrics().borrow().state.is_leader())
            .map(|(&id, _)| id)
    }

    /// The engine options every member's databases use.
    pub fn options(&self) -> kvstore::Options {
        common::options(&self.clock)
    }

    /// Starts member `id` from its directory and connects it.
    async fn start(&self, id: u64) {
        let node = RaftNode::start(
            id,
            Arc::new(OsVfs),
            &self.dir(id),
            &self.options(),
            Arc::clone(&self.config),
            self.net.factory(self.router.factory(id)),
            PeerAccess::new(common::CLUSTER_ID),
        )
        .await
        .unwrap_or_else(|e| panic!("start member {id}: {e}"));
        self.router.add(id, node.raft().clone());
        self.lock().insert(id, Arc::new(node));
    }

    /// Disconnects member `id` and stops its raft (a crash: what it synced stays).
    pub async fn kill(&self, id: u64) {
        self.router.remove(id);
        let node = self.lock().remove(&id);
        if let Some(node) = node {
            // A member stopped by a fatal error reports it here: the kill is what matters.
            let _ = node.raft().shutdown().await;
            self.release(node).await;
        }
    }

    /// Waits until no client holds `node`, then drops it (releasing its databases).
    async fn release(&self, mut node: Arc<RaftNode>) {
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        loop {
            match Arc::try_unwrap(node) {
                Ok(node) => {
                    drop(node);
                    return;
                }
                Err(shared) => node = shared,
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a client kept a killed member's handle for {RELEASE_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Restarts killed member `id` from its directory.
    pub async fn restart(&self, id: u64) {
        self.start(id).await;
    }

    /// Stops every member, releasing their directories.
    pub async fn shutdown(&self) {
        for id in self.running() {
            self.kill(id).await;
        }
    }
}
