//! Bytes in and out of the tool, binary-safe: where an argument's bytes come from (the text
//! itself, `-` for stdin, `@PATH` for a file, `--hex` to decode it), and how output bytes are
//! shown (`-o text|raw|hex|json`).
//!
//! Invariants: no byte is lost or replaced on the way in or out (text output escapes what is not
//! printable ASCII, `raw` writes the bytes as they are); a write to a closed pipe ends the tool
//! quietly ([`Out`]), it never panics.

use std::io::{Read, Write};

use clap::ValueEnum;

/// How output bytes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Printable ASCII as is, other bytes as `\xNN` (and `\\`, `\t`, `\n`), one record a line.
    #[default]
    Text,
    /// The bytes exactly (a value alone, for `get`; `key<TAB>value` lines for `scan`).
    Raw,
    /// Lowercase hex.
    Hex,
    /// One JSON object a line, keys and values as hex strings beside their text when UTF-8.
    Json,
}

/// How arguments' bytes are written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Input {
    /// Arguments are hex.
    pub hex: bool,
}

/// Why an argument's bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `--hex` was given and the argument is not hex.
    #[error("{what} is not hex: {arg}")]
    NotHex {
        /// Which argument.
        what: &'static str,
        /// The argument.
        arg: String,
    },
    /// Reading stdin or the file failed.
    #[error("cannot read {what} from {from}: {source}")]
    Read {
        /// Which argument.
        what: &'static str,
        /// Where from.
        from: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Input {
    /// The bytes of a key argument (the text, or hex with `--hex`).
    pub fn key(&self, arg: &str) -> Result<Vec<u8>, InputError> {
        self.decode("key", arg)
    }

    /// The bytes of a value argument: `-` reads stdin, `@PATH` reads the file, anything else
    /// is the text (or hex with `--hex`). A value that starts with `@` or is `-` itself is
    /// passed as `@@...` / through a file.
    pub fn value(&self, arg: &str) -> Result<Vec<u8>, InputError> {
        let read = |from: &str, reader: &mut dyn Read| {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map(|_| bytes)
                .map_err(|source| InputError::Read {
                    what: "value",
                    from: from.to_owned(),
                    source,
                })
        };
        if arg == "-" {
            return read("stdin", &mut std::io::stdin().lock());
        }
        if let Some(escaped) = arg.strip_prefix("@@") {
            return self.decode("value", &format!("@{escaped}"));
        }
        if let Some(path) = arg.strip_prefix('@') {
            let mut file = std::fs::File::open(path).map_err(|source| InputError::Read {
                what: "value",
                from: path.to_owned(),
                source,
            })?;
            return read(path, &mut file);
        }
        self.decode("value", arg)
    }

    /// The bytes of an argument named `what`: the text, or hex with `--hex`.
    pub fn decode(&self, what: &'static str, arg: &str) -> Result<Vec<u8>, InputError> {
        if self.hex {
            from_hex(arg).ok_or_else(|| InputError::NotHex {
                what,
                arg: arg.to_owned(),
            })
        } else {
            Ok(arg.as_bytes().to_vec())
        }
    }
}

/// `bytes` as text: printable ASCII as is, `\\`, `\t`, `\n`, `\r`, and `\xNN` for the rest.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// A JSON string of `bytes`: the text when it is UTF-8, else `null`, beside a hex field (see
/// [`json_bytes`]).
fn json_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::String(text.to_owned()).to_string(),
        Err(_) => "null".to_owned(),
    }
}

/// `"NAME":TEXT,"NAME_hex":"HEX"` for a JSON object.
pub fn json_bytes(name: &str, bytes: &[u8]) -> String {
    format!(
        "\"{name}\":{},\"{name}_hex\":\"{}\"",
        json_text(bytes),
        hex::encode(bytes)
    )
}

/// Standard output for the tool's results: every write goes through it, and a closed pipe
/// (`kvstore scan | head -1`) stops the tool quietly with exit code 0 instead of a panic.
pub struct Out {
    out: std::io::BufWriter<std::io::Stdout>,
}

/// The reader went away: the tool should stop.
#[derive(Debug)]
pub struct PipeClosed;

impl Out {
    /// Buffered standard output.
    pub fn new() -> Out {
        Out {
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    /// Writes `bytes`.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), PipeClosed> {
        self.out.write_all(bytes).map_err(|_| PipeClosed)
    }

    /// Writes `line` and a newline.
    pub fn line(&mut self, line: &str) -> Result<(), PipeClosed> {
        self.bytes(line.as_bytes())?;
        self.bytes(b"\n")
    }

    /// Writes `bytes` shown as `format` says, and a newline unless `raw`.
    pub fn shown(&mut self, bytes: &[u8], format: Format) -> Result<(), PipeClosed> {
        match format {
            Format::Raw => self.bytes(bytes),
            Format::Hex => self.line(&hex::encode(bytes)),
            Format::Text | Format::Json => self.line(&escape(bytes)),
        }
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> Result<(), PipeClosed> {
        self.out.flush().map_err(|_| PipeClosed)
    }
}

/// Each byte's value as a hex digit, or `NOT_HEX`.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const NOT_HEX: u8 = 0xff;

/// The bytes `text` spells in hex (two digits a byte, either case), or `None` if it does not.
/// A table lookup per digit, with no branch per byte (a bad digit's `NOT_HEX` is or-ed into
/// one check at the end): `hex::decode` (a collect of per-byte results) and even
/// `hex::decode_to_slice` were about half of a bulk `load`'s time, a lookup with a branch and
/// a push per byte 11% of it.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let (pairs, odd) = text.as_bytes().as_chunks::<2>();
    if !odd.is_empty() {
        return None;
    }
    let mut out = vec![0u8; pairs.len()];
    let mut seen = 0u8;
    for (byte, &[high, low]) in out.iter_mut().zip(pairs) {
        let (high, low) = (HEX_DIGITS[usize::from(high)], HEX_DIGITS[usize::from(low)]);
        seen |= high | low;
        *byte = high << 4 | low;
    }
    // Digits are below 16, `NOT_HEX` is not: one bad digit sets the high bits.
    (seen <= 0x0f).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_digits_a_byte_in_either_case() {
        assert_eq!(from_hex("00ffAb"), Some(vec![0, 255, 171]));
        assert_eq!(from_hex(""), Some(vec![]));
        assert_eq!(from_hex("abc"), None, "odd length");
        assert_eq!(from_hex("zz"), None, "not a digit");
        assert_eq!(from_hex("0g"), None, "one digit wrong");
        let every: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(from_hex(&every), Some((0..=255u8).collect()));
        assert_eq!(from_hex(&every.to_uppercase()), Some((0..=255u8).collect()));
    }

    #[test]
    fn escaping_keeps_every_byte_and_only_printable_ascii_shows_as_is() {
        assert_eq!(escape(b"a b\\c"), "a b\\\\c");
        assert_eq!(escape(&[0x89, b'P', b'\n', 0]), "\\x89P\\n\\x00");
        assert_eq!(
            json_bytes("k", b"a\"b"),
            "\"k\":\"a\\\"b\",\"k_hex\":\"612262\""
        );
        assert_eq!(json_bytes("v", &[0xff]), "\"v\":null,\"v_hex\":\"ff\"");
    }

    #[test]
    fn arguments_decode_as_text_hex_or_an_escaped_at_sign() {
        let text = Input::default();
        assert_eq!(text.key("k1").unwrap(), b"k1");
        assert_eq!(text.value("@@home").unwrap(), b"@home");
        let hex = Input { hex: true };
        assert_eq!(hex.key("00ff").unwrap(), vec![0, 0xff]);
        assert!(hex.key("zz").is_err());
        assert!(text.value("@/nonexistent/file").is_err());
    }
}
