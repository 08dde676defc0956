//! The simulator tested like a measuring instrument: what each crash model keeps, and nothing else.

use std::collections::BTreeSet;
use std::path::Path;

use kvstore::vfs::{Vfs, VfsFile};
use kvstore_faults::{
    Campaign, FaultConfig, Fill, PersistenceModel, SimVfs, format_trace, is_crash_error,
};
use proptest::prelude::*;

const DIR: &str = "/db";
const FILES: [&str; 3] = ["/db/a", "/db/b", "/db/c"];

/// A disk with the files of `FILES` created, their names durable.
fn setup(seed: u64) -> (SimVfs, Vec<Box<dyn VfsFile>>) {
    let vfs = SimVfs::new(seed);
    vfs.create_dir_all(Path::new(DIR)).unwrap();
    let files = FILES
        .iter()
        .map(|path| vfs.create(Path::new(path)).unwrap())
        .collect();
    vfs.sync_dir(Path::new(DIR)).unwrap();
    (vfs, files)
}

fn model_strategy() -> impl Strategy<Value = PersistenceModel> {
    proptest::sample::select(PersistenceModel::ALL.to_vec())
}

#[derive(Clone, Debug)]
enum Step {
    Append(usize, Vec<u8>),
    Sync(usize),
    SetLen(usize, u64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..FILES.len(), proptest::collection::vec(any::<u8>(), 0..700))
            .prop_map(|(f, data)| Step::Append(f, data)),
        2 => (0..FILES.len()).prop_map(Step::Sync),
        1 => (0..FILES.len(), 0..2000u64).prop_map(|(f, len)| Step::SetLen(f, len)),
    ]
}

/// Runs `steps`, returning each file's live bytes and its bytes as of its last sync.
fn run_steps(files: &mut [Box<dyn VfsFile>], steps: &[Step]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut live = vec![Vec::new(); files.len()];
    let mut synced = vec![Vec::new(); files.len()];
    for step in steps {
        match step {
            Step::Append(f, data) => {
                files[*f].append(data).unwrap();
                live[*f].extend_from_slice(data);
            }
            Step::Sync(f) => {
                files[*f].sync_data().unwrap();
                synced[*f] = live[*f].clone();
            }
            Step::SetLen(f, len) => {
                files[*f].set_len(*len).unwrap();
                live[*f].resize(usize::try_from(*len).unwrap(), 0);
            }
        }
    }
    (live, synced)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After a crash that loses unsynced data, exactly the synced bytes remain.
    #[test]
    fn unsynced_lost_keeps_exactly_the_synced_bytes(
        seed in any::<u64>(),
        steps in proptest::collection::vec(step_strategy(), 0..40),
    ) {
        let (vfs, mut files) = setup(seed);
        let (live, synced) = run_steps(&mut files, &steps);
        for (path, want) in FILES.iter().zip(&live) {
            prop_assert_eq!(&vfs.peek(Path::new(path)).unwrap(), want);
        }
        let rebooted = vfs.reboot(PersistenceModel::UnsyncedLost);
        for (path, want) in FILES.iter().zip(&synced) {
            let file = rebooted.open(Path::new(path)).unwrap();
            prop_assert_eq!(file.size().unwrap(), want.len() as u64);
            let mut got = vec![0; want.len()];
            file.read_at(0, &mut got).unwrap();
            prop_assert_eq!(&got, want);
        }
        prop_assert!(rebooted.image().is_quiescent());
    }

    /// Whatever a crash keeps, the synced bytes survive, and the file is never longer than the
    /// live file (or the longest length it had).
    #[test]
    fn every_model_keeps_the_synced_bytes(
        seed in any::<u64>(),
        model in model_strategy(),
        data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..600), 1..6),
        synced_count in 0usize..6,
    ) {
        let (vfs, files) = setup(seed);
        let mut synced = Vec::new();
        for (i, chunk) in data.iter().enumerate() {
            files[0].append(chunk).unwrap();
            if i < synced_count {
                files[0].sync_data().unwrap();
                synced.extend_from_slice(chunk);
            }
        }
        let total: usize = data.iter().map(Vec::len).sum();
        let after = vfs.reboot(model).peek(Path::new(FILES[0])).unwrap();
        prop_assert!(after.starts_with(&synced), "{model}: synced prefix lost");
        prop_assert!(after.len() <= total, "{model}: file grew past its live length");
    }

    /// A torn write changes only the last sector of what survives: the result is the synced
    /// prefix followed by a prefix of the unsynced append, except within its final sector.
    #[test]
    fn torn_write_changes_only_the_last_sector(
        seed in any::<u64>(),
        prefix in proptest::collection::vec(any::<u8>(), 0..5000),
        write in proptest::collection::vec(any::<u8>(), 1..9000),
        sector_bytes in proptest::sample::select(vec![512u32, 4096]),
        fill in proptest::sample::select(vec![Fill::Zeros, Fill::Garbage]),
    ) {
        let (vfs, files) = setup(seed);
        files[0].append(&prefix).unwrap();
        files[0].sync_data().unwrap();
        files[0].append(&write).unwrap();
        let after = vfs
            .reboot(PersistenceModel::TornWrite { sector_bytes, fill })
            .peek(Path::new(FILES[0]))
            .unwrap();
        let full = [prefix.clone(), write.clone()].concat();
        prop_assert!(after.len() > prefix.len() && after.len() <= full.len());
        prop_assert_eq!(&after[..prefix.len()], &prefix[..]);
        let sector = sector_bytes as usize;
        let last_sector_start = (after.len() - 1) / sector * sector;
        let stable = last_sector_start.max(prefix.len());
        prop_assert_eq!(&after[..stable], &full[..stable]);
        if fill == Fill::Zeros {
            // The torn tail is an intact head of the sector's new bytes, then zeros.
            let tail = &after[stable..];
            let intact = tail
                .iter()
                .zip(&full[stable..])
                .take_while(|(got, want)| got == want)
                .count();
            prop_assert!(tail[intact..].iter().all(|b| *b == 0));
        }
    }

    /// A lying fsync returns Ok but the data is lost on crash.
    #[test]
    fn lying_fsync_loses_the_data_on_crash(
        seed in any::<u64>(),
        data in proptest::collection::vec(any::<u8>(), 1..2000),
        lie_from in 0u64..3,
    ) {
        let (vfs, files) = setup(seed);
        // Setup issued 5 ops (create_dir_all, 3 creates, sync_dir): the lie starts after them.
        vfs.set_faults(FaultConfig::default().lying_sync_from(5 + lie_from));
        files[0].append(b"x").unwrap();
        files[0].sync_data().unwrap();
        files[0].append(&data).unwrap();
        files[0].sync_data().unwrap();
        let after = vfs
            .reboot(PersistenceModel::UnsyncedLost)
            .peek(Path::new(FILES[0]))
            .unwrap();
        let want: &[u8] = if lie_from < 2 { b"" } else { b"x" };
        prop_assert_eq!(&after[..], want);
        let entries = vfs.trace();
        prop_assert!(entries.iter().any(|e| e.fault == Some("lying fsync")));
    }

    /// A rename whose directory was not synced can be undone; once synced, it cannot.
    #[test]
    fn rename_durable_only_after_sync_dir(
        seed in any::<u64>(),
        model in model_strategy(),
        sync in any::<bool>(),
    ) {
        let (vfs, files) = setup(seed);
        files[0].append(b"payload").unwrap();
        files[0].sync_data().unwrap();
        vfs.rename(Path::new("/db/a"), Path::new("/db/renamed")).unwrap();
        if sync {
            vfs.sync_dir(Path::new(DIR)).unwrap();
        }
        let after = vfs.reboot(model);
        let old = after.exists(Path::new("/db/a")).unwrap();
        let new = after.exists(Path::new("/db/renamed")).unwrap();
        // Renames are atomic by default: exactly one of the names survives.
        prop_assert!(old != new);
        if sync {
            prop_assert!(new);
        }
        if model == PersistenceModel::UnsyncedLost && !sync {
            prop_assert!(old);
        }
        let name = if new { "/db/renamed" } else { "/db/a" };
        prop_assert_eq!(after.peek(Path::new(name)).unwrap(), b"payload".to_vec());
    }

    /// The same seed and workload give the same trace and the same rebooted disk.
    #[test]
    fn same_seed_replays_the_same_trace(
        seed in any::<u64>(),
        model in model_strategy(),
        steps in proptest::collection::vec(step_strategy(), 0..30),
    ) {
        let faults = FaultConfig::default()
            .fail_randomly(0.05, kvstore_faults::Failure::Eio)
            .read_faults_randomly(0.2)
            .write_faults_randomly(0.1);
        let run = || {
            let vfs = SimVfs::with_faults(seed, faults.clone());
            let _ = vfs.create_dir_all(Path::new(DIR));
            let mut files: Vec<_> = FILES.iter().filter_map(|p| vfs.create(Path::new(p)).ok()).collect();
            let _ = vfs.sync_dir(Path::new(DIR));
            for step in &steps {
                if let Some(file) = files.first_mut() {
                    let _ = match step {
                        Step::Append(_, data) => file.append(data),
                        Step::Sync(_) => file.sync_data(),
                        Step::SetLen(_, len) => file.set_len(*len),
                    };
                    let mut buf = [0; 16];
                    let _ = file.read_at(0, &mut buf);
                }
            }
            let trace = format_trace(&vfs.trace());
            let rebooted = vfs.reboot(model);
            (trace, rebooted.image(), rebooted.seed())
        };
        let first = run();
        let second = run();
        prop_assert_eq!(&first.0, &second.0);
        prop_assert_eq!(&first.1, &second.1);
        prop_assert_eq!(first.2, second.2);
    }
}

proptest! {
    /// A hard link is a directory entry: it survives a crash only once its directory was synced,
    /// and then holds the file's durable bytes; the original name is untouched either way.
    #[test]
    fn hard_link_durable_only_after_sync_dir(
        seed in any::<u64>(),
        model in model_strategy(),
        sync in any::<bool>(),
    ) {
        let (vfs, files) = setup(seed);
        files[0].append(b"payload").unwrap();
        files[0].sync_data().unwrap();
        vfs.create_dir_all(Path::new("/copy")).unwrap();
        vfs.hard_link(Path::new("/db/a"), Path::new("/copy/a")).unwrap();
        if sync {
            vfs.sync_dir(Path::new("/copy")).unwrap();
        }
        let after = vfs.reboot(model);
        prop_assert_eq!(after.peek(Path::new("/db/a")).unwrap(), b"payload".to_vec());
        let linked = after.exists(Path::new("/copy/a")).unwrap();
        if sync {
            prop_assert!(linked);
        }
        if model == PersistenceModel::UnsyncedLost && !sync {
            prop_assert!(!linked);
        }
        if linked {
            prop_assert_eq!(after.peek(Path::new("/copy/a")).unwrap(), b"payload".to_vec());
        }
    }
}

/// Unsynced bytes of a linked file are pending on the one file both names share: a crash keeps
/// or drops them for both names alike.
#[test]
fn both_names_of_a_hard_link_see_the_same_crash() {
    for seed in 0..50 {
        let (vfs, files) = setup(seed);
        vfs.hard_link(Path::new("/db/a"), Path::new("/db/link"))
            .unwrap();
        vfs.sync_dir(Path::new(DIR)).unwrap();
        files[0].append(b"unsynced").unwrap();
        let after = vfs.reboot(PersistenceModel::RandomPrefix);
        assert_eq!(
            after.peek(Path::new("/db/a")),
            after.peek(Path::new("/db/link")),
            "seed {seed}"
        );
    }
}

/// Collects the set of outcomes of `experiment` over many seeds.
fn outcomes<T: Ord>(experiment: impl Fn(u64) -> T) -> BTreeSet<T> {
    (0..200).map(experiment).collect()
}

#[test]
fn created_and_synced_file_without_sync_dir_vanishes() {
    let vfs = SimVfs::new(9);
    vfs.create_dir_all(Path::new(DIR)).unwrap();
    let file = vfs.create(Path::new("/db/new")).unwrap();
    file.append(b"data").unwrap();
    file.sync_data().unwrap();
    let after = vfs.reboot(PersistenceModel::UnsyncedLost);
    assert!(!after.exists(Path::new("/db/new")).unwrap());
    assert_eq!(after.list(Path::new(DIR)).unwrap(), Vec::<String>::new());
}

#[test]
fn non_atomic_rename_can_lose_or_duplicate_the_file() {
    let seen = outcomes(|seed| {
        let (vfs, _files) = setup(seed);
        vfs.set_faults(FaultConfig::default().non_atomic_rename());
        vfs.rename(Path::new("/db/a"), Path::new("/db/z")).unwrap();
        let after = vfs.reboot(PersistenceModel::RandomSubset);
        (
            after.exists(Path::new("/db/a")).unwrap(),
            after.exists(Path::new("/db/z")).unwrap(),
        )
    });
    // Neither name, only the old, only the new, and both.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn random_subset_persists_writes_out_of_order() {
    let seen = outcomes(|seed| {
        let (vfs, files) = setup(seed);
        files[0].append(b"first").unwrap();
        files[0].append(b"second").unwrap();
        files[1].append(b"other").unwrap();
        let after = vfs.reboot(PersistenceModel::RandomSubset);
        (
            after.peek(Path::new(FILES[0])).unwrap(),
            after.peek(Path::new(FILES[1])).unwrap(),
        )
    });
    // The later write kept without the earlier one: a hole of zeros, then "second".
    let hole_then_second = [vec![0; 5], b"second".to_vec()].concat();
    assert!(seen.iter().any(|(a, _)| *a == hole_then_second));
    // The second file's write kept while the first file's are lost, and the other way round.
    assert!(seen.iter().any(|(a, b)| a.is_empty() && !b.is_empty()));
    assert!(seen.iter().any(|(a, b)| !a.is_empty() && b.is_empty()));
}

#[test]
fn random_prefix_keeps_writes_in_order() {
    let seen = outcomes(|seed| {
        let (vfs, files) = setup(seed);
        for chunk in [&b"one"[..], b"two", b"three"] {
            files[0].append(chunk).unwrap();
        }
        vfs.reboot(PersistenceModel::RandomPrefix)
            .peek(Path::new(FILES[0]))
            .unwrap()
    });
    let want: BTreeSet<Vec<u8>> = ["", "one", "onetwo", "onetwothree"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn size_without_data_leaves_zeros_or_garbage_at_the_tail() {
    for fill in [Fill::Zeros, Fill::Garbage] {
        let (vfs, files) = setup(5);
        files[0].append(b"synced").unwrap();
        files[0].sync_data().unwrap();
        files[0].append(&[7; 1000]).unwrap();
        let after = vfs
            .reboot(PersistenceModel::SizeWithoutData { fill })
            .peek(Path::new(FILES[0]))
            .unwrap();
        assert_eq!(after.len(), 1006);
        assert_eq!(&after[..6], b"synced");
        let tail = &after[6..];
        match fill {
            Fill::Zeros => assert!(tail.iter().all(|b| *b == 0)),
            Fill::Garbage => assert!(tail.iter().any(|b| *b != 0 && *b != 7)),
        }
    }
}

#[test]
fn set_len_is_not_durable_until_synced() {
    let (vfs, mut files) = setup(3);
    files[0].append(b"0123456789").unwrap();
    files[0].sync_data().unwrap();
    files[0].set_len(3).unwrap();
    let lost = vfs.snapshot().reboot(PersistenceModel::UnsyncedLost);
    assert_eq!(lost.peek(Path::new(FILES[0])).unwrap(), b"0123456789");
    files[0].sync_data().unwrap();
    let kept = vfs.reboot(PersistenceModel::UnsyncedLost);
    assert_eq!(kept.peek(Path::new(FILES[0])).unwrap(), b"012");
}

#[test]
fn crash_at_fails_that_op_and_every_later_one() {
    let (vfs, files) = setup(1);
    let next = vfs.op_count();
    vfs.crash_at(next + 1);
    files[0].append(b"ok").unwrap();
    assert!(!vfs.is_crashed());
    let err = files[0].sync_data().unwrap_err();
    assert!(is_crash_error(&err), "{err}");
    assert_eq!(err.to_string(), "simulated crash");
    assert!(vfs.is_crashed());
    assert!(is_crash_error(&vfs.exists(Path::new(DIR)).unwrap_err()));
    assert!(is_crash_error(&files[1].append(b"x").unwrap_err()));
    let trace = vfs.trace();
    assert_eq!(trace.len() as u64, vfs.op_count());
    assert!(trace.iter().enumerate().all(|(i, e)| e.index == i as u64));
    assert_eq!(
        format!("{}", trace[usize::try_from(next).unwrap()]),
        "#5 append /db/a offset=0 len=2: ok"
    );
    assert_eq!(format!("{}", trace[6]), "#6 sync_data /db/a: crashed");
}

#[test]
fn reboot_drops_locks_and_kills_old_handles() {
    let (vfs, files) = setup(1);
    let _lock = vfs.lock(Path::new("/db/LOCK")).unwrap();
    vfs.sync_dir(Path::new(DIR)).unwrap();
    let after = vfs.reboot(PersistenceModel::UnsyncedLost);
    assert!(is_crash_error(&files[0].append(b"late").unwrap_err()));
    let relocked = after.lock(Path::new("/db/LOCK")).unwrap();
    drop(relocked);
}

#[test]
fn image_is_canonical_and_round_trips() {
    use std::hash::{BuildHasher, RandomState};
    let build = |order: &[&str], seed: u64| {
        let vfs = SimVfs::new(seed);
        vfs.create_dir_all(Path::new(DIR)).unwrap();
        for name in order {
            vfs.create(Path::new(name))
                .unwrap()
                .append(name.as_bytes())
                .unwrap();
        }
        vfs.sync_dir(Path::new(DIR)).unwrap();
        vfs
    };
    let one = build(&["/db/x", "/db/y"], 1);
    let two = build(&["/db/y", "/db/x"], 2);
    // Different inode numbers, seeds and op orders; same names, bytes and pending writes.
    assert_eq!(one.image(), two.image());
    let hasher = RandomState::new();
    assert_eq!(hasher.hash_one(one.image()), hasher.hash_one(two.image()));
    // Pending writes are part of the image.
    let three = build(&["/db/x", "/db/y"], 3);
    three.open(Path::new("/db/x")).unwrap().sync_data().unwrap();
    assert_ne!(one.image(), three.image());
    // A disk booted from an image has that image, pending writes included, and crashes alike.
    let image = one.image();
    let booted = SimVfs::from_image(&image, 77);
    assert_eq!(booted.image(), image);
    assert_eq!(
        booted.reboot(PersistenceModel::UnsyncedLost).image(),
        one.snapshot()
            .reboot(PersistenceModel::UnsyncedLost)
            .image()
    );
    assert!(format!("{image:?}").contains("/db/x"));
}

#[test]
fn snapshot_is_independent_and_clone_is_shared() {
    let (vfs, files) = setup(4);
    let shared = vfs.clone();
    let snap = vfs.snapshot();
    files[0].append(b"after").unwrap();
    assert_eq!(shared.peek(Path::new(FILES[0])).unwrap(), b"after");
    assert_eq!(snap.peek(Path::new(FILES[0])).unwrap(), b"");
    assert_eq!(snap.op_count(), 5);
}

#[test]
fn campaign_failure_prints_a_replay_line_and_the_trace() {
    // A naive writer: never syncs the directory, so a crash loses an acknowledged record.
    let naive = |vfs: &SimVfs| {
        let mut acked = false;
        let _ = (|| -> std::io::Result<()> {
            vfs.create_dir_all(Path::new(DIR))?;
            let file = vfs.create(Path::new("/db/log"))?;
            file.append(b"record")?;
            file.sync_data()?;
            acked = true;
            Ok(())
        })();
        acked
    };
    let campaign = Campaign::new(0xfeed).models(&[PersistenceModel::UnsyncedLost]);
    let failure = campaign
        .run(naive, |_, acked, disk| {
            let ok = !acked || disk.peek(Path::new("/db/log")).as_deref() == Some(b"record");
            if ok {
                Ok(())
            } else {
                Err("acknowledged record lost".into())
            }
        })
        .unwrap_err();
    assert_eq!(failure.point.op_index, 4);
    let shown = failure.to_string();
    assert!(shown.contains(
        "replay: CrashPoint { seed: 0xfeed, op_index: 4, model: PersistenceModel::UnsyncedLost }"
    ), "{shown}");
    assert!(shown.contains("#3 sync_data /db/log: ok"), "{shown}");
    // The replay reproduces it.
    let (acked, _, rebooted) = campaign.replay(&failure.point, naive);
    assert!(acked);
    assert!(!rebooted.exists(Path::new("/db/log")).unwrap());
}

#[test]
fn campaign_can_crash_the_recovery_of_a_crashed_disk() {
    // A disk a crash left with a torn tail: "ok" synced, then garbage at the end.
    let (vfs, files) = setup(8);
    files[0].append(b"ok").unwrap();
    files[0].sync_data().unwrap();
    files[0].append(&[1; 600]).unwrap();
    let crashed = vfs.reboot(PersistenceModel::SizeWithoutData {
        fill: Fill::Garbage,
    });
    // Recovery cuts the file back to its synced prefix; crash it at every point.
    let recover = |vfs: &SimVfs| {
        let _ = (|| -> std::io::Result<()> {
            let mut file = vfs.open(Path::new(FILES[0]))?;
            file.set_len(2)?;
            file.sync_data()
        })();
    };
    let report = Campaign::new(8)
        .starting_from(crashed.image())
        .run(recover, |point, (), disk| {
            let bytes = disk.peek(Path::new(FILES[0])).unwrap_or_default();
            match bytes.len() {
                2 | 602 if bytes.starts_with(b"ok") => Ok(()),
                _ => Err(format!("{point}: {} bytes", bytes.len())),
            }
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.ops, 3);
    assert_eq!(report.crash_points, 4 * PersistenceModel::ALL.len() as u64);
}
