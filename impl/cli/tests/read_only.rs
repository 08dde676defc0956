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

/// Every `open`/`openat` of a file in the database, as strace showed them: `--read-only` opens
/// each for reading only (O_RDONLY, nothing that creates, truncates or appends), so it works on
/// files it may not write. (Permissions cannot show it here: root ignores them.)
#[test]
fn read_only_opens_every_file_of_the_database_for_reading_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("db");
    assert!(kv(&d, &["put", "a", "1"]).status.success());
    assert!(kv(&d, &["flush"]).status.success());
    assert!(kv(&d, &["put", "b", "2"]).status.success());
    let log = dir.path().join("strace.txt");
    let traced = Command::new("strace")
        .args(["-f", "-e", "trace=open,openat,creat", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_kvstore"))
        .arg("--db")
        .arg(&d)
        .args(["--read-only", "scan"])
        .output();
    let traced = match traced {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            eprintln!("strace is not installed: the open modes are checked on SimVfs only");
            return;
        }
        Err(e) => panic!("strace: {e}"),
    };
    assert_eq!(stdout(&traced), "a\t1\nb\t2\n", "{traced:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    let db = d.display().to_string();
    let opens: Vec<&str> = log.lines().filter(|l| l.contains(&db)).collect();
    for suffix in ["manifest.json\"", ".sst\"", ".log\"", "LOCK\""] {
        assert!(
            opens.iter().any(|l| l.contains(suffix)),
            "no {suffix} opened: {log}"
        );
    }
    for open in &opens {
        let writable = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
        assert!(
            writable.iter().all(|flag| !open.contains(flag)),
            "opened writable: {open}"
        );
    }
}

/// With the database's directory and files read-only (mode 0555 and 0444) and the tool run as
/// an unprivileged user (`setpriv` to `nobody`, when this test runs as root, which ignores
/// permissions), `--read-only` reads it; a writer's open is refused by the filesystem.
#[test]
fn read_only_reads_a_database_it_may_not_write() {
    use std::os::unix::fs::PermissionsExt;
    let as_root = Command::new("id").arg("-u").output().unwrap();
    let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let runs_as_nobody = Command::new("setpriv").args(setpriv).arg("true").status();
    if stdout(&as_root).trim() != "0" || !runs_as_nobody.is_ok_and(|s| s.success()) {
        eprintln!("not root, or no setpriv: the permission check needs both; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("db");
    assert!(kv(&d, &["put", "a", "1"]).status.success());
    assert!(kv(&d, &["flush"]).status.success());
    assert!(kv(&d, &["put", "b", "2"]).status.success());
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(dir.path(), 0o755);
    for entry in std::fs::read_dir(&d).unwrap() {
        mode(&entry.unwrap().path(), 0o444);
    }
    mode(&d, 0o555);
    // The build's own path may sit under a directory `nobody` cannot enter (a clone in /root):
    // run a copy from the temporary directory instead.
    let binary = dir.path().join("kvstore");
    std::fs::copy(env!("CARGO_BIN_EXE_kvstore"), &binary).unwrap();
    mode(&binary, 0o755);
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(setpriv)
            .arg(&binary)
            .arg("--db")
            .arg(&d)
            .args(args)
            .output()
            .unwrap()
    };
    let scan = as_nobody(&["--read-only", "scan"]);
    assert_eq!(stdout(&scan), "a\t1\nb\t2\n", "{scan:?}");
    let write = as_nobody(&["put", "c", "3"]);
    assert_eq!(write.status.code(), Some(3), "{write:?}");
    mode(&d, 0o755);
}
