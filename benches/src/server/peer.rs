//! The servers `serverbench` measures, each one or more child processes (the members of a
//! cluster) on loopback ports over its own temporary directory: `kvstore serve` (a release
//! build of the `kvstore` binary) and etcd 3.4.
//!
//! Invariants:
//! - A [`Peer`] is serving when [`Peer::start`] returns: every member answered a Status call,
//!   and in a cluster every member names the same leader.
//! - Dropping a [`Peer`] kills its processes and removes its directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchResult;

/// The most a server gets to start serving.
pub const START_WAIT_MAX: Duration = Duration::from_secs(30);

/// Which server a [`Peer`] runs.
#[derive(Clone, Debug)]
pub enum Kind {
    /// `KVSTORE --db DIR --create serve --listen ADDR` (the server syncs every write).
    Kvstore(PathBuf),
    /// `ETCD` as one member (etcd syncs every write).
    Etcd(PathBuf),
}

impl Kind {
    /// The name the report gives this server.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Kvstore(_) => "kvstore",
            Kind::Etcd(_) => "etcd",
        }
    }
}

/// A running server (one member or a cluster); killed on drop.
pub struct Peer {
    members: Vec<Option<Child>>,
    /// `http://127.0.0.1:PORT`, the first member's client endpoint.
    pub endpoint: String,
    /// Every member's client endpoint.
    pub endpoints: Vec<String>,
    /// Its data (and each member's log, `server-N.log`).
    pub dir: tempfile::TempDir,
}

/// A loopback port free when asked (another process could take it before the server binds,
/// which fails the start loudly).
fn free_port() -> BenchResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Member `i`'s command: serving clients on `port`, one of the cluster `initial`
/// (`name=peer URL,...`, naming member `i` `m{i}`).
fn command(kind: &Kind, dir: &Path, port: u16, i: usize, initial: &str) -> Command {
    let client = format!("127.0.0.1:{port}");
    let name = format!("m{i}");
    match kind {
        Kind::Kvstore(binary) => {
            let mut c = Command::new(binary);
            c.arg("--db")
                .arg(dir.join(&name))
                .args(["--create", "serve", "--listen", &client, "--name", &name])
                .env("RUST_LOG", "warn");
            if initial.contains(',') {
                c.args(["--initial-cluster", initial]);
            }
            c
        }
        Kind::Etcd(binary) => {
            let peer = initial
                .split(',')
                .find_map(|m| m.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_owned();
            let mut c = Command::new(binary);
            c.arg(format!("--name={name}"))
                .arg(format!("--data-dir={}", dir.join(&name).display()))
                .arg(format!("--listen-client-urls=http://{client}"))
                .arg(format!("--advertise-client-urls=http://{client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster={initial}"))
                .arg("--log-level=warn");
            c
        }
    }
}

impl Peer {
    /// Starts `kind` alone on a free loopback port in a new temporary directory under `parent`
    /// and waits until it answers a Status call.
    pub async fn start(kind: &Kind, parent: &Path) -> BenchResult<Peer> {
        Peer::start_cluster(kind, parent, 1).await
    }

    /// Starts a cluster of `members` members of `kind` (one: alone) and waits until every
    /// member serves and they agree on a leader.
    pub async fn start_cluster(kind: &Kind, parent: &Path, members: usize) -> BenchResult<Peer> {
        let dir = tempfile::tempdir_in(parent)?;
        let initial = (0..members)
            .map(|i| Ok(format!("m{i}=http://127.0.0.1:{}", free_port()?)))
            .collect::<BenchResult<Vec<_>>>()?
            .join(",");
        let mut children = Vec::new();
        let mut endpoints = Vec::new();
        for i in 0..members {
            let port = free_port()?;
            let log = std::fs::File::create(dir.path().join(format!("server-{i}.log")))?;
            let child = command(kind, dir.path(), port, i, &initial)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("{} does not start: {e}", kind.name()))?;
            children.push(Some(child));
            endpoints.push(format!("http://127.0.0.1:{port}"));
        }
        let peer = Peer {
            members: children,
            endpoint: endpoints.first().cloned().ok_or("a cluster of no member")?,
            endpoints,
            dir,
        };
        peer.wait_serving(kind).await?;
        Ok(peer)
    }

    /// The leader every live member names, with the index of its member, once they agree.
    async fn agreed_leader(&self) -> Option<usize> {
        let mut leader = None;
        let mut leader_index = None;
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            if self.members.get(i).is_none_or(Option::is_none) {
                continue;
            }
            let status = status(endpoint).await?;
            if leader.is_some_and(|l| l != status.0) || status.0 == 0 {
                return None;
            }
            leader = Some(status.0);
            if status.1 == status.0 {
                leader_index = Some(i);
            }
        }
        leader_index
    }

    async fn wait_serving(&self, kind: &Kind) -> BenchResult<()> {
        let deadline = Instant::now() + START_WAIT_MAX;
        while self.agreed_leader().await.is_none() {
            if Instant::now() > deadline {
                let log = (0..self.members.len())
                    .map(|i| {
                        std::fs::read_to_string(self.dir.path().join(format!("server-{i}.log")))
                            .unwrap_or_default()
                    })
                    .collect::<String>();
                return Err(format!("{} did not start serving: {log}", kind.name()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// SIGKILLs the leader; returns the endpoint of another member.
    pub async fn kill_leader(&mut self) -> BenchResult<String> {
        let leader = self
            .agreed_leader()
            .await
            .ok_or("the members do not agree on a leader")?;
        if let Some(mut child) = self.members.get_mut(leader).and_then(Option::take) {
            child.kill()?;
            child.wait()?;
        }
        let other = (leader + 1) % self.endpoints.len();
        Ok(self
            .endpoints
            .get(other)
            .cloned()
            .ok_or("no other member")?)
    }
}

/// A member's answer to Status: (the leader it names, its own id); `None` if it does not
/// answer within 2 s.
async fn status(endpoint: &str) -> Option<(u64, u64)> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(2));
    let mut client = etcd_client::Client::connect([endpoint], Some(options))
        .await
        .ok()?;
    let status = client.status().await.ok()?;
    let member = status.header().map(|h| h.member_id())?;
    Some((status.leader(), member))
}

impl Drop for Peer {
    fn drop(&mut self) {
        for child in self.members.iter_mut().filter_map(Option::as_mut) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
