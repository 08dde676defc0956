//! `GET /metrics`: Prometheus (OpenMetrics text) metrics of the server and its engine.
//!
//! Per gRPC method, as go-grpc-prometheus names them for etcd: `grpc_server_started_total`,
//! `grpc_server_handled_total` (with the gRPC code by Go's name: `OK`, `NotFound`...) and the
//! `grpc_server_handling_seconds` histogram (for a stream: from its start to its end), labelled
//! `grpc_service` and `grpc_method`; and `kvstore_grpc_calls_in_flight` (a Watch in flight is a
//! watch stream open). [`Metered`] wraps the gRPC routes and counts each call when its response
//! ends: the code is the trailers-only `grpc-status` header, the trailer of that name, or
//! `Canceled` when the client went away first.
//!
//! Read from the engine at each scrape (through [`Context::blocking`]), as gauges: the revision,
//! the leases, the watchers, the memtables, files and bytes per level, the WAL bytes not yet in
//! a table, the open tables; and, as counters and a histogram ([`engine`]), the engine's
//! cumulative metrics since open: commits and groups, WAL bytes and syncs (with the sync
//! latency), flushes, compactions, write stalls, block cache hits and misses, reads, watch
//! events delivered, leases expired.
//!
//! Invariants:
//! - Label sets are bounded: at most [`METHOD_LABELS_MAX`] distinct service and method pairs
//!   are named; any other call is counted as `other`/`other`, so a client sending made-up paths
//!   cannot grow the registry.
//! - A call is counted handled exactly once, when its body ends or is dropped.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;
use tonic::codegen::Service;

use crate::context::Context;
use crate::identity::wire_i64;

mod engine;

use engine::EngineCollector;

/// The most distinct (service, method) label pairs named (see the module doc).
const METHOD_LABELS_MAX: usize = 64;
/// go-grpc-prometheus's default handling-time buckets, seconds.
const HANDLING_SECONDS_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelLabels {
    level: String,
}

fn handling_histogram() -> Histogram {
    Histogram::new(HANDLING_SECONDS_BUCKETS)
}

/// Every metric, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    methods_seen: Mutex<HashSet<MethodLabels>>,
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<MethodLabels, Gauge>,
    revision: Gauge,
    leases: Gauge,
    memtable_bytes: Gauge,
    frozen_memtables: Gauge,
    level_files: Family<LevelLabels, Gauge>,
    level_bytes: Family<LevelLabels, Gauge>,
    wal_bytes: Gauge,
    open_tables: Gauge,
    watchers: Gauge,
    engine: Arc<EngineCollector>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::default(),
            methods_seen: Mutex::new(HashSet::new()),
            started: Family::default(),
            handled: Family::default(),
            handling_seconds: Family::new_with_constructor(handling_histogram),
            in_flight: Family::default(),
            revision: Gauge::default(),
            leases: Gauge::default(),
            memtable_bytes: Gauge::default(),
            frozen_memtables: Gauge::default(),
            level_files: Family::default(),
            level_bytes: Family::default(),
            wal_bytes: Gauge::default(),
            open_tables: Gauge::default(),
            watchers: Gauge::default(),
            engine: Arc::default(),
        };
        let mut registry = Registry::default();
        let (m, r) = (&metrics, &mut registry);
        r.register(
            "grpc_server_started",
            "RPCs started on the server",
            m.started.clone(),
        );
        r.register(
            "grpc_server_handled",
            "RPCs completed on the server, by code",
            m.handled.clone(),
        );
        r.register(
            "grpc_server_handling_seconds",
            "Time from an RPC's start to its end (a stream's whole life)",
            m.handling_seconds.clone(),
        );
        r.register(
            "kvstore_grpc_calls_in_flight",
            "RPCs started and not ended (open Watch and LeaseKeepAlive streams among them)",
            m.in_flight.clone(),
        );
        let gauges = [
            (
                "kvstore_revision",
                "The store's revision (etcd's numbering)",
                &m.revision,
            ),
            (
                "kvstore_leases",
                "Leases granted and not expired or revoked",
                &m.leases,
            ),
            (
                "kvstore_memtable_bytes",
                "Bytes in the active and frozen memtables",
                &m.memtable_bytes,
            ),
            (
                "kvstore_frozen_memtables",
                "Frozen memtables waiting for their flush",
                &m.frozen_memtables,
            ),
            (
                "kvstore_wal_bytes",
                "WAL bytes not yet covered by tables",
                &m.wal_bytes,
            ),
            (
                "kvstore_open_tables",
                "Table readers kept open",
                &m.open_tables,
            ),
            (
                "kvstore_watchers",
                "Engine watchers open (etcd watches of every stream)",
                &m.watchers,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        r.register(
            "kvstore_level_files",
            "Table files per level",
            m.level_files.clone(),
        );
        r.register(
            "kvstore_level_bytes",
            "Table bytes per level",
            m.level_bytes.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&metrics.engine)));
        metrics.registry = registry;
        metrics
    }

    /// The labels of the call to `path` (`/package.Service/Method`), bounded (module doc).
    fn labels(&self, path: &str) -> MethodLabels {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("other", "other"));
        let labels = MethodLabels {
            grpc_service: service.to_owned(),
            grpc_method: method.to_owned(),
        };
        let Ok(mut seen) = self.methods_seen.lock() else {
            return other();
        };
        if seen.contains(&labels) || seen.len() < METHOD_LABELS_MAX {
            seen.insert(labels.clone());
            labels
        } else {
            other()
        }
    }

    /// Reads the engine's figures into the gauges.
    fn refresh(&self, context: &Context) -> crate::error::EtcdResult<()> {
        let revision = context.current_revision()?;
        self.revision.set(crate::revision::wire(revision));
        let leases = context.db().leases()?.len();
        self.leases.set(wire_i64(leases as u64));
        let stats = context.db().stats();
        self.memtable_bytes.set(wire_i64(stats.memtable_bytes));
        self.frozen_memtables
            .set(wire_i64(stats.frozen_memtables as u64));
        for (level, (files, bytes)) in stats
            .files_per_level
            .iter()
            .zip(&stats.bytes_per_level)
            .enumerate()
        {
            let labels = LevelLabels {
                level: level.to_string(),
            };
            self.level_files
                .get_or_create(&labels)
                .set(wire_i64(*files as u64));
            self.level_bytes
                .get_or_create(&labels)
                .set(wire_i64(*bytes));
        }
        self.wal_bytes.set(wire_i64(stats.wal_bytes));
        self.open_tables.set(wire_i64(stats.open_tables as u64));
        self.watchers.set(wire_i64(stats.watchers as u64));
        self.engine.set(context.db().metrics());
        Ok(())
    }
}

fn other() -> MethodLabels {
    MethodLabels {
        grpc_service: "other".to_owned(),
        grpc_method: "other".to_owned(),
    }
}

/// `GET /metrics`'s handler.
pub(crate) async fn scrape(
    State((context, metrics)): State<(Arc<Context>, Arc<Metrics>)>,
) -> Response<Body> {
    let refreshing = Arc::clone(&metrics);
    if let Err(status) = context
        .blocking(move |context| refreshing.refresh(context))
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, status.message().to_owned()).into_response();
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The gRPC routes, each call counted (see the module doc).
#[derive(Clone)]
pub(crate) struct Metered {
    pub(crate) inner: axum::Router,
    pub(crate) metrics: Arc<Metrics>,
}

impl Service<Request<Body>> for Metered {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        // axum's `Router::poll_ready` is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = Call::start(Arc::clone(&self.metrics), request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = response.await;
            let (parts, body) = response.into_parts();
            let code = grpc_code(&parts.headers);
            let body = MeteredBody {
                inner: body,
                call: Some(call),
                code,
            };
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// One call being timed.
struct Call {
    metrics: Arc<Metrics>,
    labels: MethodLabels,
    started: Instant,
}

impl Call {
    fn start(metrics: Arc<Metrics>, path: &str) -> Call {
        let labels = metrics.labels(path);
        metrics.started.get_or_create(&labels).inc();
        metrics.in_flight.get_or_create(&labels).inc();
        Call {
            metrics,
            labels,
            started: Instant::now(),
        }
    }

    fn end(self, code: Code) {
        let Call {
            metrics,
            labels,
            started,
        } = self;
        metrics.in_flight.get_or_create(&labels).dec();
        metrics
            .handling_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        let handled = HandledLabels {
            grpc_service: labels.grpc_service,
            grpc_method: labels.grpc_method,
            grpc_code: code_name(code),
        };
        metrics.handled.get_or_create(&handled).inc();
    }
}

/// A response body that ends its [`Call`] when it ends or is dropped.
struct MeteredBody {
    inner: Body,
    call: Option<Call>,
    /// The code from the headers or trailers, once seen.
    code: Option<Code>,
}

impl MeteredBody {
    fn end(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.end(self.code.unwrap_or(code));
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    this.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(Code::Unknown),
            Poll::Ready(None) => this.end(Code::Unknown),
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

/// The `grpc-status` in `headers`, if any.
fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// A gRPC code by its Go name, as go-grpc-prometheus labels it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        let metrics = Metrics::new();
        let put = metrics.labels("/etcdserverpb.KV/Put");
        assert_eq!(
            (put.grpc_service.as_str(), put.grpc_method.as_str()),
            ("etcdserverpb.KV", "Put")
        );
        for i in 0..METHOD_LABELS_MAX * 2 {
            metrics.labels(&format!("/made.Up/M{i}"));
        }
        assert_eq!(metrics.labels("/made.Up/Another"), other());
        assert_eq!(metrics.labels("/etcdserverpb.KV/Put"), put);
        assert_eq!(metrics.labels("no-slash"), other());
    }
}
