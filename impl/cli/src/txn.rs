//! `txn`: etcd's compare-then-branch transaction, written in etcdctl's interactive txn syntax:
//! compares, a blank line, the success ops, a blank line, the failure ops, and a blank line (or
//! the end of input) to finish.
//!
//! ```text
//! value("k") = "v1"        <- compares, all must hold: value|val, version|ver,
//! version("n") > 1            create|c, mod|m, lease; = != < >
//!
//! put k v2                 <- success ops: put KEY VALUE [--lease N], del KEY [--prefix],
//! get k                       get KEY [--prefix] [--limit N]
//!
//! get k                    <- failure ops
//! ```
//!
//! Words are split as a POSIX shell splits them, so `value("a b") = "x y"` compares the key
//! `a b`; with `--hex` keys and values are hex (`value("6b") = "7631"`); a put's value may be
//! `@PATH` (a file's bytes). The engine evaluates the compares and runs the branch atomically
//! (`Db::txn`): this module only parses the text and prints the answer.
//!
//! Invariants: a line that does not parse is a usage error naming its line number, and nothing
//! is committed; the text is read in full before the engine sees the txn; the same parser
//! serves the one-shot command (stdin) and the shell (one line at a time).

use std::io::{BufRead, IsTerminal};

use clap::Parser;
use kvstore::txn::{Compare, CompareOp, CompareTarget, OpResult, RangeRequest, Txn, TxnOp};
use kvstore::{Db, KeyRange};

use crate::bytes::{Format, Input, Out, escape, json_bytes};
use crate::db_cmd::{Done, Failure, Outcome, json_row, row};

/// Which part of the text a line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Compares,
    Success,
    Failure,
    Complete,
}

/// One op line (after the shell-like split), parsed as a tiny command line.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, name = "", disable_version_flag = true)]
enum OpLine {
    /// put KEY VALUE [--lease N]
    Put {
        key: String,
        value: String,
        #[arg(long, default_value_t = 0)]
        lease: u64,
    },
    /// get KEY [--prefix] [--limit N]
    Get {
        key: String,
        #[arg(long)]
        prefix: bool,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// del KEY [--prefix]
    Del {
        key: String,
        #[arg(long)]
        prefix: bool,
    },
}

/// What an op was, for printing its result: its verb and the key it named.
#[derive(Debug)]
struct Named {
    verb: &'static str,
    key: Vec<u8>,
}

/// A txn read line by line ([`TxnText::push`]) until [`TxnText::is_complete`].
pub struct TxnText {
    input: Input,
    part: Part,
    lines: usize,
    txn: Txn,
    success: Vec<Named>,
    failure: Vec<Named>,
}

impl TxnText {
    /// An empty txn whose keys and values are written as `input` says.
    pub fn new(input: Input) -> TxnText {
        TxnText {
            input,
            part: Part::Compares,
            lines: 0,
            txn: Txn::default(),
            success: Vec::new(),
            failure: Vec::new(),
        }
    }

    /// The prompt for the next line on a terminal.
    pub fn prompt(&self) -> &'static str {
        match self.part {
            Part::Compares => "compares> ",
            Part::Success => "success> ",
            Part::Failure | Part::Complete => "failure> ",
        }
    }

    /// Whether the third blank line (or [`TxnText::finish`]) ended the text.
    pub fn is_complete(&self) -> bool {
        self.part == Part::Complete
    }

    /// The end of input: the txn is whatever was read.
    pub fn finish(&mut self) {
        self.part = Part::Complete;
    }

    /// Reads one line (without its newline). A usage error names the line's number.
    pub fn push(&mut self, line: &str) -> Result<(), Failure> {
        debug_assert!(!self.is_complete(), "a line after the txn's end");
        self.lines += 1;
        let line = line.trim();
        if line.is_empty() {
            self.part = match self.part {
                Part::Compares => Part::Success,
                Part::Success => Part::Failure,
                Part::Failure | Part::Complete => Part::Complete,
            };
            return Ok(());
        }
        let parsed = match self.part {
            Part::Compares => self.compare(line).map(|c| self.txn.compares.push(c)),
            Part::Success => self.op(line).map(|(op, named)| {
                self.txn.success.push(op);
                self.success.push(named);
            }),
            Part::Failure | Part::Complete => self.op(line).map(|(op, named)| {
                self.txn.failure.push(op);
                self.failure.push(named);
            }),
        };
        parsed.map_err(|e| Failure::Usage(format!("txn line {}: {e}", self.lines)))
    }

    /// `target("key") op operand`.
    fn compare(&self, line: &str) -> Result<Compare, String> {
        let words = shlex::split(line).ok_or("unbalanced quotes")?;
        let [target, op, operand] = words.as_slice() else {
            return Err(format!(
                "a compare is `target(\"key\") op operand`, not {line:?}"
            ));
        };
        let (name, key) = target
            .split_once('(')
            .and_then(|(name, rest)| Some((name, rest.strip_suffix(')')?)))
            .ok_or_else(|| format!("{target:?} is not `target(\"key\")`"))?;
        let key = self.input.key(key).map_err(|e| e.to_string())?;
        let op = match op.as_str() {
            "=" | "==" => CompareOp::Equal,
            "!=" => CompareOp::NotEqual,
            "<" => CompareOp::Less,
            ">" => CompareOp::Greater,
            other => return Err(format!("{other:?} is not one of = != < >")),
        };
        let number = || {
            operand
                .parse::<u64>()
                .map_err(|_| format!("{name} compares with a number, not {operand:?}"))
        };
        let target = match name {
            "value" | "val" => {
                let value = self
                    .input
                    .decode("value", operand)
                    .map_err(|e| e.to_string())?;
                CompareTarget::Value(value)
            }
            "version" | "ver" => CompareTarget::Version(number()?),
            "create" | "c" => CompareTarget::CreateRevision(number()?),
            "mod" | "m" => CompareTarget::ModRevision(number()?),
            "lease" => CompareTarget::Lease(number()?),
            other => {
                return Err(format!(
                    "{other:?} is not one of value, version, create, mod, lease"
                ));
            }
        };
        Ok(Compare::key(&key, op, target))
    }

    /// `put KEY VALUE`, `get KEY`, `del KEY` and their flags.
    fn op(&self, line: &str) -> Result<(TxnOp, Named), String> {
        let words = shlex::split(line).ok_or("unbalanced quotes")?;
        let parsed = OpLine::try_parse_from(words).map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            format!("{first} (ops: put KEY VALUE [--lease N], get KEY [--prefix] [--limit N], del KEY [--prefix])")
        })?;
        let range = |key: &[u8], prefix: bool| match prefix {
            true => KeyRange::prefix(key),
            false => KeyRange::key(key),
        };
        Ok(match parsed {
            OpLine::Put { key, value, lease } => {
                if value == "-" {
                    return Err("a txn's put cannot read stdin (it holds the txn)".to_owned());
                }
                let key = self.input.key(&key).map_err(|e| e.to_string())?;
                let value = self.input.value(&value).map_err(|e| e.to_string())?;
                let named = Named { verb: "put", key };
                let op = TxnOp::Put {
                    key: named.key.clone(),
                    value,
                    lease,
                };
                (op, named)
            }
            OpLine::Get { key, prefix, limit } => {
                let key = self.input.key(&key).map_err(|e| e.to_string())?;
                let op = TxnOp::Range(RangeRequest {
                    range: range(&key, prefix),
                    limit,
                });
                (op, Named { verb: "get", key })
            }
            OpLine::Del { key, prefix } => {
                let key = self.input.key(&key).map_err(|e| e.to_string())?;
                let op = TxnOp::DeleteRange(range(&key, prefix));
                (op, Named { verb: "del", key })
            }
        })
    }
}

/// Lines of standard input, each prompt shown on stderr when stdin is a terminal.
pub fn stdin_lines() -> impl FnMut(&str) -> Result<Option<String>, Failure> {
    let terminal = std::io::stdin().is_terminal();
    move |prompt| {
        if terminal {
            eprint!("{prompt}");
        }
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line)),
            Err(e) => Err(Failure::Error(format!("reading the txn from stdin: {e}"))),
        }
    }
}

/// Reads a txn from `next_line` (which returns `None` at the end of input and is given the
/// prompt for a terminal), runs it on `db` and prints which branch ran and each op's result.
/// Exit 0 when the compares held, 1 when the failure branch ran.
pub fn run(
    db: &Db,
    input: Input,
    format: Format,
    next_line: &mut dyn FnMut(&str) -> Result<Option<String>, Failure>,
    out: &mut Out,
) -> Outcome {
    let mut text = TxnText::new(input);
    while !text.is_complete() {
        match next_line(text.prompt())? {
            Some(line) => text.push(&line)?,
            None => text.finish(),
        }
    }
    let TxnText {
        txn,
        success,
        failure,
        ..
    } = text;
    let response = db.txn(txn)?;
    let named = if response.succeeded { success } else { failure };
    debug_assert_eq!(named.len(), response.results.len());
    if format == Format::Json {
        let results: Vec<String> = named
            .iter()
            .zip(&response.results)
            .map(|(named, result)| json_result(named, result))
            .collect();
        out.line(&format!(
            "{{\"succeeded\":{},\"revision\":{},\"results\":[{}]}}",
            response.succeeded,
            response.revision,
            results.join(",")
        ))?;
    } else {
        out.line(if response.succeeded {
            "SUCCESS"
        } else {
            "FAILURE"
        })?;
        out.line(&format!("revision {}", response.revision))?;
        for (named, result) in named.iter().zip(&response.results) {
            text_result(out, format, named, result)?;
        }
    }
    Ok(if response.succeeded {
        Done::Ok
    } else {
        Done::NotFound("the compares failed: the failure branch ran".to_owned())
    })
}

/// One op's result as lines: `put KEY`, `del KEY: N deleted`, `get KEY: N rows` and the rows.
fn text_result(out: &mut Out, format: Format, named: &Named, result: &OpResult) -> Outcome {
    let key = escape(&named.key);
    match result {
        OpResult::Put { .. } => out.line(&format!("put {key}"))?,
        OpResult::DeleteRange { deleted } => {
            out.line(&format!("del {key}: {} deleted", deleted.len()))?
        }
        OpResult::Range { rows, more } => {
            let more = if *more { " (more left)" } else { "" };
            out.line(&format!("get {key}: {} rows{more}", rows.len()))?;
            for (key, version) in rows {
                row(out, key, Some(version), format)?;
            }
        }
        // The shell's txn syntax has no nested txn; the engine answers one only for one.
        OpResult::Txn { succeeded, results } => out.line(&format!(
            "txn: {}, {} results",
            if *succeeded { "succeeded" } else { "failed" },
            results.len()
        ))?,
    }
    Ok(Done::Ok)
}

/// One op's result as a JSON object.
fn json_result(named: &Named, result: &OpResult) -> String {
    let head = format!(
        "\"op\":\"{}\",{}",
        named.verb,
        json_bytes("key", &named.key)
    );
    match result {
        OpResult::Put { .. } => format!("{{{head}}}"),
        OpResult::DeleteRange { deleted } => format!("{{{head},\"deleted\":{}}}", deleted.len()),
        OpResult::Range { rows, more } => {
            let rows: Vec<String> = rows.iter().map(|(k, v)| json_row(k, v)).collect();
            format!("{{{head},\"rows\":[{}],\"more\":{more}}}", rows.join(","))
        }
        OpResult::Txn { succeeded, results } => format!(
            "{{{head},\"succeeded\":{succeeded},\"results\":{}}}",
            results.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str], input: Input) -> Result<TxnText, String> {
        let mut text = TxnText::new(input);
        for line in lines {
            if text.is_complete() {
                break;
            }
            text.push(line).map_err(|e| match e {
                Failure::Usage(m) | Failure::Error(m) => m,
                Failure::PipeClosed => "pipe".to_owned(),
            })?;
        }
        Ok(text)
    }

    #[test]
    fn etcdctl_text_parses_into_the_engine_txn() {
        let text = parse(
            &[
                r#"value("k") = "v 1""#,
                r#"ver("k") > 1"#,
                r#"mod("k") < "10""#,
                r#"c("n") = 0"#,
                "",
                "put k v2 --lease 0",
                "del --prefix p/",
                "",
                "get k --limit 1",
                "",
                "get ignored-after-the-end",
            ],
            Input::default(),
        )
        .unwrap();
        assert!(text.is_complete());
        let key = |k: &str, op, target| Compare::key(k.as_bytes(), op, target);
        assert_eq!(
            text.txn.compares,
            vec![
                key("k", CompareOp::Equal, CompareTarget::Value(b"v 1".to_vec())),
                key("k", CompareOp::Greater, CompareTarget::Version(1)),
                key("k", CompareOp::Less, CompareTarget::ModRevision(10)),
                key("n", CompareOp::Equal, CompareTarget::CreateRevision(0)),
            ]
        );
        assert_eq!(
            text.txn.success,
            vec![
                TxnOp::Put {
                    key: b"k".to_vec(),
                    value: b"v2".to_vec(),
                    lease: 0
                },
                TxnOp::DeleteRange(KeyRange::prefix(b"p/")),
            ]
        );
        assert_eq!(
            text.txn.failure,
            vec![TxnOp::Range(RangeRequest {
                range: KeyRange::key(b"k"),
                limit: Some(1)
            })]
        );
    }

    #[test]
    fn hex_keys_and_values_and_bad_lines() {
        let hex = Input { hex: true };
        let text = parse(&[r#"value("00ff") != "89""#, "", "put 00 ff"], hex).unwrap();
        assert_eq!(
            text.txn.compares,
            vec![Compare::key(
                &[0, 0xff],
                CompareOp::NotEqual,
                CompareTarget::Value(vec![0x89])
            )]
        );
        for (lines, says) in [
            (&[r#"value("k") >= "v""#][..], "line 1"),
            (&[r#"size("k") = 1"#], "not one of value"),
            (&[r#"version("k") = x"#], "number"),
            (&["value(k) ="], "a compare is"),
            (&["", "set k v"], "line 2"),
            (&["", "put k -"], "stdin"),
            (&["", "put k 'v"], "quotes"),
        ] {
            let e = parse(lines, Input::default()).err().unwrap();
            assert!(e.contains(says), "{lines:?}: {e}");
        }
    }
}
