//! Crash-point enumeration of an import (`spec/FORMAT.md` § 6, "Import"): an export of a database
//! with history, deletions, a compacted horizon and leases is imported into a new database on a
//! `SimVfs`, crashed after every I/O op under every persistence model; each rebooted disk must
//! open and hold either nothing (revision 0, no key, no lease) or the whole import (the same
//! state, leases and history as the source at every retained revision), never a part. With
//! directory syncs skipped (the negative control), the same campaign must fail.

use std::sync::Arc;
use std::time::Duration;

use kvstore::vfs::Vfs;
use kvstore::{Db, Durability, KeyRange, Options, ScanOptions, WriteBatch};
use kvstore_faults::{Campaign, SimVfs};
use kvstore_model::{Sabotage, Sabotaged, campaign_options, read_all};

const DIR: &str = "/db";

/// The source database and its export.
fn exported() -> (Db, Vec<u8>) {
    let sim = SimVfs::new(0x1e_9041);
    let db = Db::open_with_vfs(Arc::new(sim), DIR, options()).unwrap();
    let lease = db.grant_id(3, Duration::from_secs(30)).unwrap();
    for round in 0..3u8 {
        for k in 0..12u32 {
            let key = format!("k{k:02}");
            let value = vec![round; 2000];
            if k % 4 == 0 {
                db.put_with_lease(key.as_bytes(), &value, lease).unwrap();
            } else {
                db.put(key.as_bytes(), &value).unwrap();
            }
        }
        let mut batch = WriteBatch::new();
        batch.delete(format!("k{:02}", round + 1).as_bytes());
        db.write(batch).unwrap();
        if round == 1 {
            db.compact_history(db.stats().last_revision - 5).unwrap();
        }
    }
    let mut stream = Vec::new();
    db.export(&mut stream).unwrap();
    (db, stream)
}

fn options() -> Options {
    campaign_options(Durability::Sync)
}

/// Every row a scan at `revision` returns, with its metadata.
fn rows_at(db: &Db, revision: u64) -> Vec<(Vec<u8>, kvstore::Versioned)> {
    let scan = ScanOptions {
        revision: Some(revision),
        ..ScanOptions::default()
    };
    db.scan(KeyRange::all(), scan)
        .unwrap()
        .versioned()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Checks a rebooted disk: it opens, empty or with the whole import.
fn check(source: &Db, vfs: Arc<dyn Vfs>) -> Result<(), String> {
    let db = Db::open_with_vfs(vfs, DIR, options()).map_err(|e| format!("open: {e}"))?;
    let found = read_all(&db).map_err(|e| e.to_string())?;
    if found.revision() == 0 {
        if !found.cells().is_empty() || !found.leases().is_empty() {
            return Err(format!(
                "revision 0 with keys or leases: {}",
                found.diff(&kvstore_model::Model::new())
            ));
        }
        return Ok(());
    }
    let expected = read_all(source).map_err(|e| e.to_string())?;
    if found != expected {
        return Err(format!("a partial import: {}", expected.diff(&found)));
    }
    for revision in source.history_horizon()..=found.revision() {
        if rows_at(&db, revision) != rows_at(source, revision) {
            return Err(format!(
                "the import reads differently at revision {revision}"
            ));
        }
    }
    Ok(())
}

/// Runs the campaign with `sabotage` on the target's filesystem.
fn campaign(sabotage: Sabotage) -> Result<u64, String> {
    let (source, stream) = exported();
    let wrap = |sim: &SimVfs| -> Arc<dyn Vfs> {
        match sabotage {
            Sabotage::None => Arc::new(sim.clone()),
            s => Arc::new(Sabotaged::new(sim.clone(), s)),
        }
    };
    Campaign::new(0x1_3907)
        .run(
            |sim| {
                let _ = Db::import_with_vfs(wrap(sim), DIR, options(), &mut stream.as_slice(), "s");
            },
            |_point, (), rebooted| check(&source, Arc::new(rebooted)),
        )
        .map(|report| report.crash_points)
        .map_err(|failure| format!("{failure}"))
}

#[test]
fn a_crash_anywhere_in_an_import_leaves_nothing_or_everything() {
    let started = std::time::Instant::now();
    let points = campaign(Sabotage::None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[import crash points] {points} crash points checked, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn negative_control_skipped_directory_syncs_are_caught() {
    match campaign(Sabotage::SkipAllDirSync) {
        Ok(points) => panic!("{points} crash points passed with every directory sync skipped"),
        Err(e) => eprintln!(
            "[import crash points negative control] caught: {}",
            e.lines().next().unwrap_or("")
        ),
    }
}
