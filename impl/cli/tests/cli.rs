//! The CLI's database commands end to end: output, exit codes (0 done or found, 1 not found, 2
//! usage, 3 error), binary-safe values in and out, a closed pipe, JSON output, leases, a watch,
//! export and import.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

mod common;

use common::{bare, kv, stdout, tool, with_stdin};

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
fn errors_exit_three_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"not json").unwrap();
    let o = kv(dir.path(), &["get", "a"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("corruption"));
    // A mistyped --db is an error, and makes nothing, without --create.
    let missing = dir.path().join("no-such-db");
    let o = Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .arg("--db")
        .arg(&missing)
        .args(["get", "a"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--create"));
    assert!(!missing.exists());
    let usage = kv(dir.path(), &["get"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn binary_values_go_in_and_come_out_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let png = [0x89, b'P', b'N', b'G', 0, b'\n', 0xff];
    let file = d.join("value.bin");
    std::fs::write(&file, png).unwrap();
    assert!(
        kv(d, &["put", "img", &format!("@{}", file.display())])
            .status
            .success()
    );
    let raw = kv(d, &["-o", "raw", "get", "img"]);
    assert_eq!(raw.stdout, png);
    let text = kv(d, &["get", "img"]);
    assert_eq!(stdout(&text), "\\x89PNG\\x00\\n\\xff\n");
    let hex = kv(d, &["-o", "hex", "get", "img"]);
    assert_eq!(stdout(&hex), "89504e47000aff\n");
    // From stdin, and keys in hex.
    let mut child = tool(d)
        .args(["--hex", "put", "00ff", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&[1, 2, 3]).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let got = kv(d, &["--hex", "-o", "raw", "get", "00ff"]);
    assert_eq!(got.stdout, [1, 2, 3]);
    let json = kv(d, &["-o", "json", "scan"]);
    let rows: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key_hex"], "00ff");
    assert_eq!(rows[1]["key"], "img");
    assert_eq!(rows[1]["value"], serde_json::Value::Null, "not UTF-8");
    assert_eq!(rows[1]["value_hex"], "89504e47000aff");
    assert_eq!(stdout(&kv(d, &["scan", "--count"])), "2\n");
}

#[test]
fn a_closed_pipe_ends_a_scan_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = d.join("big");
    std::fs::write(&big, vec![b'x'; 100_000]).unwrap();
    for k in ["a", "b", "c"] {
        assert!(
            kv(d, &["put", k, &format!("@{}", big.display())])
                .status
                .success()
        );
    }
    let mut child = tool(d)
        .arg("scan")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("a\t"));
    // The reader is gone (like `| head -1`): the tool stops quietly.
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&done.stderr).contains("panicked"));
}

#[test]
fn leases_history_watch_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lease = stdout(&kv(d, &["lease", "grant", "60"])).trim().to_owned();
    assert!(
        kv(d, &["put", "session", "up", "--lease", &lease])
            .status
            .success()
    );
    assert!(kv(d, &["put", "k", "v1"]).status.success());
    assert!(kv(d, &["put", "k", "v2"]).status.success());
    let show = stdout(&kv(d, &["lease", "show", &lease]));
    assert!(
        show.contains("granted 60 s") && show.ends_with("session\n"),
        "{show}"
    );
    assert_eq!(stdout(&kv(d, &["get", "k", "--rev", "2"])), "v1\n");
    let watched = stdout(&kv(d, &["watch", "--rev", "1", "--count", "3"]));
    assert_eq!(
        watched,
        "1\tPUT\tsession\tup\n2\tPUT\tk\tv1\n3\tPUT\tk\tv2\n"
    );
    let file = d.join("backup.kvx");
    assert!(
        kv(d, &["export", &file.display().to_string()])
            .status
            .success()
    );
    let copy = tempfile::tempdir().unwrap();
    let imported = Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .arg("--db")
        .arg(copy.path().join("db"))
        .args(["import", &file.display().to_string()])
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let c = copy.path().join("db");
    assert_eq!(stdout(&kv(&c, &["get", "k", "--rev", "2"])), "v1\n");
    assert_eq!(stdout(&kv(&c, &["lease", "list"])), format!("{lease}\n"));
    // Revoking the lease deletes its key; a second revoke and a get of it are not found.
    assert!(kv(&c, &["lease", "revoke", &lease]).status.success());
    assert_eq!(kv(&c, &["get", "session"]).status.code(), Some(1));
    assert_eq!(kv(&c, &["lease", "show", &lease]).status.code(), Some(1));
    assert_eq!(kv(&c, &["del", "nothing"]).status.code(), Some(1));
    // Importing into a written database is refused.
    let again = kv(&c, &["import", &file.display().to_string()]);
    assert_eq!(again.status.code(), Some(3));
}

/// Runs `args` with `stdin` fed in.

#[test]
fn the_shell_runs_every_command_and_goes_on_after_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let session = b"put a 1\nput 'b c' \"two words\"\nget 'b c'\nbogus\nscan\nlease list\nexit\nput never 0\n";
    let o = with_stdin(d, &["shell"], session);
    let out = stdout(&o);
    assert!(out.contains("revision 1\nrevision 2\ntwo words\n"), "{out}");
    assert!(out.contains("a\t1\nb c\ttwo words\n"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus"));
    assert_eq!(
        o.status.code(),
        Some(3),
        "a bad line makes the exit code an error"
    );
    // Nothing after `exit` ran; the history was saved.
    assert_eq!(kv(d, &["get", "never"]).status.code(), Some(1));
    let history = std::fs::read_to_string(d.join(".kvstore_history")).unwrap();
    assert!(history.contains("put a 1"), "{history}");
}

#[test]
fn dump_then_load_copies_every_key_and_a_bad_line_is_named() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let value = from.path().join("v");
    std::fs::write(&value, [0u8, 0x89, b'\n']).unwrap();
    assert!(
        kv(
            from.path(),
            &["put", "bin", &format!("@{}", value.display())]
        )
        .status
        .success()
    );
    for i in 0..25 {
        assert!(
            kv(from.path(), &["put", &format!("k{i:02}"), &i.to_string()])
                .status
                .success()
        );
    }
    let dumped = kv(from.path(), &["dump"]);
    assert!(dumped.status.success());
    let file = to.path().join("all.jsonl");
    std::fs::write(&file, &dumped.stdout).unwrap();
    let loaded = kv(
        to.path(),
        &["load", &file.display().to_string(), "--batch", "7"],
    );
    assert!(loaded.status.success(), "{loaded:?}");
    // The same keys and values (revisions differ: the load commits in batches).
    let rows = |dir: &std::path::Path| stdout(&kv(dir, &["-o", "hex", "scan"]));
    assert_eq!(rows(to.path()), rows(from.path()));
    assert_eq!(
        stdout(&kv(to.path(), &["-o", "hex", "get", "bin"])),
        "00890a\n"
    );
    assert_eq!(stdout(&kv(to.path(), &["scan", "--count"])), "26\n");
    // Escaped text from stdin; a bad third line is named, the batches before it are kept.
    let other = tempfile::tempdir().unwrap();
    let o = with_stdin(
        other.path(),
        &["load", "-", "--format", "tsv", "--batch", "1"],
        b"a\\x00\t1\nb\t\\x89\nno tab\nc\t3\n",
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 3"));
    assert_eq!(
        stdout(&kv(other.path(), &["-o", "hex", "scan", "--keys-only"])),
        "6100\n62\n"
    );
}

#[test]
fn checkpoint_and_backup_create_list_verify_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (db, backups) = (dir.path().join("db"), dir.path().join("backups"));
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    assert!(kv(&db, &["put", "k", "v1"]).status.success());
    let ckpt = dir.path().join("ckpt");
    let made = kv(&db, &["checkpoint", &path(&ckpt)]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    assert!(stdout(&made).contains("at revision 1"), "{}", stdout(&made));
    assert_eq!(stdout(&kv(&ckpt, &["get", "k"])), "v1\n");
    // Into a directory that is not empty: exit 3, nothing changed.
    let again = kv(&db, &["checkpoint", &path(&ckpt)]);
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // Two backups, the second sharing the first's table.
    let first = kv(&db, &["backup", "create", &path(&backups)]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(stdout(&first).starts_with("backup 1 at revision 1"));
    assert!(kv(&db, &["put", "k", "v2"]).status.success());
    let second = kv(&db, &["backup", "create", &path(&backups)]);
    assert!(
        stdout(&second).contains("1 already there"),
        "{}",
        stdout(&second)
    );
    let list = bare(&["backup", "list", &path(&backups)]);
    let rows: Vec<Vec<String>> = stdout(&list)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0][0].as_str(), rows[0][1].as_str()), ("1", "1"));
    assert_eq!((rows[1][0].as_str(), rows[1][1].as_str()), ("2", "2"));
    assert!(
        bare(&["backup", "verify", &path(&backups)])
            .status
            .success()
    );
    // Restore the newest by default, an older one with --id.
    let newest = dir.path().join("newest");
    assert!(
        bare(&["backup", "restore", &path(&backups), &path(&newest)])
            .status
            .success()
    );
    assert_eq!(stdout(&kv(&newest, &["get", "k"])), "v2\n");
    let oldest = dir.path().join("oldest");
    let restored = bare(&[
        "backup",
        "restore",
        &path(&backups),
        "--id",
        "1",
        &path(&oldest),
    ]);
    assert!(stdout(&restored).contains("restored backup 1"));
    assert_eq!(stdout(&kv(&oldest, &["get", "k"])), "v1\n");
    // Errors: no such backup, no backup at all, no --db, no database there.
    assert_eq!(
        bare(&["backup", "verify", &path(&backups), "--id", "9"])
            .status
            .code(),
        Some(3)
    );
    let empty = dir.path().join("empty");
    let none = bare(&[
        "backup",
        "restore",
        &path(&empty),
        &path(&dir.path().join("x")),
    ]);
    assert_eq!(none.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no backup"));
    assert_eq!(
        bare(&["checkpoint", &path(&dir.path().join("y"))])
            .status
            .code(),
        Some(2)
    );
    let nodb = bare(&["--db", &path(&empty), "backup", "create", &path(&backups)]);
    assert_eq!(nodb.status.code(), Some(3));
    assert!(!empty.exists());
}

#[test]
fn checkpoint_and_backup_help_show_examples() {
    for args in [
        &["checkpoint", "--help"][..],
        &["backup", "create", "--help"],
        &["backup", "list", "--help"],
        &["backup", "restore", "--help"],
        &["backup", "verify", "--help"],
    ] {
        let help = bare(args);
        assert!(help.status.success());
        assert!(stdout(&help).contains("Example: `kvstore"), "{args:?}");
    }
}

#[test]
fn search_contains_and_fuzzy_over_the_key_index() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for k in [
        "user/alice",
        "user/bob",
        "user/malice",
        "colour",
        "color",
        "dollar",
    ] {
        assert!(kv(d, &["put", k, "v"]).status.success());
    }
    // The first search builds the index; the writes after it are caught up by the next one.
    let found = kv(d, &["search", "contains", "lic"]);
    assert_eq!(
        (found.status.code(), stdout(&found)),
        (Some(0), "user/alice\nuser/malice\n".to_owned())
    );
    assert!(d.join("index").is_dir());
    assert!(kv(d, &["del", "user/alice"]).status.success());
    assert!(kv(d, &["put", "user/alicia", "v"]).status.success());
    let found = kv(d, &["search", "contains", "lic", "--limit", "1"]);
    assert_eq!(stdout(&found), "user/alicia\n");
    // Shorter than a gram: a scan, same contract.
    assert_eq!(
        stdout(&kv(d, &["search", "contains", "ol"])),
        "color\ncolour\ndollar\n"
    );
    let fuzzy = kv(d, &["search", "fuzzy", "colour", "--max-distance", "1"]);
    assert_eq!(stdout(&fuzzy), "colour\t0\ncolor\t1\n");
    let json = kv(
        d,
        &["-o", "json", "search", "fuzzy", "color", "--limit", "1"],
    );
    assert_eq!(
        stdout(&json),
        "{\"key\":\"color\",\"key_hex\":\"636f6c6f72\",\"distance\":0}\n"
    );
    let json = kv(d, &["-o", "json", "search", "contains", "bob"]);
    assert_eq!(
        stdout(&json),
        "{\"key\":\"user/bob\",\"key_hex\":\"757365722f626f62\"}\n"
    );
    // Nothing found: exit 1; a bad argument: exit 2.
    let none = kv(d, &["search", "contains", "zzz"]);
    assert_eq!(
        (none.status.code(), stdout(&none)),
        (Some(1), String::new())
    );
    assert_eq!(
        kv(d, &["search", "fuzzy", "x", "--max-distance", "no"])
            .status
            .code(),
        Some(2)
    );
    let help = kv(d, &["search", "fuzzy", "--help"]);
    assert!(
        stdout(&help).contains("Example: `kvstore --db d search fuzzy"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn stats_shows_the_counters_since_open_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One process (the shell), so the counters since open see every command.
    let session = b"put a 1\nput b 2\nget a\nscan\nflush\nstats\n";
    let o = with_stdin(d, &["-o", "json", "shell"], session);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    let stats: serde_json::Value = serde_json::from_str(last).unwrap();
    let metrics = &stats["metrics"];
    assert_eq!(metrics["commits"], 2, "{last}");
    assert_eq!(
        (&metrics["gets"], &metrics["scans"]),
        (&1.into(), &1.into())
    );
    assert_eq!(metrics["flushes"], 1, "{last}");
    assert_eq!(metrics["flush_written_bytes"], stats["bytes_per_level"][0]);
    assert!(metrics["wal_written_bytes"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(stats["files_per_level"][0], 1, "{last}");
    assert_eq!(stats["last_revision"], 2, "{last}");
    let latency = &metrics["wal_sync_latency"];
    let in_buckets: u64 = latency["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(latency["count"].as_u64(), Some(in_buckets), "{last}");
    assert_eq!(latency["count"], metrics["wal_syncs"], "{last}");

    let o = with_stdin(d, &["shell"], b"put c 3\nstats\n");
    let text = stdout(&o);
    for line in [
        "commits: 1\n",
        "gets: 0\n",
        "last_revision: 3\n",
        "watchers: 0\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(text.contains("wal_sync_latency_micros: count "), "{text}");
}
