//! `kvstore --db DIR shell`: one open database, every database command on a line, with line
//! editing, persistent history (`$HOME/.kvstore_history`) and completion of command names
//! (rustyline). Lines are split as a POSIX shell would (quotes, escapes), then parsed as the
//! one-shot commands are, and print what they print.
//!
//! `txn` reads its text from the lines after it (compares, success ops, failure ops, each part
//! ended by a blank line), with a prompt naming the part.
//!
//! Invariants: a bad line prints its error (or help) and the shell goes on; `exit`, `quit` or
//! end of input closes the database; nothing a line does outlives the line but its commit.

use clap::{CommandFactory, Parser};
use kvstore::Db;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};

use crate::bytes::Out;
use crate::db_cmd::{self, Context, DbCommand, Failure};

/// One shell line: a database command, as on the command line after `--db DIR`.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, name = "", disable_version_flag = true)]
struct Line {
    #[command(subcommand)]
    command: DbCommand,
}

/// Completes the first word of a line with the commands' names.
struct Commands {
    names: Vec<String>,
}

impl Completer for Commands {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let typed = line.get(..pos).unwrap_or_default();
        if typed.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let matches = self
            .names
            .iter()
            .filter(|name| name.starts_with(typed))
            .cloned()
            .collect();
        Ok((0, matches))
    }
}

impl Hinter for Commands {
    type Hint = String;
}

impl Highlighter for Commands {}

impl Validator for Commands {}

impl Helper for Commands {}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".kvstore_history"))
}

/// Runs the shell on `db` until `exit` or end of input; returns whether every line succeeded.
/// The first `search` reopens `db` with the key index (which it then keeps up to date).
pub fn run(db: &mut Db, ctx: &Context<'_>) -> Result<bool, String> {
    let mut names: Vec<String> = Line::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .chain(["exit".to_owned(), "quit".to_owned()])
        .collect();
    names.sort();
    let mut editor: Editor<Commands, DefaultHistory> =
        Editor::new().map_err(|e| format!("cannot start the shell: {e}"))?;
    editor.set_helper(Some(Commands { names }));
    let history = history_path();
    if let Some(path) = &history {
        // No history yet is the common case on a first run.
        let _ = editor.load_history(path);
    }
    let mut all_ok = true;
    let mut indexed = false;
    let prompt = format!("kvstore {}> ", ctx.dir.display());
    loop {
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("reading a line: {e}")),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if matches!(trimmed, "exit" | "quit") {
            break;
        }
        all_ok &= run_line(db, ctx, trimmed, &mut editor, &mut indexed)?;
    }
    if let Some(path) = &history
        && let Err(e) = editor.save_history(path)
    {
        eprintln!(
            "kvstore: cannot save the shell's history to {}: {e}",
            path.display()
        );
    }
    Ok(all_ok)
}

/// Parses and runs one line (and, for `txn`, the lines of its text); prints its output, or its
/// error; returns whether it succeeded, or why the shell cannot go on (the database could not
/// be reopened with the key index).
fn run_line(
    db: &mut Db,
    ctx: &Context<'_>,
    line: &str,
    editor: &mut Editor<Commands, DefaultHistory>,
    indexed: &mut bool,
) -> Result<bool, String> {
    let Some(words) = shlex::split(line) else {
        eprintln!("kvstore: unbalanced quotes");
        return Ok(false);
    };
    let command = match Line::try_parse_from(words) {
        Ok(parsed) => parsed.command,
        Err(e) => {
            // Help and usage errors alike: clap formats them.
            let _ = e.print();
            return Ok(false);
        }
    };
    if matches!(command, DbCommand::Import { .. } | DbCommand::Shell) {
        eprintln!("kvstore: `import` and `shell` run outside the shell");
        return Ok(false);
    }
    if matches!(command, DbCommand::Search(_)) && !*indexed {
        // The index is built (or caught up) at open: reopen with it, once.
        db.clone()
            .close()
            .map_err(|e| format!("closing the database to reopen it: {e}"))?;
        *db = db_cmd::open(ctx, true)?;
        *indexed = true;
    }
    let mut out = Out::new();
    if matches!(command, DbCommand::Txn) {
        // The txn's text comes from the next lines, up to its third blank line; Ctrl-D ends
        // it early (what was typed is the txn), Ctrl-C drops it.
        let mut next_line = |prompt: &str| match editor.readline(prompt) {
            Ok(line) => Ok(Some(line)),
            Err(ReadlineError::Eof) => Ok(None),
            Err(ReadlineError::Interrupted) => Err(Failure::Error("txn cancelled".to_owned())),
            Err(e) => Err(Failure::Error(format!("reading a line: {e}"))),
        };
        let outcome = crate::txn::run(db, ctx.input, ctx.format, &mut next_line, &mut out)
            .and_then(|done| out.flush().map(|()| done).map_err(Failure::from));
        return Ok(db_cmd::code_of(outcome) == std::process::ExitCode::SUCCESS);
    }
    Ok(db_cmd::run_open(db, ctx, command, &mut out))
}
