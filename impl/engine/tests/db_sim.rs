//! `Db` on `SimVfs` (inline background work, a logical clock): the core suite ends each test with
//! a power cut and a reopen that must hold every write acknowledged in a syncing mode; a crash at
//! every I/O point of a workload with flushes and compactions must recover a prefix of the commit
//! order that includes every acknowledged write; a failed fsync poisons the database.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kvstore::{
    BackgroundMode, Db, Durability, Error, KeyRange, Options, ScanOptions, WriteBatch, WriteOptions,
};
use kvstore_faults::{FaultConfig, Fill, PersistenceModel, SimVfs};

const DIR: &str = "/db";
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> Options {
    common::small_options()
}

fn open(vfs: &SimVfs) -> kvstore::error::Result<Db> {
    Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options())
}

/// The whole database as a map.
fn contents(db: &Db) -> Model {
    db.scan(KeyRange::all(), ScanOptions::default())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// One step of the workloads, applied to the model when acknowledged.
#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Flush,
    Compact,
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::Batch(ops) => {
            for (k, v) in ops {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
        Op::Flush | Op::Compact => {}
    }
}

fn run(db: &Db, op: &Op) -> kvstore::error::Result<()> {
    match op {
        Op::Put(k, v) => db.put(k, v).map(drop),
        Op::Delete(k) => db.delete(k).map(drop),
        Op::Batch(ops) => {
            let mut b = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                };
            }
            db.write(b).map(drop)
        }
        Op::Flush => db.flush(),
        Op::Compact => db.compact_range(KeyRange::all()),
    }
}

/// A workload that overwrites and deletes keys, with values big enough that the memtable fills
/// and flushes on its own, plus explicit flushes and a full compaction.
fn workload(len: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..len {
        let k = format!("k{:02}", i % 23).into_bytes();
        let op = match i % 11 {
            3 => Op::Delete(k),
            5 => Op::Batch(vec![
                (k.clone(), Some(vec![b'b'; 700])),
                (format!("k{:02}", (i + 5) % 23).into_bytes(), None),
            ]),
            7 if i % 3 == 0 => Op::Flush,
            9 if i % 4 == 0 => Op::Compact,
            _ => Op::Put(k, vec![(i % 251) as u8; 3000 + i % 500]),
        };
        ops.push(op);
    }
    ops
}

/// Runs `ops` until the first error; returns how many were acknowledged.
fn run_until_error(db: &Db, ops: &[Op]) -> usize {
    ops.iter().take_while(|op| run(db, op).is_ok()).count()
}

fn crash_and_reopen(vfs: &SimVfs, db: Db, model: PersistenceModel) -> (SimVfs, Db) {
    vfs.crash();
    drop(db);
    let vfs = vfs.reboot(model);
    let db = open(&vfs).unwrap();
    (vfs, db)
}

#[test]
fn core_suite_survives_power_cut() {
    let vfs = SimVfs::new(7);
    let db = open(&vfs).unwrap();
    let ops = workload(120);
    let mut model = Model::new();
    for op in &ops {
        run(&db, op).unwrap();
        apply(&mut model, op);
    }
    assert_eq!(contents(&db), model);
    assert!(db.stats().files_per_level.iter().sum::<usize>() > 0);
    let (_vfs, db) = crash_and_reopen(&vfs, db, PersistenceModel::UnsyncedLost);
    assert_eq!(contents(&db), model);
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
}

/// The same suite with the background worker: I/O order is no longer deterministic, but every
/// acknowledged write must still survive.
#[test]
fn core_suite_survives_power_cut_with_background_thread() {
    let vfs = SimVfs::new(9);
    let opts = Options {
        background: BackgroundMode::Threads,
        ..options()
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    let mut model = Model::new();
    for op in &workload(200) {
        run(&db, op).unwrap();
        apply(&mut model, op);
    }
    assert_eq!(contents(&db), model);
    vfs.crash();
    drop(db);
    let vfs = vfs.reboot(PersistenceModel::RandomSubset);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
    assert_eq!(contents(&db), model);
}

/// With the background worker, a flush writes the next frozen memtable's table while the
/// previous one's syncs. Power cuts at arbitrary moments of such a run (fast buffered writes keep
/// two memtables frozen) must reopen to a prefix of the commit order that holds every write
/// covered by a `sync`.
#[test]
fn overlapped_flushes_survive_power_cuts() {
    for seed in 0..24u64 {
        let vfs = SimVfs::new(seed);
        let opts = Options {
            background: BackgroundMode::Threads,
            durability: Durability::Buffered,
            ..options()
        };
        let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
        let key = |i: u64| format!("o{i:05}").into_bytes();
        let value = |i: u64| vec![(i % 251) as u8; 2000];
        let ops = 300 + seed * 53 % 400;
        let mut synced = 0;
        for i in 0..ops {
            db.put(&key(i), &value(i)).unwrap();
            if i % 40 == 39 {
                db.sync().unwrap();
                synced = i + 1;
            }
        }
        vfs.crash();
        drop(db);
        let persistence = [
            PersistenceModel::UnsyncedLost,
            PersistenceModel::RandomSubset,
            PersistenceModel::TornWrite {
                sector_bytes: 512,
                fill: Fill::Garbage,
            },
        ][(seed % 3) as usize];
        let vfs = vfs.reboot(persistence);
        let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
        let got = contents(&db);
        let n = got.len() as u64;
        let prefix: Model = (0..n).map(|i| (key(i), value(i))).collect();
        assert_eq!(got, prefix, "seed {seed}: not a prefix of the commit order");
        assert!(
            n >= synced,
            "seed {seed}: {n} writes survived, {synced} were synced"
        );
    }
}

#[test]
fn reopen_twice_and_revisions_continue() {
    let vfs = SimVfs::new(8);
    let db = open(&vfs).unwrap();
    for op in &workload(40) {
        run(&db, op).unwrap();
    }
    let last = db.stats().last_revision;
    let (vfs, db) = crash_and_reopen(&vfs, db, PersistenceModel::UnsyncedLost);
    assert_eq!(db.stats().last_revision, last);
    assert_eq!(db.put(b"after", b"crash").unwrap(), last + 1);
    let (_vfs, db) = crash_and_reopen(&vfs, db, PersistenceModel::RandomSubset);
    assert_eq!(db.get(b"after").unwrap(), Some(b"crash".to_vec()));
}

#[test]
fn buffered_writes_recover_as_a_prefix() {
    for seed in 0..8u64 {
        let vfs = SimVfs::new(seed);
        let db = open(&vfs).unwrap();
        db.put(b"synced", b"1").unwrap();
        let buffered = WriteOptions {
            durability: Some(Durability::Buffered),
            ..WriteOptions::default()
        };
        for i in 0..50u32 {
            db.put_with(format!("b{i:03}").as_bytes(), &[1; 100], buffered)
                .unwrap();
        }
        let model = [
            PersistenceModel::RandomPrefix,
            PersistenceModel::RandomSubset,
            PersistenceModel::TornWrite {
                sector_bytes: 512,
                fill: Fill::Garbage,
            },
        ][(seed % 3) as usize];
        let (_vfs, db) = crash_and_reopen(&vfs, db, model);
        assert_eq!(db.get(b"synced").unwrap(), Some(b"1".to_vec()));
        let got: Vec<Vec<u8>> = contents(&db).into_keys().filter(|k| k[0] == b'b').collect();
        let prefix: Vec<Vec<u8>> = (0..got.len())
            .map(|i| format!("b{i:03}").into_bytes())
            .collect();
        assert_eq!(got, prefix, "seed {seed}: not a prefix of the commit order");
    }
}

#[test]
fn a_flush_makes_buffered_lease_records_durable() {
    // A grant and a revocation change no key: the memtable stays empty, and the flush must sync
    // the WAL instead of freezing one (it is a durable point).
    let vfs = SimVfs::new(11);
    let opts = Options {
        durability: Durability::Buffered,
        ..options()
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    db.grant_id(3, std::time::Duration::from_secs(60)).unwrap();
    db.grant_id(4, std::time::Duration::from_secs(60)).unwrap();
    db.revoke(4).unwrap();
    db.flush().unwrap();
    vfs.crash();
    drop(db);
    let vfs = vfs.reboot(PersistenceModel::UnsyncedLost);
    let db = Db::open_with_vfs(Arc::new(vfs), Path::new(DIR), opts).unwrap();
    assert_eq!(db.leases().unwrap(), vec![3]);
}

/// Crashes the workload at every I/O operation, under each persistence model, and checks that the
/// reopened database equals the model after some prefix of the ops that includes every
/// acknowledged one.
#[test]
fn crash_at_every_point_recovers_a_prefix_with_every_acknowledged_write() {
    let ops = workload(60);
    let total = {
        let vfs = SimVfs::new(1);
        let db = open(&vfs).unwrap();
        assert_eq!(run_until_error(&db, &ops), ops.len());
        let stats = db.stats();
        assert!(
            stats.files_per_level.iter().skip(1).sum::<usize>() > 0,
            "{stats:?}"
        );
        eprintln!("workload: {stats:?}");
        db.close().unwrap();
        vfs.op_count()
    };
    let models = [
        PersistenceModel::UnsyncedLost,
        PersistenceModel::RandomSubset,
        PersistenceModel::TornWrite {
            sector_bytes: 512,
            fill: Fill::Zeros,
        },
        PersistenceModel::RandomPrefix,
        PersistenceModel::SizeWithoutData {
            fill: Fill::Garbage,
        },
    ];
    let mut points = 0;
    for (crash_op, model_kind) in (0..total).flat_map(|op| models.iter().map(move |m| (op, *m))) {
        let vfs = SimVfs::new(crash_op);
        vfs.crash_at(crash_op);
        let acked = match open(&vfs) {
            Ok(db) => {
                let n = run_until_error(&db, &ops);
                drop(db);
                n
            }
            Err(_) => 0,
        };
        let vfs = vfs.reboot(model_kind);
        let db =
            open(&vfs).unwrap_or_else(|e| panic!("crash at op {crash_op}: reopen failed: {e}"));
        let got = contents(&db);
        let mut model = Model::new();
        for op in &ops[..acked] {
            apply(&mut model, op);
        }
        let mut ok = got == model;
        if !ok && acked < ops.len() {
            apply(&mut model, &ops[acked]);
            ok = got == model;
        }
        assert!(
            ok,
            "crash at op {crash_op} ({model_kind:?}): {acked} ops acknowledged, recovered state matches neither"
        );
        points += 1;
    }
    eprintln!("{points} (crash point, persistence model) runs over {total} ops");
    assert!(points > 100, "only {points} crash points of {total} ops");
}

#[test]
fn failed_fsync_poisons_the_database() {
    let vfs = SimVfs::new(3);
    let db = open(&vfs).unwrap();
    db.put(b"before", b"1").unwrap();
    vfs.set_faults(FaultConfig::default().fsyncgate_at(vfs.op_count()));
    assert!(matches!(
        db.put(b"failed", b"2"),
        Err(Error::Io {
            op: "sync_data",
            ..
        })
    ));
    // Every later write is refused with one variant that still carries the cause.
    let is_poisoned_by_the_sync = |r: Result<(), Error>| match r {
        Err(Error::Poisoned { cause }) => {
            matches!(
                *cause,
                Error::Io {
                    op: "sync_data",
                    ..
                }
            )
        }
        _ => false,
    };
    for _ in 0..3 {
        assert!(
            is_poisoned_by_the_sync(db.put(b"later", b"3").map(|_| ())),
            "a write after a failed fsync was not refused as poisoned"
        );
    }
    let e = db.delete(b"before").unwrap_err();
    assert!(e.to_string().contains("sync_data"), "{e}");
    assert!(is_poisoned_by_the_sync(db.sync()));
    assert!(is_poisoned_by_the_sync(db.flush()));
    assert_eq!(db.get(b"before").unwrap(), Some(b"1".to_vec()));
    assert!(is_poisoned_by_the_sync(db.clone().close()));
    assert!(matches!(db.put(b"closed", b"5"), Err(Error::Closed)));
    let vfs = vfs.reboot(PersistenceModel::UnsyncedLost);
    let db = open(&vfs).unwrap();
    assert_eq!(db.get(b"before").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"later").unwrap(), None);
    db.put(b"again", b"4").unwrap();
}

#[test]
fn second_open_on_the_same_disk_is_locked() {
    let vfs = SimVfs::new(4);
    let db = open(&vfs).unwrap();
    assert!(matches!(open(&vfs), Err(Error::Locked { .. })));
    db.close().unwrap();
    open(&vfs).unwrap();
}

/// Concurrent writers in group-commit mode share fsyncs: fewer WAL syncs than writes, and every
/// acknowledged write survives a power cut.
#[test]
fn group_commit_shares_syncs_and_survives_power_cut() {
    const THREADS: u32 = 8;
    const WRITES: u32 = 100;
    let vfs = SimVfs::new(11);
    let opts = Options {
        durability: Durability::GroupCommit,
        background: BackgroundMode::Threads,
        ..options()
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    let ops_before = vfs.op_count();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    db.put(format!("t{t}-{i:03}").as_bytes(), b"v").unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let syncs = vfs
        .trace()
        .iter()
        .filter(|e| e.index >= ops_before)
        .filter(|e| e.op == kvstore_faults::OpKind::SyncData)
        .filter(|e| e.path.to_string_lossy().contains("wal-"))
        .count();
    let writes = (THREADS * WRITES) as usize;
    assert!(syncs <= writes, "{syncs} syncs for {writes} writes");
    let stats = db.stats();
    assert_eq!(stats.commits, writes as u64);
    assert!(stats.commit_syncs <= stats.commits);
    eprintln!("group commit: {syncs} WAL syncs for {writes} writes");
    vfs.crash();
    drop(db);
    let vfs = vfs.reboot(PersistenceModel::UnsyncedLost);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
    assert_eq!(contents(&db).len(), writes);
}

#[test]
fn flushed_wal_segments_are_removed() {
    let vfs = SimVfs::new(12);
    let db = open(&vfs).unwrap();
    for op in &workload(100) {
        run(&db, op).unwrap();
    }
    db.flush().unwrap();
    let segments = kvstore::vfs::Vfs::list(&vfs, Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("wal-"))
        .count();
    assert!(segments <= 2, "{segments} WAL segments left after a flush");
    let s = db.stats();
    assert_eq!(s.memtable_bytes, 0);
    assert_eq!(s.wal_bytes, 0);
}

#[test]
fn db_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Db>();
}

/// The SST file names in the database directory, sorted.
fn tables(vfs: &SimVfs) -> Vec<String> {
    use kvstore::vfs::Vfs;
    let mut names: Vec<String> = vfs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    names.sort();
    names
}

/// Tables with disjoint keys are compacted by moving them down a level: the same files stay on
/// disk, the data reads back, and so it does after a reopen.
#[test]
fn compacting_disjoint_tables_moves_them_without_rewriting() {
    let vfs = SimVfs::new(7);
    let db = open(&vfs).unwrap();
    let mut model = Model::new();
    for prefix in ["a", "b", "c"] {
        for i in 0..50u32 {
            let (key, value) = (format!("{prefix}{i:03}").into_bytes(), vec![b'v'; 40]);
            db.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        db.flush().unwrap();
    }
    let before = tables(&vfs);
    let l0_before = db.stats().files_per_level[0];
    assert!(l0_before >= 1, "flushes left tables in L0");
    db.compact_range(KeyRange::all()).unwrap();
    let stats = db.stats();
    assert_eq!(stats.files_per_level[0], 0, "L0 moved down");
    assert_eq!(tables(&vfs), before, "no table written or deleted");
    assert_eq!(contents(&db), model);
    db.close().unwrap();
    let db = open(&vfs).unwrap();
    assert_eq!(contents(&db), model);
    assert_eq!(tables(&vfs), before);
}

/// A table the manifest lists but the directory lacks fails the open as corruption naming the
/// table, not as an I/O error.
#[test]
fn a_missing_listed_table_is_corruption() {
    use kvstore::vfs::Vfs;
    let vfs = SimVfs::new(8);
    let db = open(&vfs).unwrap();
    db.put(b"k", b"v").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    let table = tables(&vfs).pop().expect("the flush wrote a table");
    let path = Path::new(DIR).join(&table);
    vfs.remove(&path).unwrap();
    match open(&vfs) {
        Err(kvstore::Error::Corruption { file, what, .. }) => {
            assert_eq!(file, path);
            assert!(what.contains("missing"), "{what}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
