//! The database commands of the CLI: `put`, `get`, `del`, `scan`, `stats`, `flush`, `compact`,
//! each one open, one operation, one close. Keys and values are UTF-8 arguments; output bytes
//! are printed as UTF-8 (lossy).

use std::ops::Bound;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use kvstore::{Db, KeyRange, Options, ScanOptions};

/// A database command.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Set KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Print the value of KEY (exit code 1 if absent).
    Get {
        /// The key.
        key: String,
    },
    /// Delete KEY.
    Del {
        /// The key.
        key: String,
    },
    /// Print `key<TAB>value` lines for a range of keys.
    Scan {
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Only keys at or after this one.
        #[arg(long)]
        start: Option<String>,
        /// Only keys before this one.
        #[arg(long)]
        end: Option<String>,
        /// Descending key order.
        #[arg(long)]
        reverse: bool,
        /// At most this many lines.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print files per level, sizes and counters.
    Stats,
    /// Write the memtable to an SST.
    Flush,
    /// Compact every key down to the last level.
    Compact,
}

fn range_of(prefix: Option<&str>, start: Option<&str>, end: Option<&str>) -> KeyRange {
    let mut range = prefix.map_or_else(KeyRange::all, |p| KeyRange::prefix(p.as_bytes()));
    if let Some(s) = start {
        let later = match &range.start {
            Bound::Included(p) => s.as_bytes() > p.as_slice(),
            Bound::Excluded(_) | Bound::Unbounded => true,
        };
        if later {
            range.start = Bound::Included(s.as_bytes().to_vec());
        }
    }
    if let Some(e) = end {
        let earlier = match &range.end {
            Bound::Excluded(p) => e.as_bytes() < p.as_slice(),
            Bound::Included(_) | Bound::Unbounded => true,
        };
        if earlier {
            range.end = Bound::Excluded(e.as_bytes().to_vec());
        }
    }
    range
}

/// Runs `command` on the database at `dir`.
pub fn run(dir: &Path, command: DbCommand) -> ExitCode {
    let db = match Db::open(dir, Options::default()) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("kvstore: cannot open {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let result = execute(&db, command);
    let closed = db.close();
    match (result, closed) {
        (Ok(code), Ok(())) => code,
        (Err(e), _) | (Ok(_), Err(e)) => {
            eprintln!("kvstore: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(db: &Db, command: DbCommand) -> kvstore::error::Result<ExitCode> {
    match command {
        DbCommand::Put { key, value } => {
            let revision = db.put(key.as_bytes(), value.as_bytes())?;
            println!("revision {revision}");
        }
        DbCommand::Get { key } => match db.get(key.as_bytes())? {
            Some(value) => println!("{}", String::from_utf8_lossy(&value)),
            None => {
                eprintln!("kvstore: {key}: not found");
                return Ok(ExitCode::FAILURE);
            }
        },
        DbCommand::Del { key } => {
            let revision = db.delete(key.as_bytes())?;
            println!("revision {revision}");
        }
        DbCommand::Scan {
            prefix,
            start,
            end,
            reverse,
            limit,
        } => {
            let range = range_of(prefix.as_deref(), start.as_deref(), end.as_deref());
            for item in db.scan(
                range,
                ScanOptions {
                    reverse,
                    limit,
                    revision: None,
                },
            )? {
                let (k, v) = item?;
                println!(
                    "{}\t{}",
                    String::from_utf8_lossy(&k),
                    String::from_utf8_lossy(&v)
                );
            }
        }
        DbCommand::Stats => {
            let s = db.stats();
            for (level, (files, bytes)) in s
                .files_per_level
                .iter()
                .zip(s.bytes_per_level.iter())
                .enumerate()
            {
                println!("L{level}: {files} files, {bytes} bytes");
            }
            println!("memtable_bytes: {}", s.memtable_bytes);
            println!("last_revision: {}", s.last_revision);
            println!("cache_hits: {}", s.cache_hits);
            println!("cache_misses: {}", s.cache_misses);
            println!("wal_bytes: {}", s.wal_bytes);
        }
        DbCommand::Flush => db.flush()?,
        DbCommand::Compact => db.compact_range(KeyRange::all())?,
    }
    Ok(ExitCode::SUCCESS)
}
