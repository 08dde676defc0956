//! Long work (export, import, compact, load) shows progress only on a terminal: piped, stderr
//! holds the one summary line each command prints and nothing else (no bar, no escape codes).

mod common;

use common::kv;

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
