//! Starting a member: its raft over the member's directory, its peer port, the cluster formed
//! on its first start, what it publishes about itself, the leader's lease duties, and noticing
//! that it was removed (`Member::removed`, which ends the server).
//!
//! Invariants:
//! - The peer port answers calls of this cluster only (the cluster id, `kvstore-raft`'s
//!   `PeerAccess`). With peer TLS ([`PeerTlsConfig`]) it serves TLS only, and under
//!   `client_cert_auth` takes only connections whose client certificate the trusted CA
//!   verifies; this member's own calls to `https://` members verify their certificates
//!   against that CA and present its certificate.
//! - Every initial member of a new cluster initializes raft with the same membership (all of
//!   `--initial-cluster` as voters, with their names), which openraft allows; a member that was
//!   initialized before (a restart) is not initialized again. A member joining an existing
//!   cluster (`--initial-cluster-state existing`, after MemberAdd) never initializes: it waits
//!   for the leader to replicate the log to it.
//! - Until its membership entry holds its name and client URLs, a member keeps proposing them
//!   (etcd's publish), every [`PUBLISH_RETRY`].
//! - Leases are expired only by the leader, through committed revocations
//!   ([`RaftNode::propose_lease_expiries`]); a member that becomes leader first renews every
//!   lease by its own clock (etcd's lessor promotion), so a lease whose keep-alives went to the
//!   old leader does not expire at the hand-over.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kvstore::Options;
use kvstore::vfs::OsVfs;
use kvstore_raft::Node;
use kvstore_raft::transport::{PeerAccess, PeerNetwork, peer_server};
use kvstore_raft::{MemberChange, MemberRefusal, RaftNode};
use openraft::Config;
use openraft::error::{InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::members::InitialCluster;
use crate::error::ServeError;
use crate::listener::{self, TlsConfig};

/// How long a member waits before proposing its name and client URLs again.
const PUBLISH_RETRY: Duration = Duration::from_secs(1);

/// How often a learner asks the leader whether it is still a member.
const REMOVAL_PROBE: Duration = Duration::from_secs(2);

/// How often the leader looks for leases past their deadline.
const LEASE_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Raft's timing: a heartbeat every 100 ms (etcd's default), and a follower that hears nothing
/// campaigns after 1.2 to 1.6 s, where etcd 3.4's default does after 1 to 2 s. openraft 0.9 adds
/// a leader lease of `ELECTION_TIMEOUT_MAX_MS` to a follower's election timeout once it has seen
/// a leader (and a voter refuses to vote within the lease), so a follower waits
/// `ELECTION_TIMEOUT_MAX_MS` plus a random timeout in `ELECTION_TIMEOUT_MIN_MS..MAX` after its
/// last heartbeat: with etcd's 1000..2000 that was 3 to 4 s.
const HEARTBEAT_MS: u64 = 100;
const ELECTION_TIMEOUT_MIN_MS: u64 = 400;
const ELECTION_TIMEOUT_MAX_MS: u64 = 800;
const _: () = assert!(HEARTBEAT_MS * 4 <= ELECTION_TIMEOUT_MIN_MS);

/// How a server joins a cluster (`kvstore serve --initial-cluster ...`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Every initial member (this one included, by the server's name).
    pub initial_cluster: InitialCluster,
    /// Where this member listens for its peers.
    pub listen_peer: SocketAddr,
    /// Whether it joins a running cluster (etcd's `--initial-cluster-state existing`) rather
    /// than forming a new one.
    pub existing: bool,
    /// TLS between the members, for `https://` peer URLs (`None`: plain text only).
    pub peer_tls: Option<PeerTlsConfig>,
}

/// The certificate files of peer TLS (etcd's `--peer-cert-file`, `--peer-key-file`,
/// `--peer-trusted-ca-file` and `--peer-client-cert-auth`).
#[derive(Clone, Debug)]
pub struct PeerTlsConfig {
    /// This member's certificate chain (PEM, leaf first): served on the peer port, and
    /// presented as its client certificate on its calls to the others.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA bundle (PEM) the other members' certificates are verified against.
    pub trusted_ca: PathBuf,
    /// Whether the peer port refuses a connection without a client certificate that
    /// `trusted_ca` verifies (mutual TLS).
    pub client_cert_auth: bool,
}

impl PeerTlsConfig {
    /// The acceptor of the peer port.
    fn acceptor(&self) -> Result<TlsAcceptor, ServeError> {
        listener::tls_acceptor(&TlsConfig {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_cert_auth.then(|| self.trusted_ca.clone()),
        })
    }

    /// What this member's calls to the others use; refused here, not at the first call, if
    /// the files do not make a usable client (the CA bundle must hold a certificate: tonic
    /// would take an empty one, and then verify nobody).
    fn client(&self) -> Result<ClientTlsConfig, ServeError> {
        listener::read_certificates(&self.trusted_ca, "peer CA")?;
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                what,
                path: path.clone(),
                source: pem::Error::Io(source),
            })
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("peer CA", &self.trusted_ca)?))
            .identity(Identity::from_pem(
                read("certificate", &self.cert)?,
                read("private key", &self.key)?,
            ));
        Endpoint::from_static("https://127.0.0.1")
            .tls_config(tls.clone())
            .map_err(|e| ServeError::PeerTls(error_chain(&e)))?;
        Ok(tls)
    }
}

/// `error` and its sources, `: `-separated (tonic's transport error says only "transport
/// error"; its source says what was wrong).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a member publishes about itself (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Published {
    pub(crate) name: String,
    pub(crate) client_urls: Vec<String>,
}

/// A started member: its raft and the tasks serving its peers and its lease duties.
pub(crate) struct Member {
    pub(crate) node: Arc<RaftNode>,
    tasks: Vec<JoinHandle<()>>,
}

impl Member {
    /// Starts member `id` of `cluster` in `dir`, publishing `published`; its tasks end when
    /// `shutdown` turns true.
    pub(crate) async fn start(
        id: u64,
        dir: &Path,
        options: &Options,
        cluster: &ClusterConfig,
        published: Published,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Member, ServeError> {
        let listener = TcpListener::bind(cluster.listen_peer)
            .await
            .map_err(|source| ServeError::Bind {
                addr: cluster.listen_peer,
                source,
            })?;
        let peer_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: cluster.listen_peer,
            source,
        })?;
        let config = Config {
            cluster_name: format!("kvstore-{:x}", cluster.initial_cluster.cluster_id()),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
            ..Config::default()
        }
        .validate()
        .map_err(|e| ServeError::Raft(e.to_string()))?;
        let mut access = PeerAccess::new(cluster.initial_cluster.cluster_id());
        let mut acceptor = None;
        if let Some(tls) = &cluster.peer_tls {
            access = access.with_tls(tls.client()?);
            acceptor = Some(tls.acceptor()?);
        }
        let node = RaftNode::start(
            id,
            Arc::new(OsVfs),
            dir,
            options,
            Arc::new(config),
            PeerNetwork::new(access.clone()),
            access,
        )
        .await
        .map_err(|e| ServeError::Raft(e.to_string()))?;
        let node = Arc::new(node);
        let mut tasks = vec![tokio::spawn(serve_peers(
            Arc::clone(&node),
            listener,
            acceptor,
            shutdown.clone(),
        ))];
        if !cluster.existing {
            initialize(&node, &cluster.initial_cluster).await?;
        }
        tasks.push(tokio::spawn(publish(
            Arc::clone(&node),
            published,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(lease_duties(Arc::clone(&node), shutdown)));
        tracing::info!(
            member_id = format_args!("{id:x}"),
            %peer_addr,
            "raft member started"
        );
        Ok(Member { node, tasks })
    }

    /// Completes once this member is removed from the cluster: its membership held it, and a
    /// later one that it applied does not (a member that joins sees the log's earlier
    /// memberships first, which do not hold it yet); or, while it is a learner (a voter being
    /// removed is made a learner first, and may miss the entry that removes it), the leader
    /// says it has no such member when asked every [`REMOVAL_PROBE`]. Never completes if raft
    /// stops first.
    pub(crate) fn removed(&self) -> impl Future<Output = ()> + Send + 'static {
        let node = Arc::clone(&self.node);
        let mut metrics = node.raft().metrics();
        async move {
            let id = node.id();
            let mut was_member = false;
            let mut probe = tokio::time::interval(REMOVAL_PROBE);
            loop {
                let (me, voter, applied) = {
                    let m = metrics.borrow_and_update();
                    let membership = m.membership_config.membership();
                    let applied = m.membership_config.log_id().as_ref().map(|l| l.index)
                        <= m.last_applied.as_ref().map(|l| l.index);
                    let voter = membership.voter_ids().any(|v| v == id);
                    (membership.get_node(&id).cloned(), voter, applied)
                };
                if was_member && me.is_none() && applied {
                    return;
                }
                was_member |= me.is_some();
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() {
                        return std::future::pending().await;
                    },
                    _ = probe.tick() => {
                        let Some(me) = me.filter(|_| !voter) else { continue };
                        let probe = MemberChange::Publish {
                            id,
                            name: me.name,
                            client_urls: me.client_urls,
                        };
                        if let Err(kvstore_raft::Error::MemberRefused(MemberRefusal::NotFound {
                            ..
                        })) = node.change_members(probe).await
                        {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Stops raft, then the member's tasks: they end by themselves on the shutdown signal, and
    /// are aborted if serving ended without one (the client transport failed).
    pub(crate) async fn stop(self) -> Result<(), ServeError> {
        let stopped = self
            .node
            .raft()
            .shutdown()
            .await
            .map_err(|e| ServeError::Raft(e.to_string()));
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        stopped
    }
}

/// Forms the cluster on a pristine member (see the module doc).
async fn initialize(node: &RaftNode, cluster: &InitialCluster) -> Result<(), ServeError> {
    let members: BTreeMap<u64, Node> = cluster
        .members()
        .iter()
        .map(|(&id, member)| {
            let node = Node {
                name: member.name.clone(),
                ..Node::new(&member.peer_url)
            };
            (id, node)
        })
        .collect();
    match node.raft().initialize(members).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(ServeError::Raft(e.to_string())),
    }
}

/// Serves the peer service on `listener` (over TLS through `tls`) until `shutdown`. The
/// connections are accepted as the client port's are (`listener::incoming`: TLS handshakes
/// off the accept loop, `TCP_NODELAY`, without which a reply written in more than one segment
/// waits for the caller's delayed ACK, up to 40 ms on Linux, on every append, vote and relayed
/// proposal).
async fn serve_peers(
    node: Arc<RaftNode>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let served = tonic::transport::Server::builder()
        .add_service(peer_server(node))
        .serve_with_incoming_shutdown(listener::incoming(listener, tls), async move {
            let _ = shutdown.wait_for(|&stop| stop).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the peer service failed");
    }
}

/// Proposes `published` for this member until its membership entry holds it, or `shutdown`.
async fn publish(node: Arc<RaftNode>, published: Published, mut shutdown: watch::Receiver<bool>) {
    loop {
        let holds = node
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node.id())
            .is_some_and(|n| n.name == published.name && n.client_urls == published.client_urls);
        if holds {
            return;
        }
        let change = MemberChange::Publish {
            id: node.id(),
            name: published.name.clone(),
            client_urls: published.client_urls.clone(),
        };
        match node.change_members(change).await {
            Ok(()) => {}
            Err(e) => tracing::debug!(error = %e, "publishing this member's name and URLs"),
        }
        tokio::select! {
            () = tokio::time::sleep(PUBLISH_RETRY) => {}
            _ = shutdown.wait_for(|&stop| stop) => return,
        }
    }
}

/// The leader's lease duties (see the module doc), until `shutdown`.
async fn lease_duties(node: Arc<RaftNode>, mut shutdown: watch::Receiver<bool>) {
    let mut was_leader = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(LEASE_CHECK_INTERVAL) => {}
            _ = shutdown.wait_for(|&stop| stop) => return,
        }
        let leader = node.raft().current_leader().await == Some(node.id());
        if leader && !was_leader {
            let db = node.db();
            let renewed = tokio::task::spawn_blocking(move || {
                for lease in db.leases()? {
                    match db.keep_alive(lease) {
                        Ok(_) | Err(kvstore::Error::LeaseNotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, kvstore::Error>(())
            })
            .await;
            if !matches!(renewed, Ok(Ok(()))) {
                tracing::warn!(?renewed, "renewing the leases at leadership failed");
            }
        }
        was_leader = leader;
        if leader && let Err(e) = node.propose_lease_expiries().await {
            tracing::warn!(error = %e, "proposing lease expiries failed");
        }
    }
}
