//! Recovery: opening a database directory.
//!
//! Protocol:
//! 1. Validate the options; create the directory if missing; take `LOCK` (held by another
//!    handle: [`Error::Locked`]).
//!
//! [`Options::read_only`] changes nothing on disk: no directory is made, `LOCK` is taken
//! shared (other read-only openers coexist, a writer is kept out), a missing manifest is
//! [`Error::InvalidArgument`], step 4 is skipped, step 5 replays up to a torn tail without
//! cutting it, and step 6 makes a writer that refuses every append
//! ([`WalWriter::read_only`]), removing nothing. Every file is opened for reading only
//! ([`Vfs::open_read`]; the lock file by [`Vfs::lock_shared`]), so the open works on files it
//! may not write.
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
//!    a batch all at once, and each lease grant and revocation into the lease table the manifest
//!    lists. The revisions of records that change keys must be strictly increasing and above the
//!    manifest's `lastRevision`, and a record that changes none must carry the revision before it
//!    (else [`Error::Corruption`] naming the segment file and the record's offset in it); the
//!    counter resumes at the largest one seen. Likewise the stamps records carry must not
//!    decrease, the first not below the manifest's `lastStamp`; the last stamp resumes at the
//!    largest of those.
//! 6. Open the WAL writer at the recovered end and remove segments below `walOffset`.
//! 7. If any lease is granted, attach to it the live keys whose newest version names it (a
//!    scan of every live key; a key naming a lease not granted is [`Error::Corruption`]). Every
//!    lease's deadline is its whole TTL from now: deadlines are not durable.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::manifest::{MANIFEST_FILE_NAME, MANIFEST_TMP_FILE_NAME, Manifest};
use crate::format::wal::{WalRecord, parse_segment_file_name};
use crate::lease::{LeaseEffect, LeaseTable};
use crate::manifest::{self, parse_sst_file_name};
use crate::memtable::MemTable;
use crate::metrics::Recorder;
use crate::options::Options;
use crate::sst::BlockCache;
use crate::vfs::Vfs;
use crate::wal::{self, WalWriter};

use super::background::Worker;
use super::batch::into_entries;
use super::decide::metas;
use super::dir_lock::{lock_dir, lock_dir_shared};
use super::health::Health;
use super::inner::Inner;
use super::pipeline::Pipeline;
use super::read::tree_meta;
use super::readers::Readers;
use super::retention::Retention;
use super::tables::TableCache;
use super::versions::{Tree, VersionSet};

/// Opens (or creates) the database at `dir`; see the module doc.
pub(crate) fn open_inner(vfs: Arc<dyn Vfs>, dir: &Path, options: Options) -> Result<Inner> {
    options.validate()?;
    let read_only = options.read_only;
    if !read_only {
        vfs.create_dir_all(dir)
            .map_err(|e| Error::io("create_dir_all", dir, e))?;
    }
    let dir_lock = match read_only {
        true => lock_dir_shared(vfs.as_ref(), dir)?,
        false => lock_dir(vfs.as_ref(), dir)?,
    };
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let manifest = match read_only {
        true => manifest::load(vfs.as_ref(), dir)?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no database at {} to open read-only",
                dir.display()
            ))
        })?,
        false => load_or_create(vfs.as_ref(), dir, &names)?,
    };
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
    let mut recovered = if read_only {
        wal::recover_read_only(vfs.as_ref(), dir, version.wal_offset())?
    } else {
        remove_leftovers(vfs.as_ref(), dir, &names, |n| tree.files.contains_key(&n))?;
        wal::recover(vfs.as_ref(), dir, version.wal_offset(), options.salvage_wal)?
    };
    if recovered.truncated_bytes > 0 {
        tracing::warn!(
            bytes = recovered.truncated_bytes,
            "truncated a torn WAL tail"
        );
    }
    let horizon = version.history_horizon();
    let now_ms = options.clock.now_ms();
    let mut leases = LeaseTable::new(manifest_leases(version), now_ms);
    let (memtable, (last_revision, last_stamp)) = replay(
        std::mem::take(&mut recovered.records),
        &tree,
        &mut leases,
        now_ms,
        Where {
            dir,
            segments: &recovered.segments,
        },
    )?;
    if horizon > last_revision {
        return Err(Error::Corruption {
            file: manifest_path,
            offset: 0,
            what: format!(
                "historyHorizon {horizon} is above the last recovered revision {last_revision}"
            ),
        });
    }
    let wal = if read_only {
        WalWriter::read_only(Arc::clone(&vfs), dir, &recovered)
    } else {
        let mut wal = WalWriter::open(
            Arc::clone(&vfs),
            dir,
            &recovered,
            options.wal_segment_size_bytes,
        )?;
        wal.remove_segments_below(tree.version.wal_offset())?;
        wal
    };
    let any_lease = !leases.is_empty();
    let metrics = Arc::new(Recorder::default());
    let inner = Inner {
        versions: VersionSet::new(Arc::clone(&vfs), dir, memtable, tree),
        pipeline: Pipeline::new(
            wal,
            (last_revision, last_stamp),
            leases,
            Arc::clone(&metrics),
        ),
        metrics,
        vfs,
        dir: dir.to_path_buf(),
        cache,
        health: Health::default(),
        worker: Worker::default(),
        readers: Readers::new(horizon),
        retention: Retention::new(
            options.history_retention,
            || options.clock.now_ms(),
            last_revision,
        ),
        dir_lock: Mutex::new(Some(dir_lock)),
        options,
    };
    if any_lease {
        inner.attach_leased_keys()?;
    }
    Ok(inner)
}

/// The leases the manifest lists.
fn manifest_leases(version: &crate::version::Version) -> &[crate::format::manifest::LeaseMeta] {
    // Sabotage for negative controls (feature `failpoints`): recovery forgets the manifest's
    // leases (those granted before the last flush).
    fail::fail_point!("lease::forget_on_recovery", |_| &[]);
    version.leases()
}

/// Where the replayed records are: the directory and the bases of the live segments,
/// ascending, so an error names the segment file holding the record (the last one whose base
/// is at or below its offset: a record never spans segments) and the record's offset in it.
struct Where<'a> {
    dir: &'a Path,
    segments: &'a [u64],
}

impl Where<'_> {
    fn corruption(&self, offset: u64, what: String) -> Error {
        let base = self
            .segments
            .iter()
            .rev()
            .find(|&&b| b <= offset)
            .copied()
            .unwrap_or(0);
        Error::Corruption {
            file: wal::segment_path(self.dir, base),
            offset: offset - base,
            what: format!("wal record (logical offset {offset}): {what}"),
        }
    }
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

/// Step 5 of the module doc: the recovered memtable, the last revision and the last stamp;
/// `leases` gets the
/// grants (with deadlines counted from `now_ms`) and revocations (keys are attached at step 7). Each record's version metadata
/// is decided again, against the tables and the records replayed before it.
fn replay(
    records: Vec<(u64, WalRecord)>,
    tree: &Tree,
    leases: &mut LeaseTable,
    now_ms: u64,
    at: Where<'_>,
) -> Result<(MemTable, (u64, u64))> {
    let mut last_revision = tree.version.last_revision();
    let mut last_stamp = tree.version.last_stamp();
    let memtable = MemTable::new();
    for (offset, record) in records {
        if record.stamp != 0 && record.stamp < last_stamp {
            return Err(at.corruption(
                offset,
                format!(
                    "stamp {} is below {last_stamp}, the manifest's lastStamp or an earlier \
                     record's stamp",
                    record.stamp
                ),
            ));
        }
        last_stamp = last_stamp.max(record.stamp);
        let changes_keys = record.body.changes_keys();
        if changes_keys && record.revision <= last_revision {
            return Err(at.corruption(
                offset,
                format!(
                    "revision {} is not above {last_revision}, the manifest's lastRevision or the \
                     previous record's revision",
                    record.revision
                ),
            ));
        }
        if !changes_keys && record.revision != last_revision {
            return Err(at.corruption(
                offset,
                format!(
                    "a record that changes no key carries revision {}, not {last_revision}, the \
                     manifest's lastRevision or the previous record's revision",
                    record.revision
                ),
            ));
        }
        last_revision = record.revision;
        let effect = LeaseEffect::of(&record.body);
        let before = |key: &[u8]| match memtable.get_meta(key, u64::MAX) {
            Some((_, meta)) => Ok(Some(meta)),
            None => Ok(tree_meta(tree, at.dir, key, u64::MAX)?.map(|(_, meta)| meta)),
        };
        let metas = metas(&record.body, record.revision, before)?;
        let entries = into_entries(
            record.body,
            record.revision,
            offset,
            record.created_at_ms,
            &metas,
        );
        // Keys are attached at step 7, from what the replay leaves.
        leases.apply(effect, &[], now_ms);
        memtable.insert_commit(entries);
    }
    Ok((memtable, (last_revision, last_stamp)))
}
