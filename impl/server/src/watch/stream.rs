//! One watch stream: its watchers, the client's requests, and the responses sent back (etcd
//! v3.4's `serverWatchStream.recvLoop` and `sendLoop`).
//!
//! - Create: `key` empty means `"\0"`; keys as Range names them; `[key, range_end)` with no key
//!   is refused (`created` and `canceled`, watch id -1, `mvcc: watcher range is empty`), as is
//!   a watch id already in use (`mvcc: duplicate watch ID provided on the WatchStream`). Watch id
//!   0 means the server picks: the lowest unused id at or above the last picked, from 0. The
//!   `created` response's header is the current revision `r`; a watch without a start revision
//!   starts at `r + 1`. A start revision at or below the engine's history horizon answers
//!   `created`, then a response with `compact_revision` = the horizon and `canceled` (header
//!   revision 0, as etcd's).
//! - Events: the history a watch replays (revisions up to `r`) is sent as one response with
//!   header `r`, as etcd sends an unsynced watcher's catch-up; each later revision is one
//!   response with that revision in its header.
//! - Auth: with auth enabled, a create needs READ on its range (etcd's `isWatchPermitted`);
//!   refused, it answers `created` and `canceled`, watch id -1, and etcd 3.4.23's reason, the
//!   failed check's gRPC error as Go prints it (`rpc error: code = PermissionDenied desc =
//!   etcdserver: permission denied`; `Unauthenticated ... invalid auth token` when the
//!   stream's token names no user, any more; `InvalidArgument ... user name is empty` without
//!   a token). Watches already created are not checked again.
//! - Cancel: `canceled` with the current revision; an unknown id is ignored.
//! - Progress request: every watcher's buffered events are sent, then one response with watch
//!   id -1 and the current revision (etcd v3.4 sends that response at once).
//! - Progress notify: every `watch_progress_interval`, a watch created with `progress_notify`
//!   that sent no event since the last tick gets an empty response with the revision up to
//!   which its events were delivered (the engine's in-order progress marker).
//!
//! Invariants:
//! - A watcher whose engine buffer overflowed (`WatcherLagged { resume_from }`) is started
//!   again from `resume_from` under the same id: the client sees no gap and no duplicate, or,
//!   if that revision was compacted meanwhile, the compacted cancellation etcd sends.
//! - The stream ends at shutdown, when the client goes away, or when its inbound stream
//!   fails; ending drops (cancels) every engine watcher.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use kvstore::watch::{WatchRequest as EngineWatch, WatchResponse as EngineResponse, Watcher};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, interval_at, sleep};
use tokio_stream::StreamExt;
use tonic::Status;

use super::event;
use crate::auth::{Access, Credentials};
use crate::context::Context;
use crate::error::EtcdError;
use crate::keys::{Keys, keys};
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse};
use crate::proto::mvccpb::Event;

/// Longest wait between two polls of an idle stream's watchers: a fallback only, the watchers
/// wake the stream when they have something to read.
const POLL_FALLBACK: Duration = Duration::from_millis(100);
/// Most engine responses taken from one watcher per poll, so one busy watcher cannot starve
/// the others of a stream.
const DRAIN_RESPONSES_MAX: usize = 1024;
/// Most watches one stream may hold.
const WATCHES_PER_STREAM_MAX: usize = 65_536;
/// The watch id of a response that belongs to no watch (clientv3's `InvalidWatchID`).
const NO_WATCH_ID: i64 = -1;

/// etcd's reason for a watch of a range that holds no key.
const EMPTY_RANGE: &str = "mvcc: watcher range is empty";
/// etcd's reason for a watch id already in use on the stream.
const DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

type Sender = mpsc::Sender<Result<WatchResponse, Status>>;

/// etcd's reason for a watch its caller may not make: the gRPC error of the failed check as
/// Go prints it (`invalid auth token`, `user name is empty`, else `permission denied`).
fn refusal_reason(refused: &EtcdError) -> String {
    let (code, error) = match refused {
        EtcdError::InvalidAuthToken => ("Unauthenticated", refused),
        EtcdError::UserEmpty => ("InvalidArgument", refused),
        _ => ("PermissionDenied", &EtcdError::PermissionDenied),
    };
    format!("rpc error: code = {code} desc = {error}")
}

/// The client went away (or the stream failed): stop.
struct Gone;

/// Why starting an engine watcher failed.
enum StartFailure {
    Compacted { horizon: u64 },
    Other(String),
}

/// One watch of the stream.
struct Watching {
    watcher: Watcher,
    /// What the engine watches (kept to start it again after an overflow).
    request: EngineWatch,
    /// Revisions up to this one are history, sent coalesced.
    history_until: u64,
    progress_notify: bool,
    /// Whether an event was sent since the last progress tick.
    sent_since_tick: bool,
}

/// What one drain of a watcher found.
enum Drained {
    /// Nothing more is buffered now.
    Idle,
    /// The budget ran out with more buffered.
    More,
    /// The watcher ended without an error (the database closed).
    Done,
    /// The engine watcher overflowed: start it again from this revision.
    Lagged(u64),
    /// The watcher failed.
    Failed(String),
}

/// What woke the stream's loop.
enum Step {
    Stop,
    Request(Option<Result<WatchRequest, Status>>),
    /// A watcher has something to read (or the poll had more to do, or the fallback ran out).
    Woken,
    Progress,
}

struct Stream {
    context: Arc<Context>,
    /// Who the stream was opened by: its token, its client certificate.
    credentials: Credentials,
    sender: Sender,
    watches: BTreeMap<i64, Watching>,
    next_id: i64,
}

/// Serves one watch stream until it ends (see the module doc).
pub(super) async fn run(
    context: Arc<Context>,
    mut inbound: impl tokio_stream::Stream<Item = Result<WatchRequest, Status>> + Unpin,
    credentials: Credentials,
    sender: Sender,
) {
    let mut stream = Stream {
        context: Arc::clone(&context),
        credentials,
        sender,
        watches: BTreeMap::new(),
        next_id: 0,
    };
    let mut shutdown = context.shutdown.clone();
    let wake = Arc::new(StreamWake(Notify::new()));
    let waker = Waker::from(Arc::clone(&wake));
    let period = context.limits.watch_progress_interval;
    let mut progress = interval_at(Instant::now() + period, period);
    let mut inbound_open = true;
    loop {
        if context.is_shutting_down() {
            break;
        }
        // Registered before the poll, so a watcher's wake during the poll still wakes the loop.
        let woken = wake.0.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let busy = match stream.poll().await {
            Err(Gone) => break,
            // Registered after every poll, also one that sent something: a watcher's next
            // response must wake the loop, not wait for the next turn of a timer.
            Ok(active) => stream.wake_when_ready(&waker) || active,
        };
        let step = tokio::select! {
            _ = shutdown.changed() => Step::Stop,
            request = inbound.next(), if inbound_open => Step::Request(request),
            () = &mut woken => Step::Woken,
            () = again(busy) => Step::Woken,
            _ = progress.tick() => Step::Progress,
            () = stream.sender.closed() => Step::Stop,
        };
        let outcome = match step {
            Step::Stop => Err(Gone),
            Step::Request(Some(Ok(request))) => stream.handle(request).await,
            Step::Request(Some(Err(_))) => Err(Gone),
            Step::Request(None) => {
                // etcd keeps sending after the client closes its side.
                inbound_open = false;
                Ok(())
            }
            Step::Woken => Ok(()),
            Step::Progress => {
                stream.progress_tick();
                Ok(())
            }
        };
        if outcome.is_err() {
            break;
        }
    }
}

/// Completes at once (after letting other tasks run) if the loop is `busy`, else after the
/// fallback interval. Not `sleep(Duration::ZERO)`: tokio rounds a sleep up to its next
/// millisecond tick.
async fn again(busy: bool) {
    if busy {
        tokio::task::yield_now().await;
    } else {
        sleep(POLL_FALLBACK).await;
    }
}

/// Wakes a stream's loop when one of its engine watchers has something to read.
struct StreamWake(Notify);

impl Wake for StreamWake {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

impl Stream {
    async fn send(&self, response: WatchResponse) -> Result<(), Gone> {
        self.sender.send(Ok(response)).await.map_err(|_| Gone)
    }

    /// The current revision; a failure (the database closed) ends the stream with the error.
    async fn current(&self) -> Result<u64, Gone> {
        match self.context.current_revision() {
            Ok(revision) => Ok(revision),
            Err(e) => {
                let _ = self.sender.send(Err(Status::from(e))).await;
                Err(Gone)
            }
        }
    }

    fn header(&self, revision: u64) -> Option<ResponseHeader> {
        Some(self.context.header(revision))
    }

    async fn handle(&mut self, request: WatchRequest) -> Result<(), Gone> {
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => {
                if let Some(watching) = self.watches.remove(&cancel.watch_id) {
                    watching.watcher.cancel();
                    let revision = self.current().await?;
                    self.send(WatchResponse {
                        header: self.header(revision),
                        watch_id: cancel.watch_id,
                        canceled: true,
                        ..WatchResponse::default()
                    })
                    .await?;
                }
                Ok(())
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                self.poll().await?;
                let revision = self.current().await?;
                self.send(WatchResponse {
                    header: self.header(revision),
                    watch_id: NO_WATCH_ID,
                    ..WatchResponse::default()
                })
                .await
            }
            // etcd ignores a request it does not know.
            None => Ok(()),
        }
    }

    /// A watch refused before it started: `created` and `canceled` with watch id -1.
    async fn refuse(&self, reason: &str) -> Result<(), Gone> {
        let revision = self.current().await?;
        self.send(WatchResponse {
            header: self.header(revision),
            watch_id: NO_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_owned(),
            ..WatchResponse::default()
        })
        .await
    }

    /// The id for a watch asking for `requested` (0: the server picks); `None` if it is taken.
    fn assign_id(&mut self, requested: i64) -> Option<i64> {
        if requested != 0 {
            return (!self.watches.contains_key(&requested)).then_some(requested);
        }
        while self.watches.contains_key(&self.next_id) {
            self.next_id = self.next_id.saturating_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        Some(id)
    }

    async fn create(&mut self, create: WatchCreateRequest) -> Result<(), Gone> {
        let key = if create.key.is_empty() {
            vec![0]
        } else {
            create.key.clone()
        };
        let permitted = self
            .context
            .auth
            .caller_with(&self.credentials)
            .and_then(|caller| caller.check(Access::Read, &key, &create.range_end));
        if let Err(refused) = permitted {
            return self.refuse(&refusal_reason(&refused)).await;
        }
        let Keys::Range(range) = keys(&key, &create.range_end) else {
            return self.refuse(EMPTY_RANGE).await;
        };
        if self.watches.len() >= WATCHES_PER_STREAM_MAX {
            return self
                .refuse(&format!(
                    "kvstore: a watch stream holds at most {WATCHES_PER_STREAM_MAX} watches"
                ))
                .await;
        }
        let Some(id) = self.assign_id(create.watch_id) else {
            return self.refuse(DUPLICATE_ID).await;
        };
        let filters: Vec<FilterType> = create.filters().collect();
        let mut request = EngineWatch::new(range);
        request.prev_kv = create.prev_kv;
        request.no_put = filters.contains(&FilterType::Noput);
        request.no_delete = filters.contains(&FilterType::Nodelete);
        request.progress_notify = create.progress_notify;
        // A wire start revision w is engine revision w - 1; wire 1 (before any write) is the
        // engine's first, 1.
        let start = u64::try_from(create.start_revision)
            .ok()
            .filter(|&r| r != 0)
            .map(|r| crate::revision::engine(r).max(1));
        let current = self.current().await?;
        request.start_revision = Some(start.unwrap_or(current.saturating_add(1)));
        let started = self.start(request.clone()).await;
        self.send(WatchResponse {
            header: self.header(current),
            watch_id: id,
            created: true,
            ..WatchResponse::default()
        })
        .await?;
        match started {
            Ok(watcher) => {
                self.watches.insert(
                    id,
                    Watching {
                        watcher,
                        request,
                        history_until: current,
                        progress_notify: create.progress_notify,
                        sent_since_tick: false,
                    },
                );
                Ok(())
            }
            Err(failure) => self.cancel_failed(id, failure).await,
        }
    }

    /// Starts an engine watcher on the blocking pool (it replays history from storage).
    async fn start(&self, request: EngineWatch) -> Result<Watcher, StartFailure> {
        let context = Arc::clone(&self.context);
        match tokio::task::spawn_blocking(move || context.db().watch(request)).await {
            Ok(Ok(watcher)) => Ok(watcher),
            Ok(Err(kvstore::Error::Compacted { horizon, .. })) => {
                Err(StartFailure::Compacted { horizon })
            }
            Ok(Err(e)) => Err(StartFailure::Other(EtcdError::from(e).to_string())),
            Err(e) => Err(StartFailure::Other(format!(
                "kvstore: starting the watch failed: {e}"
            ))),
        }
    }

    /// Tells the client watch `id` ended because it could not (re)start.
    async fn cancel_failed(&self, id: i64, failure: StartFailure) -> Result<(), Gone> {
        let response = match failure {
            StartFailure::Compacted { horizon } => WatchResponse {
                header: Some(self.context.identity.header_without_revision()),
                watch_id: id,
                canceled: true,
                compact_revision: crate::revision::wire(horizon),
                ..WatchResponse::default()
            },
            StartFailure::Other(reason) => self.failed(id, reason).await?,
        };
        self.send(response).await
    }

    /// The cancellation of watch `id` for `reason`.
    async fn failed(&self, id: i64, reason: String) -> Result<WatchResponse, Gone> {
        let revision = self.current().await?;
        Ok(WatchResponse {
            header: self.header(revision),
            watch_id: id,
            canceled: true,
            cancel_reason: reason,
            ..WatchResponse::default()
        })
    }

    /// Sends what every watcher buffered; whether anything was sent (or more is buffered).
    /// Registers `waker` with every watcher: `true` if one has something to read already.
    fn wake_when_ready(&self, waker: &Waker) -> bool {
        // Every watcher registers: no short circuit.
        let mut ready = false;
        for watching in self.watches.values() {
            ready |= watching.watcher.wake_when_ready(waker);
        }
        ready
    }

    async fn poll(&mut self) -> Result<bool, Gone> {
        let ids: Vec<i64> = self.watches.keys().copied().collect();
        let mut active = false;
        for id in ids {
            active |= self.poll_one(id).await?;
        }
        Ok(active)
    }

    async fn poll_one(&mut self, id: i64) -> Result<bool, Gone> {
        let Some(watching) = self.watches.get_mut(&id) else {
            return Ok(false);
        };
        let mut history: Vec<Event> = Vec::new();
        let mut responses: Vec<WatchResponse> = Vec::new();
        let drained = drain(watching, id, &mut history, &mut responses, &self.context);
        let history_until = watching.history_until;
        if !history.is_empty() || responses.iter().any(|r| !r.events.is_empty()) {
            watching.sent_since_tick = true;
        }
        let active = !history.is_empty() || !responses.is_empty();
        if !history.is_empty() {
            self.send(WatchResponse {
                header: self.header(history_until),
                watch_id: id,
                events: history,
                ..WatchResponse::default()
            })
            .await?;
        }
        for response in responses {
            self.send(response).await?;
        }
        match drained {
            Drained::Idle => Ok(active),
            Drained::More => Ok(true),
            Drained::Done => {
                self.watches.remove(&id);
                Ok(active)
            }
            Drained::Lagged(resume_from) => {
                self.resume(id, resume_from).await?;
                Ok(true)
            }
            Drained::Failed(reason) => {
                self.watches.remove(&id);
                let response = self.failed(id, reason).await?;
                self.send(response).await?;
                Ok(true)
            }
        }
    }

    /// Starts watch `id` again from `resume_from` after its engine buffer overflowed.
    async fn resume(&mut self, id: i64, resume_from: u64) -> Result<(), Gone> {
        let Some(watching) = self.watches.get(&id) else {
            return Ok(());
        };
        let mut request = watching.request.clone();
        request.start_revision = Some(resume_from);
        let current = self.current().await?;
        match self.start(request.clone()).await {
            Ok(watcher) => {
                if let Some(watching) = self.watches.get_mut(&id) {
                    watching.watcher = watcher;
                    watching.request = request;
                    watching.history_until = current;
                }
                Ok(())
            }
            Err(failure) => {
                self.watches.remove(&id);
                self.cancel_failed(id, failure).await
            }
        }
    }

    /// A progress tick: watches with `progress_notify` that sent nothing since the last tick
    /// ask their engine watcher for an in-order progress marker.
    fn progress_tick(&mut self) {
        for watching in self.watches.values_mut() {
            if watching.progress_notify && !watching.sent_since_tick {
                // Only fails for a watch created without progress_notify.
                let _ = watching.watcher.request_progress();
            }
            watching.sent_since_tick = false;
        }
    }
}

/// Takes what `watching` buffered: history events into `history`, later revisions and
/// progress markers into `responses` (for watch `id`).
fn drain(
    watching: &mut Watching,
    id: i64,
    history: &mut Vec<Event>,
    responses: &mut Vec<WatchResponse>,
    context: &Context,
) -> Drained {
    for _ in 0..DRAIN_RESPONSES_MAX {
        match watching.watcher.try_next() {
            Ok(Some(EngineResponse::Events { revision, events })) => {
                let events = events.into_iter().map(event);
                if revision <= watching.history_until {
                    history.extend(events);
                } else {
                    responses.push(WatchResponse {
                        header: Some(context.header(revision)),
                        watch_id: id,
                        events: events.collect(),
                        ..WatchResponse::default()
                    });
                }
            }
            Ok(Some(EngineResponse::Progress { revision })) => {
                responses.push(WatchResponse {
                    header: Some(context.header(revision)),
                    watch_id: id,
                    ..WatchResponse::default()
                });
            }
            Ok(None) if watching.watcher.is_done() => return Drained::Done,
            Ok(None) => return Drained::Idle,
            Err(kvstore::Error::WatcherLagged { resume_from }) => {
                return Drained::Lagged(resume_from);
            }
            Err(e) => return Drained::Failed(EtcdError::from(e).to_string()),
        }
    }
    Drained::More
}
