//! The port's two protocols: [`dispatch`] sends a request whose content type is
//! `application/grpc` (with or without a `+proto`-style suffix) to the gRPC services and every
//! other request to the plain HTTP side, as etcd's `cmux` does on its client port. The plain
//! HTTP side answers etcd 3.4's `GET /health` and `GET /version` (another method: Go's 405),
//! `GET /metrics` (the `metrics` module), the JSON gateway's paths (the `gateway` module)
//! and `404 page not found` (Go's text) for a path it does not serve.
//!
//! `/health` answers `{"health":"true"}` (200) when the database answers a read, and
//! `{"health":"false"}` (503) when it does not; etcd 3.4.23 also fails it on an active alarm or
//! a lost leader, neither of which kvstore has. `/version` answers the etcd release whose API
//! is served and the cluster version etcd 3.4 reports.
//!
//! Invariants:
//! - A request reaches exactly one side: the gRPC services never see a plain HTTP request, so a
//!   curl to an unknown path gets HTTP's 404, not a gRPC status.
//! - Handlers run engine calls through [`Context::blocking`], as the gRPC services do.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::future::RouteFuture;
use axum::routing::get;
use tonic::codegen::Service;

use crate::context::Context;
use crate::identity::{ETCD_API_VERSION, ETCD_CLUSTER_VERSION};
use crate::metrics::Metrics;

/// The router of the whole port: gRPC requests to `grpc` (tonic's routes), others to the plain
/// HTTP side built by [`router`].
pub(crate) fn dispatch(grpc: axum::Router, http: axum::Router) -> axum::Router {
    axum::Router::new().fallback_service(Dispatch { grpc, http })
}

/// The plain HTTP side: `/health`, `/version`, `/metrics`, and Go's 404 for everything else.
pub(crate) fn router(context: Arc<Context>, metrics: Arc<Metrics>) -> axum::Router {
    let scrape = axum::Router::new()
        .route("/metrics", get(crate::metrics::scrape).fallback(get_only))
        .with_state((Arc::clone(&context), metrics));
    axum::Router::new()
        .route("/health", get(health).fallback(get_only))
        .route("/version", get(version).fallback(get_only))
        .fallback(not_found)
        .with_state(context)
        .merge(scrape)
}

/// Routes a request by its content type (see the module doc).
#[derive(Clone)]
struct Dispatch {
    grpc: axum::Router,
    http: axum::Router,
}

impl Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        // Both routers are always ready (axum's `Router::poll_ready`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            self.grpc.call(request)
        } else {
            self.http.call(request)
        }
    }
}

/// Whether `request` is a gRPC call: content type `application/grpc`, optionally followed by
/// `+codec` or `;parameters`.
fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
}

/// A JSON body with `status`.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn health(State(context): State<Arc<Context>>) -> Response<Body> {
    let healthy = context
        .blocking(|context| context.current_revision())
        .await
        .is_ok();
    let (status, body) = if healthy {
        (StatusCode::OK, r#"{"health":"true"}"#)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"health":"false"}"#)
    };
    // etcd 3.4 sets no content type here; Go's sniffing makes it this one.
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `/version`'s body, fields in etcd's order.
#[derive(serde::Serialize)]
struct Versions {
    etcdserver: &'static str,
    etcdcluster: &'static str,
}

async fn version() -> Response<Body> {
    let versions = Versions {
        etcdserver: ETCD_API_VERSION,
        etcdcluster: ETCD_CLUSTER_VERSION,
    };
    let body = serde_json::to_string(&versions).unwrap_or_default();
    json_response(StatusCode::OK, body)
}

/// Go's answer to a method a path does not serve.
pub(crate) async fn method_not_allowed() -> Response<Body> {
    (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
}

/// Go's answer to another method on a GET-only path.
async fn get_only() -> Response<Body> {
    let mut response = method_not_allowed().await;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

async fn not_found() -> Response<Body> {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_content_type(value: &str) -> Request<()> {
        Request::builder()
            .header(header::CONTENT_TYPE, value)
            .body(())
            .unwrap()
    }

    #[test]
    fn grpc_requests_are_told_by_their_content_type() {
        assert!(is_grpc(&with_content_type("application/grpc")));
        assert!(is_grpc(&with_content_type("application/grpc+proto")));
        assert!(is_grpc(&with_content_type(
            "application/grpc;charset=utf-8"
        )));
        assert!(!is_grpc(&with_content_type("application/grpc-web")));
        assert!(!is_grpc(&with_content_type("application/json")));
        assert!(!is_grpc(&Request::new(())));
    }
}
