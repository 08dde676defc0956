//! A cluster of `kvstore serve --initial-cluster ...` processes on loopback ports, driven by
//! etcdctl 3.4 (`tests/serve_cluster.rs`, and its negative control
//! `tests/serve_cluster_sabotage.rs`).
#![allow(dead_code)]

/// The TLS tests' certificates (`impl/server`'s; a peer certificate among them).
#[path = "../../../server/tests/common/certs.rs"]
pub mod certs;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, wait_listening};

/// How long a test waits for an election or a catch-up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One member's process, its flags and its log.
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    /// Whether its peer URL is `https://` (peer TLS).
    pub tls: bool,
    /// Its `--initial-cluster`, and whether it joins a running cluster (`existing`).
    initial: String,
    existing: bool,
    child: Option<Child>,
}

pub struct Cluster {
    root: tempfile::TempDir,
    pub members: Vec<Member>,
    failpoints: Option<String>,
    /// Peer TLS: the certificates every member serves and calls with (mutual TLS).
    pub peer_tls: Option<certs::Certs>,
}

impl Cluster {
    /// Members `n1..=nN` started, with `FAILPOINTS` set to `failpoints` in each (a build with
    /// the `failpoints` feature reads it).
    pub fn start(n: usize, failpoints: Option<&str>) -> Cluster {
        Cluster::launch(n, failpoints, None)
    }

    /// Members `n1..=nN` started with mutual peer TLS: `https://` peer URLs, each member
    /// serving and calling with the certificate `peer.pem` of `certs`' CA, and requiring one
    /// of its peers (`--peer-client-cert-auth`).
    pub fn start_with_peer_tls(n: usize) -> Cluster {
        Cluster::launch(n, None, Some(certs::Certs::new()))
    }

    fn launch(n: usize, failpoints: Option<&str>, peer_tls: Option<certs::Certs>) -> Cluster {
        let root = tempfile::tempdir().expect("tempdir");
        let mut members: Vec<Member> = (1..=n)
            .map(|i| Member {
                name: format!("n{i}"),
                dir: root.path().join(format!("n{i}")),
                client_port: free_port(),
                peer_port: free_port(),
                tls: peer_tls.is_some(),
                initial: String::new(),
                existing: false,
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(Member::initial_entry)
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial.clone_from(&initial);
        }
        let mut cluster = Cluster {
            root,
            members,
            failpoints: failpoints.map(str::to_owned),
            peer_tls,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// A new member `name` added through member `via` with `etcdctl member add` (a learner if
    /// `learner`), then started with `--initial-cluster-state existing` and the
    /// `--initial-cluster` etcdctl printed; returns its index.
    pub fn join(&mut self, name: &str, via: usize, learner: bool) -> usize {
        let peer_port = free_port();
        let tls = self.peer_tls.is_some();
        let peer_url = peer_url(tls, peer_port);
        let mut args = vec!["member", "add", name, "--peer-urls", &peer_url];
        if learner {
            args.push("--learner");
        }
        let added = self.etcdctl_ok(via, &args);
        let initial = added
            .lines()
            .find_map(|line| line.strip_prefix("ETCD_INITIAL_CLUSTER=\""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no ETCD_INITIAL_CLUSTER in {added}"))
            .to_owned();
        assert!(initial.contains(&format!("{name}={peer_url}")), "{added}");
        self.members.push(Member {
            name: name.to_owned(),
            dir: self.root.path().join(name),
            client_port: free_port(),
            peer_port,
            tls,
            initial,
            existing: true,
            child: None,
        });
        let i = self.members.len() - 1;
        self.spawn(i);
        i
    }

    /// Waits until member `i`'s process exits by itself; its exit code.
    pub fn wait_exit(&mut self, i: usize) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        let child = self.members[i].child.as_mut().expect("member running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.members[i].child = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit\n{}",
                self.members[i].name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.members[i].dir.with_extension("log")
    }

    /// Starts member `i` (again) and waits for its client port.
    pub fn spawn(&mut self, i: usize) {
        let log = self.log(i);
        let member = &self.members[i];
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvstore"));
        match &self.failpoints {
            Some(f) => command.env("FAILPOINTS", f),
            None => command.env_remove("FAILPOINTS"),
        };
        let child = command
            .arg("--db")
            .arg(&member.dir)
            .args(["serve", "--name", &member.name])
            .args(["--listen", &format!("127.0.0.1:{}", member.client_port)])
            .args(["--initial-cluster", &member.initial])
            .args(if member.existing {
                &["--initial-cluster-state", "existing"][..]
            } else {
                &[]
            })
            .args(match &self.peer_tls {
                Some(certs) => vec![
                    "--peer-cert-file".to_owned(),
                    certs.path("peer.pem"),
                    "--peer-key-file".to_owned(),
                    certs.path("peer-key.pem"),
                    "--peer-trusted-ca-file".to_owned(),
                    certs.path("ca.pem"),
                    "--peer-client-cert-auth".to_owned(),
                ],
                None => Vec::new(),
            })
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("member log"),
            )
            .spawn()
            .expect("kvstore serve starts");
        let port = member.client_port;
        self.members[i].child = Some(child);
        wait_listening(port, PATIENCE, Duration::from_millis(20), || self.logs());
    }

    /// SIGKILL member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every member's log, for a failure message.
    pub fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                format!(
                    "--- {} ---\n{}",
                    self.members[i].name,
                    std::fs::read_to_string(self.log(i)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// etcdctl against member `i`.
    pub fn etcdctl(&self, i: usize, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint(i), "--command-timeout=5s"])
            .args(args)
            .output()
            .expect("etcdctl runs (install etcd-client)")
    }

    /// etcdctl against member `i` until it succeeds (an election may be under way).
    pub fn etcdctl_ok(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = self.etcdctl(i, args);
            if out.status.success() {
                return String::from_utf8(out.stdout).expect("utf-8");
            }
            assert!(
                Instant::now() < deadline,
                "etcdctl {args:?} on {} kept failing: {}\n{}",
                self.members[i].name,
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Member `i`'s Status as JSON: (member id, leader id, raft term).
    pub fn status(&self, i: usize) -> (u64, u64, u64) {
        let json = self.etcdctl_ok(i, &["endpoint", "status", "-w", "json"]);
        let number = |field: &str| -> u64 {
            let at = json.find(&format!("\"{field}\":")).expect(field) + field.len() + 3;
            json[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .expect("a number")
        };
        (number("member_id"), number("leader"), number("raft_term"))
    }

    /// The index of the member every live member names as leader, once they agree.
    pub fn leader(&self, live: &[usize]) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let statuses: Vec<_> = live.iter().map(|&i| (i, self.status(i))).collect();
            let leader = statuses[0].1.1;
            if leader != 0
                && statuses.iter().all(|(_, s)| s.1 == leader)
                && let Some((i, _)) = statuses.iter().find(|(_, s)| s.0 == leader)
            {
                return *i;
            }
            assert!(Instant::now() < deadline, "no agreed leader: {statuses:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Member {
    /// Its `name=url` entry of `--initial-cluster`.
    fn initial_entry(&self) -> String {
        format!("{}={}", self.name, self.peer_url())
    }

    /// The URL its peers reach it at.
    pub fn peer_url(&self) -> String {
        peer_url(self.tls, self.peer_port)
    }
}

/// The peer URL of a member on loopback port `port` (`https://` under peer TLS).
fn peer_url(tls: bool, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// `get KEY --print-value-only` on member `i` (linearizable unless `serializable`).
pub fn value(cluster: &Cluster, i: usize, key: &str, serializable: bool) -> String {
    let mut args = vec!["get", key, "--print-value-only"];
    if serializable {
        args.push("--consistency=s");
    }
    cluster.etcdctl_ok(i, &args).trim_end().to_owned()
}

/// Whether a put of `key` = `value` acknowledged by member `writer` is read by a linearizable
/// get on every member; the members that miss it otherwise.
pub fn read_everywhere(
    cluster: &Cluster,
    writer: usize,
    key: &str,
    value_: &str,
) -> Result<(), String> {
    cluster.etcdctl_ok(writer, &["put", key, value_]);
    let missing: Vec<String> = (0..cluster.members.len())
        .filter(|&i| value(cluster, i, key, false) != value_)
        .map(|i| cluster.members[i].name.clone())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{key}={value_} acknowledged by {} is missing on {missing:?}",
            cluster.members[writer].name
        ))
    }
}
