//! Snapshots: built from the engine's export stream (`spec/FORMAT.md` § 6) with the applied log
//! id and membership; installed by importing the stream into the next generation and switching
//! the state pointer (see [`super::generation`]).
//!
//! Invariants:
//! - A built snapshot's last log id is the *durable* applied log id (see the state machine's
//!   module doc), taken under the same lock as the export: its data is exactly the entries up
//!   to it, and openraft may purge the log up to it without a restart ever needing a purged
//!   entry.
//! - An install replaces the data and the applied log id together (one pointer rename); the
//!   old generation is closed and emptied only after the pointer names the new one.

use std::sync::Arc;

use openraft::{RaftSnapshotBuilder, StorageError};

use super::generation::{clear_dir, generation_dir, write_pointer};
use super::{Shared, StoredSnapshot};
use crate::error::{Error, read_sm};
use crate::format::StatePointer;
use crate::{SnapshotMeta, TypeConfig};

/// Builds a snapshot of the live generation (openraft's snapshot builder).
#[derive(Debug)]
pub struct SnapshotBuilder {
    shared: Shared,
}

impl SnapshotBuilder {
    pub(crate) fn new(shared: Shared) -> Self {
        SnapshotBuilder { shared }
    }

    fn build(&self) -> Result<StoredSnapshot, Error> {
        let mut live = self.shared.lock();
        let (last_log_id, last_membership) = self.shared.applied(&live)?;
        let mut bytes = Vec::new();
        live.db.export(&mut bytes)?;
        live.built = live.built.saturating_add(1);
        let snapshot_id = match last_log_id {
            Some(id) => format!(
                "{}-{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index, live.built
            ),
            None => format!("none-{}", live.built),
        };
        let snapshot = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id,
            },
            bytes,
        };
        live.current = Some(snapshot.clone());
        Ok(snapshot)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::Snapshot<TypeConfig>, StorageError<u64>> {
        let snapshot = self.build().map_err(read_sm)?;
        Ok(openraft::Snapshot {
            meta: snapshot.meta,
            snapshot: Box::new(std::io::Cursor::new(snapshot.bytes)),
        })
    }
}

/// Installs the export stream `bytes` as the state described by `meta`.
pub(crate) fn install(shared: &Shared, meta: &SnapshotMeta, bytes: Vec<u8>) -> Result<(), Error> {
    let vfs = shared.vfs.as_ref();
    let mut live = shared.lock();
    let old = live.pointer.generation;
    let generation = old
        .checked_add(1)
        .ok_or_else(|| Error::LogInconsistent("state machine generations exhausted".to_owned()))?;
    let path = generation_dir(&shared.dir, generation);
    clear_dir(vfs, &path)?;
    let (db, _summary) = kvstore::Db::import_with_vfs(
        Arc::clone(&shared.vfs),
        &path,
        shared.options.clone(),
        &mut bytes.as_slice(),
        "raft snapshot",
    )?;
    let pointer = StatePointer {
        generation,
        installed: Some(meta.clone()),
    };
    write_pointer(vfs, &shared.dir, &pointer)?;
    let previous = std::mem::replace(&mut live.db, db);
    live.pointer = pointer;
    live.current = Some(StoredSnapshot {
        meta: meta.clone(),
        bytes,
    });
    if let Err(error) = previous.close() {
        tracing::warn!(%error, generation = old, "closing the replaced state machine failed");
    }
    clear_dir(vfs, &generation_dir(&shared.dir, old))
}
