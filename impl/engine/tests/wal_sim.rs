//! The WAL's I/O on `SimVfs`: round trips across rotation, a crash campaign over every crash point
//! and persistence model, corruption versus torn tail on disk, fsyncgate, idempotent recovery,
//! and a negative control that proves the campaign catches a broken durability protocol.

use std::path::Path;
use std::sync::Arc;

use kvstore::Error;
use kvstore::format::wal::{ReplayEnd, Segment, WalBody, WalRecord, replay};
use kvstore::vfs::Vfs;
use kvstore::wal::{RecoveredWal, WalWriter, list_segments, recover, segment_path};
use kvstore_faults::{Campaign, FaultConfig, Fill, PersistenceModel, SimVfs, is_crash_error};

const DIR: &str = "/db";
/// Small segments, so that the workloads rotate on their own as well as on request.
const SEGMENT_SIZE_BYTES: u64 = 512;
/// Appends in the crash workload.
const WORKLOAD_RECORDS: u64 = 24;
/// Seeds each campaign sweeps (the random persistence models draw from them).
const CAMPAIGN_SEEDS: [u64; 3] = [1, 0xdead_beef, 42];

fn dir() -> &'static Path {
    Path::new(DIR)
}

fn body(i: u64) -> WalBody {
    let key = format!("key-{i:04}").into_bytes();
    if i % 5 == 3 {
        WalBody::Delete { key }
    } else {
        let len = usize::try_from(i * 37 % 300).unwrap();
        WalBody::Put {
            key,
            value: vec![u8::try_from(i % 251).unwrap(); len],
            lease: 0,
        }
    }
}

/// What a workload did: every record it appended (with the offset `append` returned), how many
/// of them a successful `sync` acknowledged, and the writer's last end offset.
#[derive(Debug, Default, Clone)]
struct Run {
    written: Vec<(u64, WalRecord)>,
    acked: usize,
    end_offset: u64,
}

fn open_fresh(vfs: &SimVfs) -> kvstore::error::Result<WalWriter> {
    vfs.create_dir_all(dir())
        .map_err(|e| Error::io("create_dir_all", dir(), e))?;
    let recovered = recover(vfs, dir(), 0, false)?;
    WalWriter::open(Arc::new(vfs.clone()), dir(), &recovered, SEGMENT_SIZE_BYTES)
}

fn append(w: &mut WalWriter, run: &mut Run, i: u64) -> kvstore::error::Result<()> {
    let range = w.append(i + 1, 1_000 + i, 0, &body(i))?;
    // `append` never syncs after encoding, so this is the `synced_through` it wrote.
    let record = WalRecord {
        revision: i + 1,
        created_at_ms: 1_000 + i,
        synced_through: w.synced_offset(),
        stamp: 0,
        body: body(i),
    };
    run.written.push((range.start, record));
    run.end_offset = range.end;
    Ok(())
}

/// Appends `WORKLOAD_RECORDS` records, syncing every third and rotating once by request (the
/// small segment size rotates on its own too). Stops at the first error (the crash).
fn workload(vfs: &SimVfs) -> Run {
    let mut run = Run::default();
    let result = (|| -> kvstore::error::Result<()> {
        let mut w = open_fresh(vfs)?;
        for i in 0..WORKLOAD_RECORDS {
            append(&mut w, &mut run, i)?;
            if i % 3 == 2 {
                w.sync()?;
                run.acked = run.written.len();
            }
            if i == 7 {
                // Rotation does not sync: the records since the last sync stay unacknowledged.
                w.rotate()?;
            }
        }
        w.sync()?;
        run.acked = run.written.len();
        Ok(())
    })();
    if let Err(e) = result {
        assert!(
            vfs.is_crashed(),
            "the only error this workload expects is a crash: {e}"
        );
    }
    run
}

/// The record after the last recovered one starts where the log now ends.
fn expected_end(run: &Run, recovered: usize) -> u64 {
    run.written
        .get(recovered)
        .map_or(run.end_offset, |(offset, _)| *offset)
}

/// The durability check: recovery succeeds, returns a prefix of what was written that holds
/// every acknowledged record, ends where that prefix ends, and is idempotent across a crash.
fn check(run: &Run, rebooted: &SimVfs) -> Result<RecoveredWal, String> {
    if !rebooted.exists(dir()).unwrap() {
        return if run.acked == 0 {
            Ok(RecoveredWal {
                records: Vec::new(),
                end_offset: 0,
                segments: Vec::new(),
                truncated_bytes: 0,
                obsolete_segments: Vec::new(),
            })
        } else {
            Err("database directory lost".into())
        };
    }
    let rec = recover(rebooted, dir(), 0, false).map_err(|e| format!("recover failed: {e}"))?;
    let n = rec.records.len();
    if n < run.acked {
        return Err(format!("{} records acknowledged, {n} recovered", run.acked));
    }
    if n > run.written.len() {
        return Err(format!(
            "{} records written, {n} recovered",
            run.written.len()
        ));
    }
    if let Some((i, (got, want))) = rec
        .records
        .iter()
        .zip(&run.written)
        .enumerate()
        .find(|(_, (g, w))| g != w)
    {
        return Err(format!("record {i}: recovered {got:?}, written {want:?}"));
    }
    if rec.end_offset != expected_end(run, n) {
        return Err(format!(
            "end offset {} after {n} records, expected {}",
            rec.end_offset,
            expected_end(run, n)
        ));
    }
    // Recovery's repairs are durable: crash at once, recover again, same answer, nothing cut.
    let again = rebooted.reboot(PersistenceModel::UnsyncedLost);
    let rec2 = recover(&again, dir(), 0, false).map_err(|e| format!("second recover: {e}"))?;
    if rec2.records != rec.records || rec2.end_offset != rec.end_offset {
        return Err(format!(
            "recovery not idempotent: {} records to {}, end {} then {}",
            n,
            rec2.records.len(),
            rec.end_offset,
            rec2.end_offset
        ));
    }
    if rec2.truncated_bytes != 0 {
        return Err(format!(
            "second recovery cut {} bytes",
            rec2.truncated_bytes
        ));
    }
    Ok(rec)
}

#[test]
fn round_trip_across_rotation_and_reopen() {
    let vfs = SimVfs::new(7);
    let mut run = Run::default();
    let mut w = open_fresh(&vfs).unwrap();
    for i in 0..20 {
        append(&mut w, &mut run, i).unwrap();
        w.sync().unwrap();
    }
    assert!(
        w.segments().len() > 3,
        "small segments rotate: {:?}",
        w.segments()
    );
    assert_eq!(w.end_offset(), run.end_offset);
    assert_eq!(w.synced_offset(), run.end_offset);
    drop(w);

    let rec = recover(&vfs, dir(), 0, false).unwrap();
    assert_eq!(rec.records, run.written);
    assert_eq!(rec.end_offset, run.end_offset);
    assert_eq!(rec.truncated_bytes, 0);
    assert!(rec.obsolete_segments.is_empty());
    let bases = rec.segments.clone();
    assert_eq!(bases.first(), Some(&0));

    // Reopen: offsets continue where the log ended, in the same segment.
    let mut w = WalWriter::open(Arc::new(vfs.clone()), dir(), &rec, SEGMENT_SIZE_BYTES).unwrap();
    assert_eq!(w.end_offset(), run.end_offset);
    for i in 20..30 {
        append(&mut w, &mut run, i).unwrap();
    }
    w.sync().unwrap();
    let rec = recover(&vfs, dir(), 0, false).unwrap();
    assert_eq!(rec.records, run.written);
    assert_eq!(rec.end_offset, run.end_offset);

    // Recovery from a later start offset reads only from the segment holding it.
    let (start, _) = run.written[12];
    let from = recover(&vfs, dir(), start, false).unwrap();
    assert_eq!(from.records, run.written[12..].to_vec());
    assert!(!from.obsolete_segments.is_empty());
    assert!(from.obsolete_segments.iter().all(|b| *b < start));
    assert!(*from.segments.first().unwrap() <= start);

    // Removing obsolete segments leaves recovery from that start offset unchanged.
    let mut w = WalWriter::open(Arc::new(vfs.clone()), dir(), &from, SEGMENT_SIZE_BYTES).unwrap();
    let removed = w.remove_segments_below(start).unwrap();
    assert_eq!(removed, from.obsolete_segments.len());
    assert_eq!(w.remove_segments_below(start).unwrap(), 0);
    let after = recover(&vfs, dir(), start, false).unwrap();
    assert_eq!(after.records, from.records);
    assert!(after.obsolete_segments.is_empty());
    // The active segment is never removed, whatever the offset.
    w.remove_segments_below(u64::MAX).unwrap();
    assert_eq!(w.segments().len(), 1);
    let last = recover(&vfs, dir(), w.end_offset(), false).unwrap();
    assert!(last.records.is_empty());
    assert_eq!(last.end_offset, w.end_offset());
}

/// Detaching is bookkeeping only: the writer forgets the segments at once and keeps appending
/// and syncing, the files stay until `remove`, which deletes exactly them.
#[test]
fn detached_segments_stay_on_disk_until_removed() {
    let vfs = SimVfs::new(11);
    let run = workload(&vfs);
    let rec = recover(&vfs, dir(), 0, false).unwrap();
    assert!(
        rec.segments.len() >= 3,
        "the workload rotates: {:?}",
        rec.segments
    );
    let mut w = WalWriter::open(Arc::new(vfs.clone()), dir(), &rec, SEGMENT_SIZE_BYTES).unwrap();
    let keep_from = rec.segments[2];
    let detached_paths: Vec<_> = rec.segments[..2]
        .iter()
        .map(|&b| segment_path(dir(), b))
        .collect();

    let obsolete = w.detach_segments_below(keep_from).unwrap();
    assert_eq!(w.segments(), &rec.segments[2..]);
    for path in &detached_paths {
        assert!(
            vfs.exists(path).unwrap(),
            "{} removed before remove()",
            path.display()
        );
    }
    let mut run = run;
    append(&mut w, &mut run, 1000).unwrap();
    w.sync().unwrap();

    assert_eq!(obsolete.remove().unwrap(), 2);
    for path in &detached_paths {
        assert!(!vfs.exists(path).unwrap(), "{} still there", path.display());
    }
    let after = recover(&vfs, dir(), keep_from, false).unwrap();
    assert!(after.obsolete_segments.is_empty());
    let expected: Vec<_> = run
        .written
        .iter()
        .filter(|(offset, _)| *offset >= keep_from)
        .cloned()
        .collect();
    assert_eq!(after.records, expected);
    assert_eq!(
        w.detach_segments_below(keep_from)
            .unwrap()
            .remove()
            .unwrap(),
        0
    );
}

#[test]
fn non_wal_files_are_ignored_and_empty_log_starts_at_start_offset() {
    let vfs = SimVfs::new(3);
    vfs.create_dir_all(dir()).unwrap();
    for name in [
        "MANIFEST",
        "wal-1.log",
        "wal-00000000000000000000.log.tmp",
        "000001.sst",
    ] {
        let f = vfs.create(&dir().join(name)).unwrap();
        f.append(b"not a wal segment").unwrap();
        f.sync_data().unwrap();
    }
    let rec = recover(&vfs, dir(), 4_096, false).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(rec.end_offset, 4_096);
    assert!(rec.segments.is_empty());
    let mut w = WalWriter::open(Arc::new(vfs.clone()), dir(), &rec, SEGMENT_SIZE_BYTES).unwrap();
    assert!(vfs.exists(&segment_path(dir(), 4_096)).unwrap());
    let range = w.append(1, 1, 0, &body(0)).unwrap();
    assert_eq!(range.start, 4_096);
    w.sync().unwrap();
    let rec = recover(&vfs, dir(), 4_096, false).unwrap();
    assert_eq!(rec.records.len(), 1);
    assert_eq!(rec.records[0].0, 4_096);
}

#[test]
fn oversized_record_gets_a_segment_of_its_own() {
    let vfs = SimVfs::new(5);
    vfs.create_dir_all(dir()).unwrap();
    let rec = recover(&vfs, dir(), 0, false).unwrap();
    let mut w = WalWriter::open(Arc::new(vfs.clone()), dir(), &rec, 64).unwrap();
    let big = WalBody::Put {
        key: b"k".to_vec(),
        value: vec![7; 1_000],
        lease: 0,
    };
    let a = w.append(1, 0, 0, &big).unwrap();
    let b = w.append(2, 0, 0, &big).unwrap();
    assert_eq!(a.start, 0);
    assert_eq!(w.segments(), &[0, a.end]);
    assert_eq!(b.start, a.end);
    // Rotation does not sync: the second record vouches for nothing.
    let rec = recover(&vfs, dir(), 0, false).unwrap();
    assert_eq!(rec.records[1].1.synced_through, 0);
    // One sync covers the rotated segment and the active one: both survive a power cut.
    w.sync().unwrap();
    assert_eq!(w.synced_offset(), b.end);
    // Rotating an empty segment is a no-op.
    let base = w.rotate().unwrap();
    assert_eq!(w.rotate().unwrap(), base);
    vfs.crash();
    let rebooted = vfs.reboot(PersistenceModel::UnsyncedLost);
    let rec = recover(&rebooted, dir(), 0, false).unwrap();
    assert_eq!(rec.records.len(), 2, "both segments were synced");
}

#[test]
fn crash_campaign_every_point_every_model() {
    let mut total_points = 0;
    // Crash points whose recovery had to cut a torn tail: the campaign must exercise that path.
    let mut cut_points = 0;
    for seed in CAMPAIGN_SEEDS {
        let report = Campaign::new(seed)
            .run(workload, |_point, run, rebooted| {
                let rec = check(&run, &rebooted)?;
                cut_points += u64::from(rec.truncated_bytes > 0);
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
        println!(
            "wal crash campaign seed {seed:#x}: {} ops, {} crash points checked",
            report.ops, report.crash_points
        );
        assert!(
            report.ops > 40,
            "the workload should rotate and sync: {report:?}"
        );
        total_points += report.crash_points;
    }
    println!(
        "wal crash campaign: {total_points} crash points checked in all, {cut_points} cut a torn tail"
    );
    assert!(cut_points > 0, "no crash point left a torn tail to cut");
}

/// Crashes the recovery itself: from each torn disk the workload can leave, recover and open the
/// writer, crash at every point of that, and check the next recovery still holds every record
/// that survived the first crash.
#[test]
fn crash_campaign_during_recovery() {
    let base = Campaign::new(11);
    let (full, counted) = base.dry_run(workload);
    let ops = counted.op_count();
    let mut points = 0;
    // Starting disks whose recovery cuts a tail: the interesting ones to crash.
    let mut torn_disks = 0;
    for crash_op in (8..ops).step_by(3) {
        let crashed = SimVfs::new(11);
        crashed.crash_at(crash_op);
        let run = workload(&crashed);
        for model in [
            PersistenceModel::SizeWithoutData {
                fill: Fill::Garbage,
            },
            PersistenceModel::TornWrite {
                sector_bytes: 512,
                fill: Fill::Zeros,
            },
        ] {
            let torn = crashed.reboot(model);
            let first = check(&run, &torn.snapshot()).unwrap();
            if first.truncated_bytes == 0 {
                continue;
            }
            torn_disks += 1;
            let report = Campaign::new(crash_op)
                .starting_from(torn.image())
                .run(
                    |vfs| {
                        recover(vfs, dir(), 0, false)
                            .and_then(|rec| {
                                WalWriter::open(
                                    Arc::new(vfs.clone()),
                                    dir(),
                                    &rec,
                                    SEGMENT_SIZE_BYTES,
                                )
                            })
                            .map(|_| ())
                    },
                    |_point, result, rebooted| {
                        if let Err(e) = &result {
                            match e {
                                Error::Io { source, .. } if is_crash_error(source) => {}
                                other => return Err(format!("recovery failed: {other}")),
                            }
                        }
                        let rec = check(&run, &rebooted)?;
                        if rec.records != first.records {
                            return Err(format!(
                                "crashed recovery changed the records: {} then {}",
                                first.records.len(),
                                rec.records.len()
                            ));
                        }
                        Ok(())
                    },
                )
                .unwrap_or_else(|failure| panic!("{failure}"));
            points += report.crash_points;
        }
    }
    assert!(full.acked > 0);
    println!(
        "wal recovery crash campaign: {points} crash points checked, {torn_disks} torn start disks"
    );
    assert!(torn_disks >= 5, "too few torn start disks: {torn_disks}");
}

/// Negative control: with an fsync that lies (returns `Ok`, persists nothing) the same campaign
/// must report a lost acknowledged record. If this ever passes, the campaign checks nothing.
#[test]
fn campaign_catches_a_lying_fsync() {
    let failure = Campaign::new(1)
        .faults(FaultConfig::default().lying_sync_from(0))
        .run(workload, |_point, run, rebooted| {
            check(&run, &rebooted).map(|_| ())
        })
        .expect_err("a lying fsync must lose acknowledged records");
    println!("negative control caught: {}", failure.message);
    println!("{}", failure.point);
    assert!(
        failure.message.contains("acknowledged"),
        "unexpected failure: {}",
        failure.message
    );
}

/// A recovery with the rule inverted: every bad record is corruption, none is a torn tail
/// (a "paranoid" log reader). Reads the segments with `peek`, classifies with the pure replay.
fn strict_recover(vfs: &SimVfs) -> Result<(), String> {
    if !vfs.exists(dir()).unwrap() {
        return Ok(());
    }
    let bases = list_segments(vfs, dir()).map_err(|e| e.to_string())?;
    let bytes: Vec<(u64, Vec<u8>)> = bases
        .iter()
        .map(|b| (*b, vfs.peek(&segment_path(dir(), *b)).unwrap()))
        .collect();
    let segments: Vec<Segment<'_>> = bytes
        .iter()
        .map(|(base_offset, bytes)| Segment {
            base_offset: *base_offset,
            bytes,
        })
        .collect();
    match replay(&segments, 0).end {
        ReplayEnd::Clean { .. } => Ok(()),
        other => Err(format!("strict recovery refused the log: {other:?}")),
    }
}

/// Negative control: the same campaign, checked by a recovery that treats torn tails as
/// corruption, must report a false corruption; otherwise the campaign never tears a tail.
#[test]
fn campaign_catches_recovery_without_torn_tails() {
    let failure = Campaign::new(1)
        .run(workload, |_point, _run, rebooted| strict_recover(&rebooted))
        .expect_err("crashes must leave torn tails that only the torn-tail rule accepts");
    println!("negative control caught: {}", failure.message);
    println!("{}", failure.point);
    assert!(failure.message.contains("TornTail"), "{}", failure.message);
}

/// Rewrites `path` on `vfs` with `bytes`, durably.
fn rewrite(vfs: &SimVfs, path: &Path, bytes: &[u8]) {
    let f = vfs.create(path).unwrap();
    f.append(bytes).unwrap();
    f.sync_data().unwrap();
}

#[test]
fn bit_flip_in_synced_record_is_corruption_and_salvage_truncates() {
    let vfs = SimVfs::new(9);
    let mut run = Run::default();
    let mut w = open_fresh(&vfs).unwrap();
    for i in 0..3 {
        append(&mut w, &mut run, i).unwrap();
        w.sync().unwrap();
    }
    drop(w);
    let path = segment_path(dir(), 0);
    let mut bytes = vfs.peek(&path).unwrap();
    let (second, _) = run.written[1];
    assert!(
        run.written[2].1.synced_through > second,
        "record 3 witnesses record 2"
    );
    // A payload byte of record 2: its Adler-32 (header field at byte 8) no longer matches.
    bytes[usize::try_from(second).unwrap() + 12 + 3] ^= 0x10;
    rewrite(&vfs, &path, &bytes);

    match recover(&vfs, dir(), 0, false) {
        Err(Error::Corruption { file, offset, what }) => {
            assert_eq!(file, path);
            assert_eq!(offset, second + 8, "{what}");
            assert!(
                what.contains("adler32") || what.contains("checksum"),
                "{what}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Refusing changed nothing on disk.
    assert_eq!(vfs.peek(&path).unwrap(), bytes);

    let salvaged = recover(&vfs, dir(), 0, true).unwrap();
    assert_eq!(salvaged.records, run.written[..1].to_vec());
    assert_eq!(salvaged.end_offset, second);
    assert_eq!(salvaged.truncated_bytes, bytes.len() as u64 - second);
    // The cut is durable.
    let after = vfs.reboot(PersistenceModel::UnsyncedLost);
    assert_eq!(after.peek(&path).unwrap().len() as u64, second);
    assert_eq!(
        recover(&after, dir(), 0, false).unwrap().records,
        salvaged.records
    );
}

#[test]
fn damage_in_an_earlier_synced_segment_is_corruption() {
    let vfs = SimVfs::new(13);
    let mut run = Run::default();
    let mut w = open_fresh(&vfs).unwrap();
    for i in 0..10 {
        append(&mut w, &mut run, i).unwrap();
        w.sync().unwrap();
    }
    let bases = w.segments().to_vec();
    drop(w);
    assert!(bases.len() >= 3);
    // Zero the tail of the first segment: later segments' records vouch for it.
    let path = segment_path(dir(), bases[0]);
    let mut bytes = vfs.peek(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5..].fill(0);
    rewrite(&vfs, &path, &bytes);
    match recover(&vfs, dir(), 0, false) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn torn_tail_truncation_is_durable_and_idempotent() {
    for model in PersistenceModel::ALL {
        let vfs = SimVfs::new(21);
        let mut run = Run::default();
        let mut w = open_fresh(&vfs).unwrap();
        for i in 0..3 {
            append(&mut w, &mut run, i).unwrap();
        }
        w.sync().unwrap();
        run.acked = 3;
        for i in 3..6 {
            append(&mut w, &mut run, i).unwrap();
        }
        drop(w);
        let torn = vfs.reboot(model);
        let first = check(&run, &torn).unwrap();
        if matches!(model, PersistenceModel::SizeWithoutData { .. }) {
            assert!(
                first.truncated_bytes > 0,
                "{model:?} leaves a torn last record"
            );
        }
        let again = torn.reboot(PersistenceModel::UnsyncedLost);
        let second = recover(&again, dir(), 0, false).unwrap();
        assert_eq!(second.records, first.records);
        assert_eq!(second.end_offset, first.end_offset);
        assert_eq!(second.truncated_bytes, 0);
        // The writer continues in the cut segment, at the cut.
        let mut w =
            WalWriter::open(Arc::new(again.clone()), dir(), &second, SEGMENT_SIZE_BYTES).unwrap();
        let range = w.append(100, 0, 0, &body(100)).unwrap();
        assert_eq!(range.start, second.end_offset);
        w.sync().unwrap();
        let third = recover(
            &again.reboot(PersistenceModel::UnsyncedLost),
            dir(),
            0,
            false,
        )
        .unwrap();
        assert_eq!(third.records.len(), second.records.len() + 1);
    }
}

/// What the fsyncgate workload saw.
#[derive(Debug, Default)]
struct GateRun {
    run: Run,
    /// A call that returned `Ok` after an earlier failure, or a wrong error kind.
    violation: Option<String>,
    failed: bool,
}

/// Records one call's result: after the first failure (an `Io` error) only `Poisoned` carrying an
/// `Io` error may follow.
fn note(out: &mut GateRun, what: &str, result: kvstore::error::Result<()>) {
    match result {
        Ok(()) if out.failed => {
            out.violation = Some(format!("{what} returned Ok after a failure"));
        }
        Ok(()) => {}
        Err(Error::Poisoned { cause }) if out.failed && matches!(*cause, Error::Io { .. }) => {}
        Err(Error::Io { .. }) if !out.failed => out.failed = true,
        Err(e) => out.violation = Some(format!("{what}: unexpected error {e}")),
    }
}

/// Like [`workload`], but keeps calling after an error: every call after the first failure
/// must fail with `Poisoned`.
fn gate_workload(vfs: &SimVfs) -> GateRun {
    let mut out = GateRun::default();
    let Ok(mut w) = open_fresh(vfs) else {
        out.failed = true;
        return out;
    };
    for i in 0..WORKLOAD_RECORDS {
        let r = append(&mut w, &mut out.run, i);
        note(&mut out, "append", r);
        if i % 3 == 2 {
            let r = w.sync();
            let ok = r.is_ok();
            note(&mut out, "sync", r);
            if ok && !out.failed {
                out.run.acked = out.run.written.len();
            }
        }
        if i == 7 {
            // Rotation does not sync: it acknowledges nothing.
            let r = w.rotate().map(|_| ());
            note(&mut out, "rotate", r);
        }
    }
    if out.failed != w.is_poisoned() {
        out.violation = Some("poisoned flag disagrees with the errors seen".into());
    }
    out
}

#[test]
fn fsyncgate_poisons_and_never_acknowledges_lost_data() {
    let (_, counted) = Campaign::new(31).dry_run(gate_workload);
    let ops = counted.op_count();
    let mut poisoned_runs = 0;
    for at in 0..ops {
        let vfs = SimVfs::with_faults(31, FaultConfig::default().fsyncgate_at(at));
        let out = gate_workload(&vfs);
        assert_eq!(out.violation, None, "fsyncgate at op {at}");
        poisoned_runs += usize::from(out.failed);
        let rebooted = vfs.reboot(PersistenceModel::UnsyncedLost);
        check(&out.run, &rebooted).unwrap_or_else(|e| panic!("fsyncgate at op {at}: {e}"));
    }
    assert!(poisoned_runs > 0);
    println!("fsyncgate: {ops} fault points, {poisoned_runs} poisoned the writer");

    // The direct case: the first failing sync is an Io error, then everything is Poisoned by it.
    let vfs = SimVfs::new(32);
    let mut w = open_fresh(&vfs).unwrap();
    w.append(1, 0, 0, &body(1)).unwrap();
    vfs.set_faults(FaultConfig::default().fsyncgate_at(vfs.op_count()));
    assert!(matches!(
        w.sync(),
        Err(Error::Io {
            op: "sync_data",
            ..
        })
    ));
    assert!(w.is_poisoned());
    assert_eq!(w.synced_offset(), 0);
    let poisoned_by_sync = |e: Error| match e {
        Error::Poisoned { cause } => matches!(
            *cause,
            Error::Io {
                op: "sync_data",
                ..
            }
        ),
        _ => false,
    };
    assert!(poisoned_by_sync(w.sync().unwrap_err()));
    assert!(poisoned_by_sync(w.append(2, 0, 0, &body(2)).unwrap_err()));
    assert!(poisoned_by_sync(w.rotate().unwrap_err()));
}

/// Rotation leaves the new segment's name unsynced (a `Buffered` commit that rotates does not
/// wait on a directory sync); the next `sync` makes it durable before the record is acknowledged.
#[test]
fn a_rotated_segment_is_named_durably_by_the_next_sync_not_by_the_rotation() {
    for sync_after_rotation in [false, true] {
        let vfs = SimVfs::new(6);
        let mut w = open_fresh(&vfs).unwrap();
        let mut run = Run::default();
        append(&mut w, &mut run, 0).unwrap();
        w.sync().unwrap();
        let base = w.rotate().unwrap();
        append(&mut w, &mut run, 1).unwrap();
        if sync_after_rotation {
            w.sync().unwrap();
        }
        vfs.crash();
        let rebooted = vfs.reboot(PersistenceModel::UnsyncedLost);
        let rec = recover(&rebooted, dir(), 0, false).unwrap();
        let survived = rec.segments.contains(&base);
        assert_eq!(survived, sync_after_rotation, "segment {base}: {rec:?}");
        let records = if sync_after_rotation { 2 } else { 1 };
        assert_eq!(rec.records.len(), records, "{rec:?}");
    }
}

/// Two segments that overlap (the second's name starts inside the first; only damage or a foreign
/// writer makes this) with nothing vouching for the second: a torn tail at the first one's end.
/// Recovery must cut there for good, so that records acknowledged after it reopen cleanly.
#[test]
fn an_overlapping_segment_is_cut_as_a_torn_tail_and_stays_cut() {
    let vfs = SimVfs::new(7);
    let mut w = open_fresh(&vfs).unwrap();
    let mut run = Run::default();
    for i in 0..3 {
        append(&mut w, &mut run, i).unwrap();
    }
    w.sync().unwrap();
    let end = w.end_offset();
    drop(w);
    // A second segment whose name puts its base inside the first; its record vouches for nothing.
    let record = kvstore::format::wal::encode_record(&WalRecord {
        revision: 4,
        created_at_ms: 1,
        synced_through: 0,
        stamp: 0,
        body: body(3),
    })
    .unwrap();
    let overlap_base = end - 10;
    let f = vfs.create(&segment_path(dir(), overlap_base)).unwrap();
    f.append(&[record.clone(), record].concat()).unwrap();
    f.sync_data().unwrap();
    drop(f);
    vfs.sync_dir(dir()).unwrap();

    let recovered = recover(&vfs, dir(), 0, false).unwrap();
    assert_eq!(recovered.end_offset, end);
    assert_eq!(recovered.records.len(), 3);
    let mut w =
        WalWriter::open(Arc::new(vfs.clone()), dir(), &recovered, SEGMENT_SIZE_BYTES).unwrap();
    for i in 3..6 {
        append(&mut w, &mut run, i).unwrap();
    }
    w.sync().unwrap();
    append(&mut w, &mut run, 6).unwrap();
    w.sync().unwrap();
    drop(w);
    let again = recover(&vfs, dir(), 0, false).unwrap();
    assert_eq!(
        again.records.len(),
        7,
        "acknowledged records after the cut were lost"
    );
    assert_eq!(
        list_segments(&vfs, dir()).unwrap().len(),
        again.segments.len()
    );
}
