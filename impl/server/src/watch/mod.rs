//! The Watch service: etcd's bidirectional watch stream (etcd v3.4's `serverWatchStream`) over
//! the engine's watchers. One task per stream (`stream`) reads the client's create, cancel and
//! progress requests and forwards every watcher's events; this module holds the service and the
//! conversion of engine events to `mvccpb::Event`.
//!
//! Invariants:
//! - No thread per watcher: a stream's task takes what its watchers buffered without blocking
//!   (`Watcher::try_next`), woken by its watchers when they have something to read
//!   (`Watcher::wake_when_ready`), with a timer as a fallback.
//! - Each watcher's events reach the client in revision order, each revision once, after the
//!   `created` response of its watch and before its `canceled` response.

mod stream;

use std::sync::Arc;

use kvstore::watch::{EventKind, WatchEvent};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Credentials;
use crate::context::Context;
use crate::keys::key_value;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchRequest, WatchResponse};
use crate::proto::mvccpb::{Event, KeyValue, event::EventType};

/// Responses buffered per stream before the server waits for the client to read them (the
/// engine's watchers keep buffering meanwhile; one that overflows is resumed, see `stream`).
const WATCH_SEND_BUFFER: usize = 128;

/// The Watch service over a [`Context`].
#[derive(Debug)]
pub(crate) struct WatchService {
    context: Arc<Context>,
}

impl WatchService {
    pub(crate) fn new(context: Arc<Context>) -> WatchService {
        WatchService { context }
    }

    /// Serves one watch stream reading the client's requests from `inbound` (the gRPC call's
    /// stream, or the JSON gateway's decoded body), as the user `credentials` name if auth is
    /// on.
    pub(crate) fn open(
        &self,
        inbound: impl Stream<Item = Result<WatchRequest, Status>> + Unpin + Send + 'static,
        credentials: Credentials,
    ) -> ReceiverStream<Result<WatchResponse, Status>> {
        let (sender, receiver) = mpsc::channel(WATCH_SEND_BUFFER);
        tokio::spawn(stream::run(
            Arc::clone(&self.context),
            inbound,
            credentials,
            sender,
        ));
        ReceiverStream::new(receiver)
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // As etcd, the stream opens whatever its token; each create resolves it again.
        let credentials = Credentials::of(&request);
        Ok(Response::new(self.open(request.into_inner(), credentials)))
    }
}

/// An engine event as etcd sends it: a put carries the new version; a delete carries the key
/// and the deletion's revision as `mod_revision`, every other field zero.
fn event(e: WatchEvent) -> Event {
    let prev_kv = e.prev.map(|prev| key_value(e.key.clone(), prev, false));
    let (kind, kv) = match (e.kind, e.value) {
        (EventKind::Put, Some(value)) => (EventType::Put, key_value(e.key, value, false)),
        (kind, _) => (
            match kind {
                EventKind::Put => EventType::Put,
                EventKind::Delete => EventType::Delete,
            },
            KeyValue {
                key: e.key,
                mod_revision: crate::revision::wire(e.revision),
                ..KeyValue::default()
            },
        ),
    };
    Event {
        r#type: kind as i32,
        kv: Some(kv),
        prev_kv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvstore::Versioned;

    #[test]
    fn delete_events_carry_the_key_and_the_revision() {
        let prev = Versioned {
            value: b"v".to_vec(),
            revision: 3,
            created_at_ms: 0,
            create_revision: 2,
            version: 2,
            lease: 0,
        };
        let e = event(WatchEvent {
            kind: EventKind::Delete,
            key: b"k".to_vec(),
            revision: 5,
            value: None,
            prev: Some(prev),
        });
        assert_eq!(e.r#type, EventType::Delete as i32);
        let kv = e.kv.unwrap_or_default();
        assert_eq!(
            (kv.key.as_slice(), kv.mod_revision, kv.version),
            (&b"k"[..], 6, 0)
        );
        assert_eq!(e.prev_kv.map(|p| p.mod_revision), Some(4));
    }
}
