//! The server crash test's harness: `kvstore serve` as a child process, SIGKILLed at seeded
//! random moments and restarted on the same database while 16 clients put (unique values),
//! get and compare-and-swap on a few keys and a watcher follows every revision; then every
//! acknowledged write is looked up in the history read back, the watcher's events are compared
//! with it, and the clients' history is checked for linearizability
//! (`kvstore_model::linearizable`).
//!
//! A call that errs or is cut off by a kill is recorded without an answer (it may or may not
//! have taken effect); a client reconnects after every error. Reproduce a run with
//! `KVSTORE_CRASH_SEED=<seed>` (the kill moments and the clients' ops derive from it; the
//! interleaving is the OS's), `KVSTORE_CRASH_ROUNDS=<kills>` for more kills per run,
//! `KVSTORE_CRASH_RUNS=<n>` for n seeds in a row. `cluster` runs the same clients and checks
//! against three members of a raft cluster, killing one at a time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cluster;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvstore_model::linearizable::{self, Call, History, Limits, Op, Outcome, Returned};
use kvstore_model::rng::{below, splitmix64};
use kvstore_server::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use kvstore_server::proto::etcdserverpb::kv_client::KvClient;
use kvstore_server::proto::etcdserverpb::request_op::Request as RequestKind;
use kvstore_server::proto::etcdserverpb::watch_client::WatchClient;
use kvstore_server::proto::etcdserverpb::watch_request::RequestUnion;
use kvstore_server::proto::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::net::{free_port, wait_listening};

/// Clients writing at once.
pub const CLIENTS: usize = 16;
/// Keys they share (`k0`..).
pub const KEYS: u64 = 4;
/// Longest wait for one call, a connection or the server's start.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The server runs this long at least, and at most `+ UP_SPREAD_MS`, before each kill.
const UP_MIN_MS: u64 = 200;
const UP_SPREAD_MS: u64 = 900;

/// One run's setup.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Kills (each followed by a restart).
    pub rounds: usize,
    /// `serve --durability`.
    pub durability: &'static str,
    /// `FAILPOINTS` for the server (a binary built with feature `failpoints`).
    pub failpoints: Option<String>,
}

impl Config {
    /// The runs the environment asks for: `KVSTORE_CRASH_SEED` (else `default_seed`),
    /// `KVSTORE_CRASH_ROUNDS` (else 4), `KVSTORE_CRASH_RUNS` seeds in a row (else 1).
    pub fn from_env(default_seed: u64, durability: &'static str) -> Vec<Config> {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = var("KVSTORE_CRASH_SEED").unwrap_or(default_seed);
        let rounds = var("KVSTORE_CRASH_ROUNDS").unwrap_or(4) as usize;
        let runs = var("KVSTORE_CRASH_RUNS").unwrap_or(1);
        (0..runs)
            .map(|i| Config {
                seed: seed + i,
                rounds,
                durability,
                failpoints: None,
            })
            .collect()
    }

    /// The line that replays this run.
    pub fn replay(&self, test: &str) -> String {
        format!(
            "KVSTORE_CRASH_SEED={} KVSTORE_CRASH_ROUNDS={} cargo test -p kvstore-cli --test {test}",
            self.seed, self.rounds
        )
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub ops: usize,
    pub answered_puts: usize,
    pub unanswered: usize,
    pub kills: usize,
    pub revisions: u64,
    pub watch_events: usize,
    pub watch_reconnects: usize,
    /// Everything wrong, one line each (empty: the run passed).
    pub violations: Vec<String>,
    /// The checker's stats when the history linearized.
    pub linearizable: Option<linearizable::Stats>,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} ops ({} answered puts, {} without answer), {} kills, {} revisions, watcher saw {} \
             events over {} streams, linearizability: {:?}",
            self.ops,
            self.answered_puts,
            self.unanswered,
            self.kills,
            self.revisions,
            self.watch_events,
            self.watch_reconnects,
            self.linearizable
        )
    }
}

/// A `kvstore serve` child process.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) endpoint: String,
}

impl ServerProcess {
    /// A server alone on a fresh port.
    fn start(db: &Path, log: &Path, config: &Config) -> ServerProcess {
        ServerProcess::start_on(db, log, config, free_port(), &[])
    }

    /// A server on client port `port`, with `extra` arguments to `serve`.
    pub(crate) fn start_on(
        db: &Path,
        log: &Path,
        config: &Config,
        port: u16,
        extra: &[String],
    ) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvstore"));
        command
            .arg("--db")
            .arg(db)
            .arg("--create")
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--durability")
            .arg(config.durability)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .expect("server log"),
            );
        match &config.failpoints {
            Some(f) => command.env("FAILPOINTS", f),
            None => command.env_remove("FAILPOINTS"),
        };
        let child = command.spawn().expect("kvstore serve starts");
        wait_listening(port, CALL_TIMEOUT * 6, Duration::from_millis(10), || {
            std::fs::read_to_string(log).unwrap_or_default()
        });
        ServerProcess {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// Nanoseconds since `origin`.
fn nanos(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One client: ops until `stop`, reconnecting after each error (to the next of the servers
/// `endpoints` lists, in turn).
pub(crate) async fn client(
    id: usize,
    seed: u64,
    origin: Instant,
    endpoints: watch::Receiver<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> Vec<Op> {
    let mut s = seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    splitmix64(&mut s);
    let mut ops = Vec::new();
    let mut written = 0_u64;
    let mut kv: Option<KvClient<Channel>> = None;
    let mut connects = id;
    while !stop.load(Ordering::Relaxed) {
        let Some(connected) = kv.as_mut() else {
            connects += 1;
            let target = pick(&endpoints, connects);
            if let Some(target) = target
                && let Ok(Ok(c)) =
                    tokio::time::timeout(CALL_TIMEOUT, KvClient::connect(target)).await
            {
                kv = Some(c);
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        };
        let key = format!("k{}", below(&mut s, KEYS)).into_bytes();
        let call = match below(&mut s, 20) {
            0..=9 => {
                written += 1;
                Call::Put {
                    key,
                    value: format!("c{id}-{written}").into_bytes(),
                }
            }
            10..=16 => Call::Get { key },
            _ => {
                written += 1;
                let expected = match below(&mut s, 3) {
                    0 => None,
                    _ => Some(
                        format!(
                            "c{}-{}",
                            below(&mut s, CLIENTS as u64),
                            below(&mut s, written) + 1
                        )
                        .into_bytes(),
                    ),
                };
                Call::Cas {
                    key,
                    expected,
                    value: format!("c{id}-{written}").into_bytes(),
                }
            }
        };
        let invoked = nanos(origin);
        let outcome = tokio::time::timeout(CALL_TIMEOUT, issue(connected, &call)).await;
        let returned = match outcome {
            Ok(Ok(outcome)) => Some(Returned {
                at: nanos(origin),
                outcome,
            }),
            _ => {
                kv = None;
                None
            }
        };
        ops.push(Op {
            client: id,
            call,
            invoked,
            returned,
        });
    }
    ops
}

/// The `turn`-th choice among the servers `endpoints` lists (none while none is up).
fn pick(endpoints: &watch::Receiver<Vec<String>>, turn: usize) -> Option<String> {
    let targets = endpoints.borrow();
    targets.get(turn % targets.len().max(1)).cloned()
}

/// Sends one call; its answer as the checker reads it.
async fn issue(kv: &mut KvClient<Channel>, call: &Call) -> Result<Outcome, tonic::Status> {
    let header = |h: Option<kvstore_server::proto::etcdserverpb::ResponseHeader>| {
        h.map_or(0, |h| u64::try_from(h.revision).unwrap_or(0))
    };
    match call {
        Call::Put { key, value } => {
            let r = kv
                .put(PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    ..PutRequest::default()
                })
                .await?
                .into_inner();
            Ok(Outcome::Put {
                revision: header(r.header),
            })
        }
        Call::Get { key } => {
            let r = kv
                .range(RangeRequest {
                    key: key.clone(),
                    ..RangeRequest::default()
                })
                .await?
                .into_inner();
            let found = r.kvs.first().map(|kv| {
                (
                    kv.value.clone(),
                    u64::try_from(kv.mod_revision).unwrap_or(0),
                )
            });
            Ok(Outcome::Get {
                found,
                revision: Some(header(r.header)),
            })
        }
        Call::Cas {
            key,
            expected,
            value,
        } => {
            let compare = match expected {
                Some(v) => Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Value as i32,
                    key: key.clone(),
                    target_union: Some(TargetUnion::Value(v.clone())),
                    ..Compare::default()
                },
                None => Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Version as i32,
                    key: key.clone(),
                    target_union: Some(TargetUnion::Version(0)),
                    ..Compare::default()
                },
            };
            let put = RequestOp {
                request: Some(RequestKind::RequestPut(PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    ..PutRequest::default()
                })),
            };
            let r = kv
                .txn(TxnRequest {
                    compare: vec![compare],
                    success: vec![put],
                    failure: vec![],
                })
                .await?
                .into_inner();
            Ok(Outcome::Cas {
                succeeded: r.succeeded,
                revision: header(r.header),
            })
        }
    }
}

/// One event of the history: (revision, key, value).
pub(crate) type Event = (u64, Vec<u8>, Vec<u8>);

/// Follows every revision from 2 on across restarts: each new stream starts at the last
/// revision seen + 1. Returns the events in arrival order and the number of streams opened.
pub(crate) async fn watcher(
    endpoints: watch::Receiver<Vec<String>>,
    stop: Arc<AtomicBool>,
    until: Arc<Mutex<Option<u64>>>,
) -> (Vec<Event>, usize) {
    let mut events: Vec<Event> = Vec::new();
    let mut streams = 0;
    let mut attempts = 0;
    loop {
        let last = events.last().map_or(1, |e| e.0);
        if stop.load(Ordering::Relaxed) && until.lock().unwrap().is_some_and(|u| last >= u) {
            return (events, streams);
        }
        attempts += 1;
        let Some(target) = pick(&endpoints, attempts) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(Ok(mut client)) =
            tokio::time::timeout(CALL_TIMEOUT, WatchClient::connect(target)).await
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: b"k".to_vec(),
                range_end: b"l".to_vec(),
                start_revision: i64::try_from(last + 1).unwrap_or(i64::MAX),
                ..WatchCreateRequest::default()
            })),
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let _ = sender.send(create).await;
        let Ok(response) = client
            .watch(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
        else {
            continue;
        };
        streams += 1;
        let mut stream = response.into_inner();
        loop {
            let last = events.last().map_or(1, |e| e.0);
            if stop.load(Ordering::Relaxed) && until.lock().unwrap().is_some_and(|u| last >= u) {
                return (events, streams);
            }
            match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                Ok(Some(Ok(response))) => {
                    for event in response.events {
                        if let Some(kv) = event.kv {
                            let revision = u64::try_from(kv.mod_revision).unwrap_or(0);
                            events.push((revision, kv.key, kv.value));
                        }
                    }
                }
                Ok(_) => break, // the stream ended or failed: reconnect
                Err(_) => {}    // quiet: look at `stop` again
            }
        }
    }
}

/// Reads back every revision of the history from a server: a watch from revision 2 up to the
/// current revision.
pub(crate) async fn read_history(endpoint: String) -> Vec<Event> {
    let mut kv = KvClient::connect(endpoint.clone()).await.expect("connect");
    let current = kv
        .range(RangeRequest {
            key: b"k0".to_vec(),
            ..RangeRequest::default()
        })
        .await
        .expect("range")
        .into_inner()
        .header
        .map_or(1, |h| u64::try_from(h.revision).unwrap_or(1));
    let stop = Arc::new(AtomicBool::new(true));
    let until = Arc::new(Mutex::new(Some(current)));
    let (_sender, receiver) = watch::channel(vec![endpoint]);
    let (events, _) = tokio::time::timeout(CALL_TIMEOUT * 6, watcher(receiver, stop, until))
        .await
        .expect("the history reads back");
    events
}

/// The clients and the watcher of one run, on a runtime of their own, following the servers
/// [`Traffic::publish`] names.
pub(crate) struct Traffic {
    runtime: tokio::runtime::Runtime,
    publish: watch::Sender<Vec<String>>,
    stop: Arc<AtomicBool>,
    until: Arc<Mutex<Option<u64>>>,
    clients: Vec<tokio::task::JoinHandle<Vec<Op>>>,
    follower: tokio::task::JoinHandle<(Vec<Event>, usize)>,
}

impl Traffic {
    /// Starts [`CLIENTS`] clients (their ops from `seed`) and a watcher on `endpoints`.
    pub(crate) fn start(seed: u64, endpoints: Vec<String>) -> Traffic {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let origin = Instant::now();
        let (publish, endpoint) = watch::channel(endpoints);
        let stop = Arc::new(AtomicBool::new(false));
        let until = Arc::new(Mutex::new(None));
        let clients = (0..CLIENTS)
            .map(|id| {
                runtime.spawn(client(
                    id,
                    seed,
                    origin,
                    endpoint.clone(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let follower = runtime.spawn(watcher(endpoint, Arc::clone(&stop), Arc::clone(&until)));
        Traffic {
            runtime,
            publish,
            stop,
            until,
            clients,
            follower,
        }
    }

    /// The servers the clients and the watcher may reach now (none: all down).
    pub(crate) fn publish(&self, endpoints: Vec<String>) {
        self.publish.send_replace(endpoints);
    }

    /// Stops the clients, reads the history back from `endpoint`, lets the watcher catch up
    /// with it, and judges the run into `report`.
    pub(crate) fn finish(self, endpoint: String, report: &mut Report) {
        std::thread::sleep(Duration::from_millis(UP_MIN_MS));
        self.stop.store(true, Ordering::Relaxed);
        let mut ops: Vec<Op> = Vec::new();
        for c in self.clients {
            ops.extend(self.runtime.block_on(c).expect("client task"));
        }
        let history = self.runtime.block_on(read_history(endpoint));
        *self.until.lock().unwrap() = Some(history.last().map_or(1, |e| e.0));
        let follower = self.follower;
        let (seen, streams) = self
            .runtime
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT * 6, follower).await })
            .expect("the watcher catches up")
            .expect("watcher task");
        judge(report, &ops, &history, &seen);
        report.watch_reconnects = streams;
    }
}

/// Runs one crash test and reports what it found.
pub fn run(config: &Config) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let log = dir.path().join("server.log");
    let mut server = ServerProcess::start(&db, &log, config);
    let traffic = Traffic::start(config.seed, vec![server.endpoint.clone()]);
    let mut s = config.seed;
    let mut report = Report::default();
    for _ in 0..config.rounds {
        std::thread::sleep(Duration::from_millis(
            UP_MIN_MS + below(&mut s, UP_SPREAD_MS),
        ));
        traffic.publish(Vec::new());
        server.kill();
        report.kills += 1;
        server = ServerProcess::start(&db, &log, config);
        traffic.publish(vec![server.endpoint.clone()]);
    }
    traffic.finish(server.endpoint.clone(), &mut report);
    server.kill();
    report
}

/// Runs the campaign `run` over the seeds the environment asks for (`default_seed` else) and
/// fails on any violation, printing how to replay test file `test`.
pub fn campaign(
    default_seed: u64,
    durability: &'static str,
    test: &str,
    run: fn(&Config) -> Report,
) {
    for config in Config::from_env(default_seed, durability) {
        println!(
            "seed {} ({durability}, {} kills): replay with {}",
            config.seed,
            config.rounds,
            config.replay(test)
        );
        let started = Instant::now();
        let report = run(&config);
        println!(
            "seed {}: {} in {:?}",
            config.seed,
            report.summary(),
            started.elapsed()
        );
        assert!(
            report.violations.is_empty(),
            "seed {}: {} violations:\n{}\nreplay: {}",
            config.seed,
            report.violations.len(),
            report.violations.join("\n"),
            config.replay(test)
        );
        assert!(
            report.answered_puts > 0 && report.kills == config.rounds,
            "{}",
            report.summary()
        );
    }
}

/// Compares the clients' answers, the history and the watcher's events; checks linearizability.
pub(crate) fn judge(report: &mut Report, ops: &[Op], history: &[Event], seen: &[Event]) {
    report.ops = ops.len();
    report.unanswered = ops.iter().filter(|op| op.returned.is_none()).count();
    report.revisions = history.last().map_or(1, |e| e.0);
    report.watch_events = seen.len();
    let v = &mut report.violations;
    for (i, e) in history.iter().enumerate() {
        if e.0 != i as u64 + 2 {
            v.push(format!(
                "the history skips or repeats a revision: revision {} at position {i}",
                e.0
            ));
            break;
        }
    }
    let by_revision: HashMap<u64, &Event> = history.iter().map(|e| (e.0, e)).collect();
    let mut by_value: HashMap<&[u8], u64> = HashMap::new();
    for e in history {
        if by_value.insert(&e.2, e.0).is_some() {
            v.push(format!(
                "value {:?} written twice in the history",
                e.2.escape_ascii().to_string()
            ));
        }
    }
    for op in ops {
        let written = match (&op.call, op.returned.as_ref().map(|r| &r.outcome)) {
            (Call::Put { key, value }, Some(Outcome::Put { revision }))
            | (
                Call::Cas { key, value, .. },
                Some(Outcome::Cas {
                    succeeded: true,
                    revision,
                }),
            ) => Some((key, value, *revision)),
            _ => None,
        };
        let Some((key, value, revision)) = written else {
            continue;
        };
        report.answered_puts += 1;
        match by_revision.get(&revision) {
            Some(e) if &e.1 == key && &e.2 == value => {}
            other => v.push(format!(
                "acknowledged write lost: client {} put {}={} answered revision {revision}, the history has {:?} there{}",
                op.client,
                key.escape_ascii(),
                value.escape_ascii(),
                other.map(|e| (e.1.escape_ascii().to_string(), e.2.escape_ascii().to_string())),
                by_value.get(value.as_slice()).map_or(String::new(), |r| format!(" (the value is at revision {r})"))
            )),
        }
    }
    if seen.len() != history.len() || seen.iter().zip(history).any(|(a, b)| a != b) {
        let first = seen
            .iter()
            .zip(history)
            .position(|(a, b)| a != b)
            .unwrap_or(seen.len().min(history.len()));
        v.push(format!(
            "the watcher's {} events differ from the history's {} from position {first}: watcher {:?}, history {:?}",
            seen.len(),
            history.len(),
            seen.get(first).map(|e| e.0),
            history.get(first).map(|e| e.0)
        ));
    }
    // Unanswered writes are settled by the history read back (complete: nothing compacted).
    let h = History {
        initial_revision: 1,
        ops: ops.to_vec(),
    }
    .settled_by(|value| by_value.get(value).copied());
    match linearizable::check(&h, &Limits::default()) {
        Ok(stats) => report.linearizable = Some(stats),
        Err(e) => v.push(format!("{e}")),
    }
}
