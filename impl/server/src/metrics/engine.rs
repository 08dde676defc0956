//! The engine's cumulative metrics ([`kvstore::Db::metrics`]) as Prometheus metrics: each of
//! [`kvstore::Metrics::counters`] as a counter `kvstore_<name>_total` (a `_micros` figure as
//! `_seconds`, in seconds), and the WAL sync latency histogram as
//! `kvstore_wal_sync_duration_seconds` (the engine's log2 buckets of microseconds, in seconds).
//!
//! Invariants:
//! - What is encoded is the snapshot the last scrape's refresh stored ([`EngineCollector::set`]),
//!   whole: every figure of one scrape comes from one [`kvstore::Db::metrics`] call.
//! - Before the first refresh nothing is encoded (no zeroes that are not the engine's).

use std::sync::Mutex;

use kvstore::metrics::{Figure, LatencyHistogram, Unit};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

/// Microseconds in a second.
const MICROS_PER_SECOND: f64 = 1_000_000.0;

/// The engine's metrics of the last refresh, encoded at each scrape.
#[derive(Debug, Default)]
pub(crate) struct EngineCollector {
    latest: Mutex<Option<kvstore::Metrics>>,
}

impl EngineCollector {
    /// Stores `metrics` for the next encode.
    pub(crate) fn set(&self, metrics: kvstore::Metrics) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(metrics);
        }
    }
}

/// The Prometheus name (without `_total`) and value of `figure`.
fn prometheus_counter(figure: &Figure) -> (String, f64) {
    match figure.unit {
        Unit::Micros => {
            let stem = figure.name.trim_end_matches("_micros");
            (
                format!("kvstore_{stem}_seconds"),
                figure.value as f64 / MICROS_PER_SECOND,
            )
        }
        Unit::Count | Unit::Bytes => (format!("kvstore_{}", figure.name), figure.value as f64),
    }
}

/// The histogram's buckets as Prometheus wants them: (upper bound in seconds, count), the last
/// one `+Inf`.
fn seconds_buckets(histogram: &LatencyHistogram) -> Vec<(f64, u64)> {
    histogram
        .buckets
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let upper = LatencyHistogram::upper_bound_micros(i)
                .map_or(f64::INFINITY, |micros| micros as f64 / MICROS_PER_SECOND);
            (upper, count)
        })
        .collect()
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(metrics) = self.latest.lock().ok().and_then(|latest| latest.clone()) else {
            return Ok(());
        };
        for figure in metrics.counters() {
            let (name, value) = prometheus_counter(&figure);
            let counter = ConstCounter::new(value);
            let metric =
                encoder.encode_descriptor(&name, figure.help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let histogram = &metrics.wal_sync_latency;
        let mut metric = encoder.encode_descriptor(
            "kvstore_wal_sync_duration_seconds",
            "How long each WAL sync took",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(
            histogram.sum_micros as f64 / MICROS_PER_SECOND,
            histogram.count,
            &seconds_buckets(histogram),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_become_seconds_and_the_last_bucket_is_unbounded() {
        let figure = Figure {
            name: "write_stall_micros",
            help: "",
            unit: Unit::Micros,
            value: 1_500_000,
        };
        assert_eq!(
            prometheus_counter(&figure),
            ("kvstore_write_stall_seconds".to_owned(), 1.5)
        );
        let mut histogram = LatencyHistogram::default();
        histogram.buckets[0] = 1;
        *histogram.buckets.last_mut().unwrap() = 2;
        let buckets = seconds_buckets(&histogram);
        assert_eq!(buckets[0], (1e-6, 1));
        assert_eq!(buckets[10], (1024e-6, 0));
        assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, 2));
    }
}
