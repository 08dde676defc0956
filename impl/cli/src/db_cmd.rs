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

use kvstore::progress::SharedProgress;
use kvstore::watch::{EventKind, WatchRequest, WatchResponse};
use kvstore::{Db, KeyRange, Options, ScanOptions, Versioned};

use crate::bytes::{Format, Input, InputError, Out, PipeClosed, escape, json_bytes};
pub use crate::commands::{DbCommand, LeaseCommand};
use crate::interrupt::Interrupt;
use crate::load::{dump, load};
use crate::progress::{Reporter, Unit};
use crate::search::search;

/// Exit code: not found.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code: a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: an error.
pub const EXIT_ERROR: u8 = 3;

/// How a command ended: a result for the exit code, or an error to print.
pub type Outcome = Result<Done, Failure>;

/// A command that ran.
pub enum Done {
    /// Exit 0.
    Ok,
    /// Exit 1 (with this message on stderr): nothing found, or a txn's compares failed.
    NotFound(String),
}

/// A command that failed: exit 3 with the message, 2 for a usage error found after clap (a
/// txn's text), or quietly (a closed pipe, exit 0).
pub enum Failure {
    Error(String),
    Usage(String),
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
    /// Open it read-only (`Options::read_only`).
    pub read_only: bool,
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
        return code_of(import(ctx, file).map(|()| Done::Ok));
    }
    if !ctx.create && !holds_database(ctx.dir) {
        return error(format!(
            "no database at {} (pass --create to make one)",
            ctx.dir.display()
        ));
    }
    // Only a search keeps the key index: other commands leave it to catch up at the next one.
    let mut db = match open(ctx, matches!(command, DbCommand::Search(_))) {
        Ok(db) => db,
        Err(message) => return error(message),
    };
    let code = if matches!(command, DbCommand::Shell) {
        match crate::shell::run(&mut db, ctx) {
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

/// Opens the database of `ctx`, with the key index if `key_index` (what a search needs).
/// Opening with the key index may rebuild it: a bar of the keys posted shows that.
pub fn open(ctx: &Context<'_>, key_index: bool) -> Result<Db, String> {
    let bar = Reporter::new(Unit::Keys, "indexing keys");
    let options = Options {
        key_index,
        read_only: ctx.read_only,
        progress: SharedProgress::new(bar.clone()),
        ..Options::default()
    };
    let opened = Db::open(ctx.dir, options);
    bar.clear();
    opened.map_err(|e| format!("cannot open {}: {e}", ctx.dir.display()))
}

/// The exit code of a command's outcome, its message printed.
pub fn code_of(outcome: Outcome) -> ExitCode {
    match outcome {
        Err(Failure::PipeClosed) => ExitCode::SUCCESS,
        Err(Failure::Error(message)) => error(message),
        Err(Failure::Usage(message)) => {
            eprintln!("kvstore: {message}");
            ExitCode::from(EXIT_USAGE)
        }
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

/// A key and its version as one JSON object.
pub fn json_row(key: &[u8], v: &Versioned) -> String {
    format!(
        "{{{},{},\"revision\":{},\"create_revision\":{},\"version\":{},\"lease\":{}}}",
        json_bytes("key", key),
        json_bytes("value", &v.value),
        v.revision,
        v.create_revision,
        v.version,
        v.lease
    )
}

/// One row as `format` shows it.
pub fn row(out: &mut Out, key: &[u8], version: Option<&Versioned>, format: Format) -> Outcome {
    match (format, version) {
        (Format::Json, Some(v)) => out.line(&json_row(key, v))?,
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
        DbCommand::Txn => {
            let mut lines = crate::txn::stdin_lines();
            return crate::txn::run(db, ctx.input, ctx.format, &mut lines, out);
        }
        DbCommand::CompactHistory { rev } => db.compact_history(rev)?,
        DbCommand::Lease(command) => return lease(db, command, out),
        DbCommand::Watch { prefix, rev, count } => return watch(db, ctx, prefix, rev, count, out),
        DbCommand::Export { file } => {
            let bar = crate::progress::counting(crate::progress::Unit::Bytes, None);
            let summary = if file == "-" {
                db.export(&mut bar.wrap_write(std::io::stdout().lock()))?
            } else {
                let f = std::fs::File::create(&file)
                    .map_err(|e| Failure::Error(format!("cannot create {file}: {e}")))?;
                let summary = db.export(&mut bar.wrap_write(&f))?;
                f.sync_all()
                    .map_err(|e| Failure::Error(format!("cannot sync {file}: {e}")))?;
                summary
            };
            bar.finish_and_clear();
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
            let interrupt = Interrupt::watch();
            let (input, len): (Box<dyn std::io::Read + Send>, _) = if file == "-" {
                (Box::new(std::io::stdin()), None)
            } else {
                let f = std::fs::File::open(&file)
                    .map_err(|e| Failure::Error(format!("cannot open {file}: {e}")))?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            };
            let committed =
                load(db, input, len, format, batch, &interrupt).map_err(Failure::Error)?;
            eprintln!(
                "loaded {} keys, last revision {}",
                committed.keys, committed.revision
            );
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
        DbCommand::Compact => {
            let bar = crate::progress::working("compacting");
            let compacted = db.compact_range(KeyRange::all());
            bar.finish_and_clear();
            compacted?;
        }
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
    if ctx.read_only {
        return Err(Failure::Usage(
            "import makes a database: it cannot run with --read-only".to_owned(),
        ));
    }
    let imported = if file == "-" {
        let bar = crate::progress::counting(crate::progress::Unit::Bytes, None);
        let mut input = bar.wrap_read(std::io::stdin().lock());
        (
            Db::import(ctx.dir, Options::default(), &mut input, "stdin"),
            bar,
        )
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| Failure::Error(format!("cannot open {file}: {e}")))?;
        let bar = crate::progress::counting(
            crate::progress::Unit::Bytes,
            f.metadata().ok().map(|m| m.len()),
        );
        let mut input = bar.wrap_read(f);
        (
            Db::import(ctx.dir, Options::default(), &mut input, file),
            bar,
        )
    };
    imported.1.finish_and_clear();
    let (db, summary) = imported.0?;
    db.close()?;
    eprintln!(
        "imported revision {} (horizon {}): {} versions, {} leases",
        summary.revision, summary.horizon, summary.versions, summary.leases
    );
    Ok(())
}
