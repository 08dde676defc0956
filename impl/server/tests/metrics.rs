//! `GET /metrics`: per-method gRPC counters move with the calls made (etcdctl's puts, a failed
//! get, a watch stream open and then gone), and the engine's figures are there: its gauges,
//! its cumulative counters (`_total`) moving with the calls, the WAL sync histogram.

mod common;

use std::time::Instant;

use common::{TestServer, WAIT_MAX, curl};

/// The value of the sample `name{labels}` in `text`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

fn scrape(server: &TestServer) -> String {
    let (status, text) = curl(&[&format!("{}/metrics", server.endpoint())]);
    assert_eq!(status, 200, "{text}");
    text
}

const PUT_OK: &str =
    r#"grpc_server_handled_total{grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"}"#;
const WATCHES_OPEN: &str =
    r#"kvstore_grpc_calls_in_flight{grpc_service="etcdserverpb.Watch",grpc_method="Watch"}"#;

#[test]
fn calls_are_counted_and_the_engine_reported() {
    let server = TestServer::start();
    let ctl = server.ctl();
    assert_eq!(sample(&scrape(&server), PUT_OK), None);
    ctl.ok(&["put", "a", "1"]);
    let text = scrape(&server);
    assert_eq!(sample(&text, PUT_OK), Some(1.0), "{text}");
    ctl.ok(&["put", "b", "2"]);
    ctl.fails(&["get", "a", "--rev=100"]);
    let text = scrape(&server);
    assert_eq!(sample(&text, PUT_OK), Some(2.0), "{text}");
    let future_rev = r#"grpc_server_handled_total{grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OutOfRange"}"#;
    assert_eq!(sample(&text, future_rev), Some(1.0), "{text}");
    let put_latency =
        r#"grpc_server_handling_seconds_count{grpc_service="etcdserverpb.KV",grpc_method="Put"}"#;
    assert_eq!(sample(&text, put_latency), Some(2.0), "{text}");
    assert_eq!(sample(&text, "kvstore_revision"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "kvstore_commits_total"), Some(2.0), "{text}");
    assert!(
        sample(&text, r#"kvstore_level_files{level="0"}"#).is_some(),
        "{text}"
    );
    assert_engine_counters(&text);
    let wal_bytes = sample(&text, "kvstore_wal_written_bytes_total").unwrap();
    assert!(wal_bytes > 0.0, "{text}");
    assert_eq!(sample(&text, "kvstore_watchers"), Some(0.0), "{text}");

    // From the revision the put will get, so the event is seen however late the watch starts.
    let mut watch = ctl.spawn_lines(&["watch", "w", "--rev=4"]);
    ctl.ok(&["put", "w", "x"]);
    watch.take(3);
    let text = scrape(&server);
    assert_eq!(sample(&text, WATCHES_OPEN), Some(1.0));
    assert_eq!(sample(&text, "kvstore_watchers"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "kvstore_commits_total"), Some(3.0), "{text}");
    assert!(sample(&text, "kvstore_wal_written_bytes_total").unwrap() > wal_bytes);
    // The put's event reached the watch stream, through the engine's watcher.
    assert_eq!(
        sample(&text, "kvstore_watch_events_delivered_total"),
        Some(1.0),
        "{text}"
    );
    drop(watch);
    let deadline = Instant::now() + WAIT_MAX;
    while sample(&scrape(&server), WATCHES_OPEN) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "the watch stream is still counted open"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = scrape(&server);
    assert_eq!(sample(&text, "kvstore_watchers"), Some(0.0), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// Every engine counter is exported once, typed a counter; the sync histogram's `+Inf` bucket
/// and count agree with the sync counter.
fn assert_engine_counters(text: &str) {
    for name in [
        "commits",
        "commit_groups",
        "wal_written_bytes",
        "wal_syncs",
        "flushes",
        "flush_written_bytes",
        "compactions",
        "compaction_read_bytes",
        "compaction_written_bytes",
        "trivial_moves",
        "write_stalls",
        "write_stall_seconds",
        "block_cache_hits",
        "block_cache_misses",
        "gets",
        "scans",
        "watch_events_delivered",
        "leases_expired",
    ] {
        let type_line = format!("# TYPE kvstore_{name} counter");
        assert_eq!(text.matches(&type_line).count(), 1, "{type_line}: {text}");
        assert!(
            sample(text, &format!("kvstore_{name}_total")).is_some(),
            "{name}: {text}"
        );
    }
    assert!(text.contains("# TYPE kvstore_wal_sync_duration_seconds histogram"));
    let syncs = sample(text, "kvstore_wal_syncs_total");
    assert!(syncs.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        sample(text, "kvstore_wal_sync_duration_seconds_count"),
        syncs,
        "{text}"
    );
    assert_eq!(
        sample(
            text,
            r#"kvstore_wal_sync_duration_seconds_bucket{le="+Inf"}"#
        ),
        syncs,
        "{text}"
    );
    // Nothing flushed or compacted yet in this small test.
    assert_eq!(sample(text, "kvstore_flushes_total"), Some(0.0), "{text}");
}
