//! Injected failures, lies and corruptions: each one does what its doc says, and only that.

use std::io;
use std::path::Path;

use kvstore::vfs::{Vfs, VfsFile};
use kvstore_faults::{
    Failure, FaultConfig, OpKind, Outcome, PersistenceModel, ReadFault, SimVfs, WriteFault,
};
use proptest::prelude::*;

/// A disk holding `/db/f` with `content` synced, and the open handle; 5 ops issued.
fn with_file(seed: u64, content: &[u8]) -> (SimVfs, Box<dyn VfsFile>) {
    let vfs = SimVfs::new(seed);
    vfs.create_dir_all(Path::new("/db")).unwrap();
    let file = vfs.create(Path::new("/db/f")).unwrap();
    vfs.sync_dir(Path::new("/db")).unwrap();
    file.append(content).unwrap();
    file.sync_data().unwrap();
    assert_eq!(vfs.op_count(), 5);
    (vfs, file)
}

fn sectors(n: usize) -> Vec<u8> {
    (0..n * 512).map(|i| (i / 512) as u8 + 1).collect()
}

#[test]
fn fail_at_op_returns_eio_or_enospc_without_side_effects() {
    let (vfs, file) = with_file(1, b"abc");
    vfs.set_faults(
        FaultConfig::default()
            .fail_at(5, Failure::Eio)
            .fail_at(6, Failure::Enospc),
    );
    let eio = file.append(b"lost").unwrap_err();
    assert_eq!(eio.kind(), io::ErrorKind::Other);
    assert!(eio.to_string().contains("EIO"));
    let enospc = file.append(b"lost").unwrap_err();
    assert_eq!(enospc.kind(), io::ErrorKind::StorageFull);
    file.append(b"kept").unwrap();
    assert_eq!(vfs.peek(Path::new("/db/f")).unwrap(), b"abckept");
    let trace = vfs.trace();
    assert_eq!(trace[5].fault, Some("injected failure"));
    assert!(matches!(
        trace[6].outcome,
        Outcome::Failed(io::ErrorKind::StorageFull, _)
    ));
}

#[test]
fn fail_by_path_pattern_and_op_kind() {
    let vfs = SimVfs::with_faults(
        2,
        FaultConfig::default()
            .fail_path("MANIFEST", Some(OpKind::Rename), Failure::Eio)
            .fail_path(".sst", None, Failure::Enospc),
    );
    vfs.create_dir_all(Path::new("/db")).unwrap();
    vfs.create(Path::new("/db/MANIFEST.tmp")).unwrap();
    let err = vfs
        .rename(Path::new("/db/MANIFEST.tmp"), Path::new("/db/MANIFEST"))
        .unwrap_err();
    assert!(err.to_string().contains("EIO"));
    let err = vfs.create(Path::new("/db/000001.sst")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    vfs.create(Path::new("/db/000001.wal")).unwrap();
}

#[test]
fn fail_randomly_fails_about_the_given_fraction() {
    let vfs = SimVfs::with_faults(3, FaultConfig::default().fail_randomly(0.25, Failure::Eio));
    let failed = (0..4000)
        .filter(|_| vfs.exists(Path::new("/x")).is_err())
        .count();
    assert!((800..1200).contains(&failed), "{failed}");
}

#[test]
fn capacity_gives_enospc() {
    let vfs = SimVfs::with_faults(4, FaultConfig::default().capacity(10));
    vfs.create_dir_all(Path::new("/db")).unwrap();
    let mut file = vfs.create(Path::new("/db/f")).unwrap();
    file.append(&[1; 8]).unwrap();
    assert_eq!(
        file.append(&[2; 3]).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert_eq!(
        file.set_len(11).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    file.append(&[3; 2]).unwrap();
    file.set_len(4).unwrap();
    assert_eq!(file.size().unwrap(), 4);
}

#[test]
fn fsyncgate_fails_once_then_lies_about_the_lost_data() {
    for model in PersistenceModel::ALL {
        let (vfs, file) = with_file(5, b"durable");
        vfs.set_faults(FaultConfig::default().fsyncgate_at(0));
        file.append(b"dirty").unwrap();
        assert!(file.sync_data().is_err());
        // The page cache still serves the data, and a retry "succeeds"...
        assert_eq!(vfs.peek(Path::new("/db/f")).unwrap(), b"durabledirty");
        file.sync_data().unwrap();
        // ...but the bytes never reach the disk.
        let after = vfs.reboot(model).peek(Path::new("/db/f")).unwrap();
        assert_eq!(after, b"durable", "{model}");
    }
}

#[test]
fn short_write_keeps_a_proper_prefix_and_fails() {
    for seed in 0..50 {
        let (vfs, file) = with_file(seed, b"head");
        vfs.set_faults(FaultConfig::default().write_fault_at(5, WriteFault::Short));
        let err = file.append(b"0123456789").unwrap_err();
        assert!(err.to_string().contains("short write"));
        let live = vfs.peek(Path::new("/db/f")).unwrap();
        assert!(live.len() < 14, "{seed}");
        assert!(b"head0123456789".starts_with(&live));
        assert_eq!(vfs.trace()[5].fault, Some("short write"));
    }
}

#[test]
fn misdirected_write_lands_a_sector_away() {
    let (vfs, file) = with_file(6, &sectors(2));
    vfs.set_faults(FaultConfig::default().write_fault_at(5, WriteFault::Misdirected));
    file.append(&[0xaa; 100]).unwrap();
    let live = vfs.peek(Path::new("/db/f")).unwrap();
    assert_eq!(live.len(), 1124);
    assert!(
        live[1024..].iter().all(|b| *b == 0),
        "intended range is empty"
    );
    assert!(
        live[512..612].iter().all(|b| *b == 0xaa),
        "bytes landed one sector early"
    );
    assert!(live[612..1024].iter().all(|b| *b == 2));
    // First sector of a file: the bytes land one sector later.
    let (vfs, file) = with_file(6, b"");
    vfs.set_faults(FaultConfig::default().write_fault_at(5, WriteFault::Misdirected));
    file.append(&[0xbb; 10]).unwrap();
    let live = vfs.peek(Path::new("/db/f")).unwrap();
    assert_eq!(&live[..10], &[0; 10]);
    assert_eq!(&live[512..], &[0xbb; 10]);
}

#[test]
fn read_faults_corrupt_only_the_returned_bytes() {
    let content = sectors(4);
    for fault in [
        ReadFault::BitFlip,
        ReadFault::ZeroSector,
        ReadFault::SectorError,
        ReadFault::Misdirected,
    ] {
        for seed in 0..30 {
            let (vfs, file) = with_file(seed, &content);
            vfs.set_faults(FaultConfig::default().read_fault_at(5, fault));
            let mut buf = vec![0; 1500];
            let result = file.read_at(100, &mut buf);
            let want = &content[100..1600];
            match fault {
                ReadFault::SectorError => {
                    assert!(
                        result
                            .unwrap_err()
                            .to_string()
                            .contains("latent sector error")
                    );
                }
                ReadFault::BitFlip => {
                    result.unwrap();
                    let flipped: u32 = buf
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum();
                    assert_eq!(flipped, 1);
                }
                ReadFault::ZeroSector | ReadFault::Misdirected => {
                    result.unwrap();
                    // Exactly one sector's worth of the buffer differs (or is replaced by itself).
                    let touched: Vec<usize> = (0..buf.len())
                        .filter(|i| buf[*i] != want[*i])
                        .map(|i| (100 + i) / 512)
                        .collect();
                    assert!(
                        touched.windows(2).all(|w| w[0] == w[1]),
                        "{fault:?} {touched:?}"
                    );
                    assert!(!touched.is_empty(), "{fault:?} seed {seed}");
                }
            }
            let mut again = vec![0; 1500];
            if fault == ReadFault::SectorError {
                // The sector stays bad, across a crash too, for every read touching it.
                assert!(file.read_at(100, &mut again).is_err());
                let rebooted = vfs.reboot(PersistenceModel::UnsyncedLost);
                let file = rebooted.open(Path::new("/db/f")).unwrap();
                assert!(file.read_at(100, &mut again).is_err());
                // The other sectors still read fine.
                let clean = (0..4).filter(|s| file.read_at(s * 512, &mut [0; 512]).is_ok());
                assert_eq!(clean.count(), 3);
            } else {
                // The disk is unchanged: the next read is clean.
                file.read_at(100, &mut again).unwrap();
                assert_eq!(&again[..], want);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random read faults never panic and never change the bytes on disk.
    #[test]
    fn random_read_faults_leave_the_bytes_intact(
        seed in any::<u64>(),
        content in proptest::collection::vec(any::<u8>(), 1..3000),
        reads in proptest::collection::vec((0usize..3000, 0usize..3000), 1..20),
    ) {
        let (vfs, file) = with_file(seed, &content);
        let before = vfs.peek(Path::new("/db/f"));
        vfs.set_faults(FaultConfig::default().read_faults_randomly(0.5).sector_bytes(512));
        for (offset, len) in reads {
            let mut buf = vec![0; len];
            let _ = file.read_at(offset as u64, &mut buf);
        }
        prop_assert_eq!(vfs.peek(Path::new("/db/f")), before);
    }
}

#[test]
fn rewriting_a_bad_sector_clears_it() {
    let (vfs, mut file) = with_file(11, &sectors(2));
    vfs.set_faults(FaultConfig::default().read_fault_at(5, ReadFault::SectorError));
    // A read within the second sector only: that sector goes bad.
    assert!(file.read_at(600, &mut [0; 10]).is_err());
    assert!(file.read_at(0, &mut [0; 512]).is_ok());
    assert!(file.read_at(512, &mut [0; 1]).is_err());
    // Truncating it away and appending new bytes rewrites it.
    file.set_len(512).unwrap();
    file.append(&[5; 512]).unwrap();
    let mut buf = [0; 512];
    file.read_at(512, &mut buf).unwrap();
    assert_eq!(buf, [5; 512]);
}
