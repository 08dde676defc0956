//! The copy commands: `checkpoint OUT` (an openable copy of the database at `--db`) and `backup
//! create|list|verify|prune|restore` (incremental backups in a backup directory).
//!
//! Exit codes as every command's ([`crate::db_cmd`]): 0 done, 2 usage, 3 an error (the message
//! on stderr). `checkpoint` and `backup create` need `--db` naming an existing database;
//! `list`, `verify`, `prune` and `restore` use only the backup directory. Output is one line a result on
//! stdout, tab-separated where it is a table. `backup create` and `restore` show a bar of the
//! table bytes copied on a terminal ([`crate::progress`]); Ctrl-C ends them at once, which
//! leaves no backup listed and no restored database half-made (see [`kvstore::backup`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kvstore::{Db, Options, backup};

use crate::db_cmd::{error, holds_database};
use crate::progress::{Reporter, Unit};

/// `checkpoint OUT`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The directory to make; it must not exist or be empty.
    out: PathBuf,
}

/// `backup <command>`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back the database at `--db` up into BACKUP_DIR (made if missing) as a new numbered
    /// backup, copying only the tables not already there. Prints the backup's id and revision.
    ///
    /// Example: `kvstore --db d backup create /mnt/backups/d`.
    Create {
        /// The backup directory.
        backup_dir: PathBuf,
    },
    /// Print the complete backups in BACKUP_DIR, oldest first, one a line:
    /// `id<TAB>revision<TAB>horizon<TAB>tables<TAB>table_bytes<TAB>created_at_ms`.
    ///
    /// Example: `kvstore backup list /mnt/backups/d`.
    List {
        /// The backup directory.
        backup_dir: PathBuf,
    },
    /// Read every table of a backup (default: the newest) back against its length and CRC32C.
    ///
    /// Example: `kvstore backup verify /mnt/backups/d --id 3`.
    Verify {
        /// The backup directory.
        backup_dir: PathBuf,
        /// The backup to verify.
        #[arg(long)]
        id: Option<u64>,
    },
    /// Delete the oldest backups in BACKUP_DIR beyond the newest N, and the table copies only
    /// they used. Crash-safe: a backup's metadata goes (durably) before any of its tables, so
    /// a cut-off prune never leaves a listed backup incomplete; the next prune finishes it.
    ///
    /// Example: `kvstore backup prune /mnt/backups/d --keep 7`.
    Prune {
        /// The backup directory.
        backup_dir: PathBuf,
        /// How many of the newest backups to keep (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
    },
    /// Make a new database in TARGET (which must not exist or be empty) from a backup (default:
    /// the newest), every table checked as it is copied.
    ///
    /// Example: `kvstore backup restore /mnt/backups/d --id 3 restored-db`.
    Restore {
        /// The backup directory.
        backup_dir: PathBuf,
        /// The backup to restore.
        #[arg(long)]
        id: Option<u64>,
        /// The directory of the new database.
        target: PathBuf,
    },
}

/// Runs `checkpoint` on the database at `db_dir`.
pub fn checkpoint(db_dir: Option<&Path>, args: &CheckpointArgs) -> ExitCode {
    with_db(db_dir, |db| {
        let s = db
            .checkpoint(&args.out)
            .map_err(|e| format!("checkpoint into {}: {e}", args.out.display()))?;
        println!(
            "checkpoint {} at revision {} (horizon {}): {} tables linked, {} copied, {} bytes",
            args.out.display(),
            s.revision,
            s.horizon,
            s.tables_linked,
            s.tables_copied,
            s.table_bytes
        );
        Ok(())
    })
}

/// Runs a `backup` command (`create` on the database at `db_dir`).
pub fn backup(db_dir: Option<&Path>, command: &BackupCommand) -> ExitCode {
    let result = match command {
        BackupCommand::Create { backup_dir } => {
            return with_db(db_dir, |db| {
                let bar = Reporter::new(Unit::Bytes, "backing up tables");
                let backed_up = db.backup_with_progress(backup_dir, &bar);
                bar.clear();
                let s =
                    backed_up.map_err(|e| format!("backup into {}: {e}", backup_dir.display()))?;
                println!(
                    "backup {} at revision {}: {} tables ({} copied, {} already there)",
                    s.info.id, s.info.revision, s.info.tables, s.tables_copied, s.tables_reused
                );
                Ok(())
            });
        }
        BackupCommand::List { backup_dir } => backup::list(backup_dir).map(|infos| {
            for i in infos {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    i.id, i.revision, i.horizon, i.tables, i.table_bytes, i.created_at_ms
                );
            }
        }),
        BackupCommand::Verify { backup_dir, id } => newest_or(backup_dir, *id).and_then(|id| {
            let i = backup::verify(backup_dir, id)?;
            println!(
                "backup {} verified: {} tables, {} bytes",
                i.id, i.tables, i.table_bytes
            );
            Ok(())
        }),
        BackupCommand::Prune { backup_dir, keep } => {
            let keep = usize::try_from(*keep).unwrap_or(usize::MAX);
            backup::prune(backup_dir, keep).map(|s| {
                let ids: Vec<String> = s.removed.iter().map(u64::to_string).collect();
                println!(
                    "removed {} backups [{}]: {} tables, {} bytes",
                    s.removed.len(),
                    ids.join(", "),
                    s.tables_removed,
                    s.table_bytes_removed
                );
            })
        }
        BackupCommand::Restore {
            backup_dir,
            id,
            target,
        } => newest_or(backup_dir, *id).and_then(|id| {
            let bar = Reporter::new(Unit::Bytes, "restoring tables");
            let restored = backup::restore_with_progress(backup_dir, id, target, &bar);
            bar.clear();
            let i = restored?;
            println!(
                "restored backup {} (revision {}) into {}",
                i.id,
                i.revision,
                target.display()
            );
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => error(e.to_string()),
    }
}

/// `id`, or the newest backup's id in `backup_dir`.
fn newest_or(backup_dir: &Path, id: Option<u64>) -> kvstore::error::Result<u64> {
    if let Some(id) = id {
        return Ok(id);
    }
    backup::list(backup_dir)?
        .last()
        .map(|info| info.id)
        .ok_or_else(|| {
            kvstore::Error::InvalidArgument(format!("no backup in {}", backup_dir.display()))
        })
}

/// Opens the existing database at `db_dir`, runs `f`, closes it.
fn with_db(db_dir: Option<&Path>, f: impl FnOnce(&Db) -> Result<(), String>) -> ExitCode {
    let Some(dir) = db_dir else {
        eprintln!("kvstore: this command needs --db DIR");
        return ExitCode::from(2);
    };
    if !holds_database(dir) {
        return error(format!("no database at {}", dir.display()));
    }
    let db = match Db::open(dir, Options::default()) {
        Ok(db) => db,
        Err(e) => return error(format!("cannot open {}: {e}", dir.display())),
    };
    let result = f(&db);
    match (result, db.close()) {
        (Err(message), _) => error(message),
        (Ok(()), Err(e)) => error(format!("closing the database: {e}")),
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
    }
}
