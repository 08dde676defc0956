//! `kvstore backup prune --keep N` through the real binary: the oldest backups go, the newest N
//! stay listed and verify; `--keep 0` is a usage error.

mod common;

use common::{bare, kv, stdout};

#[test]
fn backup_prune_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (db, backups) = (dir.path().join("db"), dir.path().join("backups"));
    let b = backups.to_str().unwrap();
    for i in 0..3 {
        assert!(kv(&db, &["put", "k", &format!("v{i}")]).status.success());
        assert!(kv(&db, &["backup", "create", b]).status.success());
    }
    let usage = bare(&["backup", "prune", b, "--keep", "0"]);
    assert_eq!(usage.status.code(), Some(2));
    let pruned = bare(&["backup", "prune", b, "--keep", "2"]);
    assert_eq!(pruned.status.code(), Some(0), "{pruned:?}");
    assert!(
        stdout(&pruned).starts_with("removed 1 backups [1]: "),
        "{}",
        stdout(&pruned)
    );
    let list = stdout(&bare(&["backup", "list", b]));
    let ids: Vec<&str> = list
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["2", "3"]);
    assert!(bare(&["backup", "verify", b, "--id", "2"]).status.success());
    let help = stdout(&bare(&["backup", "prune", "--help"]));
    assert!(help.contains("Example:"), "{help}");
}
