//! A cluster of kvstore-raft members in one process: tempdir directories, the in-process router,
//! a paused tokio clock (the tests run under `start_paused = true`).
#![allow(dead_code)]

pub mod garbage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kvstore::clock::{Clock, ManualClock, SharedClock};
use kvstore::vfs::OsVfs;
use kvstore::{BackgroundMode, Db, KeyRange, Options, ScanOptions};
use kvstore_raft::{Command, Node, PeerAccess, RaftNode, Response, Router, TypeConfig};
use openraft::{Config, Raft, SnapshotPolicy};

/// The cluster id every test member runs with.
pub const CLUSTER_ID: u64 = 0x6b76_7374_6f72_6501;

/// How long a test waits for the cluster (virtual time).
pub const WAIT: Duration = Duration::from_secs(30);

/// One key's newest version as a member's engine has it.
pub type Row = (Vec<u8>, Vec<u8>, u64, u64, u64, u64);

pub struct Cluster {
    /// Every member's engine clock (lease deadlines).
    pub clock: Arc<ManualClock>,
    pub router: Router,
    pub root: tempfile::TempDir,
    pub nodes: BTreeMap<u64, RaftNode>,
    pub config: Arc<Config>,
}

pub fn config(snapshot_policy: SnapshotPolicy, keep: u64) -> Arc<Config> {
    let config = Config {
        cluster_name: "test".to_owned(),
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy,
        max_in_snapshot_log_to_keep: keep,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

pub fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        background: BackgroundMode::Inline,
        clock: SharedClock(Arc::clone(clock) as Arc<dyn Clock>),
        ..Options::default()
    }
}

impl Cluster {
    /// Members `1..=n` started and initialized with all of them as voters.
    pub async fn new(n: u64, config: Arc<Config>) -> Cluster {
        let mut cluster = Cluster {
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
            router: Router::new(Duration::from_millis(1)),
            root: tempfile::tempdir().expect("tempdir"),
            nodes: BTreeMap::new(),
            config,
        };
        for id in 1..=n {
            cluster.start(id).await;
        }
        let members: BTreeMap<u64, Node> = (1..=n)
            .map(|id| (id, Node::new(format!("node-{id}"))))
            .collect();
        cluster.nodes[&1]
            .raft()
            .initialize(members)
            .await
            .expect("initialize");
        cluster
    }

    pub fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("n{id}"))
    }

    /// Starts member `id` from its directory and connects it.
    pub async fn start(&mut self, id: u64) {
        let node = RaftNode::start(
            id,
            Arc::new(OsVfs),
            &self.dir(id),
            &options(&self.clock),
            Arc::clone(&self.config),
            self.router.factory(id),
            PeerAccess::new(CLUSTER_ID),
        )
        .await
        .expect("start member");
        self.router.add(id, node.raft().clone());
        self.nodes.insert(id, node);
    }

    /// Disconnects member `id` and stops it; its directory stays.
    pub async fn kill(&mut self, id: u64) {
        self.router.remove(id);
        let node = self.nodes.remove(&id).expect("member running");
        // A member stopped by a (simulated) fatal error reports it here: that is expected.
        let _ = node.shutdown().await;
    }

    /// The leader every running member agrees on.
    pub async fn leader(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<u64>> = self
                .nodes
                .values()
                .map(|n| n.raft().metrics().borrow().current_leader)
                .collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| *l == Some(*leader))
                && self.nodes.contains_key(leader)
                && self.nodes[leader]
                    .raft()
                    .metrics()
                    .borrow()
                    .state
                    .is_leader()
            {
                return *leader;
            }
            if tokio::time::Instant::now() >= deadline {
                for node in self.nodes.values() {
                    eprintln!("{:?}", node.raft().metrics().borrow());
                }
                panic!("no leader agreed on: {leaders:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Proposes `command` through the leader; returns the response and the entry's index.
    pub async fn write(&self, command: Command) -> (Response, u64) {
        let leader = self.leader().await;
        let written = self.nodes[&leader]
            .raft()
            .client_write(command)
            .await
            .expect("client_write");
        (written.data, written.log_id.index)
    }

    /// A put through the leader; returns its revision.
    pub async fn put(&self, key: &str, value: &str) -> u64 {
        match self
            .write(Command::Put {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                lease: 0,
            })
            .await
            .0
        {
            Response::Put { revision } => revision,
            other => panic!("put answered {other:?}"),
        }
    }

    /// Waits until every running member applied at least `index`.
    pub async fn wait_applied(&self, index: u64) {
        for (id, node) in &self.nodes {
            node.raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index), format!("member {id} applies {index}"))
                .await
                .expect("applied");
        }
    }

    /// The leader's last log index, once every running member applied it.
    pub async fn settle(&self) -> u64 {
        let leader = self.leader().await;
        let last = self.nodes[&leader]
            .raft()
            .metrics()
            .borrow()
            .last_log_index
            .expect("a log");
        self.wait_applied(last).await;
        last
    }
}

/// Every live key with value and metadata, and the last revision.
pub fn dump(db: &Db) -> (Vec<Row>, u64) {
    let rows = db
        .scan(KeyRange::all(), ScanOptions::default())
        .expect("scan")
        .versioned()
        .map(|row| {
            let (key, v) = row.expect("row");
            (
                key,
                v.value,
                v.revision,
                v.create_revision,
                v.version,
                v.lease,
            )
        })
        .collect();
    (rows, db.stats().last_revision)
}

/// Asserts every running member's engine holds what member `reference`'s does.
pub fn assert_same_state(cluster: &Cluster, reference: u64) {
    let expected = dump(&cluster.nodes[&reference].db());
    for (id, node) in &cluster.nodes {
        let got = dump(&node.db());
        assert_eq!(got, expected, "member {id} differs from member {reference}");
    }
}

/// Has `raft` build a snapshot of everything it applied and purge its log up to it, and waits
/// for both; returns the snapshot's index.
pub async fn snapshot_and_purge(raft: &Raft<TypeConfig>, wait: Duration) -> u64 {
    let last = raft.metrics().borrow().last_applied.expect("applied").index;
    raft.trigger().snapshot().await.expect("trigger snapshot");
    let metrics = raft
        .wait(Some(wait))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last),
            "snapshot built",
        )
        .await
        .expect("snapshot");
    let index = metrics.snapshot.expect("snapshot").index;
    raft.trigger().purge_log(index).await.expect("purge");
    raft.wait(Some(wait))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= index), "purged")
        .await
        .expect("purged");
    index
}
