//! Recovery: opening a database directory.
//!
//! Protocol:
//! 1. Validate the options; create the directory if missing; take `LOCK` (held by another
//!    handle: [`Error::Locked`]).
//! 2. Load `manifest.json`. If it is missing: a directory holding WAL segments or SSTs is
//!    [`Error::Corruption`] (the root of the database is gone, not a new database); otherwise
//!    persist an empty manifest before anything else.
//! 3. Open every SST the manifest lists: its reader verifies it, and its file size and smallest
//!    and largest keys must equal the manifest's (else [`Error::Corruption`] naming the file and
//!    what disagrees). At most `max_open_tables` stay open; the others are reopened, and
//!    checked again, on first use.
//! 4. Delete SSTs the manifest does not list and a stale `manifest.json.tmp`: leftovers of a crash
//!    in a flush or compaction before (or after) its manifest was persisted.
//! 5. Recover the WAL from the manifest's `walOffset` (a torn tail is truncated durably; proven
//!    corruption is an error unless `salvage_wal`), and replay each record into a fresh memtable,
//!    a batch all at once. Revisions must be strictly increasing and above the manifest's
//!    `lastRevision`; the counter resumes at the largest one seen.
//! 6. Open the WAL writer at the recovered end and remove segments below `walOffset`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};
use crate::format::manifest::{MANIFEST_FILE_NAME, MANIFEST_TMP_FILE_NAME, Manifest};
use crate::format::wal::{WalRecord, parse_segment_file_name};
use crate::manifest::{self, parse_sst_file_name};
use crate::memtable::MemTable;
use crate::options::Options;
use crate::sst::BlockCache;
use crate::vfs::Vfs;
use crate::wal::{self, WalWriter};

use super::batch::into_entries;
use super::inner::{Inner, State, Tree, Writer};
use super::tables::TableCache;

/// The lock file's name in the database directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Opens (or creates) the database at `dir`; see the module doc.
pub(crate) fn open_inner(vfs: Arc<dyn Vfs>, dir: &Path, options: Options) -> Result<Inner> {
    options.validate()?;
    vfs.create_dir_all(dir)
        .map_err(|e| Error::io("create_dir_all", dir, e))?;
    let lock_path = dir.join(LOCK_FILE_NAME);
    let dir_lock = vfs.lock(&lock_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: lock_path.clone(),
            }
        } else {
            Error::io("lock", &lock_path, e)
        }
    })?;
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let manifest = load_or_create(vfs.as_ref(), dir, &names)?;
    // Creating a manifest replaces a stale tmp: list again for the cleanup below.
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let manifest_path = dir.join(MANIFEST_FILE_NAME);
    let version = manifest::to_version(&manifest, options.max_levels, &manifest_path)?;
    let cache = Arc::new(BlockCache::new(options.block_cache_size_bytes));
    let tables = Arc::new(TableCache::new(
        Arc::clone(&vfs),
        dir,
        Arc::clone(&cache),
        options.max_open_tables,
    )?);
    for level in 0..version.num_levels() {
        for file in version.files(level) {
            tables.get(file)?;
        }
    }
    let tree = Tree::new(version, &rustc_hash::FxHashMap::default(), tables);
    let version = &tree.version;
    remove_leftovers(vfs.as_ref(), dir, &names, |n| tree.files.contains_key(&n))?;
    let mut recovered = wal::recover(vfs.as_ref(), dir, version.wal_offset(), options.salvage_wal)?;
    if recovered.truncated_bytes > 0 {
        tracing::warn!(
            bytes = recovered.truncated_bytes,
            "truncated a torn WAL tail"
        );
    }
    let (memtable, last_revision) = replay(
        std::mem::take(&mut recovered.records),
        version.last_revision(),
        dir,
    )?;
    let mut wal = WalWriter::open(
        Arc::clone(&vfs),
        dir,
        &recovered,
        options.wal_segment_size_bytes,
    )?;
    wal.remove_segments_below(version.wal_offset())?;
    let next_file_number = version.next_file_number();
    Ok(Inner {
        vfs,
        dir: dir.to_path_buf(),
        cache,
        state: Mutex::new(State::new(Arc::new(memtable), Arc::new(tree))),
        writer: Mutex::new(Writer { wal, last_revision }),
        queue: Mutex::default(),
        queue_cv: Condvar::new(),
        work: Mutex::new(()),
        bg: Mutex::default(),
        bg_cv: Condvar::new(),
        stall_cv: Condvar::new(),
        visible: AtomicU64::new(last_revision),
        next_file_number: AtomicU64::new(next_file_number),
        commits: AtomicU64::new(0),
        commit_syncs: AtomicU64::new(0),
        failed: Mutex::new(None),
        closed: AtomicBool::new(false),
        dir_lock: Mutex::new(Some(dir_lock)),
        options,
    })
}

/// Step 2 of the module doc.
fn load_or_create(vfs: &dyn Vfs, dir: &Path, names: &[String]) -> Result<Manifest> {
    if let Some(m) = manifest::load(vfs, dir)? {
        return Ok(m);
    }
    let data_file = names
        .iter()
        .find(|n| parse_segment_file_name(n).is_some() || parse_sst_file_name(n).is_some());
    if let Some(name) = data_file {
        return Err(Error::Corruption {
            file: dir.join(MANIFEST_FILE_NAME),
            offset: 0,
            what: format!("manifest is missing but the directory holds data file {name}"),
        });
    }
    let m = Manifest::default();
    manifest::persist(vfs, dir, &m)?;
    Ok(m)
}

/// Step 4 of the module doc.
fn remove_leftovers(
    vfs: &dyn Vfs,
    dir: &Path,
    names: &[String],
    is_live: impl Fn(u64) -> bool,
) -> Result<()> {
    let mut removed = false;
    for name in names {
        let orphan = match parse_sst_file_name(name) {
            Some(n) => !is_live(n),
            None => name == MANIFEST_TMP_FILE_NAME,
        };
        if orphan {
            let path = dir.join(name);
            match vfs.remove(&path) {
                Ok(()) => removed = true,
                // Listed but already gone: nothing left to clean.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
    }
    if removed {
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(())
}

/// Step 5 of the module doc: the recovered memtable and the last revision.
fn replay(
    records: Vec<(u64, WalRecord)>,
    mut last_revision: u64,
    dir: &Path,
) -> Result<(MemTable, u64)> {
    let memtable = MemTable::new();
    for (offset, record) in records {
        if record.revision <= last_revision {
            return Err(Error::Corruption {
                file: dir.to_path_buf(),
                offset,
                what: format!(
                    "WAL record at logical offset {offset} has revision {} not above {last_revision}",
                    record.revision
                ),
            });
        }
        last_revision = record.revision;
        for entry in into_entries(record.body, record.revision, offset, record.created_at_ms) {
            memtable.insert(entry);
        }
    }
    Ok((memtable, last_revision))
}
