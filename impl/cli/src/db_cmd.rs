//! The database commands of the CLI, each one open, one operation, one close: reads and writes
//! (binary-safe, see [`crate::bytes`]), history (`--rev`, `compact-history`), leases, a watch,
//! export and import, and maintenance.
//!
//! Exit codes (the tool's contract with scripts): 0 done or found, 1 not found, 2 usage (clap),
//! 3 any error (the message on stderr). A database directory that does not hold a database is an
//! error unless `--create` says to make one.

use std::ops::Bound;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use kvstore::watch::{EventKind, WatchRequest, WatchResponse};
use kvstore::{Db, KeyRange, Options, ScanOptions, Versioned};

use crate::bytes::{Format, Input, InputError, Out, PipeClosed, escape, json_bytes};
use crate::load::{LoadFormat, dump, load};
use crate::search::{SearchCommand, search};

/// Exit code: not found.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code: an error.
pub const EXIT_ERROR: u8 = 3;

/// A database command.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Set KEY to VALUE (`-`: stdin, `@PATH`: a file's bytes). Prints the revision.
    ///
    /// Example: `kvstore --db d put photo @cat.png`, `echo -n v | kvstore --db d put k -`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Attach the key to this lease.
        #[arg(long, default_value_t = 0)]
        lease: u64,
    },
    /// Print the value of KEY (exit code 1 if absent); `--rev` reads at an older revision.
    ///
    /// Example: `kvstore --db d -o raw get photo > cat.png`.
    Get {
        /// The key.
        key: String,
        /// Read as of this revision.
        #[arg(long)]
        rev: Option<u64>,
    },
    /// Delete KEY (exit code 1 if it was absent). Prints the revision.
    Del {
        /// The key.
        key: String,
    },
    /// Print the keys and values of a range, in key order: `key<TAB>value` lines (escaped text
    /// unless `-o raw|hex|json`).
    ///
    /// Example: `kvstore --db d scan --prefix user/ --limit 10 -o json`.
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
        /// At most this many rows.
        #[arg(long)]
        limit: Option<usize>,
        /// Read as of this revision.
        #[arg(long)]
        rev: Option<u64>,
        /// Print keys only.
        #[arg(long)]
        keys_only: bool,
        /// Print the number of rows only.
        #[arg(long)]
        count: bool,
    },
    /// Search keys by substring or by edit distance, over the database's 3-gram key index
    /// (built in `<db>/index/` by the first search, caught up by later ones).
    ///
    /// Example: `kvstore --db d search contains 123`, `kvstore --db d search fuzzy colour`.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Forget the history below REV (etcd's compact): reads below it are refused afterwards.
    CompactHistory {
        /// The new history horizon.
        rev: u64,
    },
    /// Leases: grant, keep alive, revoke, show, list.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Print the changes to a range as they commit, from `--rev` on (history first), until
    /// `--count` events or Ctrl-C: `revision<TAB>PUT|DELETE<TAB>key[<TAB>value]` lines.
    ///
    /// Example: `kvstore --db d watch --prefix jobs/ --rev 1 --count 10`.
    Watch {
        /// Only keys starting with this prefix (default: every key).
        #[arg(long)]
        prefix: Option<String>,
        /// Start at this revision (history from the store, then live).
        #[arg(long)]
        rev: Option<u64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Write the retained history at the newest revision to FILE (`-`: stdout), in the export
    /// format (`spec/FORMAT.md` § 6), while writes may go on.
    ///
    /// Example: `kvstore --db d export backup.kvx`.
    Export {
        /// The file to write.
        file: String,
    },
    /// Read an export from FILE (`-`: stdin) into a new database at `--db` (all or nothing).
    ///
    /// Example: `kvstore --db copy --create import backup.kvx`.
    Import {
        /// The file to read.
        file: String,
    },
    /// Put the keys and values of FILE (`-`: stdin) in atomic batches: JSON lines as `dump`
    /// writes them, or `key<TAB>value` escaped text as `scan` prints it. A progress bar on a
    /// terminal.
    ///
    /// Example: `kvstore --db d dump > all.jsonl && kvstore --db e --create load all.jsonl`.
    Load {
        /// The file to read.
        file: String,
        /// How its lines are written.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: LoadFormat,
        /// Puts per committed batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
    },
    /// Print every key and value of one snapshot as JSON lines (what `load` reads).
    Dump,
    /// An interactive shell on the database: every command here, one a line.
    Shell,
    /// Print files and bytes per level, sizes, and the counters since open (`-o json`: one
    /// JSON object).
    Stats,
    /// Write the memtable to an SST.
    Flush,
    /// Compact every key down to the last level.
    Compact,
}

/// A lease command.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease of TTL seconds; prints its id.
    Grant {
        /// Its time to live, seconds.
        ttl: u64,
    },
    /// Refresh a lease's TTL once; prints the TTL.
    KeepAlive {
        /// The lease.
        id: u64,
    },
    /// Revoke a lease, deleting its keys; prints the revision.
    Revoke {
        /// The lease.
        id: u64,
    },
    /// Print a lease's TTL, time left and keys (exit code 1 if it is not granted).
    Show {
        /// The lease.
        id: u64,
    },
    /// Print the granted leases' ids.
    List,
}

/// How a command ended: a result for the exit code, or an error to print.
pub type Outcome = Result<Done, Failure>;

/// A command that ran.
pub enum Done {
    /// Exit 0.
    Ok,
    /// Exit 1 (with this message on stderr).
    NotFound(String),
}

/// A command that failed: exit 3 with the message, or quietly (a closed pipe, exit 0).
pub enum Failure {
    Error(String),
    PipeClosed,
}

impl From<kvstore::Error> for Failure {
    fn from(e: kvstore::Error) -> Failure {
        Failure::Error(e.to_string())
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Failure {
        Failure::Error(e.to_string())
    }
}

impl From<PipeClosed> for Failure {
    fn from(_: PipeClosed) -> Failure {
        Failure::PipeClosed
    }
}

/// What every database command is run with.
pub struct Context<'a> {
    /// The database directory.
    pub dir: &'a Path,
    /// Make the database if the directory holds none.
    pub create: bool,
    /// How arguments are written.
    pub input: Input,
    /// How output is shown.
    pub format: Format,
}

/// Prints `message` as the tool's error and returns exit code 3.
pub fn error(message: String) -> ExitCode {
    eprintln!("kvstore: {message}");
    ExitCode::from(EXIT_ERROR)
}

/// Whether `dir` holds a database (its manifest).
pub fn holds_database(dir: &Path) -> bool {
    dir.join(kvstore::format::manifest::MANIFEST_FILE_NAME)
        .exists()
}

/// Runs `command` on the database of `ctx`; see the module doc for the exit codes.
pub fn run(ctx: &Context<'_>, command: DbCommand) -> ExitCode {
    if let DbCommand::Import { file } = &command {
        return match import(ctx, file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Error(message)) => error(message),
            Err(Failure::PipeClosed) => ExitCode::SUCCESS,
        };
    }
    if !ctx.create && !holds_database(ctx.dir) {
        return error(format!(
            "no database at {} (pass --create to make one)",
            ctx.dir.display()
        ));
    }
    // Only a search keeps the key index: other commands leave it to catch up at the next one.
    let options = Options {
        key_index: matches!(command, DbCommand::Search(_)),
        ..Options::default()
    };
    let db = match Db::open(ctx.dir, options) {
        Ok(db) => db,
        Err(e) => return error(format!("cannot open {}: {e}", ctx.dir.display())),
    };
    let code = if matches!(command, DbCommand::Shell) {
        match crate::shell::run(&db, ctx) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(EXIT_ERROR),
            Err(message) => error(message),
        }
    } else {
        code_of(execute(&db, ctx, command, &mut Out::new()))
    };
    match db.close() {
        // The command's effect is durable when it returned; a failed close is still reported.
        Err(e) => error(format!("closing the database: {e}")),
        Ok(()) => code,
    }
}

/// The exit code of a command's outcome, its message printed.
fn code_of(outcome: Outcome) -> ExitCode {
    match outcome {
        Err(Failure::PipeClosed) => ExitCode::SUCCESS,
        Err(Failure::Error(message)) => error(message),
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::NotFound(message)) => {
            eprintln!("kvstore: {message}");
            ExitCode::from(EXIT_NOT_FOUND)
        }
    }
}

/// Runs `command` on the open `db` (a shell line): prints its output, or its message; returns
/// whether it succeeded (found included).
pub fn run_open(db: &Db, ctx: &Context<'_>, command: DbCommand, out: &mut Out) -> bool {
    code_of(execute(db, ctx, command, out)) == ExitCode::SUCCESS
}

fn range_of(
    input: &Input,
    prefix: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<KeyRange, InputError> {
    let mut range = match prefix {
        Some(p) => KeyRange::prefix(&input.key(p)?),
        None => KeyRange::all(),
    };
    if let Some(s) = start.map(|s| input.key(s)).transpose()? {
        let later = match &range.start {
            Bound::Included(p) => s > *p,
            Bound::Excluded(_) | Bound::Unbounded => true,
        };
        if later {
            range.start = Bound::Included(s);
        }
    }
    if let Some(e) = end.map(|e| input.key(e)).transpose()? {
        let earlier = match &range.end {
            Bound::Excluded(p) => e < *p,
            Bound::Included(_) | Bound::Unbounded => true,
        };
        if earlier {
            range.end = Bound::Excluded(e);
        }
    }
    Ok(range)
}

/// One row as `format` shows it.
fn row(out: &mut Out, key: &[u8], version: Option<&Versioned>, format: Format) -> Outcome {
    match (format, version) {
        (Format::Json, Some(v)) => out.line(&format!(
            "{{{},{},\"revision\":{},\"create_revision\":{},\"version\":{},\"lease\":{}}}",
            json_bytes("key", key),
            json_bytes("value", &v.value),
            v.revision,
            v.create_revision,
            v.version,
            v.lease
        ))?,
        (Format::Json, None) => out.line(&format!("{{{}}}", json_bytes("key", key)))?,
        (Format::Raw, Some(v)) => {
            out.bytes(key)?;
            out.bytes(b"\t")?;
            out.bytes(&v.value)?;
            out.bytes(b"\n")?;
        }
        (Format::Hex, Some(v)) => {
            out.line(&format!("{}\t{}", hex::encode(key), hex::encode(&v.value)))?
        }
        (Format::Text, Some(v)) => out.line(&format!("{}\t{}", escape(key), escape(&v.value)))?,
        (format, None) => out.shown(key, format)?,
    }
    Ok(Done::Ok)
}

/// Runs `command` and flushes what it printed.
fn execute(db: &Db, ctx: &Context<'_>, command: DbCommand, out: &mut Out) -> Outcome {
    let done = execute_unflushed(db, ctx, command, out)?;
    out.flush()?;
    Ok(done)
}

fn execute_unflushed(db: &Db, ctx: &Context<'_>, command: DbCommand, out: &mut Out) -> Outcome {
    let input = &ctx.input;
    match command {
        DbCommand::Put { key, value, lease } => {
            let (key, value) = (input.key(&key)?, input.value(&value)?);
            let revision = if lease == 0 {
                db.put(&key, &value)?
            } else {
                db.put_with_lease(&key, &value, lease)?
            };
            out.line(&format!("revision {revision}"))?;
        }
        DbCommand::Get { key, rev } => {
            let key = input.key(&key)?;
            let found = match rev {
                Some(rev) => db.get_at(&key, rev)?,
                None => db.get_versioned(&key)?,
            };
            match found {
                None => return Ok(Done::NotFound(format!("{}: not found", escape(&key)))),
                Some(v) if ctx.format == Format::Json => {
                    row(out, &key, Some(&v), Format::Json)?;
                }
                Some(v) => out.shown(&v.value, ctx.format)?,
            }
        }
        DbCommand::Del { key } => {
            let key = input.key(&key)?;
            let (revision, deleted) = db.delete_range(KeyRange::key(&key))?;
            if deleted == 0 {
                return Ok(Done::NotFound(format!("{}: not found", escape(&key))));
            }
            out.line(&format!("revision {revision}"))?;
        }
        DbCommand::Scan {
            prefix,
            start,
            end,
            reverse,
            limit,
            rev,
            keys_only,
            count,
        } => {
            let range = range_of(input, prefix.as_deref(), start.as_deref(), end.as_deref())?;
            let opts = ScanOptions {
                reverse,
                limit,
                revision: rev,
            };
            let rows = db.scan(range, opts)?;
            if count {
                out.line(&rows.count_rows()?.to_string())?;
            } else {
                for item in rows.versioned() {
                    let (key, version) = item?;
                    let shown = (!keys_only).then_some(&version);
                    row(out, &key, shown, ctx.format)?;
                }
            }
        }
        DbCommand::Search(command) => return search(db, ctx, command, out),
        DbCommand::CompactHistory { rev } => db.compact_history(rev)?,
        DbCommand::Lease(command) => return lease(db, command, out),
        DbCommand::Watch { prefix, rev, count } => return watch(db, ctx, prefix, rev, count, out),
        DbCommand::Export { file } => {
            let summary = if file == "-" {
                db.export(&mut std::io::stdout().lock())?
            } else {
                let mut f = std::fs::File::create(&file)
                    .map_err(|e| Failure::Error(format!("cannot create {file}: {e}")))?;
                let summary = db.export(&mut f)?;
                f.sync_all()
                    .map_err(|e| Failure::Error(format!("cannot sync {file}: {e}")))?;
                summary
            };
            eprintln!(
                "exported revision {} (horizon {}): {} versions, {} leases, {} bytes",
                summary.revision, summary.horizon, summary.versions, summary.leases, summary.bytes
            );
        }
        DbCommand::Load {
            file,
            format,
            batch,
        } => {
            let batch = batch.max(1);
            let (keys, revision) = if file == "-" {
                load(db, &mut std::io::stdin().lock(), None, format, batch)
            } else {
                let mut f = std::fs::File::open(&file)
                    .map_err(|e| Failure::Error(format!("cannot open {file}: {e}")))?;
                let len = f.metadata().ok().map(|m| m.len());
                load(db, &mut f, len, format, batch)
            }
            .map_err(Failure::Error)?;
            eprintln!("loaded {keys} keys, last revision {revision}");
        }
        DbCommand::Dump => {
            let count = dump(db, out)?.map_err(Failure::Error)?;
            out.flush()?;
            eprintln!("dumped {count} keys");
        }
        DbCommand::Import { .. } | DbCommand::Shell => {
            return Err(Failure::Error(
                "import and shell open the database themselves".to_owned(),
            ));
        }
        DbCommand::Stats => crate::stats::print(db, ctx.format, out)?,
        DbCommand::Flush => db.flush()?,
        DbCommand::Compact => db.compact_range(KeyRange::all())?,
    }
    Ok(Done::Ok)
}

fn lease(db: &Db, command: LeaseCommand, out: &mut Out) -> Outcome {
    match command {
        LeaseCommand::Grant { ttl } => {
            let id = db.grant(Duration::from_secs(ttl))?;
            out.line(&id.to_string())?;
        }
        LeaseCommand::KeepAlive { id } => {
            let ttl = db.keep_alive(id)?;
            out.line(&ttl.as_secs().to_string())?;
        }
        LeaseCommand::Revoke { id } => {
            let revision = db.revoke(id)?;
            out.line(&format!("revision {revision}"))?;
        }
        LeaseCommand::Show { id } => match db.time_to_live(id)? {
            None => return Ok(Done::NotFound(format!("lease {id}: not found"))),
            Some(status) => {
                out.line(&format!(
                    "lease {id}: granted {} s, {} s left",
                    status.granted_ttl.as_secs(),
                    status.remaining.as_secs()
                ))?;
                for key in status.keys {
                    out.line(&escape(&key))?;
                }
            }
        },
        LeaseCommand::List => {
            for id in db.leases()? {
                out.line(&id.to_string())?;
            }
        }
    }
    Ok(Done::Ok)
}

fn watch(
    db: &Db,
    ctx: &Context<'_>,
    prefix: Option<String>,
    rev: Option<u64>,
    count: Option<u64>,
    out: &mut Out,
) -> Outcome {
    let range = match prefix {
        Some(p) => KeyRange::prefix(&ctx.input.key(&p)?),
        None => KeyRange::all(),
    };
    let mut request = WatchRequest::new(range);
    request.start_revision = rev;
    let watcher = db.watch(request)?;
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        let Some(response) = watcher.next()? else {
            break;
        };
        let WatchResponse::Events { revision, events } = response else {
            continue;
        };
        for event in events {
            let line = match (event.kind, &event.value) {
                (EventKind::Put, Some(v)) => {
                    format!(
                        "{revision}\tPUT\t{}\t{}",
                        escape(&event.key),
                        escape(&v.value)
                    )
                }
                _ => format!("{revision}\tDELETE\t{}", escape(&event.key)),
            };
            out.line(&line)?;
            out.flush()?;
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                break;
            }
        }
    }
    Ok(Done::Ok)
}

/// `import`: makes the database (no `--create` needed); the engine refuses one already written.
fn import(ctx: &Context<'_>, file: &str) -> Result<(), Failure> {
    let (db, summary) = if file == "-" {
        Db::import(
            ctx.dir,
            Options::default(),
            &mut std::io::stdin().lock(),
            "stdin",
        )?
    } else {
        let mut f = std::fs::File::open(file)
            .map_err(|e| Failure::Error(format!("cannot open {file}: {e}")))?;
        Db::import(ctx.dir, Options::default(), &mut f, file)?
    };
    db.close()?;
    eprintln!(
        "imported revision {} (horizon {}): {} versions, {} leases",
        summary.revision, summary.horizon, summary.versions, summary.leases
    );
    Ok(())
}
