//! The CLI's database commands end to end: output and exit codes.

use std::process::{Command, Output};

fn kv(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .arg("--db")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn put_get_del_scan_stats_flush_compact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (k, v) in [("a", "1"), ("b", "2"), ("ab", "3")] {
        assert!(kv(d, &["put", k, v]).status.success());
    }
    assert!(kv(d, &["del", "b"]).status.success());
    let got = kv(d, &["get", "a"]);
    assert_eq!(
        (got.status.code(), stdout(&got)),
        (Some(0), "1\n".to_owned())
    );
    let missing = kv(d, &["get", "b"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    assert!(kv(d, &["flush"]).status.success());
    assert!(kv(d, &["compact"]).status.success());
    let scan = kv(d, &["scan", "--prefix", "a", "--reverse"]);
    assert_eq!(stdout(&scan), "ab\t3\na\t1\n");
    let limited = kv(d, &["scan", "--start", "ab", "--limit", "1"]);
    assert_eq!(stdout(&limited), "ab\t3\n");
    let stats = kv(d, &["stats"]);
    assert!(
        stdout(&stats).contains("last_revision: 4"),
        "{}",
        stdout(&stats)
    );
}

#[test]
fn errors_exit_one_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"not json").unwrap();
    let o = kv(dir.path(), &["get", "a"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("corruption"));
}
