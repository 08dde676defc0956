//! The load `serverbench` puts on a server through the `etcd-client` crate: C clients, each on
//! its own connection, each issuing its operations one after another (a closed loop), all
//! started together. One [`Workload`] a run:
//!
//! - `put`: a new key each operation (256-byte values, the seed workload's);
//! - `range`: a point get of a random preloaded key ([`preload`]), its value checked;
//! - `txn`: a compare-and-put on a random preloaded key: if the value is the one written,
//!   write it again (the compare always holds; a failed compare is an error);
//! - `watch`: each client watches its own prefix, puts a key under it and waits for the event:
//!   the latency is put to event.
//!
//! Invariants:
//! - Every value read back is compared with the value written; a mismatch is an error.
//! - Latencies are per operation, measured by the client; ops/s is all clients' operations over
//!   the wall time from the common start to the last client's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use tokio::sync::Barrier;

use crate::BenchResult;
use crate::seed::{Phase, phase};
use crate::workload::{self, Latencies, SplitMix64};

/// The seed of every value written.
const SEED: u64 = 0x5E4B_E4C4;
/// Clients that write the preloaded keys.
const PRELOAD_CLIENTS: u64 = 16;
/// The most one operation may take before the run is declared failed.
const OP_WAIT_MAX: Duration = Duration::from_secs(30);

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Put,
    Range,
    Txn,
    Watch,
}

impl Workload {
    /// Every workload, in the order the report lists them.
    pub const ALL: [Workload; 4] = [
        Workload::Put,
        Workload::Range,
        Workload::Txn,
        Workload::Watch,
    ];

    /// The workload's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range => "range",
            Workload::Txn => "txn",
            Workload::Watch => "watch",
        }
    }

    /// Whether it reads the keys [`preload`] writes.
    pub fn needs_preload(self) -> bool {
        matches!(self, Workload::Range | Workload::Txn)
    }
}

/// The size of one run.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub workload: Workload,
    pub clients: usize,
    pub ops_per_client: u64,
    /// Preloaded keys `range` and `txn` pick from.
    pub keys: u64,
}

fn preloaded_key(i: u64) -> Vec<u8> {
    [&b"r/"[..], &workload::key(i)].concat()
}

async fn connect(endpoint: &str) -> BenchResult<Client> {
    Ok(Client::connect([endpoint], None).await?)
}

/// Writes the `keys` keys `range` and `txn` read, from `PRELOAD_CLIENTS` clients.
/// REQUIRES: `keys <= workload::N_MAX`.
pub async fn preload(endpoint: &str, keys: u64) -> BenchResult<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..PRELOAD_CLIENTS {
        let endpoint = endpoint.to_owned();
        tasks.spawn(async move {
            let mut c = connect(&endpoint).await?;
            for i in (client..keys).step_by(PRELOAD_CLIENTS as usize) {
                c.put(preloaded_key(i), workload::value(SEED, i), None)
                    .await?;
            }
            BenchResult::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Runs `load` against a server whose members serve `endpoints` (client `i` connects to
/// member `i mod n`) and measures it.
pub async fn run(endpoints: &[String], load: Load) -> BenchResult<Phase> {
    debug_assert!(load.clients > 0 && load.keys > 0 && !endpoints.is_empty());
    let barrier = Arc::new(Barrier::new(load.clients + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..load.clients {
        let endpoint = endpoints
            .get(client % endpoints.len().max(1))
            .cloned()
            .ok_or("no endpoint")?;
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let c = connect(&endpoint).await?;
            one_client(c, client as u64, load, barrier).await
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Latencies::with_capacity(load.clients * load.ops_per_client as usize);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let ops = load.clients as u64 * load.ops_per_client;
    Ok(phase(ops, start.elapsed(), &mut latencies))
}

/// One client's operations, after every client is connected (`barrier`).
async fn one_client(
    mut c: Client,
    client: u64,
    load: Load,
    barrier: Arc<Barrier>,
) -> BenchResult<Latencies> {
    let mut latencies = Latencies::with_capacity(load.ops_per_client as usize);
    let mut rng = SplitMix64::new(SEED ^ client);
    let mut watch = match load.workload {
        Workload::Watch => Some(open_watch(&mut c, client).await?),
        _ => None,
    };
    barrier.wait().await;
    for op in 0..load.ops_per_client {
        let index = client * load.ops_per_client + op;
        let started = Instant::now();
        let done = async {
            match (load.workload, watch.as_mut()) {
                (Workload::Put, _) => put(&mut c, index).await,
                (Workload::Range, _) => range(&mut c, rng.below(load.keys)).await,
                (Workload::Txn, _) => txn(&mut c, rng.below(load.keys)).await,
                (Workload::Watch, Some(stream)) => watched_put(&mut c, stream, client, op).await,
                (Workload::Watch, None) => Err("the watch was not opened".into()),
            }
        };
        tokio::time::timeout(OP_WAIT_MAX, done)
            .await
            .map_err(|_| format!("{} op took over {OP_WAIT_MAX:?}", load.workload.name()))??;
        latencies.record(started.elapsed());
    }
    Ok(latencies)
}

async fn put(c: &mut Client, index: u64) -> BenchResult<()> {
    let key = [&b"p/"[..], &workload::key(index % workload::N_MAX)].concat();
    c.put(key, workload::value(SEED, index), None).await?;
    Ok(())
}

async fn range(c: &mut Client, i: u64) -> BenchResult<()> {
    let got = c.get(preloaded_key(i), None).await?;
    match got.kvs() {
        [kv] if kv.value() == workload::value(SEED, i) => Ok(()),
        other => Err(format!("key {i}: read {} rows, not the value written", other.len()).into()),
    }
}

async fn txn(c: &mut Client, i: u64) -> BenchResult<()> {
    let (key, value) = (preloaded_key(i), workload::value(SEED, i));
    let txn = Txn::new()
        .when([Compare::value(key.clone(), CompareOp::Equal, value)])
        .and_then([TxnOp::put(key.clone(), value, None)])
        .or_else([TxnOp::get(key, None)]);
    if c.txn(txn).await?.succeeded() {
        Ok(())
    } else {
        Err(format!("key {i}: the txn's compare failed: the value is not the one written").into())
    }
}

fn watch_prefix(client: u64) -> String {
    format!("w/{client:05}/")
}

/// A watch on `client`'s prefix, created (the server said so).
async fn open_watch(c: &mut Client, client: u64) -> BenchResult<etcd_client::WatchStream> {
    let mut stream = c
        .watch(
            watch_prefix(client),
            Some(WatchOptions::new().with_prefix()),
        )
        .await?;
    match stream.message().await? {
        Some(created) if created.created() => Ok(stream),
        _ => Err("the watch was not created".into()),
    }
}

/// Puts key `op` under `client`'s prefix and waits for its event on `stream`.
async fn watched_put(
    c: &mut Client,
    stream: &mut etcd_client::WatchStream,
    client: u64,
    op: u64,
) -> BenchResult<()> {
    let key = format!("{}{op:010}", watch_prefix(client));
    let value = workload::value(SEED, op);
    c.put(key.clone(), value, None).await?;
    loop {
        let message = stream.message().await?.ok_or("the watch stream ended")?;
        let event = match message.events() {
            [] => continue,
            [event] => event,
            more => return Err(format!("{key}: {} events for one put", more.len()).into()),
        };
        let kv = event.kv().ok_or("an event without its key")?;
        if event.event_type() != EventType::Put || kv.key() != key.as_bytes() {
            return Err(format!("expected the put of {key}, got another event").into());
        }
        if kv.value() != value {
            return Err(format!("{key}: the event carries another value").into());
        }
        return Ok(());
    }
}

/// How long after it is called a put through `endpoint` first succeeds (each attempt bounded
/// by 1 s, at most `OP_WAIT_MAX` in all): after a leader is killed, the time to elect
/// another and write again.
pub async fn first_write_after(endpoint: &str) -> BenchResult<Duration> {
    let started = Instant::now();
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(1));
    let mut client = Client::connect([endpoint], Some(options)).await?;
    while started.elapsed() < OP_WAIT_MAX {
        if client.put("failover", "v", None).await.is_ok() {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("no write succeeded through {endpoint} within {OP_WAIT_MAX:?}").into())
}
