//! The servers `serverbench` measures, each a child process on loopback ports over its own
//! temporary directory: `kvstore serve` (a release build of the `kvstore` binary) and etcd 3.4.
//!
//! Invariants:
//! - A [`Peer`] is serving when [`Peer::start`] returns: a client's Status call answered.
//! - Dropping a [`Peer`] kills its process and removes its directory.

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

/// A running server; killed on drop.
pub struct Peer {
    child: Child,
    /// `http://127.0.0.1:PORT`, the client endpoint.
    pub endpoint: String,
    /// Its data (and its log, `server.log`).
    pub dir: tempfile::TempDir,
}

/// A loopback port free when asked (another process could take it before the server binds,
/// which fails the start loudly).
fn free_port() -> BenchResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn command(kind: &Kind, dir: &Path, port: u16) -> BenchResult<Command> {
    let client = format!("127.0.0.1:{port}");
    let command = match kind {
        Kind::Kvstore(binary) => {
            let mut c = Command::new(binary);
            c.arg("--db")
                .arg(dir.join("db"))
                .args(["--create", "serve", "--listen", &client])
                .env("RUST_LOG", "warn");
            c
        }
        Kind::Etcd(binary) => {
            let peer = format!("http://127.0.0.1:{}", free_port()?);
            let mut c = Command::new(binary);
            c.arg("--name=default")
                .arg(format!("--data-dir={}", dir.join("data").display()))
                .arg(format!("--listen-client-urls=http://{client}"))
                .arg(format!("--advertise-client-urls=http://{client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=default={peer}"))
                .arg("--log-level=warn");
            c
        }
    };
    Ok(command)
}

impl Peer {
    /// Starts `kind` on a free loopback port in a new temporary directory under `parent` and
    /// waits until it answers a Status call.
    pub async fn start(kind: &Kind, parent: &Path) -> BenchResult<Peer> {
        let dir = tempfile::tempdir_in(parent)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = command(kind, dir.path(), port)?
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{} does not start: {e}", kind.name()))?;
        let peer = Peer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        };
        peer.wait_serving(kind).await?;
        Ok(peer)
    }

    async fn wait_serving(&self, kind: &Kind) -> BenchResult<()> {
        let deadline = Instant::now() + START_WAIT_MAX;
        loop {
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let answered = match etcd_client::Client::connect([&self.endpoint], Some(options)).await
            {
                Ok(mut client) => client.status().await.is_ok(),
                Err(_) => false,
            };
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(format!("{} did not start serving: {log}", kind.name()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
