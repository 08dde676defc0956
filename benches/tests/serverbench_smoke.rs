//! serverbench's workloads, a few operations each, against kvstore's server in-process: proves
//! the generator works (and checks what it reads) without running the benchmark.

use kvstore_benches::server::load::{self, Load, Workload};
use kvstore_server::{Server, ServerConfig};

const CLIENTS: usize = 2;
const OPS_PER_CLIENT: u64 = 3;
const KEYS: u64 = 20;

/// Starts a server over a new database in `dir`; it serves until the runtime ends.
async fn serve(dir: &std::path::Path) -> String {
    let config = ServerConfig::new(dir.join("db"), "127.0.0.1:0".parse().expect("addr"));
    let server = Server::bind(config).await.expect("the server starts");
    let endpoint = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve_until(std::future::pending::<()>()));
    endpoint
}

async fn count(endpoint: &str, prefix: &str) -> i64 {
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let options = etcd_client::GetOptions::new()
        .with_prefix()
        .with_count_only();
    client
        .get(prefix, Some(options))
        .await
        .expect("count")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_and_writes_what_it_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = serve(dir.path()).await;
    load::preload(&endpoint, KEYS).await.expect("preload");
    assert_eq!(count(&endpoint, "r/").await, KEYS as i64);
    for workload in Workload::ALL {
        let load = Load {
            workload,
            clients: CLIENTS,
            ops_per_client: OPS_PER_CLIENT,
            keys: KEYS,
        };
        let phase = load::run(std::slice::from_ref(&endpoint), load)
            .await
            .expect("the workload runs");
        assert!(phase.ops_per_sec > 0.0, "{workload:?}: {phase:?}");
        assert!(
            phase.p99_us >= phase.p50_us && phase.p50_us > 0.0,
            "{phase:?}"
        );
    }
    let written = (CLIENTS as u64 * OPS_PER_CLIENT) as i64;
    assert_eq!(count(&endpoint, "p/").await, written);
    assert_eq!(count(&endpoint, "w/").await, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_keys_never_written_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = serve(dir.path()).await;
    for workload in [Workload::Range, Workload::Txn] {
        let load = Load {
            workload,
            clients: 1,
            ops_per_client: 1,
            keys: KEYS,
        };
        let refused = load::run(std::slice::from_ref(&endpoint), load).await;
        assert!(
            refused.is_err(),
            "{workload:?} without its preload succeeded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_probe_times_a_write_that_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = serve(dir.path()).await;
    let took = load::first_write_after(&endpoint)
        .await
        .expect("a write succeeds");
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    assert_eq!(count(&endpoint, "failover").await, 1);
}
