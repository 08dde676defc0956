//! Opening the key index of a main database: the index database, then reconciling the revision
//! it records (`I`) with the main database's (`L`, made durable first).
//!
//! Protocol:
//! 1. Open the index database in `<db>/index/`; if it is corrupt (any [`Error::Corruption`]),
//!    wipe its files (the manifest first, so a crash in between leaves a directory that fails
//!    to open again) and open it empty. A revision record that does not decode counts as none.
//! 2. Register the index as the main database's observer (told of every revision above `L`),
//!    then sync the main database: every revision up to `L` is durable, so never taken back.
//! 3. `I == L`: nothing to do. `I < L` with `I` at or above the history horizon: catch up, each
//!    key written in `(I, L]` set to what it is at `L`. Otherwise (no record, `I > L`, or the
//!    history is compacted away): clear the index (its revision record first) and rebuild it
//!    from a scan at `L`, the revision record in the last batch only, reporting the keys posted
//!    to [`Options::progress`].
//! 4. The index is ready: it persists what the observer was told meanwhile once durable.
//!
//! Invariant: what this writes says what keys are at `L`, which is durable (step 2), so the
//! index's revision record never passes what the main database keeps (see `index`'s doc).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::db::{Db, ScanOptions, WriteBatch};
use crate::error::{Error, Result};
use crate::format::manifest::MANIFEST_FILE_NAME;
use crate::lease::LeaseExpiry;
use crate::options::{Durability, HistoryRetention, Options};
use crate::range::KeyRange;
use crate::vfs::Vfs;

use super::layout::{self, REVISION_KEY};
use super::maintain::{KeyIndex, write_states};

/// The index database's directory, inside the main database's.
pub(crate) const INDEX_DIR_NAME: &str = "index";

/// Keys a rebuild reads from the main database per index write.
const REBUILD_KEYS_PER_WRITE: usize = 4096;

/// Opens and reconciles the key index of `main` (see the module doc).
pub(crate) fn open_index(main: &Db) -> Result<Arc<KeyIndex>> {
    let inner = main.inner();
    let vfs = Arc::clone(&inner.vfs);
    let dir = inner.dir.join(INDEX_DIR_NAME);
    let options = index_options(&inner.options);
    let db = match Db::open_with_vfs(Arc::clone(&vfs), &dir, options.clone()) {
        Err(Error::Corruption { file, what, .. }) => {
            tracing::warn!(file = %file.display(), %what, "key index corrupt: rebuilding it");
            wipe(vfs.as_ref(), &dir)?;
            Db::open_with_vfs(Arc::clone(&vfs), &dir, options.clone())?
        }
        other => other?,
    };
    let recorded = match db.get(REVISION_KEY)? {
        Some(value) => layout::decode_revision(&value, &dir)
            .inspect_err(|e| tracing::warn!(%e, "key index revision unreadable: rebuilding"))
            .ok(),
        None => None,
    };
    let index = Arc::new(KeyIndex::new(db));
    let revision = main.observe(Arc::clone(&index) as _)?;
    main.sync()?;
    let horizon = main.history_horizon();
    let caught_up = match recorded {
        Some(i) if i == revision => true,
        Some(i) if i < revision && i >= horizon => {
            tracing::info!(from = i, to = revision, "key index: catching up");
            match catch_up(main, &index.db, i, revision) {
                // The horizon moved past `i` since it was read: the history is gone.
                Err(Error::Compacted { .. }) => false,
                other => other.map(|()| true)?,
            }
        }
        _ => false,
    };
    if !caught_up {
        tracing::info!(?recorded, revision, horizon, "key index: rebuilding");
        clear(&index.db)?;
        rebuild(main, &index.db, revision)?;
    }
    index.ready(revision);
    Ok(index)
}

/// The index database's options: the main database's tunables, writes buffered (the index is
/// rebuilt from the main database, never the other way), no history kept, no lease thread.
fn index_options(main: &Options) -> Options {
    Options {
        durability: Durability::Buffered,
        history_retention: HistoryRetention::Revisions(0),
        lease_expiry: LeaseExpiry::Manual,
        key_index: false,
        ..main.clone()
    }
}

/// Removes every file of the index database in `dir`, the manifest first, then syncs `dir`.
fn wipe(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let mut names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    names.sort_by_key(|name| name != MANIFEST_FILE_NAME);
    for name in names {
        let path = dir.join(&name);
        match vfs.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    vfs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}

/// Empties the index database: the revision record first (so a crash part way leaves an index
/// without one, rebuilt at the next open), then every other key, in bounded batches.
fn clear(index: &Db) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.delete(REVISION_KEY);
    index.write(batch)?;
    let mut batch = WriteBatch::new();
    for key in index.scan(KeyRange::all(), ScanOptions::default())?.keys() {
        batch.delete(&key?);
        if batch.len() >= layout::BATCH_OPS_MAX {
            index.write(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        index.write(batch)?;
    }
    Ok(())
}

/// Sets every key written in `(recorded, revision]` to what it is at `revision`.
fn catch_up(main: &Db, index: &Db, recorded: u64, revision: u64) -> Result<()> {
    let written = main.inner().keys_written(recorded, revision)?;
    let at = main.snapshot_at(Some(revision))?;
    let mut states = BTreeMap::new();
    for key in written {
        let live = at.get(&key)?.is_some();
        states.insert(key, live);
    }
    write_states(index, &states, Some(revision))
}

/// Posts every key live at `revision` into the (empty) index database, reporting the keys
/// posted to the main database's [`Options::progress`].
fn rebuild(main: &Db, index: &Db, revision: u64) -> Result<()> {
    let progress = &main.inner().options.progress.0;
    progress.start(None);
    let scan = ScanOptions {
        revision: Some(revision),
        ..ScanOptions::default()
    };
    let mut states = BTreeMap::new();
    for key in main.scan(KeyRange::all(), scan)?.keys() {
        states.insert(key?, true);
        if states.len() >= REBUILD_KEYS_PER_WRITE {
            write_states(index, &std::mem::take(&mut states), None)?;
            progress.advance(REBUILD_KEYS_PER_WRITE as u64);
        }
    }
    let last = states.len() as u64;
    write_states(index, &states, Some(revision))?;
    progress.advance(last);
    Ok(())
}
