//! What every test of the tool shares: running the real binary on a database directory.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The tool on the database at `dir` (made if missing).
pub fn tool(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvstore"));
    command.arg("--db").arg(dir).arg("--create");
    command
}

pub fn kv(dir: &std::path::Path, args: &[&str]) -> Output {
    tool(dir).args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The tool on `dir` with `stdin` written to its standard input (and `HOME` at `dir`, for the
/// shell's history).
pub fn with_stdin(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tool(dir)
        .args(args)
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The tool with `args` only (no `--db`).
pub fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .args(args)
        .output()
        .unwrap()
}
