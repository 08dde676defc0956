//! The gRPC peer transport over real loopback TCP: three members in one process, each serving
//! `kvstore.raft.v1.Peer` on its own listener and reaching the others only through
//! [`PeerNetwork`]. Writes proposed on the leader and relayed from followers, read barriers,
//! lease keep-alives, a leader stopped, a member caught up by a snapshot sent over the wire;
//! malformed calls and another cluster's calls refused; calls to nobody failing within
//! openraft's hard TTL. Real time (TCP
//! does not run on tokio's paused clock).
//!
//! Planted bugs these tests were shown to catch (each applied by hand, run, then removed):
//! - `RaftNode::propose` acknowledging a relayed write as soon as the leader answered, without
//!   waiting until the relaying follower applied it (`relay.rs`, the `wait_applied` call
//!   removed): `writes_reads_and_keep_alives_go_through_any_member` fails ("a follower's own
//!   write N is not visible there", N = 1..3 in three runs).
//! - `PeerLink::append_entries` sending no entries (`request.entries.clear()` in
//!   `transport/client.rs`): the three cluster tests (writes, stopped leader, snapshot) fail;
//!   the leader's openraft sees the followers' logs go back, stops ("follower log reversion is
//!   not allowed"), and `propose` answers `Error::Remote { failure: Panicked }`.
//! - `ClusterCheck` passing every well-formed cluster id (`|| true` on its match arm in
//!   `transport/access.rs`): `calls_from_another_cluster_are_refused_and_reach_no_raft` fails
//!   (the stranger's vote is answered).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::garbage::noise;
use common::{CLUSTER_ID, config, dump, options};
use kvstore::clock::ManualClock;
use kvstore::vfs::OsVfs;
use kvstore_raft::Node;
use kvstore_raft::{Command, PeerAccess, PeerNetwork, RaftNode, Rejection, Response, peer_server};
use openraft::{Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

/// Relayed writes read back at once on the member that relayed them.
const RELAYED_READBACKS: u64 = 20;

/// How long a test waits for the cluster (real time).
const WAIT: Duration = Duration::from_secs(30);

struct Member {
    node: Arc<RaftNode>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

struct Net {
    clock: Arc<ManualClock>,
    root: tempfile::TempDir,
    config: Arc<Config>,
    addrs: BTreeMap<u64, String>,
    members: BTreeMap<u64, Member>,
}

impl Net {
    /// Members `1..=n`, each serving on a loopback port of its own, initialized as voters.
    async fn new(n: u64, config: Arc<Config>) -> Net {
        let mut net = Net {
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
            root: tempfile::tempdir().expect("tempdir"),
            config,
            addrs: BTreeMap::new(),
            members: BTreeMap::new(),
        };
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = format!("http://{}", listener.local_addr().expect("addr"));
            net.addrs.insert(id, addr);
            net.serve(id, listener).await;
        }
        let members: BTreeMap<u64, Node> = net
            .addrs
            .iter()
            .map(|(id, addr)| (*id, Node::new(addr)))
            .collect();
        net.node(1)
            .raft()
            .initialize(members)
            .await
            .expect("initialize");
        net
    }

    fn node(&self, id: u64) -> &Arc<RaftNode> {
        &self.members[&id].node
    }

    /// Starts member `id` from its directory, serving the peer service on `listener`.
    async fn serve(&mut self, id: u64, listener: TcpListener) {
        let node = RaftNode::start(
            id,
            Arc::new(OsVfs),
            &self.root.path().join(format!("n{id}")),
            &options(&self.clock),
            Arc::clone(&self.config),
            PeerNetwork::new(PeerAccess::new(CLUSTER_ID)),
            PeerAccess::new(CLUSTER_ID),
        )
        .await
        .expect("start member");
        let node = Arc::new(node);
        let (stop, stopped) = oneshot::channel::<()>();
        let service = peer_server(Arc::clone(&node));
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        self.members.insert(id, Member { node, stop, server });
    }

    /// Restarts member `id` on its old address.
    async fn restart(&mut self, id: u64) {
        let addr = self.addrs[&id].trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind(&addr).await.expect("rebind");
        self.serve(id, listener).await;
    }

    /// Stops member `id`'s server and raft and releases its directory.
    async fn stop(&mut self, id: u64) {
        let member = self.members.remove(&id).expect("running");
        let _ = member.stop.send(());
        member.server.await.expect("server task");
        let mut node = member.node;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match Arc::try_unwrap(node) {
                Ok(node) => {
                    let _ = node.shutdown().await;
                    return;
                }
                Err(shared) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "member {id} still shared"
                    );
                    node = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// The leader every running member agrees on.
    async fn leader(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<u64>> = self
                .members
                .values()
                .map(|m| m.node.raft().metrics().borrow().current_leader)
                .collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| *l == Some(*leader))
                && self.members.get(leader).is_some_and(|m| m.node.is_leader())
            {
                return *leader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader agreed on: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn followers(&self, leader: u64) -> Vec<u64> {
        self.members
            .keys()
            .copied()
            .filter(|&id| id != leader)
            .collect()
    }

    /// Waits until every running member applied the leader's last entry.
    async fn settle(&self) {
        let leader = self.leader().await;
        let last = self
            .node(leader)
            .raft()
            .metrics()
            .borrow()
            .last_log_index
            .expect("a log");
        for (id, member) in &self.members {
            member
                .node
                .raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(last), format!("member {id} applies {last}"))
                .await
                .expect("applied");
        }
    }

    fn assert_same_state(&self) {
        let mut states = self.members.iter().map(|(id, m)| (id, dump(&m.node.db())));
        let (first, expected) = states.next().expect("a member");
        for (id, state) in states {
            assert_eq!(state, expected, "member {id} differs from member {first}");
        }
    }
}

fn put(key: &str, value: &[u8]) -> Command {
    Command::Put {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
        lease: 0,
    }
}

fn revision(response: Response) -> u64 {
    match response {
        Response::Put { revision } => revision,
        other => panic!("a put answered {other:?}"),
    }
}

fn real_time_config(policy: SnapshotPolicy) -> Arc<Config> {
    let mut config = (*config(policy, 0)).clone();
    // Generous against a loaded 2-core machine: openraft bounds an AppendEntries (here with
    // values of up to 5 MiB, synced by the follower) by the heartbeat interval.
    config.heartbeat_interval = 100;
    config.election_timeout_min = 800;
    config.election_timeout_max = 1_600;
    config.install_snapshot_timeout = 2_000;
    Arc::new(config.validate().expect("valid config"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reads_and_keep_alives_go_through_any_member() {
    let net = Net::new(3, real_time_config(SnapshotPolicy::Never)).await;
    let leader = net.leader().await;
    let followers = net.followers(leader);
    let (f1, f2) = (followers[0], followers[1]);

    let r1 = revision(
        net.node(leader)
            .propose(put("a", b"1"))
            .await
            .expect("propose"),
    );
    let r2 = revision(net.node(f1).propose(put("b", b"2")).await.expect("relayed"));
    assert_eq!(r2, r1 + 1, "one revision each, in order");
    // A relayed write is acknowledged only once the relaying member applied it.
    for i in 0..RELAYED_READBACKS {
        let value = format!("v{i}");
        net.node(f1)
            .propose(put("b", value.as_bytes()))
            .await
            .expect("relayed");
        assert_eq!(
            net.node(f1).db().get(b"b").expect("get"),
            Some(value.into_bytes()),
            "a follower's own write {i} is not visible there"
        );
    }
    let r2 = r2 + RELAYED_READBACKS;
    // A value larger than gRPC's default 4 MiB message limit travels in AppendEntries.
    let big = noise(5 << 20, 7);
    let r3 = revision(net.node(f2).propose(put("big", &big)).await.expect("big"));
    assert_eq!(r3, r2 + 1);

    // A write acknowledged by the leader is visible on a follower after its read barrier.
    for i in 0..5 {
        let key = format!("rb{i}");
        net.node(leader)
            .propose(put(&key, b"x"))
            .await
            .expect("propose");
        let reader = net.node(followers[i % 2]);
        reader.read_barrier().await.expect("read barrier");
        assert_eq!(
            reader.db().get(key.as_bytes()).expect("get"),
            Some(b"x".to_vec()),
            "read barrier on member {} missed {key}",
            reader.id()
        );
    }

    // Leases: granted through a follower, kept alive through a follower on the leader's
    // engine clock; an unknown lease is refused alike everywhere.
    let granted = net
        .node(f1)
        .propose(Command::LeaseGrant {
            id: 7,
            ttl_ms: 60_000,
        })
        .await
        .expect("grant");
    assert_eq!(granted, Response::LeaseGranted { id: 7 });
    net.settle().await;
    net.clock.advance(40_000);
    let remaining = |net: &Net, id: u64| {
        net.node(id)
            .lease_status(7)
            .expect("status")
            .expect("granted")
            .remaining
    };
    for id in 1..=3 {
        assert_eq!(remaining(&net, id), Duration::from_secs(20));
    }
    let ttl = net.node(f2).keep_alive(7).await.expect("keep alive");
    assert_eq!(ttl, Some(Duration::from_secs(60)));
    // Refreshed on the leader's engine only (the leader of that moment: on a loaded machine
    // an election may have moved it, so the test does not assume the first one).
    let refreshed: Vec<u64> = (1..=3)
        .filter(|&id| remaining(&net, id) == Duration::from_secs(60))
        .collect();
    assert_eq!(refreshed.len(), 1, "refreshed on one engine: {refreshed:?}");
    assert!(
        refreshed[0] == leader || refreshed[0] == net.leader().await,
        "refreshed on member {} which did not lead",
        refreshed[0]
    );
    assert_eq!(net.node(f2).keep_alive(8).await.expect("keep alive"), None);
    let refused = net
        .node(f2)
        .propose(Command::LeaseRevoke { id: 99 })
        .await
        .expect("relayed");
    assert_eq!(
        refused,
        Response::Rejected(Rejection::LeaseNotFound { id: 99 })
    );

    net.settle().await;
    net.assert_same_state();
    let (rows, last) = dump(&net.node(f2).db());
    assert_eq!(last, r3 + 5);
    assert!(rows.iter().any(|row| row.0 == b"big" && row.1 == big));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_replaced_and_writes_go_on() {
    let mut net = Net::new(3, real_time_config(SnapshotPolicy::Never)).await;
    let old = net.leader().await;
    let before = revision(
        net.node(old)
            .propose(put("k", b"0"))
            .await
            .expect("propose"),
    );
    net.settle().await;
    net.stop(old).await;

    let leader = net.leader().await;
    assert_ne!(leader, old);
    let follower = net.followers(leader)[0];
    let after = revision(
        net.node(follower)
            .propose(put("k", b"1"))
            .await
            .expect("relayed"),
    );
    assert!(after > before);
    net.node(follower)
        .read_barrier()
        .await
        .expect("read barrier");
    assert_eq!(
        net.node(follower).db().get(b"k").expect("get"),
        Some(b"1".to_vec())
    );
    net.settle().await;
    net.assert_same_state();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_far_behind_catches_up_by_a_snapshot_over_the_wire() {
    let mut net = Net::new(3, real_time_config(SnapshotPolicy::Never)).await;
    let leader = net.leader().await;
    let away = net.followers(leader)[0];
    net.node(leader)
        .propose(put("early", b"1"))
        .await
        .expect("propose");
    net.settle().await;
    net.stop(away).await;

    // More than a few MiB, so the snapshot travels in several chunks and over 4 MiB.
    for i in 0..6u64 {
        let key = format!("k{i}");
        net.node(leader)
            .propose(put(&key, &noise(1 << 20, i + 1)))
            .await
            .expect("propose");
    }
    net.settle().await;
    common::snapshot_and_purge(net.node(leader).raft(), WAIT).await;

    net.restart(away).await;
    net.node(leader)
        .propose(put("after", b"1"))
        .await
        .expect("propose");
    net.settle().await;
    net.assert_same_state();
    assert_eq!(
        net.node(away).state().generation(),
        1,
        "installed from a snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_malformed_calls_and_goes_on() {
    use kvstore_raft::format::peer::SNAPSHOT_CHUNK_LEN_MAX;
    use kvstore_raft::format::peer_proto as p;
    use kvstore_raft::format::proto;
    use kvstore_raft::transport::access::ClusterStamp;
    use kvstore_raft::transport::rpc::peer_client::PeerClient;

    let net = Net::new(1, real_time_config(SnapshotPolicy::Never)).await;
    net.leader().await;
    let channel = tonic::transport::Endpoint::from_shared(net.addrs[&1].clone())
        .expect("address")
        .connect()
        .await
        .expect("connect");
    let mut client = PeerClient::with_interceptor(channel, ClusterStamp::new(CLUSTER_ID));
    let invalid = |status: tonic::Status, what: &str| {
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
    };

    let status = client
        .append_entries(p::AppendEntriesRequest::default())
        .await
        .expect_err("no vote");
    invalid(status, "AppendEntries without a vote");

    let meta = proto::SnapshotMeta {
        last_log_id: None,
        last_membership: Some(proto::StoredMembership {
            log_id: None,
            membership: Some(proto::Membership {
                configs: vec![proto::VoterSet { ids: vec![1] }],
                nodes: vec![proto::Node {
                    id: 1,
                    addr: net.addrs[&1].clone(),
                    ..proto::Node::default()
                }],
            }),
        }),
        snapshot_id: "bad".to_owned(),
    };
    let head = |len: u64| p::SnapshotChunk {
        part: Some(p::SnapshotPart::Head(p::SnapshotHead {
            vote: Some(proto::Vote {
                term: 99,
                node_id: 2,
                committed: true,
            }),
            meta: Some(meta.clone()),
            len,
        })),
    };
    let data = |len: usize| p::SnapshotChunk {
        part: Some(p::SnapshotPart::Data(vec![0; len])),
    };
    let streams = [
        ("data before the head", vec![data(4)]),
        ("two heads", vec![head(4), head(4)]),
        ("more data than announced", vec![head(10), data(11)]),
        ("less data than announced", vec![head(10), data(5)]),
        (
            "a chunk over SNAPSHOT_CHUNK_LEN_MAX",
            vec![head(4 << 20), data(SNAPSHOT_CHUNK_LEN_MAX + 1)],
        ),
    ];
    for (what, chunks) in streams {
        let status = client
            .install_snapshot(tokio_stream::iter(chunks))
            .await
            .expect_err(what);
        invalid(status, what);
    }
    let status = client
        .propose(p::ProposeRequest { command: None })
        .await
        .expect_err("no command");
    invalid(status, "Propose without a command");

    // Nothing reached the raft: the member still leads its term and takes writes.
    assert_eq!(net.leader().await, 1);
    let response = net.node(1).propose(put("k", b"v")).await.expect("propose");
    assert!(matches!(response, Response::Put { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_another_cluster_are_refused_and_reach_no_raft() {
    use kvstore_raft::format::peer_proto as p;
    use kvstore_raft::transport::CLUSTER_ID_METADATA;
    use kvstore_raft::transport::rpc::peer_client::PeerClient;
    use openraft::error::RPCError;
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::VoteRequest;

    let net = Net::new(1, real_time_config(SnapshotPolicy::Never)).await;
    net.leader().await;
    let term = || net.node(1).raft().metrics().borrow().current_term;
    let term_before = term();

    // A vote for a far later term, from a member of another cluster: were it to reach the
    // raft, the leader would step down. The caller sees the refusal as "unreachable".
    let mut stranger = PeerNetwork::new(PeerAccess::new(CLUSTER_ID + 1));
    let mut link = stranger.new_client(1, &Node::new(&net.addrs[&1])).await;
    let vote = VoteRequest::new(openraft::Vote::new(term_before + 50, 2), None);
    let result = link
        .vote(vote, RPCOption::new(Duration::from_secs(5)))
        .await;
    assert!(
        matches!(&result, Err(RPCError::Unreachable(e)) if e.to_string().contains("cluster ID mismatch")),
        "{result:?}"
    );

    // A call with no cluster id, or a malformed one, is refused as well.
    let mut bare = PeerClient::connect(net.addrs[&1].clone())
        .await
        .expect("connect");
    let status = bare
        .read_index(p::ReadIndexRequest::default())
        .await
        .expect_err("no cluster id");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let mut request = tonic::Request::new(p::ReadIndexRequest::default());
    request.metadata_mut().insert(
        CLUSTER_ID_METADATA,
        format!("{CLUSTER_ID:x}")
            .to_uppercase()
            .parse()
            .expect("ascii"),
    );
    let status = bare.read_index(request).await.expect_err("malformed id");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    // Nothing reached the raft: the member leads the same term and takes writes.
    assert_eq!(net.leader().await, 1);
    assert_eq!(term(), term_before);
    let response = net.node(1).propose(put("k", b"v")).await.expect("propose");
    assert!(matches!(response, Response::Put { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_reach_nobody_fail_within_the_hard_ttl() {
    use openraft::error::RPCError;
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::VoteRequest;

    let mut network = PeerNetwork::new(PeerAccess::new(CLUSTER_ID));
    let rpc = || VoteRequest::new(openraft::Vote::new(1, 1), None);
    let ttl = Duration::from_millis(300);

    // Nothing listens there: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_addr = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    // A listener that never answers (the kernel accepts, nobody speaks HTTP/2).
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = format!("http://{}", silent.local_addr().expect("addr"));
    // Unreachable (openraft backs off) without a connection; a network error (retried at
    // once) without an answer in time.
    for (addr, unreachable) in [
        (closed_addr, true),
        ("not a url".to_owned(), true),
        (silent_addr, false),
    ] {
        let mut link = network.new_client(2, &Node::new(&addr)).await;
        let started = tokio::time::Instant::now();
        let result = link.vote(rpc(), RPCOption::new(ttl)).await;
        if unreachable {
            assert!(
                matches!(result, Err(RPCError::Unreachable(_))),
                "{addr}: {result:?}"
            );
        } else {
            assert!(
                matches!(result, Err(RPCError::Network(_))),
                "{addr}: {result:?}"
            );
        }
        assert!(
            started.elapsed() < ttl + Duration::from_millis(500),
            "{addr}: answered after {:?}",
            started.elapsed()
        );
    }
    drop(silent);
}
