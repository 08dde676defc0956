//! `search contains` and `search fuzzy`: key search over the database's 3-gram key index
//! (`Db::search_contains`, `Db::search_fuzzy`; `spec/SEMANTICS.md`, "Key index").
//!
//! The tool opens the database with `Options::key_index` for these commands only: the first
//! search builds the index in `<db>/index/` (a scan of every key), later ones catch it up from
//! the history written since. Exit 1 when nothing matches.

use clap::Subcommand;
use kvstore::Db;

use crate::bytes::{Format, Out, escape, json_bytes};
use crate::db_cmd::{Context, Done, Outcome};

/// A search command.
#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Print the keys holding SUBSTR (bytes; `--hex` to write it in hex), in key order, one a
    /// line (exit code 1 if none). A SUBSTR under 3 bytes scans every key.
    ///
    /// Example: `kvstore --db d search contains 123 --limit 10`,
    /// `kvstore --db d -o json search contains user/`.
    Contains {
        /// The substring.
        substr: String,
        /// At most this many keys.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print the keys within edit distance K of WORD (byte insertions, deletions and
    /// substitutions), closest first then in key order: `key<TAB>distance` lines (exit code 1 if
    /// none).
    ///
    /// Example: `kvstore --db d search fuzzy k_0000123 --max-distance 1`,
    /// `kvstore --db d -o json search fuzzy colour --limit 5`.
    Fuzzy {
        /// The word.
        word: String,
        /// The largest edit distance a key may have.
        #[arg(long, default_value_t = 1)]
        max_distance: usize,
        /// At most this many keys.
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// Runs `command` on `db` (opened with the key index) and prints what it found.
pub fn search(db: &Db, ctx: &Context<'_>, command: SearchCommand, out: &mut Out) -> Outcome {
    let found: Vec<(Vec<u8>, Option<usize>)> = match command {
        SearchCommand::Contains { substr, limit } => {
            let substr = ctx.input.key(&substr)?;
            db.search_contains(&substr, limit.unwrap_or(usize::MAX))?
                .into_iter()
                .map(|key| (key, None))
                .collect()
        }
        SearchCommand::Fuzzy {
            word,
            max_distance,
            limit,
        } => {
            let word = ctx.input.key(&word)?;
            db.search_fuzzy(&word, max_distance, limit.unwrap_or(usize::MAX))?
                .into_iter()
                .map(|(key, distance)| (key, Some(distance)))
                .collect()
        }
    };
    if found.is_empty() {
        return Ok(Done::NotFound("no key matches".to_owned()));
    }
    for (key, distance) in found {
        match (ctx.format, distance) {
            (Format::Json, None) => out.line(&format!("{{{}}}", json_bytes("key", &key)))?,
            (Format::Json, Some(d)) => {
                out.line(&format!("{{{},\"distance\":{d}}}", json_bytes("key", &key)))?
            }
            (Format::Raw, _) => {
                out.bytes(&key)?;
                if let Some(d) = distance {
                    out.bytes(format!("\t{d}").as_bytes())?;
                }
                out.bytes(b"\n")?;
            }
            (Format::Hex, None) => out.line(&hex::encode(&key))?,
            (Format::Hex, Some(d)) => out.line(&format!("{}\t{d}", hex::encode(&key)))?,
            (Format::Text, None) => out.line(&escape(&key))?,
            (Format::Text, Some(d)) => out.line(&format!("{}\t{d}", escape(&key)))?,
        }
    }
    Ok(Done::Ok)
}
