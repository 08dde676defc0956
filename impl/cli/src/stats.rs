//! `kvstore stats`: the database's sizes now ([`kvstore::Stats`]) and its cumulative metrics
//! since this process opened it ([`kvstore::Metrics`]), as `name: value` lines or, with
//! `-o json`, one JSON object.
//!
//! Invariants: the text and the JSON list the same figures under the same names, from one
//! `stats()` and one `metrics()` call; every counter of [`kvstore::Metrics::counters`] is shown,
//! so a counter the engine adds appears here without a change.

use kvstore::metrics::LatencyHistogram;
use kvstore::{Db, Metrics, Stats};
use serde_json::{Map, Value, json};

use crate::bytes::{Format, Out, PipeClosed};

/// Prints the figures of `db` as `format` says (JSON for `Json`, text otherwise).
pub fn print(db: &Db, format: Format, out: &mut Out) -> Result<(), PipeClosed> {
    let stats = db.stats();
    let metrics = db.metrics();
    let sizes = sizes(&stats, db.history_horizon());
    if format == Format::Json {
        return out.line(&to_json(&stats, &sizes, &metrics).to_string());
    }
    for (level, (files, bytes)) in stats
        .files_per_level
        .iter()
        .zip(&stats.bytes_per_level)
        .enumerate()
    {
        out.line(&format!("L{level}: {files} files, {bytes} bytes"))?;
    }
    for (name, value) in sizes {
        out.line(&format!("{name}: {value}"))?;
    }
    for figure in metrics.counters() {
        out.line(&format!("{}: {}", figure.name, figure.value))?;
    }
    let latency = &metrics.wal_sync_latency;
    let buckets: Vec<String> = buckets(latency)
        .map(|(below, count)| match below {
            Some(below) => format!("<{below}: {count}"),
            None => format!("more: {count}"),
        })
        .collect();
    out.line(&format!(
        "wal_sync_latency_micros: count {}, sum {}, buckets {{{}}}",
        latency.count,
        latency.sum_micros,
        buckets.join(", ")
    ))
}

/// The point-in-time figures besides the levels, by name.
fn sizes(stats: &Stats, history_horizon: u64) -> [(&'static str, u64); 8] {
    [
        ("memtable_bytes", stats.memtable_bytes),
        ("frozen_memtables", stats.frozen_memtables as u64),
        ("last_revision", stats.last_revision),
        ("history_horizon", history_horizon),
        ("wal_bytes", stats.wal_bytes),
        ("wal_synced_offset", stats.wal_synced_offset),
        ("open_tables", stats.open_tables as u64),
        ("watchers", stats.watchers as u64),
    ]
}

/// The histogram's non-empty buckets: (exclusive upper bound in µs, `None` for the last; count).
fn buckets(latency: &LatencyHistogram) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
    latency
        .buckets
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(i, count)| (LatencyHistogram::upper_bound_micros(i), *count))
}

/// Everything as one JSON object: the levels and sizes at the top, the metrics under `metrics`.
fn to_json(stats: &Stats, sizes: &[(&'static str, u64)], metrics: &Metrics) -> Value {
    let mut top = Map::new();
    top.insert("files_per_level".into(), json!(stats.files_per_level));
    top.insert("bytes_per_level".into(), json!(stats.bytes_per_level));
    for (name, value) in sizes {
        top.insert((*name).into(), json!(value));
    }
    let mut counters = Map::new();
    for figure in metrics.counters() {
        counters.insert(figure.name.into(), json!(figure.value));
    }
    let latency = &metrics.wal_sync_latency;
    let buckets: Vec<Value> = buckets(latency)
        .map(|(below, count)| json!({ "below_micros": below, "count": count }))
        .collect();
    counters.insert(
        "wal_sync_latency".into(),
        json!({ "count": latency.count, "sum_micros": latency.sum_micros, "buckets": buckets }),
    );
    top.insert("metrics".into(), Value::Object(counters));
    Value::Object(top)
}
