//! `load` and `dump`: keys and values in bulk, as JSON lines (`{"key": ..., "value": ...}`, or
//! `key_hex` / `value_hex` for bytes that are not UTF-8, as `dump` and `-o json` write them) or
//! as tab-separated escaped text (`key<TAB>value`, as `scan` prints it).
//!
//! Invariants: `load` commits in atomic batches (a crash keeps a prefix of whole batches, each
//! acknowledged batch durable), shows a progress bar on a terminal (bytes read of a file, a
//! count of bytes from stdin, [`crate::progress`]) and is quiet when piped; a bad line is an error naming its number, and the
//! batches before it stay committed. `dump` reads one consistent snapshot.

use std::io::{BufRead, BufReader, Read};

use kvstore::{Db, KeyRange, WriteBatch};

use crate::bytes::{Out, PipeClosed, from_hex, json_bytes};

/// How `load` reads its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadFormat {
    /// One JSON object a line: `key` or `key_hex`, `value` or `value_hex`.
    Jsonl,
    /// `key<TAB>value`, each escaped as `scan` prints them (`\xNN`, `\\`, `\t`, `\n`, `\r`).
    Tsv,
}

/// The bytes of a JSON object's `name` (text) or `name_hex` field.
fn json_field(object: &serde_json::Value, name: &str) -> Result<Vec<u8>, String> {
    if let Some(text) = object.get(name).and_then(serde_json::Value::as_str) {
        return Ok(text.as_bytes().to_vec());
    }
    let hex_name = format!("{name}_hex");
    match object.get(&hex_name).and_then(serde_json::Value::as_str) {
        Some(hex) => from_hex(hex).ok_or_else(|| format!("{hex_name} is not hex")),
        None => Err(format!("no {name} or {hex_name}")),
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
fn parse(line: &str, format: LoadFormat) -> Result<(Vec<u8>, Vec<u8>), String> {
    match format {
        LoadFormat::Jsonl => {
            let object: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            Ok((json_field(&object, "key")?, json_field(&object, "value")?))
        }
        LoadFormat::Tsv => {
            let (key, value) = line.split_once('\t').ok_or("no tab")?;
            Ok((unescape(key)?, unescape(value)?))
        }
    }
}

/// Loads `input` (`len` bytes if known) into `db` in batches of `batch` puts; returns the
/// number of keys and the last revision.
pub fn load(
    db: &Db,
    input: &mut dyn Read,
    len: Option<u64>,
    format: LoadFormat,
    batch: usize,
) -> Result<(u64, u64), String> {
    let bar = crate::progress::bytes(len);
    let mut reader = BufReader::new(input);
    let mut pending = WriteBatch::new();
    let (mut keys, mut revision, mut number) = (0u64, 0u64, 0u64);
    let mut line = String::new();
    let mut commit = |pending: &mut WriteBatch| -> Result<(), String> {
        if !pending.is_empty() {
            revision = db
                .write(std::mem::take(pending))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading line {}: {e}", number + 1))?;
        if read == 0 {
            break;
        }
        number += 1;
        bar.inc(read as u64);
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let (key, value) = parse(text, format).map_err(|e| format!("line {number}: {e}"))?;
        pending.put(&key, &value);
        keys += 1;
        if pending.len() >= batch {
            commit(&mut pending)?;
            bar.set_message(format!("{keys} keys"));
        }
    }
    commit(&mut pending)?;
    bar.finish_and_clear();
    Ok((keys, revision))
}

/// Writes every key of one snapshot as JSON lines.
pub fn dump(db: &Db, out: &mut Out) -> Result<Result<u64, String>, PipeClosed> {
    let snapshot = match db.snapshot() {
        Ok(snapshot) => snapshot,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let rows = match snapshot.scan(KeyRange::all(), kvstore::ScanOptions::default()) {
        Ok(rows) => rows,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut count = 0u64;
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
    }
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
            parse(&line, LoadFormat::Jsonl).unwrap(),
            (b"k".to_vec(), bytes.to_vec())
        );
        assert_eq!(
            parse(&format!("k\t{escaped}"), LoadFormat::Tsv).unwrap(),
            (b"k".to_vec(), bytes.to_vec())
        );
        assert!(parse("no tab here", LoadFormat::Tsv).is_err());
        assert!(parse("{\"key\": 1}", LoadFormat::Jsonl).is_err());
        assert!(unescape("\\q").is_err());
    }
}
