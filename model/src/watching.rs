//! The campaigns' watch of every key: starting it, and reading what it delivered (without
//! waiting, or up to a revision through progress notifications).

use kvstore::KeyRange;
use kvstore::watch::{WatchEvent, WatchRequest, WatchResponse, Watcher};

use crate::model::WatchedEvent;

/// The campaigns' watch: every key, from `start`, with progress on request.
pub(crate) fn watch_request(start: u64) -> WatchRequest {
    WatchRequest {
        progress_notify: true,
        ..WatchRequest::new(KeyRange::all()).from_revision(start)
    }
}

/// The events of one revision's watch response as the oracle records them.
fn watched(revision: u64, batch: Vec<WatchEvent>) -> impl Iterator<Item = WatchedEvent> {
    batch
        .into_iter()
        .map(move |e| (revision, e.key, e.value.map(|v| v.value)))
}

/// Every response `watcher` holds now, without waiting: its events.
pub(crate) fn peek_watch(watcher: &Watcher) -> Result<Vec<WatchedEvent>, String> {
    // Not a race with the dispatcher thread: everything deliverable now is buffered first.
    watcher.settle();
    let mut events = Vec::new();
    while let Some(response) = watcher.try_next().map_err(|e| e.to_string())? {
        if let WatchResponse::Events {
            revision,
            events: batch,
        } = response
        {
            events.extend(watched(revision, batch));
        }
    }
    Ok(events)
}

/// Reads `watcher` until a progress response says every event through `through` came; returns
/// the events, `(revision, key, value)`.
pub(crate) fn drain_watch(watcher: &Watcher, through: u64) -> Result<Vec<WatchedEvent>, String> {
    // The dispatcher is another thread: give it time (a stall, not slowness, is the failure).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut events = Vec::new();
    let mut last_progress = None;
    while std::time::Instant::now() < deadline {
        watcher.request_progress().map_err(|e| e.to_string())?;
        loop {
            match watcher.next_timeout(std::time::Duration::from_secs(30)) {
                Ok(Some(WatchResponse::Events {
                    revision,
                    events: batch,
                })) => events.extend(watched(revision, batch)),
                Ok(Some(WatchResponse::Progress { revision })) if revision >= through => {
                    return Ok(events);
                }
                Ok(Some(WatchResponse::Progress { revision })) => {
                    last_progress = Some(revision);
                    break;
                }
                Ok(None) => return Err("the watch ended or stalled".to_owned()),
                Err(e) => return Err(format!("the watch failed: {e}")),
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Err(format!(
        "the watch never reached revision {through} (its last progress: {last_progress:?})"
    ))
}
