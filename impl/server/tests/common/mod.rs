//! What the server's integration tests share: a `kvstore-server` running in-process on a
//! loopback port over a temporary database ([`TestServer`]), a real etcd 3.4 on loopback ports
//! over a temporary data dir ([`Etcd`], the oracle), and `etcdctl` 3.4 run as a subprocess
//! against either ([`Ctl`]).
//!
//! The binaries are Debian's `etcd-client` and `etcd-server` (ci/check.sh installs them); a
//! test that needs one that is missing fails saying so, it never skips. `ETCDCTL` and `ETCD`
//! override their paths.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod certs;
pub mod grpc;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvstore_server::{ServeError, Server, ServerConfig};

/// The most a test waits for a server to come up or a line to arrive.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// A binary the tests need, or a failure naming the package that brings it.
fn binary(env: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: install Debian's {package} (ci/check.sh does), or set {env}",
        path.display()
    );
    path
}

pub fn etcdctl_path() -> PathBuf {
    binary("ETCDCTL", "/usr/bin/etcdctl", "etcd-client")
}

pub fn etcd_path() -> PathBuf {
    binary("ETCD", "/usr/bin/etcd", "etcd-server")
}

/// A server in-process on its own runtime thread; stopped (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// Starts a server whose configuration `configure` adjusts.
    pub fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, configure)
    }

    /// Starts a server over the database in `dir` (made if missing).
    fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = ServerConfig::new(dir.path().join("db"), "127.0.0.1:0".parse().unwrap());
        // Test clients may hold idle connections open: don't wait long for them at shutdown.
        config.shutdown_grace = Duration::from_secs(1);
        configure(&mut config);
        Self::start_config(config, dir)
    }

    /// Stops the server (requiring a clean stop) and starts a new one over the same database,
    /// configured by `configure`, on a new port.
    pub fn restart_with(mut self, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        self.shut_down().expect("the server stops cleanly");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let dir = std::mem::replace(&mut self.dir, dir);
        Self::start_in(dir, configure)
    }

    fn start_config(config: ServerConfig, dir: tempfile::TempDir) -> TestServer {
        let (addr_sender, addr_receiver) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = match Server::bind(config).await {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = addr_sender.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                let _ = addr_sender.send(Ok(server.local_addr()));
                server
                    .serve_until(async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        let addr = addr_receiver
            .recv_timeout(WAIT_MAX)
            .expect("the server reports its address")
            .expect("the server starts");
        TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The endpoint of a server started with TLS.
    pub fn tls_endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ctl(&self) -> Ctl {
        Ctl::new(self.endpoint())
    }

    /// Stops the server and returns how serving ended.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().expect("the server thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// A free loopback port (bound, then released: another process could take it first, which
/// would fail the test loudly, not silently).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A real etcd 3.4, one member, on loopback ports over a temporary data dir; killed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        Self::start_with("http", &[], &[])
    }

    /// etcd with `flags` added, its client URL's scheme `scheme` (`https` with TLS flags), and
    /// `ctl_flags` given to the etcdctl that waits for it to become healthy.
    pub fn start_with(scheme: &str, flags: &[String], ctl_flags: &[&str]) -> Etcd {
        let etcd = etcd_path();
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let child = Command::new(etcd)
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--log-level=error")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        let etcd = Etcd {
            child,
            endpoint: client_url,
            dir,
        };
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let health = etcd
                .ctl()
                .with_flags(ctl_flags)
                .run(&["endpoint", "health"]);
            if health.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy: {}",
                std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    pub fn ctl(&self) -> Ctl {
        Ctl::new(self.endpoint.clone())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `etcdctl` (API 3) against one endpoint.
#[derive(Clone, Debug)]
pub struct Ctl {
    pub endpoint: String,
    /// Flags given before every command (TLS files).
    pub flags: Vec<String>,
}

impl Ctl {
    pub fn new(endpoint: String) -> Ctl {
        Ctl {
            endpoint,
            flags: Vec::new(),
        }
    }

    /// This etcdctl with `flags` before every command.
    pub fn with_flags(mut self, flags: &[&str]) -> Ctl {
        self.flags = flags.iter().map(|&flag| flag.to_owned()).collect();
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(etcdctl_path());
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .arg("--dial-timeout=5s")
            .arg("--command-timeout=10s")
            .args(&self.flags)
            .args(args);
        command
    }

    /// Runs `etcdctl ARGS` with `stdin` as its input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        child.wait_with_output().expect("etcdctl output")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl runs")
    }

    /// Runs `etcdctl ARGS`, requires success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs `etcdctl ARGS`, requires failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "etcdctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).expect("utf-8 output")
    }

    /// Runs `etcdctl -w json ARGS` and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-w", "json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}: {out}"))
    }

    /// Starts `etcdctl ARGS` (a watch, a keep-alive) with its stdout read line by line.
    pub fn spawn_lines(&self, args: &[&str]) -> Lines {
        Lines::spawn(self.command(args))
    }
}

/// Starts `curl ARGS` (a streaming call) with the response body read line by line.
pub fn curl_lines(args: &[&str]) -> Lines {
    let mut command = Command::new("curl");
    command.args(["-sSN"]).args(args);
    Lines::spawn(command)
}

/// The output of a running etcdctl or curl, line by line; killed on drop.
pub struct Lines {
    child: Child,
    receiver: mpsc::Receiver<String>,
}

impl Lines {
    fn spawn(mut command: Command) -> Lines {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the command runs");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { child, receiver }
    }

    /// The next `n` lines, waiting at most [`WAIT_MAX`] in all.
    pub fn take(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT_MAX;
        let mut lines = Vec::with_capacity(n);
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    let stderr = self
                        .child
                        .stderr
                        .take()
                        .map(|mut e| {
                            let mut s = String::new();
                            let _ = std::io::Read::read_to_string(&mut e, &mut s);
                            s
                        })
                        .unwrap_or_default();
                    panic!("got {lines:?}, wanted {n} lines; stderr: {stderr}");
                }
            }
        }
        lines
    }

    /// Lines that arrive within `wait` (none expected: returns what came).
    pub fn quiet_for(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.receiver.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        lines
    }

    /// Waits (at most [`WAIT_MAX`]) for the process to exit by itself; its status and stderr.
    pub fn exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + WAIT_MAX;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("etcdctl status") {
                break status;
            }
            assert!(Instant::now() < deadline, "etcdctl did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (status, stderr)
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl ARGS` with a generous timeout: the response's HTTP status and body (status 0 when no
/// response came, e.g. a refused TLS handshake).
pub fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs (install curl)");
    let out = String::from_utf8(output.stdout).expect("utf-8 body");
    let (body, status) = out.rsplit_once('\n').expect("curl prints the status last");
    (status.parse().expect("a status code"), body.to_owned())
}
