//! Crash-point enumeration of `Db::checkpoint` (`spec/SEMANTICS.md`, "Checkpoints"):
//! a database with history, deletions, a compacted horizon, leases and unflushed writes is opened
//! on a `SimVfs` and checkpointed, crashed after every I/O op (the source's recovery and the
//! checkpoint's flush, links and manifest) under every persistence model. Each rebooted disk must
//! give back the source as the model says (every acknowledged write, its history and leases),
//! and a checkpoint directory that either is not a checkpoint (no `manifest.json`) or opens and
//! equals the model at the checkpoint's revision; a checkpoint that returned must survive. With
//! the checkpoint directory's syncs skipped (the negative control), the campaign must fail. The
//! same sweep over an incremental backup: a backup is listed only when complete, and every
//! listed backup verifies and restores to the model at its revision.

use std::sync::Arc;

use kvstore::vfs::Vfs;
use kvstore::{
    CheckpointSummary, Db, Durability, Options, WriteOptions, backup, checkpoint_is_complete,
};
use kvstore_faults::{Campaign, SimVfs};
use kvstore_model::reads::check_history;
use kvstore_model::{Model, Mutation, Sabotage, Sabotaged, campaign_options, read_all};

const SOURCE: &str = "/db";
const CHECKPOINT: &str = "/ckpt";

fn options() -> Options {
    campaign_options(Durability::Sync)
}

/// Commits `mutation` to `db` and the model.
fn commit(db: &Db, model: &mut Model, mutation: Mutation) {
    kvstore_model::commit(db, &mutation, WriteOptions::default()).unwrap();
    model.apply(&mutation);
}

/// The source disk: history over flushed tables, a compacted horizon, a leased key, a lease and
/// writes that only the WAL holds. Returns the disk and the model of what it holds.
fn source() -> (SimVfs, Model) {
    let sim = SimVfs::new(0xc4_ec90);
    let db = Db::open_with_vfs(Arc::new(sim.clone()), SOURCE, options()).unwrap();
    let mut model = Model::new();
    commit(&db, &mut model, Mutation::Grant(3, 30_000));
    for round in 0..3u8 {
        for k in 0..8u32 {
            let (key, value) = (format!("k{k:02}").into_bytes(), vec![round; 700]);
            let mutation = match k % 4 {
                0 => Mutation::PutLease(key, value, 3),
                _ => Mutation::Put(key, value),
            };
            commit(&db, &mut model, mutation);
        }
        let deleted = format!("k{:02}", round + 1).into_bytes();
        commit(&db, &mut model, Mutation::Batch(vec![(deleted, None)]));
        db.flush().unwrap();
        if round == 1 {
            let horizon = model.revision() - 4;
            db.compact_history(horizon).unwrap();
            model.compact_history(horizon).unwrap();
        }
    }
    commit(
        &db,
        &mut model,
        Mutation::Put(b"unflushed".to_vec(), b"wal only".to_vec()),
    );
    commit(&db, &mut model, Mutation::Grant(4, 60_000));
    // Every write was acknowledged durable (Sync): the disk as it stands is the model.
    let image = SimVfs::from_image(&sim.image(), 1);
    drop(db);
    (image, model)
}

/// Checks that `db` holds what `model` says, history and leases included.
fn check_equal(db: &Db, model: &Model, what: &str) -> Result<(), String> {
    let found = read_all(db).map_err(|e| format!("{what}: {e}"))?;
    if &found != model {
        return Err(format!("{what}: {}", model.diff(&found)));
    }
    check_history(db, model).map_err(|e| format!("{what}: {e}"))
}

/// Checks a rebooted disk: the source as the model says, and no checkpoint or a whole one.
fn check(
    model: &Model,
    returned: Option<CheckpointSummary>,
    vfs: Arc<dyn Vfs>,
) -> Result<(), String> {
    let source = Db::open_with_vfs(Arc::clone(&vfs), SOURCE, options())
        .map_err(|e| format!("source open: {e}"))?;
    check_equal(&source, model, "source")?;
    drop(source);
    let complete = checkpoint_is_complete(vfs.as_ref(), CHECKPOINT.as_ref())
        .map_err(|e| format!("checkpoint: {e}"))?;
    if !complete {
        return match returned {
            Some(summary) => Err(format!(
                "the checkpoint returned ({summary:?}) but is gone after the crash"
            )),
            None => Ok(()),
        };
    }
    let checkpoint = Db::open_with_vfs(vfs, CHECKPOINT, options())
        .map_err(|e| format!("checkpoint open: {e}"))?;
    check_equal(&checkpoint, model, "checkpoint")
}

/// Runs the campaign with `sabotage` on the filesystem; returns (crash points, ops of the
/// checkpoint alone).
fn campaign(sabotage: Sabotage) -> Result<(u64, u64), String> {
    let (disk, model) = source();
    let wrap = |sim: &SimVfs| -> Arc<dyn Vfs> {
        match sabotage {
            Sabotage::None => Arc::new(sim.clone()),
            s => Arc::new(Sabotaged::new(sim.clone(), s)),
        }
    };
    let campaign = Campaign::new(0xc4_ec91).starting_from(disk.image());
    let workload = |sim: &SimVfs| -> (Option<CheckpointSummary>, u64) {
        let Ok(db) = Db::open_with_vfs(wrap(sim), SOURCE, options()) else {
            return (None, 0);
        };
        let before = sim.op_count();
        let summary = db.checkpoint(CHECKPOINT).ok();
        let ops = sim.op_count() - before;
        // Not closed: a crash right after the return is the test, not a clean shutdown.
        std::mem::forget(db);
        (summary, ops)
    };
    let ((summary, checkpoint_ops), _) = campaign.dry_run(workload);
    let summary = summary.ok_or("the checkpoint failed without a crash")?;
    if summary.revision != model.revision() || summary.tables_linked == 0 {
        return Err(format!("unexpected checkpoint {summary:?}"));
    }
    campaign
        .run(workload, |_point, (returned, _), rebooted| {
            check(&model, returned, Arc::new(rebooted))
        })
        .map(|report| (report.crash_points, checkpoint_ops))
        .map_err(|failure| format!("{failure}"))
}

#[test]
fn a_crash_anywhere_in_a_checkpoint_leaves_the_source_whole_and_no_checkpoint_or_all_of_it() {
    let started = std::time::Instant::now();
    let (points, ops) = campaign(Sabotage::None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[checkpoint crash points] {points} crash points checked ({ops} I/O ops of the \
         checkpoint itself, after the source's recovery), {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn negative_control_skipped_checkpoint_directory_syncs_are_caught() {
    match campaign(Sabotage::SkipDirSyncOf(CHECKPOINT)) {
        Ok((points, _)) => {
            panic!("{points} crash points passed with the checkpoint's directory syncs skipped")
        }
        Err(e) => eprintln!(
            "[checkpoint crash points negative control] caught: {}",
            e.lines().next().unwrap_or("")
        ),
    }
}

/// Checks a rebooted disk after a crash in the second (incremental) backup: the source as the
/// model says; backup 1 listed, verified and restored as the model at its revision; backup 2
/// listed only if complete (always, if it returned), and then restored as the model.
fn check_backup(model: &Model, first: &Model, returned: bool, vfs: &SimVfs) -> Result<(), String> {
    let source = Db::open_with_vfs(Arc::new(vfs.clone()), SOURCE, options())
        .map_err(|e| format!("source open: {e}"))?;
    check_equal(&source, model, "source")?;
    drop(source);
    let listed = backup::list_with_vfs(vfs, BACKUPS.as_ref()).map_err(|e| format!("list: {e}"))?;
    let ids: Vec<u64> = listed.iter().map(|b| b.id).collect();
    match (ids.as_slice(), returned) {
        ([1], false) | ([1, 2], _) => {}
        (ids, returned) => return Err(format!("backups {ids:?} listed, returned: {returned}")),
    }
    for (id, expected) in ids.iter().zip([first, model]) {
        backup::verify_with_vfs(vfs, BACKUPS.as_ref(), *id)
            .map_err(|e| format!("verify {id}: {e}"))?;
        let target = format!("/restored-{id}");
        backup::restore_with_vfs(vfs, BACKUPS.as_ref(), *id, target.as_ref())
            .map_err(|e| format!("restore {id}: {e}"))?;
        let restored = Db::open_with_vfs(Arc::new(vfs.clone()), &target, options())
            .map_err(|e| format!("restored {id} open: {e}"))?;
        check_equal(&restored, expected, &format!("backup {id}"))?;
    }
    Ok(())
}

const BACKUPS: &str = "/backups";

/// Runs the backup campaign with `sabotage`; returns (crash points, ops).
fn backup_campaign(sabotage: Sabotage) -> Result<(u64, u64), String> {
    // Backup 1 of the source as it was, then the disk with more writes since.
    let (disk, model) = source();
    let first = model.clone();
    let db = Db::open_with_vfs(Arc::new(disk.clone()), SOURCE, options()).unwrap();
    db.backup(BACKUPS).unwrap();
    let mut model = model;
    commit(
        &db,
        &mut model,
        Mutation::Put(b"k01".to_vec(), vec![9; 700]),
    );
    commit(
        &db,
        &mut model,
        Mutation::Put(b"after".to_vec(), b"backup 1".to_vec()),
    );
    let image = disk.image();
    std::mem::forget(db);
    let campaign = Campaign::new(0xbac_0002).starting_from(image);
    let workload = |sim: &SimVfs| -> bool {
        let vfs: Arc<dyn Vfs> = match sabotage {
            Sabotage::None => Arc::new(sim.clone()),
            s => Arc::new(Sabotaged::new(sim.clone(), s)),
        };
        let Ok(db) = Db::open_with_vfs(vfs, SOURCE, options()) else {
            return false;
        };
        let done = db.backup(BACKUPS).is_ok_and(|s| s.tables_reused > 0);
        std::mem::forget(db);
        done
    };
    let (done, _) = campaign.dry_run(workload);
    if !done {
        return Err("the incremental backup failed or reused nothing without a crash".to_owned());
    }
    campaign
        .run(workload, |_point, returned, rebooted| {
            check_backup(&model, &first, returned, &rebooted)
        })
        .map(|report| (report.crash_points, report.ops))
        .map_err(|failure| format!("{failure}"))
}

#[test]
fn a_crash_anywhere_in_an_incremental_backup_never_lists_a_partial_backup() {
    let started = std::time::Instant::now();
    let (points, ops) = backup_campaign(Sabotage::None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[backup crash points] {points} crash points checked ({ops} ops: the source's recovery \
         and the backup), {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn negative_control_skipped_table_directory_syncs_in_a_backup_are_caught() {
    match backup_campaign(Sabotage::SkipDirSyncOf("/backups/tables")) {
        Ok((points, _)) => {
            panic!("{points} crash points passed with the backup's table directory syncs skipped")
        }
        Err(e) => eprintln!(
            "[backup crash points negative control] caught: {}",
            e.lines().next().unwrap_or("")
        ),
    }
}
