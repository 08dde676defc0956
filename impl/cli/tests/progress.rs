//! Long work (export, import, compact, load, dump, backup create and restore, a search's
//! index rebuild) shows progress only on a terminal: piped, stderr holds the one summary line
//! each command prints and nothing else (no bar, no escape codes); on a pseudo-terminal each
//! draws its bar.

mod common;

use std::process::Command;

use common::kv;

/// Runs the tool with `args` (stdout to /dev/null) with stderr on a pseudo-terminal; prints
/// what the terminal showed, repr'd, and exits as the tool did.
const ON_A_TERMINAL: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(repr(out))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// What stderr showed on a terminal while the tool ran `args`.
fn on_a_terminal(args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg(ON_A_TERMINAL)
        .arg(env!("CARGO_BIN_EXE_kvstore"))
        .args(args)
        .output()
        .expect("python3 runs the pseudo-terminal");
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{args:?}: {shown}");
    shown
}

fn stderr_lines(o: &std::process::Output) -> Vec<String> {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stderr.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn progress_stays_quiet_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    let keys = dir.path().join("keys.jsonl");
    let lines: String = (0..2000)
        .map(|i| format!("{{\"key\":\"k{i:05}\",\"value\":\"v{i}\"}}\n"))
        .collect();
    std::fs::write(&keys, lines).unwrap();
    let load = stderr_lines(&kv(&from, &["load", keys.to_str().unwrap()]));
    assert_eq!(load, ["loaded 2000 keys, last revision 1"]);
    assert!(stderr_lines(&kv(&from, &["compact"])).is_empty());
    let file = dir.path().join("all.kvx");
    let export = stderr_lines(&kv(&from, &["export", file.to_str().unwrap()]));
    assert_eq!(export.len(), 1);
    assert!(export[0].starts_with("exported revision 1"), "{export:?}");
    let import = stderr_lines(&kv(&to, &["import", file.to_str().unwrap()]));
    assert_eq!(import.len(), 1);
    assert!(import[0].starts_with("imported revision 1"), "{import:?}");
    let count = kv(&to, &["scan", "--count"]);
    assert_eq!(String::from_utf8(count.stdout).unwrap(), "2000\n");
}

#[test]
fn dump_backup_restore_and_index_rebuild_show_bars_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let (db, backups, restored) = (
        dir.path().join("db"),
        dir.path().join("backups"),
        dir.path().join("restored"),
    );
    let keys = dir.path().join("keys.jsonl");
    let value = "v".repeat(1000);
    let lines: String = (0..3000)
        .map(|i| format!("{{\"key\":\"k{i:05}\",\"value\":\"{value}\"}}\n"))
        .collect();
    std::fs::write(&keys, lines).unwrap();
    assert!(kv(&db, &["load", keys.to_str().unwrap()]).status.success());
    let d = db.to_str().unwrap();
    let b = backups.to_str().unwrap();
    // Piped: the summary lines only.
    assert_eq!(stderr_lines(&kv(&db, &["dump"])), ["dumped 3000 keys"]);
    let backup = stderr_lines(&kv(&db, &["backup", "create", b]));
    assert!(backup.is_empty(), "{backup:?}");
    let restore = kv(&db, &["backup", "restore", b, restored.to_str().unwrap()]);
    assert!(stderr_lines(&restore).is_empty());
    let search = kv(&db, &["search", "contains", "k0299"]);
    assert!(stderr_lines(&search).is_empty());
    assert_eq!(
        String::from_utf8(search.stdout).unwrap().lines().count(),
        10
    );
    // On a terminal: each bar is drawn (its label, or the estimate's `~`), then cleared.
    std::fs::remove_dir_all(db.join("index")).unwrap();
    let shown = on_a_terminal(&["--db", d, "dump"]);
    assert!(
        shown.contains("/~") && shown.contains("dumped 3000 keys"),
        "{shown}"
    );
    let shown = on_a_terminal(&["--db", d, "backup", "create", b]);
    assert!(shown.contains("backing up tables"), "{shown}");
    let again = dir.path().join("again");
    let shown = on_a_terminal(&["backup", "restore", b, again.to_str().unwrap()]);
    assert!(shown.contains("restoring tables"), "{shown}");
    let shown = on_a_terminal(&["--db", d, "search", "contains", "k0299"]);
    assert!(shown.contains("indexing keys"), "{shown}");
    assert_eq!(
        String::from_utf8(kv(&again, &["scan", "--count"]).stdout).unwrap(),
        "3000\n"
    );
}
