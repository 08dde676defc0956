//! `--read-only` through the real binary: reads work, writes fail with exit 3 naming the
//! cause, no file of the database changes, read-only openers share the database and keep a
//! writer out; a writer holding the database is named by its pid.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use common::{kv, stdout};

/// The tool on the existing database at `dir`.
fn writer(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvstore"));
    command.arg("--db").arg(dir);
    command
}

/// The tool on `dir`, read-only.
fn read_only(dir: &std::path::Path) -> Command {
    let mut command = writer(dir);
    command.arg("--read-only");
    command
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    all.sort();
    all
}

/// A shell of `tool` on `d` with the database open (it has answered `get a`); it closes when
/// the returned stdin is dropped.
fn holding(mut tool: Command, d: &std::path::Path) -> (Child, ChildStdin) {
    let mut shell = tool
        .arg("shell")
        .env("HOME", d.join("no-home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    stdin.write_all(b"get a\n").unwrap();
    let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "1");
    (shell, stdin)
}

#[test]
fn read_only_reads_refuses_writes_and_shares_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(kv(d, &["put", "a", "1"]).status.success());
    let before = snapshot(d);
    let got = read_only(d).args(["get", "a"]).output().unwrap();
    assert_eq!(
        (got.status.code(), stdout(&got)),
        (Some(0), "1\n".to_owned())
    );
    let put = read_only(d).args(["put", "b", "2"]).output().unwrap();
    assert_eq!(put.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&put.stderr).contains("read-only"),
        "{put:?}"
    );
    // A read-only shell holds the database open: another reader gets in, a writer does not.
    let (mut shell, stdin) = holding(read_only(d), d);
    let scan = read_only(d).arg("scan").output().unwrap();
    assert_eq!(stdout(&scan), "a\t1\n");
    let locked = writer(d).args(["put", "c", "3"]).output().unwrap();
    assert_eq!(locked.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("locked"),
        "{locked:?}"
    );
    drop(stdin);
    assert!(shell.wait().unwrap().success());
    assert_eq!(snapshot(d), before, "a read-only session changed a file");
    // A writer's shell holds it: another opener is told the shell's pid.
    let (mut shell, stdin) = holding(writer(d), d);
    let kept_out = read_only(d).args(["get", "a"]).output().unwrap();
    assert_eq!(kept_out.status.code(), Some(3));
    let says = String::from_utf8_lossy(&kept_out.stderr).into_owned();
    assert!(
        says.contains(&format!("(process {})", shell.id())),
        "{says}"
    );
    drop(stdin);
    assert!(shell.wait().unwrap().success());
    let missing = read_only(&d.join("none"))
        .args(["get", "a"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(!d.join("none").exists());
}
