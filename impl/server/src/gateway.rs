//! etcd v3.4's HTTP/JSON gateway (grpc-gateway with `JSONPb{OrigName: true}`): `POST` a
//! request message as JSON to its path under `/v3/` (or `/v3beta/`, etcd 3.4's alias) and get
//! the response message back as JSON. The JSON is proto3's mapping with the proto field names
//! (int64 and uint64 as strings, bytes as base64, enums by name, fields at their default value
//! left out; unknown request fields ignored): the serde impls `build.rs` generates.
//!
//! Each path calls the very service the gRPC side serves (no call is implemented twice):
//! - unary: `kv/{range,put,deleterange,txn,compaction}`, `lease/{grant,revoke,timetolive,
//!   leases}` (the last three also under `kv/lease/`), `maintenance/{status,alarm}`,
//!   `cluster/member/list`, `auth/{enable,disable,authenticate}`,
//!   `auth/user/{add,get,list,delete,changepw,grant,revoke}` and
//!   `auth/role/{add,get,list,delete,grant,revoke}`. An empty body is the empty request; what
//!   follows the first JSON value is ignored, as Go's decoder does.
//! - The token `auth/authenticate` returns is sent back in the `Authorization` header, as with
//!   etcd's gateway; the call then runs as its user (the gRPC side's `token` metadata).
//! - streaming: `watch` and `lease/keepalive` read a sequence of request objects from the body
//!   and answer newline-delimited `{"result":{...}}` objects (an error as
//!   `{"error":{"grpc_code","http_code","message","http_status"}}`), as grpc-gateway streams.
//!   The body is read whole before the stream starts: a client cannot add requests to a
//!   stream it has begun (etcd reads them as they come).
//!
//! A failed call answers `{"error","message","code"}` with the HTTP status grpc-gateway gives
//! its gRPC code; a body that is not JSON of the request's type answers code 3 (code 2 on a
//! streaming path, 500, as etcd does), with "unexpected EOF" for truncated JSON as Go's decoder
//! says, and serde_json's wording otherwise.
//!
//! Invariants:
//! - A request body is at most the limit the router is built with (413 past it), so decoding
//!   is bounded.
//! - The gateway answers JSON only from the services' responses; it never reads the database.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::auth::{AuthService, Credentials, TOKEN_METADATA};
use crate::cluster::ClusterService;
use crate::http::{json_response, method_not_allowed};
use crate::kv::KvService;
use crate::lease::LeaseService;
use crate::listener::ClientCertificate;
use crate::maintenance::MaintenanceService;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::watch::WatchService;

/// The services the gateway calls: the ones the gRPC side serves.
pub(crate) struct Services {
    pub(crate) kv: Arc<KvService>,
    pub(crate) lease: Arc<LeaseService>,
    pub(crate) watch: Arc<WatchService>,
    pub(crate) maintenance: Arc<MaintenanceService>,
    pub(crate) cluster: Arc<ClusterService>,
    pub(crate) auth: Arc<AuthService>,
}

/// The most requests one streaming body may hold.
const STREAM_REQUESTS_MAX: usize = 1024;

/// The gateway's routes under `/v3/` and `/v3beta/`, bodies at most `body_bytes_max` long.
pub(crate) fn router(services: &Services, body_bytes_max: usize) -> Router {
    let Services {
        kv,
        lease,
        watch,
        maintenance,
        cluster,
        auth,
    } = services;
    let lease_revoke = unary(lease, |s, r| async move { s.lease_revoke(r).await });
    let lease_time_to_live = unary(lease, |s, r| async move { s.lease_time_to_live(r).await });
    let lease_leases = unary(lease, |s, r| async move { s.lease_leases(r).await });
    let watch = Arc::clone(watch);
    let keep_alive = Arc::clone(lease);
    let api = Router::new()
        .route(
            "/kv/range",
            unary(kv, |s, r| async move { s.range(r).await }),
        )
        .route("/kv/put", unary(kv, |s, r| async move { s.put(r).await }))
        .route(
            "/kv/deleterange",
            unary(kv, |s, r| async move { s.delete_range(r).await }),
        )
        .route("/kv/txn", unary(kv, |s, r| async move { s.txn(r).await }))
        .route(
            "/kv/compaction",
            unary(kv, |s, r| async move { s.compact(r).await }),
        )
        .route(
            "/lease/grant",
            unary(lease, |s, r| async move { s.lease_grant(r).await }),
        )
        .route("/lease/revoke", lease_revoke.clone())
        .route("/kv/lease/revoke", lease_revoke)
        .route("/lease/timetolive", lease_time_to_live.clone())
        .route("/kv/lease/timetolive", lease_time_to_live)
        .route("/lease/leases", lease_leases.clone())
        .route("/kv/lease/leases", lease_leases)
        .route(
            "/lease/keepalive",
            streaming(move |requests, _token| keep_alive.open_keep_alive(requests)),
        )
        .route(
            "/watch",
            streaming(move |requests, token| watch.open(requests, Credentials::token_only(token))),
        )
        .route(
            "/maintenance/status",
            unary(maintenance, |s, r| async move { s.status(r).await }),
        )
        .route(
            "/maintenance/alarm",
            unary(maintenance, |s, r| async move { s.alarm(r).await }),
        )
        .route(
            "/cluster/member/list",
            unary(cluster, |s, r| async move { s.member_list(r).await }),
        )
        .route(
            "/cluster/member/add",
            unary(cluster, |s, r| async move { s.member_add(r).await }),
        )
        .route(
            "/cluster/member/remove",
            unary(cluster, |s, r| async move { s.member_remove(r).await }),
        )
        .route(
            "/cluster/member/update",
            unary(cluster, |s, r| async move { s.member_update(r).await }),
        )
        .route(
            "/cluster/member/promote",
            unary(cluster, |s, r| async move { s.member_promote(r).await }),
        )
        .merge(auth_routes(auth));
    let refuse = middleware::from_fn_with_state(Arc::clone(auth), refuse_named_client);
    Router::new()
        .nest("/v3", api.clone().layer(refuse))
        .nest("/v3beta", api)
        .layer(DefaultBodyLimit::max(body_bytes_max))
}

/// The most of a refused gateway request's body read before the refusal is sent.
const REFUSED_BODY_BYTES_MAX: usize = 64 * 1024;

/// etcd's answer (`embed/serve.go`) to a `/v3/` gateway request whose client certificate has a
/// common name while auth is enabled: the gateway cannot make the request as that user, so it
/// refuses it, 400 with this text, rather than make it as no one.
async fn refuse_named_client(
    State(auth): State<Arc<AuthService>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let named = request
        .extensions()
        .get::<ClientCertificate>()
        .and_then(|client| client.common_name.as_deref())
        .is_some_and(|name| !name.is_empty());
    if named && auth.is_enabled() {
        let text = "CommonName of client sending a request against gateway will be ignored and \
                    not used as expected\n";
        let headers = [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        // Read the body first: a connection closed on unread bytes is reset, and the client
        // may then lose the answer.
        let _ = axum::body::to_bytes(request.into_body(), REFUSED_BODY_BYTES_MAX).await;
        return (StatusCode::BAD_REQUEST, headers, text).into_response();
    }
    next.run(request).await
}

/// The Auth service's paths under `auth/`.
fn auth_routes(auth: &Arc<AuthService>) -> Router {
    Router::new()
        .route(
            "/auth/enable",
            unary(auth, |s, r| async move { s.auth_enable(r).await }),
        )
        .route(
            "/auth/disable",
            unary(auth, |s, r| async move { s.auth_disable(r).await }),
        )
        .route(
            "/auth/authenticate",
            unary(auth, |s, r| async move { s.authenticate(r).await }),
        )
        .route(
            "/auth/user/add",
            unary(auth, |s, r| async move { s.user_add(r).await }),
        )
        .route(
            "/auth/user/get",
            unary(auth, |s, r| async move { s.user_get(r).await }),
        )
        .route(
            "/auth/user/list",
            unary(auth, |s, r| async move { s.user_list(r).await }),
        )
        .route(
            "/auth/user/delete",
            unary(auth, |s, r| async move { s.user_delete(r).await }),
        )
        .route(
            "/auth/user/changepw",
            unary(auth, |s, r| async move { s.user_change_password(r).await }),
        )
        .route(
            "/auth/user/grant",
            unary(auth, |s, r| async move { s.user_grant_role(r).await }),
        )
        .route(
            "/auth/user/revoke",
            unary(auth, |s, r| async move { s.user_revoke_role(r).await }),
        )
        .route(
            "/auth/role/add",
            unary(auth, |s, r| async move { s.role_add(r).await }),
        )
        .route(
            "/auth/role/get",
            unary(auth, |s, r| async move { s.role_get(r).await }),
        )
        .route(
            "/auth/role/list",
            unary(auth, |s, r| async move { s.role_list(r).await }),
        )
        .route(
            "/auth/role/delete",
            unary(auth, |s, r| async move { s.role_delete(r).await }),
        )
        .route(
            "/auth/role/grant",
            unary(auth, |s, r| async move { s.role_grant_permission(r).await }),
        )
        .route(
            "/auth/role/revoke",
            unary(
                auth,
                |s, r| async move { s.role_revoke_permission(r).await },
            ),
        )
}

/// The token of a gateway request: its `Authorization` header (etcd's gateway passes it on).
fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `message` as a gRPC request carrying `token` as the gRPC side's clients send it.
fn grpc_request<Q>(message: Q, token: Option<String>) -> tonic::Request<Q> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = token.and_then(|t| MetadataValue::try_from(t.as_str()).ok()) {
        request.metadata_mut().insert(TOKEN_METADATA, value);
    }
    request
}

/// A unary call: the body decoded as `Q`, `call` on the service, the response as JSON.
fn unary<S, Q, R, F, Fut>(service: &Arc<S>, call: F) -> MethodRouter
where
    S: Send + Sync + 'static,
    Q: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(Arc<S>, tonic::Request<Q>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<tonic::Response<R>, Status>> + Send + 'static,
{
    let service = Arc::clone(service);
    post(move |headers: HeaderMap, body: Bytes| async move {
        let request = match decode_first::<Q>(&body) {
            Ok(request) => request,
            Err(status) => return error_response(&status),
        };
        match call(service, grpc_request(request, token(&headers))).await {
            Ok(response) => match serde_json::to_string(response.get_ref()) {
                Ok(json) => json_response(StatusCode::OK, json),
                Err(e) => error_response(&Status::internal(e.to_string())),
            },
            Err(status) => error_response(&status),
        }
    })
    .fallback(method_not_allowed)
}

/// The requests of a streaming call, as its service reads them.
type Requests<Q> = tokio_stream::Iter<std::vec::IntoIter<Result<Q, Status>>>;

/// A streaming call: the body decoded as a sequence of `Q`, the stream `open` returns (given
/// the request's token) sent back line by line.
fn streaming<Q, R, F>(open: F) -> MethodRouter
where
    Q: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(Requests<Q>, Option<String>) -> ReceiverStream<Result<R, Status>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    post(move |headers: HeaderMap, body: Bytes| async move {
        let requests = match decode_all::<Q>(&body) {
            Ok(requests) => requests,
            Err(status) => return error_response(&status),
        };
        let responses = open(
            tokio_stream::iter(requests.into_iter().map(Ok).collect::<Vec<_>>()),
            token(&headers),
        );
        let lines = responses.map(|response| Ok::<Bytes, Infallible>(stream_line(response)));
        let mut reply = Response::new(Body::from_stream(lines));
        reply.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        reply
    })
    .fallback(method_not_allowed)
}

/// The first JSON value of `body` as a `Q`; an empty body is the default request.
fn decode_first<Q: DeserializeOwned>(body: &[u8]) -> Result<Q, Status> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Q>();
    match values.next() {
        None => decode_first(b"{}"),
        Some(Ok(request)) => Ok(request),
        Some(Err(e)) => Err(Status::invalid_argument(json_error(&e))),
    }
}

/// Every JSON value of `body` as a `Q` (at most [`STREAM_REQUESTS_MAX`]).
fn decode_all<Q: DeserializeOwned>(body: &[u8]) -> Result<Vec<Q>, Status> {
    let mut requests = Vec::new();
    for request in serde_json::Deserializer::from_slice(body).into_iter::<Q>() {
        if requests.len() == STREAM_REQUESTS_MAX {
            return Err(Status::resource_exhausted(format!(
                "kvstore: a streaming body holds at most {STREAM_REQUESTS_MAX} requests"
            )));
        }
        requests.push(request.map_err(|e| Status::unknown(json_error(&e)))?);
    }
    Ok(requests)
}

/// What a JSON decoding error says: Go's words for truncated input, serde_json's otherwise.
fn json_error(error: &serde_json::Error) -> String {
    if error.is_eof() {
        "unexpected EOF".to_owned()
    } else {
        error.to_string()
    }
}

/// grpc-gateway's error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    code: i32,
}

/// `status` as grpc-gateway answers a failed unary call.
fn error_response(status: &Status) -> Response<Body> {
    let body = ErrorBody {
        error: status.message(),
        message: status.message(),
        code: status.code() as i32,
    };
    json_response(
        http_status(status.code()),
        serde_json::to_string(&body).unwrap_or_default(),
    )
}

/// A streamed response or error, as grpc-gateway writes it.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum StreamItem<'a, R> {
    Result(&'a R),
    Error(StreamError<'a>),
}

/// grpc-gateway's error inside a stream.
#[derive(Serialize)]
struct StreamError<'a> {
    grpc_code: i32,
    http_code: u16,
    message: &'a str,
    http_status: &'a str,
}

/// One line of a streamed response.
fn stream_line<R: Serialize>(response: Result<R, Status>) -> Bytes {
    let item = match &response {
        Ok(response) => serde_json::to_vec(&StreamItem::Result(response)),
        Err(status) => {
            let http = http_status(status.code());
            serde_json::to_vec(&StreamItem::<R>::Error(StreamError {
                grpc_code: status.code() as i32,
                http_code: http.as_u16(),
                message: status.message(),
                http_status: http.canonical_reason().unwrap_or_default(),
            }))
        }
    };
    let mut line = item.unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The HTTP status grpc-gateway v1 (etcd 3.4's) gives a gRPC code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::{
        LeaseKeepAliveRequest, RangeRequest, WatchRequest, WatchResponse,
    };

    #[test]
    fn requests_decode_as_etcds_gateway_does() {
        let request: RangeRequest =
            decode_first(br#"{"key":"Zm9v","limit":"2","sort_order":"DESCEND","x":1} junk"#)
                .unwrap();
        assert_eq!((request.key.as_slice(), request.limit), (&b"foo"[..], 2));
        assert_eq!(request.sort_order, 2);
        assert_eq!(
            decode_first::<RangeRequest>(b"").unwrap(),
            RangeRequest::default()
        );
        let truncated = decode_first::<RangeRequest>(br#"{"key":"Zm9v"#).unwrap_err();
        assert_eq!(
            (truncated.code(), truncated.message()),
            (Code::InvalidArgument, "unexpected EOF")
        );
        let watches = decode_all::<WatchRequest>(br#"{} {"cancel_request":{}}"#).unwrap();
        assert_eq!(watches.len(), 2);
        assert_eq!(
            decode_all::<LeaseKeepAliveRequest>(b"{")
                .unwrap_err()
                .code(),
            Code::Unknown
        );
    }

    #[test]
    fn streamed_lines_wrap_results_and_errors() {
        let line = stream_line(Ok(WatchResponse {
            created: true,
            ..WatchResponse::default()
        }));
        assert_eq!(&line[..], b"{\"result\":{\"created\":true}}\n");
        let line = stream_line::<WatchResponse>(Err(Status::not_found("gone")));
        assert_eq!(
            &line[..],
            &b"{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":\"gone\",\"http_status\":\"Not Found\"}}\n"[..]
        );
    }
}
