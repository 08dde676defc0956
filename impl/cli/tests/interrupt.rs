//! Ctrl-C (SIGINT from `kill -INT`) in the middle of the long commands, through the real binary:
//! `load` stops after a committed batch and says exactly what it committed (a reopen finds
//! those keys and no other); `backup create`, `backup restore` and a search rebuilding the key
//! index end at once and leave nothing half-made: no backup listed, no restored database, an
//! index rebuilt by the next search.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{kv, stdout};

/// How long a command may take to reach the point a test interrupts it at.
const REACH_TIMEOUT: Duration = Duration::from_secs(60);

/// SIGINT's number, as `ExitStatus::signal` reports it.
const SIGINT: i32 = 2;

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupt(child: &Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits (busy, so a short step is not missed) until `reached` holds, or the child ended.
fn wait_until(child: &mut Child, reached: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < REACH_TIMEOUT {
        if reached() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
    }
    panic!("not reached in {REACH_TIMEOUT:?}");
}

/// Names in `dir` (none if it does not exist).
fn names(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Bytes of the WAL segments in `dir`.
fn wal_bytes(dir: &Path) -> u64 {
    names(dir)
        .iter()
        .filter(|n| n.starts_with("wal-"))
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum()
}

fn count(db: &Path) -> u64 {
    stdout(&kv(db, &["scan", "--count"]))
        .trim()
        .parse()
        .unwrap()
}

/// `keys` JSON lines `k0000000`.. with `value_len`-byte values of pseudo-random hex digits
/// (which LZ4 barely shrinks, so the tables are about as big as the values).
fn write_keys(path: &Path, keys: u64, value_len: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut lines = String::new();
    for i in 0..keys {
        let value: String = (0..value_len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b"0123456789abcdef"[(state & 15) as usize])
            })
            .collect();
        lines.push_str(&format!("{{\"key\":\"k{i:07}\",\"value\":\"{value}\"}}\n"));
    }
    std::fs::write(path, lines).unwrap();
}

#[test]
fn ctrl_c_stops_a_load_after_a_committed_batch_and_says_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = (dir.path().join("db"), dir.path().join("keys.jsonl"));
    write_keys(&keys, 1_000_000, 20);
    let (d, k) = (db.to_str().unwrap(), keys.to_str().unwrap());
    let mut load = spawn(&["--db", d, "--create", "load", k, "--batch", "1000"]);
    // Some batches are in the log: the load is under way.
    assert!(
        wait_until(&mut load, || wal_bytes(&db) > 100_000),
        "the load ended before it could be interrupted"
    );
    interrupt(&load);
    let o = load.wait_with_output().unwrap();
    let said = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(3), "{said}");
    // "load interrupted: N keys committed (input lines 1-N), last revision R"
    let words: Vec<&str> = said.split_whitespace().collect();
    assert_eq!(words[..3], ["kvstore:", "load", "interrupted:"], "{said}");
    let committed: u64 = words[3].parse().unwrap();
    assert!(committed > 0 && committed < 1_000_000, "{said}");
    assert_eq!(committed % 1000, 0, "whole batches only: {said}");
    assert!(
        said.contains(&format!("(input lines 1-{committed})")),
        "{said}"
    );
    // Exactly those keys are there after a reopen.
    assert_eq!(count(&db), committed);
    let last = format!("k{:07}", committed - 1);
    let next = format!("k{committed:07}");
    assert!(kv(&db, &["get", &last]).status.success());
    assert_eq!(kv(&db, &["get", &next]).status.code(), Some(1));
}

/// A database of 40k keys with 1 KiB values (several tables).
fn big_database(dir: &Path) -> std::path::PathBuf {
    let (db, keys) = (dir.join("db"), dir.join("keys.jsonl"));
    write_keys(&keys, 40_000, 1024);
    let loaded = kv(&db, &["load", keys.to_str().unwrap()]);
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(kv(&db, &["flush"]).status.success());
    db
}

/// Runs `args` and interrupts it once `reached`; retried (up to 5 times) while the command
/// ends before the signal lands. Returns whether it was interrupted.
fn interrupt_once(args: &[&str], reached: impl Fn() -> bool, undo: impl Fn()) -> bool {
    for _ in 0..5 {
        let mut child = spawn(args);
        let mid_work = wait_until(&mut child, &reached);
        if mid_work {
            interrupt(&child);
        }
        let status = child.wait().unwrap();
        if status.signal() == Some(SIGINT) {
            return true;
        }
        assert!(status.success(), "{args:?}: {status:?}");
        undo();
    }
    false
}

#[test]
fn ctrl_c_during_a_backup_or_a_restore_leaves_nothing_half_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_database(dir.path());
    let backups = dir.path().join("backups");
    let (d, b) = (db.to_str().unwrap(), backups.to_str().unwrap());
    let tables = backups.join("tables");
    let copying = || names(&tables).iter().any(|n| n.ends_with(".tmp"));
    let undo = || std::fs::remove_dir_all(&backups).unwrap();
    assert!(
        interrupt_once(&["--db", d, "backup", "create", b], copying, undo),
        "every backup ended before the signal"
    );
    // Killed mid-copy: nothing listed, or (the signal landed past the commit point) a whole
    // backup.
    let listed = stdout(&kv(&db, &["backup", "list", b]));
    assert!(listed.lines().count() <= 1, "{listed}");
    if !listed.is_empty() {
        assert!(kv(&db, &["backup", "verify", b]).status.success());
    }
    assert_eq!(count(&db), 40_000);
    // The next backup removes the leftovers and is whole.
    assert!(kv(&db, &["backup", "create", b]).status.success());
    assert!(names(&tables).iter().all(|n| !n.ends_with(".tmp")));
    assert!(kv(&db, &["backup", "verify", b]).status.success());

    let target = dir.path().join("restored");
    let t = target.to_str().unwrap();
    let copying = || names(&target).iter().any(|n| n.ends_with(".sst"));
    let undo = || std::fs::remove_dir_all(&target).unwrap();
    assert!(
        interrupt_once(&["backup", "restore", b, t], copying, undo),
        "every restore ended before the signal"
    );
    // No manifest: not a database, and the tool says so (or, past the commit point, a whole
    // one).
    if target.join("manifest.json").exists() {
        assert_eq!(count(&target), 40_000);
    } else {
        let refused = Command::new(env!("CARGO_BIN_EXE_kvstore"))
            .args(["--db", t, "scan", "--count"])
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(3));
    }
    std::fs::remove_dir_all(&target).unwrap();
    assert!(kv(&db, &["backup", "restore", b, t]).status.success());
    assert_eq!(count(&target), 40_000);
}

#[test]
fn ctrl_c_during_an_index_rebuild_leaves_it_to_the_next_search() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_database(dir.path());
    let d = db.to_str().unwrap();
    let index = db.join("index");
    let indexing = || wal_bytes(&index) > 0;
    let undo = || std::fs::remove_dir_all(&index).unwrap();
    assert!(
        interrupt_once(
            &["--db", d, "search", "contains", "k003999"],
            indexing,
            undo
        ),
        "every rebuild ended before the signal"
    );
    let found = kv(&db, &["search", "contains", "k003999"]);
    assert_eq!(
        stdout(&found),
        "k0039990\nk0039991\nk0039992\nk0039993\nk0039994\nk0039995\nk0039996\nk0039997\nk0039998\nk0039999\n"
    );
    assert_eq!(count(&db), 40_000);
}

/// In the shell, the handler a `load` installed gives Ctrl-C its default back once the load is
/// done: one Ctrl-C ends a later `watch` (which streams until Ctrl-C), as it does without a load.
#[test]
fn after_a_load_in_the_shell_one_ctrl_c_ends_the_next_command() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = (dir.path().join("db"), dir.path().join("keys.jsonl"));
    write_keys(&keys, 100, 10);
    let mut shell = Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .args(["--db", db.to_str().unwrap(), "--create", "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = shell.stdin.take().unwrap();
    writeln!(input, "load {}\nscan --count\nwatch w", keys.display()).unwrap();
    // The count is printed: the load is over (and its handler installed).
    let output = BufReader::new(shell.stdout.take().unwrap());
    let counted = output
        .lines()
        .any(|line| line.unwrap().trim_end().ends_with("100"));
    assert!(counted, "the shell ended before it counted the loaded keys");
    interrupt(&shell);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = shell.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > REACH_TIMEOUT {
            shell.kill().unwrap();
            panic!("one Ctrl-C did not end the shell's watch in {REACH_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    drop(input);
}
