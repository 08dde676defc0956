//! `load` and `dump`: keys and values in bulk, as JSON lines (`{"key": ..., "value": ...}`, or
//! `key_hex` / `value_hex` for bytes that are not UTF-8, as `dump` and `-o json` write them) or
//! as tab-separated escaped text (`key<TAB>value`, as `scan` prints it).
//!
//! Invariants: `load` commits in atomic batches (a crash keeps a prefix of whole batches) and
//! acknowledges only what is durable: the count it prints, at its end, on Ctrl-C
//! ([`crate::interrupt`]) or in an error (a bad line names its number; the batches before it
//! stay committed), says how many keys, through which input line, a sync made durable. It
//! shows a progress bar on a terminal (bytes read of a file, a count of bytes from stdin,
//! [`crate::progress`]) and is quiet when piped. `dump` reads one consistent snapshot, with a
//! bar of the bytes read against an estimate of the database's.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, SyncSender};

use kvstore::{Db, Durability, KeyRange, WriteBatch, WriteOptions};

use crate::bytes::{Out, PipeClosed, from_hex, json_bytes};
use crate::interrupt::Interrupt;
use crate::progress::{self, Unit};

/// How `load` reads its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadFormat {
    /// One JSON object a line: `key` or `key_hex`, `value` or `value_hex`.
    Jsonl,
    /// `key<TAB>value`, each escaped as `scan` prints them (`\xNN`, `\\`, `\t`, `\n`, `\r`).
    Tsv,
}

/// One JSON line's fields: `key` or `key_hex`, `value` or `value_hex` (others ignored), read
/// in place (a field is copied only when it holds an escape).
#[derive(serde::Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    key_hex: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    value_hex: Option<Cow<'a, str>>,
}

/// The bytes of a field given as `text`, or else as `hex` (named `name`).
fn field(
    text: Option<Cow<'_, str>>,
    hex: Option<Cow<'_, str>>,
    name: &str,
) -> Result<Vec<u8>, String> {
    match (text, hex) {
        (Some(text), _) => Ok(text.into_owned().into_bytes()),
        (None, Some(hex)) => from_hex(&hex).ok_or_else(|| format!("{name}_hex is not hex")),
        (None, None) => Err(format!("no {name} or {name}_hex")),
    }
}

/// Undoes [`crate::bytes::escape`].
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let pair = [bytes.next(), bytes.next()];
                let [Some(hi), Some(lo)] = pair else {
                    return Err("\\x needs two hex digits".to_owned());
                };
                let byte = hex::decode([hi, lo]).map_err(|_| "\\x needs two hex digits")?;
                out.extend(byte);
            }
            _ => return Err("an unknown escape".to_owned()),
        }
    }
    Ok(out)
}

/// One line's key and value.
fn parse(line: &[u8], format: LoadFormat) -> Result<(Vec<u8>, Vec<u8>), String> {
    match format {
        LoadFormat::Jsonl => {
            let fields: JsonLine<'_> =
                serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
            Ok((
                field(fields.key, fields.key_hex, "key")?,
                field(fields.value, fields.value_hex, "value")?,
            ))
        }
        LoadFormat::Tsv => {
            let line = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
            let (key, value) = line.split_once('\t').ok_or("no tab")?;
            Ok((unescape(key)?, unescape(value)?))
        }
    }
}

/// What a load has committed: its keys, through which line of the input, and the revision of
/// its last batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Keys committed.
    pub keys: u64,
    /// The input's lines up to the last one committed (blank lines included).
    pub lines: u64,
    /// The revision of the last batch committed (0 if none).
    pub revision: u64,
}

impl std::fmt::Display for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} keys committed (input lines 1-{}), last revision {}",
            self.keys, self.lines, self.revision
        )
    }
}

/// Batches parsed ahead of the one being committed: enough to keep the committer busy while
/// the reader parses, few enough to bound the memory held (`batch` puts each).
const BATCHES_AHEAD: usize = 2;

/// The input a reader thread is given.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// What the reader thread hands the committer.
enum Parsed {
    /// The puts of the input's lines up to line `lines`, and the bytes they took.
    Batch {
        batch: WriteBatch,
        lines: u64,
        bytes: u64,
    },
    /// The input ended in an error (naming its line) after the batches sent before it.
    Failed(String),
}

/// Loads `input` (`len` bytes if known) into `db` in batches of `batch` puts, until its end or
/// until `interrupt` says Ctrl-C was pressed; returns what it committed, or an error that says
/// it. A thread reads and parses the input while this one commits the batch before. Batches
/// are written [`Durability::Buffered`] and one [`Db::sync`] makes them all durable before
/// their count is returned or put in an error (a sync per batch was a third of a load's time).
pub fn load(
    db: &Db,
    input: Box<dyn Read + Send>,
    len: Option<u64>,
    format: LoadFormat,
    batch: usize,
    interrupt: &Interrupt,
) -> Result<Committed, String> {
    let bar = progress::counting(Unit::Bytes, len);
    let (sender, batches) = mpsc::sync_channel(BATCHES_AHEAD);
    // Not joined: on an error or Ctrl-C the committer returns at once; the reader ends at its
    // next send, or with the process.
    std::thread::Builder::new()
        .name("load-parse".to_owned())
        .spawn(move || read_batches(input, format, batch, &sender))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    let buffered = WriteOptions {
        durability: Some(Durability::Buffered),
        ..WriteOptions::default()
    };
    let mut committed = Committed::default();
    for parsed in batches {
        if interrupt.pressed() {
            return Err(format!("load interrupted: {}", synced(db, committed)?));
        }
        match parsed {
            Parsed::Batch {
                batch,
                lines,
                bytes,
            } => {
                let keys = batch.len() as u64;
                if keys > 0 {
                    match db.write_with(batch, buffered) {
                        Ok(revision) => committed.revision = revision,
                        Err(e) => return Err(format!("{e}; {}", synced(db, committed)?)),
                    }
                    committed.keys += keys;
                }
                committed.lines = lines;
                bar.inc(bytes);
                bar.set_message(format!("{} keys", committed.keys));
            }
            Parsed::Failed(e) => return Err(format!("{e}; {}", synced(db, committed)?)),
        }
    }
    synced(db, committed)
}

/// `committed`, once a sync made it durable; else an error saying it is not known to be.
fn synced(db: &Db, committed: Committed) -> Result<Committed, String> {
    match db.sync() {
        Ok(()) => Ok(committed),
        Err(e) => Err(format!(
            "the sync that makes the load's {} keys durable failed: {e}; none is known durable \
             but those a flush wrote",
            committed.keys
        )),
    }
}

/// The reader thread: parses `input` into batches of `batch` puts and sends them, then the
/// last (possibly empty) one, or the error that ended the input. Stops when the committer is
/// gone.
fn read_batches(
    input: Box<dyn Read + Send>,
    format: LoadFormat,
    batch: usize,
    sender: &SyncSender<Parsed>,
) {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let mut pending = WriteBatch::new();
    let (mut number, mut bytes) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) => {
                let _ = sender.send(Parsed::Failed(format!("reading line {}: {e}", number + 1)));
                return;
            }
        };
        number += 1;
        bytes += read as u64;
        let text = line
            .strip_suffix(b"\n")
            .map_or(line.as_slice(), |l| l.strip_suffix(b"\r").unwrap_or(l));
        if text.is_empty() {
            continue;
        }
        match parse(text, format) {
            Ok((key, value)) => pending.put_owned(key, value),
            Err(e) => {
                let _ = sender.send(Parsed::Failed(format!("line {number}: {e}")));
                return;
            }
        };
        if pending.len() >= batch {
            let full = Parsed::Batch {
                batch: std::mem::take(&mut pending),
                lines: number,
                bytes: std::mem::take(&mut bytes),
            };
            if sender.send(full).is_err() {
                return;
            }
        }
    }
    let _ = sender.send(Parsed::Batch {
        batch: pending,
        lines: number,
        bytes,
    });
}

/// Key and value bytes `dump` reads between two advances of its bar.
const DUMP_REPORT_BYTES: u64 = 1 << 20;

/// What `dump`'s bar counts to: the bytes of the tables and memtables, which hold every live
/// key and value once (compression and older versions make it an estimate).
fn stored_bytes(db: &Db) -> u64 {
    let stats = db.stats();
    stats.bytes_per_level.iter().sum::<u64>() + stats.memtable_bytes
}

/// Writes every key of one snapshot as JSON lines, with a progress bar of the key and value
/// bytes read against an estimate of their total.
pub fn dump(db: &Db, out: &mut Out) -> Result<Result<u64, String>, PipeClosed> {
    let snapshot = match db.snapshot() {
        Ok(snapshot) => snapshot,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let rows = match snapshot.scan(KeyRange::all(), kvstore::ScanOptions::default()) {
        Ok(rows) => rows,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let bar = progress::estimated(Unit::Bytes, stored_bytes(db));
    let mut count = 0u64;
    let mut unreported = 0u64;
    for row in rows {
        let (key, value) = match row {
            Ok(row) => row,
            Err(e) => return Ok(Err(e.to_string())),
        };
        out.line(&format!(
            "{{{},{}}}",
            json_bytes("key", &key),
            json_bytes("value", &value)
        ))?;
        count += 1;
        unreported += (key.len() + value.len()) as u64;
        if unreported >= DUMP_REPORT_BYTES {
            progress::advance_estimated(&bar, std::mem::take(&mut unreported));
        }
    }
    bar.finish_and_clear();
    Ok(Ok(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_read_what_the_tool_writes() {
        let bytes = [0x89, b'\t', b'\\', b'x', 0];
        let escaped = crate::bytes::escape(&bytes);
        assert_eq!(unescape(&escaped).unwrap(), bytes);
        let line = format!(
            "{{{},{}}}",
            json_bytes("key", b"k"),
            json_bytes("value", &bytes)
        );
        assert_eq!(
            parse(line.as_bytes(), LoadFormat::Jsonl).unwrap(),
            (b"k".to_vec(), bytes.to_vec())
        );
        assert_eq!(
            parse(format!("k\t{escaped}").as_bytes(), LoadFormat::Tsv).unwrap(),
            (b"k".to_vec(), bytes.to_vec())
        );
        assert!(parse(b"no tab here", LoadFormat::Tsv).is_err());
        assert!(parse(b"{\"key\": 1}", LoadFormat::Jsonl).is_err());
        assert!(unescape("\\q").is_err());
    }
}
