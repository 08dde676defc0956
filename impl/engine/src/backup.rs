//! Incremental backups: [`Db::backup`] into a backup directory, and [`restore`], [`list`],
//! [`verify`] and [`prune`] of what it holds (`spec/SEMANTICS.md`, "Backups"; the metadata's bytes are
//! `spec/FORMAT.md` § 7).
//!
//! A backup directory holds:
//! - `tables/<20 digits>-<8 hex>-<size>.sst`: table copies, named by the table's number, CRC32C
//!   and length, shared by every backup that has that table (a table already there is not copied
//!   again);
//! - `<20 digits>.backup`: backup number `id`'s metadata (its tables and its manifest);
//! - `LOCK`: held while a backup is written or pruned (one at a time: two would take the same
//!   id).
//!
//! Protocol of [`Db::backup`]:
//! 1. Create the directory and `tables/`; take `LOCK` ([`Error::Locked`] if another backup
//!    holds it); remove `*.tmp` leftovers of a cut-off backup.
//! 2. Flush as a checkpoint does and take the tree (`crate::db::checkpoint`, step 2).
//! 3. For each table: read it for its CRC32C, which names it; if `tables/` has that name, reuse
//!    it; else copy it to `<name>.tmp`, `sync_data`, rename onto `<name>`.
//! 4. `sync_dir` `tables/`: every table the backup names is durable.
//! 5. Write the metadata of id (largest listed id + 1) to `<id>.backup.tmp`, `sync_data`,
//!    rename onto `<id>.backup`, `sync_dir` the backup directory: the commit point.
//!
//! Invariants:
//! - A name `tables/<…>.sst` or `<id>.backup` exists only for a file whose bytes were synced
//!   before the rename that made the name: a crash leaves only `*.tmp` files half-written, and
//!   [`list`] never shows a backup whose metadata is not complete.
//! - A table name carries its CRC32C and length, so a reused name is the same bytes; [`verify`]
//!   and [`restore`] check every byte they read against the metadata.
//! - The source database is changed only by step 2's flush, as by a checkpoint.
//! - [`prune`] removes a backup's metadata (durably) before any table, and only tables no
//!   remaining backup names: no listed backup ever misses a table.

use std::path::{Path, PathBuf};

use crate::db::Db;
use crate::db::checkpoint::{
    FileSum, commit_target, copy_file, live_files, parent_of, prepare_target, read_chunks,
};
use crate::db::dir_lock::lock_dir;
use crate::db::tables::missing_is_corruption;
use crate::error::{Error, Result};
use crate::format::backup::{
    self as codec, BackupMeta, BackupTable, backup_file_name, backup_table_file_name,
    parse_backup_file_name,
};
use crate::format::manifest::{self as manifest_codec, sst_file_name};
use crate::manifest;
use crate::progress::{NoProgress, Progress};
use crate::vfs::{OsVfs, Vfs};

/// The directory of table copies inside a backup directory.
pub const TABLES_DIR_NAME: &str = "tables";
/// The suffix of a file being written, before the rename that names it.
const TMP_SUFFIX: &str = ".tmp";

/// One complete backup, as its metadata describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// Its id in the backup directory (1, 2, …).
    pub id: u64,
    /// The revision it reads at.
    pub revision: u64,
    /// Its history horizon.
    pub horizon: u64,
    /// When it was taken (ms since the Unix epoch, the database's clock).
    pub created_at_ms: u64,
    /// How many tables it is made of.
    pub tables: u64,
    /// Their bytes.
    pub table_bytes: u64,
}

/// What [`Db::backup`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup made.
    pub info: BackupInfo,
    /// Tables copied into the backup directory.
    pub tables_copied: u64,
    /// Tables already there from an earlier backup, not copied again.
    pub tables_reused: u64,
}

impl Db {
    /// Backs the database up into `backup_dir` (created if missing) as a new numbered backup:
    /// the tables not already there are copied, then its metadata is written; a crash leaves no
    /// trace [`list`] shows. Writes may go on meanwhile; the memtable is flushed first, as for
    /// [`Db::checkpoint`]. A backup directory belongs to one database.
    ///
    /// ```
    /// use kvstore::{Db, Options, backup};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path().join("db"), Options::default())?;
    /// db.put(b"k", b"v1")?;
    /// let first = db.backup(dir.path().join("backups"))?;
    /// db.put(b"k", b"v2")?;
    /// let second = db.backup(dir.path().join("backups"))?;
    /// assert_eq!(second.tables_reused, 1); // the first backup's table is shared
    /// backup::restore(dir.path().join("backups"), first.info.id, dir.path().join("restored"))?;
    /// let restored = Db::open(dir.path().join("restored"), Options::default())?;
    /// assert_eq!(restored.get(b"k")?, Some(b"v1".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, backup_dir: impl AsRef<Path>) -> Result<BackupSummary> {
        self.backup_with_progress(backup_dir, &NoProgress)
    }

    /// [`Db::backup`], reporting to `progress` the table bytes done (the total: the bytes of
    /// every table of the flushed tree): a copied table's as they are copied, a reused one's
    /// once its checksum is read. An example is in [`crate::progress`].
    pub fn backup_with_progress(
        &self,
        backup_dir: impl AsRef<Path>,
        progress: &dyn Progress,
    ) -> Result<BackupSummary> {
        let inner = self.inner();
        let vfs = inner.vfs.as_ref();
        let dir = backup_dir.as_ref();
        let tables_dir = dir.join(TABLES_DIR_NAME);
        vfs.create_dir_all(&tables_dir)
            .map_err(|e| Error::io("create_dir_all", &tables_dir, e))?;
        // One backup at a time into a directory: two would take the same id.
        let _lock = lock_dir(vfs, dir)?;
        sync_dir(vfs, parent_of(dir))?;
        sync_dir(vfs, dir)?;
        remove_leftovers(vfs, dir)?;
        remove_leftovers(vfs, &tables_dir)?;
        let id = list_with_vfs(vfs, dir)?
            .last()
            .map_or(1, |last| last.id.saturating_add(1));
        let tree = inner.flushed_tree()?;
        let present = vfs
            .list(&tables_dir)
            .map_err(|e| Error::io("list", &tables_dir, e))?;
        let mut summary = BackupSummary {
            info: BackupInfo {
                id,
                revision: tree.version.last_revision(),
                horizon: tree.version.history_horizon(),
                created_at_ms: inner.options.clock.now_ms(),
                tables: 0,
                table_bytes: 0,
            },
            tables_copied: 0,
            tables_reused: 0,
        };
        let mut tables = Vec::new();
        progress.start(Some(live_files(&tree).map(|f| f.size_bytes).sum()));
        for file in live_files(&tree) {
            let from = inner.sst_path(file.number);
            let sum = read_chunks(vfs, &from, |_| Ok(()))?;
            let table = BackupTable {
                number: file.number,
                size: sum.bytes,
                crc32c: sum.crc32c,
            };
            let name = backup_table_file_name(&table);
            if present.binary_search(&name).is_ok() {
                summary.tables_reused += 1;
                progress.advance(table.size);
            } else {
                let tmp = tables_dir.join(format!("{name}{TMP_SUFFIX}"));
                let copied = copy_file(vfs, &from, &tmp, progress)?;
                check_sum(&tmp, &table, copied)?;
                let to = tables_dir.join(&name);
                vfs.rename(&tmp, &to)
                    .map_err(|e| Error::io("rename", &tmp, e))?;
                summary.tables_copied += 1;
            }
            summary.info.table_bytes = summary.info.table_bytes.saturating_add(table.size);
            tables.push(table);
        }
        tables.sort_unstable_by_key(|t| t.number);
        summary.info.tables = tables.len() as u64;
        sync_dir(vfs, &tables_dir)?;
        let meta = BackupMeta {
            id,
            revision: summary.info.revision,
            horizon: summary.info.horizon,
            created_at_ms: summary.info.created_at_ms,
            tables,
            manifest: manifest_codec::encode(&manifest::to_manifest(&tree.version)),
        };
        let path = dir.join(backup_file_name(id));
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", backup_file_name(id)));
        let bytes = codec::encode(&meta);
        debug_assert!(codec::decode(&bytes).as_ref() == Ok(&meta));
        manifest::write_synced(vfs, &tmp, &bytes)?;
        vfs.rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        sync_dir(vfs, dir)?;
        Ok(summary)
    }
}

/// What [`prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// The ids of the backups removed, ascending.
    pub removed: Vec<u64>,
    /// Table copies removed (those no remaining backup names).
    pub tables_removed: u64,
    /// Their bytes.
    pub table_bytes_removed: u64,
}

/// Removes the oldest backups of `backup_dir` beyond the newest `keep` (at least 1), and the
/// table copies no remaining backup names.
///
/// Protocol (crash-safe: a crash at any point leaves every listed backup complete):
/// 1. Take `LOCK` (no backup is written meanwhile); remove `*.tmp` leftovers.
/// 2. For each backup to remove, oldest first: remove `<id>.backup`, then `sync_dir`. Its
///    metadata is what makes a backup exist; once it is gone the backup is not listed, and
///    until then every table it names is still there.
/// 3. Read the remaining backups' metadata; remove every `tables/*.sst` none of them names,
///    then `sync_dir` `tables/`. A crash here leaves unnamed tables behind, which the next
///    prune removes; no remaining backup names a removed table.
///
/// ```
/// use kvstore::{Db, Options, backup};
///
/// let dir = tempfile::tempdir()?;
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// for i in 0..3 {
///     db.put(b"k", format!("v{i}").as_bytes())?;
///     db.backup(dir.path().join("backups"))?;
/// }
/// let pruned = backup::prune(dir.path().join("backups"), 1)?;
/// assert_eq!(pruned.removed, [1, 2]);
/// assert_eq!(backup::list(dir.path().join("backups"))?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prune(backup_dir: impl AsRef<Path>, keep: usize) -> Result<PruneSummary> {
    prune_with_vfs(&OsVfs, backup_dir.as_ref(), keep)
}

/// [`prune`] on `vfs`.
pub fn prune_with_vfs(vfs: &dyn Vfs, backup_dir: &Path, keep: usize) -> Result<PruneSummary> {
    if keep == 0 {
        return Err(Error::InvalidArgument(
            "prune keeps at least one backup".to_owned(),
        ));
    }
    let mut summary = PruneSummary::default();
    let exists = vfs
        .exists(backup_dir)
        .map_err(|e| Error::io("exists", backup_dir, e))?;
    if !exists {
        return Ok(summary);
    }
    let tables_dir = backup_dir.join(TABLES_DIR_NAME);
    let _lock = lock_dir(vfs, backup_dir)?;
    remove_leftovers(vfs, backup_dir)?;
    let backups = list_with_vfs(vfs, backup_dir)?;
    let doomed = backups.len().saturating_sub(keep);
    for info in backups.iter().take(doomed) {
        let path = backup_dir.join(backup_file_name(info.id));
        vfs.remove(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        sync_dir(vfs, backup_dir)?;
        summary.removed.push(info.id);
    }
    if !vfs
        .exists(&tables_dir)
        .map_err(|e| Error::io("exists", &tables_dir, e))?
    {
        return Ok(summary);
    }
    remove_leftovers(vfs, &tables_dir)?;
    let mut named = std::collections::BTreeSet::new();
    for info in backups.iter().skip(doomed) {
        for table in read_meta(vfs, backup_dir, info.id)?.tables {
            named.insert(backup_table_file_name(&table));
        }
    }
    let names = vfs
        .list(&tables_dir)
        .map_err(|e| Error::io("list", &tables_dir, e))?;
    for name in names.iter().filter(|n| !named.contains(*n)) {
        let path = tables_dir.join(name);
        let bytes = vfs
            .open_read(&path)
            .and_then(|f| f.size())
            .map_err(|e| Error::io("size", &path, e))?;
        vfs.remove(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        summary.tables_removed += 1;
        summary.table_bytes_removed = summary.table_bytes_removed.saturating_add(bytes);
    }
    if summary.tables_removed > 0 {
        sync_dir(vfs, &tables_dir)?;
    }
    Ok(summary)
}

/// The complete backups in `backup_dir`, by id ascending (none if it does not exist).
pub fn list(backup_dir: impl AsRef<Path>) -> Result<Vec<BackupInfo>> {
    list_with_vfs(&OsVfs, backup_dir.as_ref())
}

/// [`list`] on `vfs`.
pub fn list_with_vfs(vfs: &dyn Vfs, backup_dir: &Path) -> Result<Vec<BackupInfo>> {
    let exists = vfs
        .exists(backup_dir)
        .map_err(|e| Error::io("exists", backup_dir, e))?;
    if !exists {
        return Ok(Vec::new());
    }
    let names = vfs
        .list(backup_dir)
        .map_err(|e| Error::io("list", backup_dir, e))?;
    let mut infos = Vec::new();
    for id in names.iter().filter_map(|n| parse_backup_file_name(n)) {
        infos.push(info(&read_meta(vfs, backup_dir, id)?));
    }
    Ok(infos)
}

/// Reads every table of backup `id` in `backup_dir` and checks its length and CRC32C against
/// the metadata ([`Error::Corruption`] naming the first that differs), and that the metadata's
/// manifest decodes and names exactly those tables.
pub fn verify(backup_dir: impl AsRef<Path>, id: u64) -> Result<BackupInfo> {
    verify_with_vfs(&OsVfs, backup_dir.as_ref(), id)
}

/// [`verify`] on `vfs`.
pub fn verify_with_vfs(vfs: &dyn Vfs, backup_dir: &Path, id: u64) -> Result<BackupInfo> {
    let meta = read_meta(vfs, backup_dir, id)?;
    checked_manifest(backup_dir, &meta)?;
    for table in &meta.tables {
        let path = table_path(backup_dir, table);
        let sum =
            read_chunks(vfs, &path, |_| Ok(())).map_err(|e| missing_is_corruption(e, &path))?;
        check_sum(&path, table, sum)?;
    }
    Ok(info(&meta))
}

/// Restores backup `id` of `backup_dir` into directory `target` (which must not exist or be
/// empty) as a database [`Db::open`] opens at the backup's revision: every table copied and
/// checked against the metadata, then the manifest written last, as a checkpoint's (a crash
/// leaves `target` complete or without `manifest.json`).
pub fn restore(
    backup_dir: impl AsRef<Path>,
    id: u64,
    target: impl AsRef<Path>,
) -> Result<BackupInfo> {
    restore_on(
        &OsVfs,
        backup_dir.as_ref(),
        id,
        target.as_ref(),
        &NoProgress,
    )
}

/// [`restore`], reporting to `progress` the table bytes copied (the total: the backup's
/// `table_bytes`).
pub fn restore_with_progress(
    backup_dir: impl AsRef<Path>,
    id: u64,
    target: impl AsRef<Path>,
    progress: &dyn Progress,
) -> Result<BackupInfo> {
    restore_on(&OsVfs, backup_dir.as_ref(), id, target.as_ref(), progress)
}

/// [`restore`] on `vfs`.
pub fn restore_with_vfs(
    vfs: &dyn Vfs,
    backup_dir: &Path,
    id: u64,
    target: &Path,
) -> Result<BackupInfo> {
    restore_on(vfs, backup_dir, id, target, &NoProgress)
}

fn restore_on(
    vfs: &dyn Vfs,
    backup_dir: &Path,
    id: u64,
    target: &Path,
    progress: &dyn Progress,
) -> Result<BackupInfo> {
    let meta = read_meta(vfs, backup_dir, id)?;
    let manifest = checked_manifest(backup_dir, &meta)?;
    prepare_target(vfs, target)?;
    progress.start(Some(info(&meta).table_bytes));
    for table in &meta.tables {
        let from = table_path(backup_dir, table);
        let to = target.join(sst_file_name(table.number));
        let copied =
            copy_file(vfs, &from, &to, progress).map_err(|e| missing_is_corruption(e, &from))?;
        check_sum(&from, table, copied)?;
    }
    commit_target(vfs, target, &manifest)?;
    Ok(info(&meta))
}

fn info(meta: &BackupMeta) -> BackupInfo {
    BackupInfo {
        id: meta.id,
        revision: meta.revision,
        horizon: meta.horizon,
        created_at_ms: meta.created_at_ms,
        tables: meta.tables.len() as u64,
        table_bytes: meta.tables.iter().map(|t| t.size).sum(),
    }
}

fn table_path(backup_dir: &Path, table: &BackupTable) -> PathBuf {
    backup_dir
        .join(TABLES_DIR_NAME)
        .join(backup_table_file_name(table))
}

/// Reads and decodes `<id>.backup`, whose id must be `id`.
fn read_meta(vfs: &dyn Vfs, backup_dir: &Path, id: u64) -> Result<BackupMeta> {
    let path = backup_dir.join(backup_file_name(id));
    let mut bytes = Vec::new();
    let max = codec::BACKUP_HEAD_LEN
        + codec::BACKUP_TABLES_MAX * codec::BACKUP_TABLE_LEN
        + manifest_codec::MANIFEST_LEN_MAX
        + 8;
    let file = vfs
        .open_read(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    let len = file.size().map_err(|e| Error::io("size", &path, e))?;
    if usize::try_from(len).map_or(true, |len| len > max) {
        return Err(Error::Corruption {
            file: path,
            offset: 0,
            what: format!("backup meta is {len} bytes, more than any backup's ({max})"),
        });
    }
    drop(file);
    read_chunks(vfs, &path, |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    })?;
    let meta = codec::decode(&bytes).map_err(|e| Error::corruption(&path, 0, &e))?;
    if meta.id != id {
        return Err(Error::Corruption {
            file: path,
            offset: 16,
            what: format!("backup meta says id {}, its name {id}", meta.id),
        });
    }
    Ok(meta)
}

/// The metadata's manifest, decoded and checked to list exactly the metadata's tables with
/// their sizes, at the metadata's revision and horizon.
fn checked_manifest(backup_dir: &Path, meta: &BackupMeta) -> Result<manifest_codec::Manifest> {
    let path = backup_dir.join(backup_file_name(meta.id));
    let manifest =
        manifest_codec::decode(&meta.manifest).map_err(|e| Error::corruption(&path, 0, &e))?;
    let mut listed: Vec<(String, u64)> = manifest
        .files
        .iter()
        .map(|f| (f.file.clone(), f.size))
        .collect();
    listed.sort_unstable();
    let named: Vec<(String, u64)> = meta
        .tables
        .iter()
        .map(|t| (sst_file_name(t.number), t.size))
        .collect();
    if listed != named
        || manifest.last_revision != meta.revision
        || manifest.history_horizon != meta.horizon
    {
        return Err(Error::Corruption {
            file: path,
            offset: 0,
            what: "backup meta: its manifest does not record its tables, revision and horizon"
                .to_owned(),
        });
    }
    Ok(manifest)
}

/// `Error::Corruption` unless `sum` (of the file at `path`) is `table`'s length and CRC32C.
fn check_sum(path: &Path, table: &BackupTable, sum: FileSum) -> Result<()> {
    if sum.bytes == table.size && sum.crc32c == table.crc32c {
        return Ok(());
    }
    Err(Error::Corruption {
        file: path.to_path_buf(),
        offset: 0,
        what: format!(
            "backup table {}: {} bytes with CRC32C {:#010x}, the backup says {} bytes with \
             {:#010x}",
            table.number, sum.bytes, sum.crc32c, table.size, table.crc32c
        ),
    })
}

/// Removes the `*.tmp` files a cut-off backup left in `dir`, then syncs it.
fn remove_leftovers(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut removed = false;
    for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
        let path = dir.join(name);
        vfs.remove(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        removed = true;
    }
    if removed {
        sync_dir(vfs, dir)?;
    }
    Ok(())
}

fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}
