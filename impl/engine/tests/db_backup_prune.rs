//! `backup::prune`: the oldest backups beyond `keep` go, with the tables only they named; the
//! rest still verify and restore. A prune cut off after removing a backup's metadata (its
//! commit point) leaves only unnamed tables, which the next prune removes.

use std::path::Path;

use kvstore::{Db, Error, Options, backup};

fn table_names(backups: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(backups.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Three backups, each after new keys and a compaction, so each has tables of its own.
fn three_backups(dir: &Path) -> std::path::PathBuf {
    let backups = dir.join("backups");
    let db = Db::open(dir.join("db"), Options::default()).unwrap();
    for i in 0..3u32 {
        for k in 0..50u32 {
            db.put(format!("k{k:03}").as_bytes(), format!("v{i}").as_bytes())
                .unwrap();
        }
        db.compact_range(kvstore::KeyRange::all()).unwrap();
        db.backup(&backups).unwrap();
    }
    db.close().unwrap();
    backups
}

#[test]
fn prune_keeps_the_newest_and_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let backups = three_backups(dir.path());
    let before = table_names(&backups);
    assert!(matches!(
        backup::prune(&backups, 0),
        Err(Error::InvalidArgument(_))
    ));
    let nothing = backup::prune(&backups, 3).unwrap();
    assert!(nothing.removed.is_empty() && nothing.tables_removed == 0);
    let pruned = backup::prune(&backups, 1).unwrap();
    assert_eq!(pruned.removed, [1, 2]);
    assert!(pruned.tables_removed > 0, "{pruned:?}");
    let left = backup::list(&backups).unwrap();
    assert_eq!(left.iter().map(|b| b.id).collect::<Vec<_>>(), [3]);
    assert_eq!(
        table_names(&backups).len() as u64,
        left[0].tables,
        "only backup 3's tables remain"
    );
    assert_eq!(before.len() as u64 - pruned.tables_removed, left[0].tables);
    backup::verify(&backups, 3).unwrap();
    backup::restore(&backups, 3, dir.path().join("restored")).unwrap();
    let restored = Db::open(dir.path().join("restored"), Options::default()).unwrap();
    assert_eq!(restored.get(b"k049").unwrap(), Some(b"v2".to_vec()));
    restored.close().unwrap();
}

#[test]
fn a_prune_cut_off_after_its_commit_point_is_finished_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let backups = three_backups(dir.path());
    // A crash right after step 2 removed backup 1's metadata: its tables are still there.
    std::fs::remove_file(backups.join("00000000000000000001.backup")).unwrap();
    std::fs::write(backups.join("tables").join("x.sst.tmp"), b"half").unwrap();
    for id in [2, 3] {
        backup::verify(&backups, id).unwrap();
    }
    let pruned = backup::prune(&backups, 2).unwrap();
    assert!(pruned.removed.is_empty());
    assert!(pruned.tables_removed > 0, "backup 1's orphaned tables");
    for id in [2, 3] {
        backup::verify(&backups, id).unwrap();
    }
    assert!(!table_names(&backups).iter().any(|n| n.ends_with(".tmp")));
}
