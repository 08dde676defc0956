//! Crash-point enumeration: scripted workloads that cross WAL rotation, memtable flush, L0->L1
//! compaction and manifest rewrites, crashed after every single I/O op under every persistence
//! model; each rebooted disk is recovered and checked by the oracle, recovered a second time (it
//! must hold the same state), and, for a sample of crash points, the recovery itself is crashed at
//! every I/O op, several times in a row. Run with `--nocapture` to see the totals;
//! `KVSTORE_CAMPAIGN=deep` runs the long version.

use std::time::Instant;

use kvstore::Durability;
use kvstore_faults::{Campaign, CrashPoint, DiskImage, PersistenceModel, SimVfs};
use kvstore_model::rng::splitmix64 as next;
use kvstore_model::{Budget, Expect, Mutation, Nested, Oracle, Setup, Step, recover, run_workload};

/// Totals of one campaign, printed at the end.
#[derive(Default, Debug)]
struct Totals {
    workloads: u64,
    crash_points: u64,
    recoveries_checked: u64,
    recovery_crash_points: u64,
}

impl Totals {
    fn print(&self, name: &str, started: Instant) {
        eprintln!(
            "[{name}] {} workloads, {} crash points, {} recovery crash points, {} recoveries \
             checked, {:.1}s (budget {:?})",
            self.workloads,
            self.crash_points,
            self.recovery_crash_points,
            self.recoveries_checked,
            started.elapsed().as_secs_f64(),
            Budget::from_env()
        );
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % 23).into_bytes()
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = vec![u8::try_from(i % 251).unwrap_or(0); len];
    // Make values distinct across positions so a stale value cannot pass for a new one.
    v.extend_from_slice(format!("#{i}").as_bytes());
    v
}

/// A scripted workload: overwrites, deletes, batches and reads, with values big enough that the
/// 64 KiB memtable and WAL segment fill (rotation, flush, and with two L0 files a compaction and
/// a manifest rewrite), plus explicit flush, compaction, sync and a clean reopen in the middle.
fn scripted(len: usize, value_bytes: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..len {
        let step = match i % 13 {
            3 => Step::Write(Mutation::Delete(key(i + 7)), None),
            5 => Step::Write(
                Mutation::Batch(vec![
                    (key(i), Some(value(i, value_bytes / 4))),
                    (key(i + 5), None),
                    (key(i + 11), Some(value(i + 1, 100))),
                ]),
                None,
            ),
            7 => Step::Get(key(i + 1)),
            9 if i % 2 == 0 => Step::Flush,
            11 if i % 3 == 0 => Step::Compact,
            12 if i == len / 2 => Step::Reopen,
            12 => Step::Scan,
            _ => Step::Write(Mutation::Put(key(i), value(i, value_bytes)), None),
        };
        steps.push(step);
    }
    steps.push(Step::Scan);
    steps
}

/// Checks one rebooted disk: recovery matches the oracle, and a second recovery after crashing
/// the first (before any write) finds the same state.
fn check_recovery(
    point: &CrashPoint,
    setup: &Setup,
    oracle: Oracle,
    rebooted: &SimVfs,
    totals: &mut Totals,
) -> Result<(), String> {
    let engine = recover(rebooted, setup, oracle)?;
    totals.recoveries_checked += 1;
    let (disk, oracle) = engine.crash();
    let again = disk.reboot(point.model);
    // The oracle now holds exactly the first recovery's state, with nothing pending: the second
    // recovery must find that same state.
    recover(&again, setup, oracle).map_err(|e| format!("second recovery (idempotence): {e}"))?;
    totals.recoveries_checked += 1;
    Ok(())
}

/// Crashes the recovery of `image` at every I/O op under `models`, checks each result, and for
/// one crash point in the middle recurses `depth - 1` more times (a crash during the recovery of
/// a crash during recovery...).
fn recovery_campaign(
    seed: u64,
    setup: &Setup,
    image: DiskImage,
    oracle: &Oracle,
    models: &[PersistenceModel],
    depth: u32,
    totals: &mut Totals,
) -> Result<(), String> {
    if depth == 0 {
        return Ok(());
    }
    let mut nested: Option<(DiskImage, Oracle)> = None;
    let mut recovered_here = 0;
    let report = Campaign::new(seed)
        .starting_from(image)
        .models(models)
        .run(
            |vfs| {
                kvstore_model::Engine::open(vfs.clone(), setup.clone(), oracle.clone())
                    .map(|e| (e.into_parts().1, vfs.op_count()))
            },
            |point, out, rebooted| {
                let (oracle_after, ops_done) = out?;
                if nested.is_none() && point.op_index >= ops_done / 2 && point.op_index > 0 {
                    nested = Some((rebooted.image(), oracle_after.clone()));
                }
                recover(&rebooted, setup, oracle_after)?;
                recovered_here += 1;
                Ok(())
            },
        )
        .map_err(|f| format!("crash during recovery (depth {depth}): {f}"))?;
    totals.recovery_crash_points += report.crash_points;
    totals.recoveries_checked += recovered_here;
    if let Some((image, oracle)) = nested {
        recovery_campaign(
            seed.wrapping_add(1),
            setup,
            image,
            &oracle,
            models,
            depth - 1,
            totals,
        )?;
    }
    Ok(())
}

/// Every crash point of `steps` under every model; for every `recovery_stride`-th crash point
/// (0 = never) a recovery crash campaign `recovery_depth` deep.
fn enumerate(
    seed: u64,
    setup: &Setup,
    steps: &[Step],
    recovery_stride: u64,
    recovery_depth: u32,
    totals: &mut Totals,
) {
    totals.workloads += 1;
    let mut inner = Totals::default();
    let report = Campaign::new(seed)
        .run(
            |vfs| run_workload(vfs, setup, steps),
            |point, out, rebooted| {
                let oracle = out?;
                let image = rebooted.image();
                check_recovery(point, setup, oracle.clone(), &rebooted, &mut inner)?;
                if recovery_stride > 0
                    && point.op_index % recovery_stride == 0
                    && point.model == PersistenceModel::RandomPrefix
                {
                    recovery_campaign(
                        point.seed ^ point.op_index,
                        setup,
                        image,
                        &oracle,
                        &[
                            PersistenceModel::UnsyncedLost,
                            PersistenceModel::RandomSubset,
                        ],
                        recovery_depth,
                        &mut inner,
                    )?;
                }
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
    totals.crash_points += report.crash_points;
    totals.recoveries_checked += inner.recoveries_checked;
    totals.recovery_crash_points += inner.recovery_crash_points;
    eprintln!(
        "  seed {seed:#x} {:?}: {} ops, {} crash points",
        setup.options.durability, report.ops, report.crash_points
    );
}

fn scripted_campaign(name: &str, seed: u64, durability: Durability) {
    let started = Instant::now();
    let budget = Budget::from_env();
    let mut totals = Totals::default();
    enumerate(
        seed,
        &Setup::new(durability),
        &scripted(budget.pick(90, 200), 3000),
        budget.pick(40, 10),
        budget.pick(2, 3),
        &mut totals,
    );
    totals.print(name, started);
}

#[test]
fn scripted_sync_workload_recovers_at_every_crash_point() {
    scripted_campaign("scripted, sync", 0x5eed_0001, Durability::Sync);
}

#[test]
fn scripted_group_commit_workload_recovers_at_every_crash_point() {
    scripted_campaign(
        "scripted, group commit",
        0x5eed_0002,
        Durability::GroupCommit,
    );
}

/// A workload where most writes are buffered and made durable by explicit syncs.
#[test]
fn buffered_writes_recover_a_prefix_at_every_crash_point() {
    let started = Instant::now();
    let budget = Budget::from_env();
    let mut totals = Totals::default();
    let mut steps = Vec::new();
    for i in 0..budget.pick(80, 200) {
        steps.push(match i % 7 {
            2 => Step::Sync,
            4 => Step::Write(Mutation::Delete(key(i + 3)), Some(Durability::Sync)),
            _ => Step::Write(Mutation::Put(key(i), value(i, 2500)), None),
        });
    }
    enumerate(
        0xb0ff,
        &Setup::new(Durability::Buffered),
        &steps,
        0,
        0,
        &mut totals,
    );
    totals.print("buffered", started);
}

/// Buffered writes with a memtable four WAL segments large: the log rotates by size three times
/// before any flush, so each `sync` must cover older, rotated segments as well as the active one
/// (rotation itself does not sync). Crashed at every I/O op under every persistence model.
#[test]
fn buffered_sync_covers_segments_rotated_since_the_last_sync() {
    let started = Instant::now();
    let budget = Budget::from_env();
    let mut totals = Totals::default();
    let mut setup = Setup::new(Durability::Buffered);
    setup.options.memtable_size_bytes = 4 * kvstore::options::WAL_SEGMENT_SIZE_BYTES_MIN;
    let mut steps = Vec::new();
    for i in 0..budget.pick(90, 200) {
        steps.push(match i % 11 {
            10 => Step::Sync,
            _ => Step::Write(Mutation::Put(key(i), value(i, 2500)), None),
        });
    }
    steps.push(Step::Flush);
    enumerate(0x5e9, &setup, &steps, 0, 0, &mut totals);
    totals.print("buffered, rotations between syncs", started);
}

fn random_steps(seed: u64, len: usize) -> Vec<Step> {
    let mut s = seed;
    let mut pick = |n: u64| usize::try_from(next(&mut s) % n).unwrap_or(0);
    (0..len)
        .map(|i| match pick(20) {
            0 => Step::Flush,
            1 => Step::Compact,
            2 => Step::Sync,
            3 => Step::Scan,
            4 => Step::Get(key(pick(6))),
            5 => Step::Write(Mutation::Delete(key(pick(6))), None),
            6 => Step::Write(
                Mutation::Txn {
                    compares: vec![(key(pick(6)), Expect::Absent)],
                    success: vec![(key(pick(6)), Some(value(i, 100 + pick(2000))))],
                    failure: vec![(key(pick(6)), None)],
                    // Keys 6 and 7: never the success branch's.
                    nested: (pick(2) == 0).then(|| Nested {
                        compares: vec![(key(pick(8)), Expect::Absent)],
                        success: vec![(key(6), Some(value(i, 50 + pick(500))))],
                        failure: vec![(key(7), None)],
                    }),
                },
                None,
            ),
            7 if pick(4) == 0 => {
                Step::Write(Mutation::DeleteRange(key(pick(3)), key(3 + pick(3))), None)
            }
            7 | 8 => Step::Write(
                Mutation::Batch(vec![
                    (key(pick(6)), Some(value(i, pick(3000)))),
                    (key(pick(6)), None),
                ]),
                None,
            ),
            _ => Step::Write(
                Mutation::Put(key(pick(6)), value(i, 100 + pick(4000))),
                None,
            ),
        })
        .collect()
}

#[test]
fn random_workloads_recover_at_every_crash_point() {
    let started = Instant::now();
    let budget = Budget::from_env();
    let mut totals = Totals::default();
    for n in 0..budget.pick(16u64, 120) {
        let seed = 0xa11c_e000 + n;
        let durability = match n % 3 {
            0 => Durability::Sync,
            1 => Durability::GroupCommit,
            _ => Durability::Buffered,
        };
        let steps = random_steps(seed, budget.pick(30, 60));
        enumerate(seed, &Setup::new(durability), &steps, 0, 0, &mut totals);
    }
    totals.print("random", started);
}

#[test]
fn reads_during_the_workload_match_the_model() {
    let vfs = SimVfs::new(1);
    let oracle = run_workload(&vfs, &Setup::new(Durability::Sync), &scripted(80, 3000))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!oracle.in_doubt());
    let engine = recover(
        &vfs.reboot(PersistenceModel::UnsyncedLost),
        &Setup::new(Durability::Sync),
        oracle.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Every write was acknowledged in Sync mode: nothing may be missing.
    assert_eq!(engine.oracle().durable(), oracle.current());
    let (disk, _) = engine.into_parts();
    assert!(!disk.is_crashed());
}
