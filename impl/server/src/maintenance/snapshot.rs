//! Snapshot: the whole store streamed to the client, as etcd's `Maintenance.Snapshot`, in
//! kvstore's export format (`spec/FORMAT.md` § 6) instead of a bolt file, framed as etcd frames
//! its snapshots (§ 6.1: zero padding to a multiple of 512 bytes, then a SHA-256), so that
//! `etcdctl snapshot save` accepts it, and the file it writes is one `kvstore import` reads.
//!
//! The export is first spooled to an unnamed temporary file (removed by the OS when closed),
//! so that every message can say how many export bytes follow it (`remaining_bytes`), as
//! etcd's do; it is sent in chunks of [`SNAPSHOT_CHUNK_BYTES`], then one last message carries
//! the framing with `remaining_bytes` 0 (etcd's last message carries its digest the same way).
//! The first message's header names the revision the snapshot is consistent at; etcd 3.4
//! sends no header, and its clients ignore it.
//!
//! Invariants:
//! - The blobs, concatenated, are exactly one export (consistent at one revision while writes
//!   go on) followed by its framing.
//! - The export and the reads of the spool run on the blocking pool; a client that goes away
//!   ends the work at the next chunk; a shutdown ends the stream with `etcdserver: server
//!   stopped`.

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use kvstore::format::etcd_snapshot::SnapshotDigest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::proto::etcdserverpb::SnapshotResponse;

/// Bytes of the export per message (etcd's `snapshotSendBufferSize`).
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// Chunks buffered ahead of a slow client.
const SNAPSHOT_SEND_BUFFER: usize = 4;

/// The stream of a Snapshot call.
pub(crate) type SnapshotStream = ReceiverStream<Result<SnapshotResponse, Status>>;

/// Starts a snapshot for one call and returns its response stream.
pub(crate) fn snapshot(context: &Arc<Context>) -> SnapshotStream {
    let (sender, receiver) = mpsc::channel(SNAPSHOT_SEND_BUFFER);
    let context = Arc::clone(context);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = send_snapshot(&context, &sender) {
            tracing::warn!(%error, "snapshot failed");
            // The client may be gone already; nothing else to tell.
            let _ = sender.blocking_send(Err(Status::from(error)));
        }
    });
    ReceiverStream::new(receiver)
}

/// Spools an export and sends it in chunks; `Ok` also when the client went away.
fn send_snapshot(
    context: &Context,
    sender: &mpsc::Sender<Result<SnapshotResponse, Status>>,
) -> EtcdResult<()> {
    let mut spool = tempfile::tempfile().map_err(EtcdError::SnapshotSpool)?;
    let summary = {
        let mut out = BufWriter::new(&mut spool);
        let summary = context.db().export(&mut out)?;
        out.flush().map_err(EtcdError::SnapshotSpool)?;
        summary
    };
    spool
        .seek(SeekFrom::Start(0))
        .map_err(EtcdError::SnapshotSpool)?;
    tracing::info!(
        revision = summary.revision,
        bytes = summary.bytes,
        "sending a snapshot"
    );
    let mut header = Some(context.header(summary.revision));
    let mut digest = SnapshotDigest::new();
    let mut remaining = summary.bytes;
    while remaining > 0 {
        if context.is_shutting_down() {
            return Err(EtcdError::Stopped);
        }
        let chunk_len = remaining.min(SNAPSHOT_CHUNK_BYTES as u64);
        let mut blob = Vec::new();
        let read = (&mut spool)
            .take(chunk_len)
            .read_to_end(&mut blob)
            .map_err(EtcdError::SnapshotSpool)?;
        if (read as u64) < chunk_len {
            return Err(EtcdError::SnapshotSpool(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )));
        }
        digest.update(&blob);
        remaining -= chunk_len;
        let response = SnapshotResponse {
            header: header.take(),
            remaining_bytes: remaining,
            blob,
        };
        if sender.blocking_send(Ok(response)).is_err() {
            tracing::info!("snapshot client went away");
            return Ok(());
        }
    }
    let framing = SnapshotResponse {
        header: header.take(),
        remaining_bytes: 0,
        blob: digest.framing(),
    };
    if sender.blocking_send(Ok(framing)).is_err() {
        tracing::info!("snapshot client went away");
    }
    Ok(())
}
