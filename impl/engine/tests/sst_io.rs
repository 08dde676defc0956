//! SST I/O against a `BTreeMap` model, on the real filesystem (`OsVfs`) and on the simulated one
//! (`SimVfs`): round trips, every single-byte corruption, every truncation, read faults, write
//! faults, crashes, and the block cache's bounds.
//!
//! The corruption property: every region of a table is covered by a checksum or a magic, so a
//! changed byte anywhere makes `open` fail or a full scan yield an error; every error is an
//! `Error::Corruption` naming the file and an offset inside the region that holds the changed
//! byte; and every `Ok` answer is the model's.

use std::collections::BTreeMap;
use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kvstore::Error;
use kvstore::entry::{Entry, VersionMeta};
use kvstore::format::sst::{
    Compression, FOOTER_LEN, Footer, Index, SST_HEADER_LEN, TableOptions, TableSummary,
};
use kvstore::range::{Direction, KeyRange};
use kvstore::sst::{BlockCache, Table, TableWriter};
use kvstore::vfs::{OsVfs, Vfs};
use kvstore_faults::{Failure, FaultConfig, OpKind, PersistenceModel, SimVfs};
use proptest::prelude::*;

const DIR: &str = "/db";

fn sst_path(n: u64) -> PathBuf {
    Path::new(DIR).join(format!("{n:06}.sst"))
}

fn sim() -> SimVfs {
    let vfs = SimVfs::new(7);
    vfs.create_dir_all(Path::new(DIR)).unwrap();
    vfs
}

fn write_table(
    vfs: &dyn Vfs,
    path: &Path,
    options: TableOptions,
    entries: &[Entry],
) -> TableSummary {
    let mut w = TableWriter::create(vfs, path, options).unwrap();
    for e in entries {
        w.add(e).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!(summary.entry_count, entries.len() as u64);
    summary
}

/// Replaces the file's content (on any Vfs), synced.
fn put_file(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) {
    let f = vfs.create(path).unwrap();
    f.append(bytes).unwrap();
    f.sync_data().unwrap();
}

fn read_file(vfs: &dyn Vfs, path: &Path) -> Vec<u8> {
    let f = vfs.open(path).unwrap();
    let mut buf = vec![0; f.size().unwrap() as usize];
    f.read_at(0, &mut buf).unwrap();
    buf
}

fn open(vfs: &dyn Vfs, path: &Path, cache_bytes: u64) -> kvstore::error::Result<Arc<Table>> {
    Table::open(vfs, path, 1, Arc::new(BlockCache::new(cache_bytes)))
}

fn scan(table: &Arc<Table>, range: KeyRange, direction: Direction) -> Vec<Entry> {
    table
        .iter(range, direction)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn model_scan(entries: &[Entry], range: &KeyRange, direction: Direction) -> Vec<Entry> {
    let mut out: Vec<Entry> = entries
        .iter()
        .filter(|e| range.contains(&e.key))
        .cloned()
        .collect();
    if direction == Direction::Reverse {
        out.reverse();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        prop::collection::vec(0u8..3, 0..5),
    ]
}

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.85,
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..48),
            1 => prop::collection::vec(0u8..3, 0..4096),
        ],
    )
}

fn entries(max: usize) -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::btree_map(key(), (value(), any::<u64>()), 1..max).prop_map(|m| {
        m.into_iter()
            .map(|(key, (value, revision))| Entry {
                key,
                meta: VersionMeta::first(value.is_some(), revision),
                value,
                revision,
                wal_offset: revision / 3,
                created_at_ms: 1_700_000_000_000,
            })
            .collect()
    })
}

fn table_options() -> impl Strategy<Value = TableOptions> {
    (
        prop_oneof![32usize..256, 256usize..4096],
        any::<bool>(),
        prop_oneof![Just(0u32), 1u32..16],
    )
        .prop_map(|(block_size_bytes, lz4, bloom_bits_per_key)| TableOptions {
            block_size_bytes,
            compression: if lz4 {
                Compression::Lz4
            } else {
                Compression::None
            },
            bloom_bits_per_key,
        })
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        3 => key().prop_map(Bound::Included),
        3 => key().prop_map(Bound::Excluded),
    ]
}

fn ranges() -> impl Strategy<Value = Vec<KeyRange>> {
    prop::collection::vec(
        (bound(), bound()).prop_map(|(s, e)| KeyRange::new(s, e)),
        1..8,
    )
}

/// Write, open, compare every get (present and absent keys) and every scan with the model.
fn check_round_trip(
    vfs: &dyn Vfs,
    path: &Path,
    options: TableOptions,
    entries: &[Entry],
    probes: &[Vec<u8>],
    ranges: &[KeyRange],
    cache_bytes: u64,
) -> Result<(), TestCaseError> {
    let summary = write_table(vfs, path, options, entries);
    prop_assert_eq!(&summary.min_key, &entries[0].key);
    let table = open(vfs, path, cache_bytes).unwrap();
    prop_assert_eq!(table.size_bytes(), summary.file_size);
    let model: BTreeMap<&[u8], &Entry> = entries.iter().map(|e| (e.key.as_slice(), e)).collect();
    for e in entries {
        let found = table.get(&e.key, u64::MAX).unwrap();
        prop_assert_eq!(found.as_ref(), Some(e));
    }
    for k in probes {
        let found = table.get(k, u64::MAX).unwrap();
        prop_assert_eq!(found.as_ref(), model.get(k.as_slice()).copied());
    }
    for r in ranges.iter().cloned().chain([KeyRange::all()]) {
        for d in [Direction::Forward, Direction::Reverse] {
            prop_assert_eq!(scan(&table, r.clone(), d), model_scan(entries, &r, d));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_on_sim_vfs(
        entries in entries(200),
        options in table_options(),
        probes in prop::collection::vec(key(), 0..40),
        ranges in ranges(),
        cache_bytes in prop_oneof![Just(0u64), Just(4096u64), Just(1u64 << 20)],
    ) {
        let vfs = sim();
        check_round_trip(&vfs, &sst_path(1), options, &entries, &probes, &ranges, cache_bytes)?;
    }

    #[test]
    fn round_trip_on_os_vfs(
        entries in entries(200),
        options in table_options(),
        probes in prop::collection::vec(key(), 0..40),
        ranges in ranges(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.sst");
        check_round_trip(&OsVfs, &path, options, &entries, &probes, &ranges, 1 << 20)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Corruption

/// The regions of a well-formed table: header, each data block, bloom, index, footer.
fn regions(bytes: &[u8]) -> Vec<Range<u64>> {
    let len = bytes.len() as u64;
    let footer_start = len - FOOTER_LEN as u64;
    let footer = Footer::decode(&bytes[footer_start as usize..]).unwrap();
    let r = footer.regions(len).unwrap();
    let index = Index::decode(&bytes[r.index.start as usize..r.index.end as usize]).unwrap();
    let mut out = Vec::new();
    out.push(0..SST_HEADER_LEN as u64);
    for b in &index.blocks {
        out.push(b.handle.offset..b.handle.offset + u64::from(b.handle.stored_len));
    }
    out.extend(r.bloom.clone());
    out.push(r.index.clone());
    out.push(footer_start..len);
    out
}

fn region_of(regions: &[Range<u64>], pos: u64) -> Range<u64> {
    regions.iter().find(|r| r.contains(&pos)).unwrap().clone()
}

/// Asserts `e` is a corruption of `path` inside `region`.
fn assert_in_region(e: &Error, path: &Path, region: &Range<u64>) -> Result<(), TestCaseError> {
    match e {
        Error::Corruption { file, offset, .. } => {
            prop_assert_eq!(file.as_path(), path);
            prop_assert!(region.contains(offset), "{e} not in {region:?}");
        }
        other => prop_assert!(false, "expected corruption in {region:?}, got {other}"),
    }
    Ok(())
}

/// With the file at `path` corrupted inside `region`: open fails, or gets and scans give the
/// model's answers until an error; every error is a corruption inside `region`; at least one
/// error shows up (open or the full scans).
fn check_corrupted(
    vfs: &dyn Vfs,
    path: &Path,
    entries: &[Entry],
    region: &Range<u64>,
) -> Result<(), TestCaseError> {
    let table = match open(vfs, path, 1 << 20) {
        Err(e) => return assert_in_region(&e, path, region),
        Ok(t) => t,
    };
    let mut errors = 0;
    for d in [Direction::Forward, Direction::Reverse] {
        let expected = model_scan(entries, &KeyRange::all(), d);
        let mut got = 0;
        for item in table.iter(KeyRange::all(), d) {
            match item {
                Ok(e) => {
                    prop_assert_eq!(Some(&e), expected.get(got));
                    got += 1;
                }
                Err(e) => {
                    assert_in_region(&e, path, region)?;
                    errors += 1;
                }
            }
        }
    }
    prop_assert!(errors > 0, "corruption in {region:?} went unnoticed");
    for e in entries {
        match table.get(&e.key, u64::MAX) {
            Ok(found) => prop_assert_eq!(found.as_ref(), Some(e)),
            Err(err) => assert_in_region(&err, path, region)?,
        }
    }
    Ok(())
}

fn small_table() -> (TableOptions, Vec<Entry>) {
    let options = TableOptions {
        block_size_bytes: 100,
        compression: Compression::Lz4,
        bloom_bits_per_key: 10,
    };
    let entries = (0..40u32)
        .map(|i| Entry {
            key: format!("k{i:03}").into_bytes(),
            value: (!i.is_multiple_of(5))
                .then(|| format!("value-{i}-{}", "x".repeat(i as usize)).into_bytes()),
            revision: u64::from(i) + 100,
            meta: VersionMeta::first(!i.is_multiple_of(5), u64::from(i) + 100),
            wal_offset: u64::from(i),
            created_at_ms: 1_700_000_000_000,
        })
        .collect();
    (options, entries)
}

#[test]
fn every_single_byte_flip_is_detected_in_its_region() {
    let (lz4, entries) = small_table();
    let plain = TableOptions {
        compression: Compression::None,
        bloom_bits_per_key: 0,
        ..lz4
    };
    for options in [lz4, plain] {
        let vfs = sim();
        let path = sst_path(1);
        write_table(&vfs, &path, options, &entries);
        let good = read_file(&vfs, &path);
        let regions = regions(&good);
        assert!(regions.len() > 5, "{regions:?}");
        for pos in 0..good.len() {
            for xor in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[pos] ^= xor;
                put_file(&vfs, &path, &bad);
                let region = region_of(&regions, pos as u64);
                check_corrupted(&vfs, &path, &entries, &region)
                    .unwrap_or_else(|e| panic!("flip {xor:#x} at {pos}: {e}"));
            }
        }
    }
}

#[test]
fn bloom_index_footer_and_header_flips_fail_open() {
    let (options, entries) = small_table();
    let vfs = sim();
    let path = sst_path(1);
    write_table(&vfs, &path, options, &entries);
    let good = read_file(&vfs, &path);
    let regions = regions(&good);
    let n = regions.len();
    // header, bloom, index, footer: everything but the data blocks.
    for region in [
        &regions[0],
        &regions[n - 3],
        &regions[n - 2],
        &regions[n - 1],
    ] {
        for pos in region.clone() {
            let mut bad = good.clone();
            bad[pos as usize] ^= 0x10;
            put_file(&vfs, &path, &bad);
            let err = open(&vfs, &path, 0).unwrap_err();
            assert_in_region(&err, &path, region).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_random_flip_never_yields_wrong_data(
        entries in entries(120),
        options in table_options(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let vfs = sim();
        let path = sst_path(1);
        write_table(&vfs, &path, options, &entries);
        let mut bytes = read_file(&vfs, &path);
        let regions = regions(&bytes);
        let pos = at.index(bytes.len());
        bytes[pos] ^= xor;
        put_file(&vfs, &path, &bytes);
        check_corrupted(&vfs, &path, &entries, &region_of(&regions, pos as u64))?;
    }
}

#[test]
fn every_truncation_fails_open_with_corruption() {
    let (lz4, entries) = small_table();
    let no_bloom = TableOptions {
        bloom_bits_per_key: 0,
        ..lz4
    };
    for options in [lz4, no_bloom] {
        let vfs = sim();
        let path = sst_path(1);
        write_table(&vfs, &path, options, &entries);
        let good = read_file(&vfs, &path);
        for len in 0..good.len() {
            put_file(&vfs, &path, &good[..len]);
            match open(&vfs, &path, 1 << 20) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
                other => panic!("truncated to {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn truncation_on_os_vfs_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000001.sst");
    let (options, entries) = small_table();
    write_table(&OsVfs, &path, options, &entries);
    let good = std::fs::read(&path).unwrap();
    for len in [0, 1, 5, 32, 33, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        assert!(
            matches!(open(&OsVfs, &path, 0), Err(Error::Corruption { .. })),
            "{len}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Faults, crashes

#[test]
fn read_faults_give_errors_never_wrong_data_and_never_poison_the_cache() {
    let (options, entries) = small_table();
    for seed in 0..20 {
        let vfs = SimVfs::new(seed);
        vfs.create_dir_all(Path::new(DIR)).unwrap();
        let path = sst_path(1);
        write_table(&vfs, &path, options, &entries);
        let cache = Arc::new(BlockCache::new(1 << 20));
        vfs.set_faults(FaultConfig::default().read_faults_randomly(0.3));
        let mut errors = 0;
        for _ in 0..10 {
            let table = match Table::open(&vfs, &path, 1, Arc::clone(&cache)) {
                Ok(t) => t,
                Err(Error::Corruption { .. } | Error::Io { .. }) => {
                    errors += 1;
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            for e in &entries {
                match table.get(&e.key, u64::MAX) {
                    Ok(found) => assert_eq!(found.as_ref(), Some(e)),
                    Err(Error::Corruption { .. } | Error::Io { .. }) => errors += 1,
                    Err(other) => panic!("{other}"),
                }
            }
        }
        assert!(errors > 0, "seed {seed}: no fault hit");
        // Faults off: the cache holds only verified blocks, so nothing is corrupt any more (a
        // latent sector error may still fail a read with EIO).
        vfs.set_faults(FaultConfig::default());
        let Ok(table) = Table::open(&vfs, &path, 1, Arc::clone(&cache)) else {
            continue;
        };
        for e in &entries {
            match table.get(&e.key, u64::MAX) {
                Ok(found) => assert_eq!(found.as_ref(), Some(e)),
                Err(Error::Io { .. }) => {}
                Err(other) => panic!("seed {seed}: {other}"),
            }
        }
    }
}

#[test]
fn write_and_sync_failures_are_io_errors_and_poison_the_writer() {
    let (options, entries) = small_table();
    let vfs = sim();
    vfs.set_faults(FaultConfig::default().fail_path(".sst", Some(OpKind::Append), Failure::Enospc));
    // A small table is appended at `finish`: the failure surfaces there.
    let mut w = TableWriter::create(&vfs, &sst_path(1), options).unwrap();
    for e in &entries {
        w.add(e).unwrap();
    }
    assert!(matches!(w.finish(), Err(Error::Io { op: "append", .. })));
    // A large one is appended in chunks while it is written: the add that fills a chunk fails,
    // and the writer refuses everything after it.
    let raw = TableOptions {
        compression: Compression::None,
        ..options
    };
    let mut w = TableWriter::create(&vfs, &sst_path(3), raw).unwrap();
    let big = |i: u32| Entry {
        key: format!("big{i:05}").into_bytes(),
        value: Some(vec![7; 4096]),
        revision: 1,
        meta: VersionMeta::first(true, 1),
        wal_offset: 0,
        created_at_ms: 0,
    };
    let failed_at = (0..1000)
        .find(|&i| w.add(&big(i)).is_err())
        .expect("an append chunk fills within 4 MB");
    assert!(
        w.add(&big(failed_at + 1)).is_err(),
        "poisoned after the failure"
    );
    assert!(w.finish().is_err());

    vfs.set_faults(FaultConfig::default().fail_path(".sst", Some(OpKind::SyncData), Failure::Eio));
    let mut w = TableWriter::create(&vfs, &sst_path(2), options).unwrap();
    for e in &entries {
        w.add(e).unwrap();
    }
    assert!(matches!(
        w.finish(),
        Err(Error::Io {
            op: "sync_data",
            ..
        })
    ));
}

#[test]
fn a_finished_table_survives_any_crash_and_an_unfinished_one_never_lies() {
    let (options, entries) = small_table();
    let entries = &entries[..12];
    let path = sst_path(1);
    let workload = |vfs: &SimVfs| -> bool {
        let run = || -> kvstore::error::Result<()> {
            vfs.create_dir_all(Path::new(DIR))
                .map_err(|e| Error::io("mkdir", Path::new(DIR), e))?;
            let mut w = TableWriter::create(vfs, &path, options)?;
            vfs.sync_dir(Path::new(DIR))
                .map_err(|e| Error::io("sync_dir", Path::new(DIR), e))?;
            for e in entries {
                w.add(e)?;
            }
            w.finish()?;
            Ok(())
        };
        run().is_ok()
    };
    let report = kvstore_faults::Campaign::new(11)
        .models(&PersistenceModel::ALL)
        .run(workload, |_point, finished, rebooted| {
            let table = match open(&rebooted, &path, 1 << 20) {
                Ok(t) => t,
                Err(Error::Corruption { .. } | Error::Io { .. }) if !finished => return Ok(()),
                Err(e) => return Err(format!("finished table fails to open: {e}")),
            };
            for e in entries {
                match table.get(&e.key, u64::MAX) {
                    Ok(found) if found.as_ref() == Some(e) => {}
                    Err(Error::Corruption { .. }) if !finished => {}
                    other => return Err(format!("finished={finished}: {other:?}")),
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.crash_points > 10);
}

// ---------------------------------------------------------------------------------------------
// Cache and concurrency

#[test]
fn cache_hits_on_reread_and_stays_within_capacity() {
    let vfs = sim();
    let path = sst_path(1);
    let options = TableOptions {
        block_size_bytes: 512,
        compression: Compression::Lz4,
        bloom_bits_per_key: 10,
    };
    let entries: Vec<Entry> = (0..2000u32)
        .map(|i| Entry {
            key: format!("key{i:06}").into_bytes(),
            value: Some(vec![(i % 251) as u8; 40]),
            revision: u64::from(i) + 1,
            meta: VersionMeta::first(true, u64::from(i) + 1),
            wal_offset: 0,
            created_at_ms: 0,
        })
        .collect();
    let summary = write_table(&vfs, &path, options, &entries);
    assert!(summary.block_count > 50);
    let capacity = 16 * 1024;
    let cache = Arc::new(BlockCache::new(capacity));
    let table = Table::open(&vfs, &path, 9, Arc::clone(&cache)).unwrap();
    table.get(&entries[100].key, u64::MAX).unwrap();
    let misses = cache.misses();
    table.get(&entries[101].key, u64::MAX).unwrap();
    assert_eq!(cache.misses(), misses, "same block: no new miss");
    assert!(cache.hits() >= 1);
    for d in [Direction::Forward, Direction::Reverse] {
        assert_eq!(scan(&table, KeyRange::all(), d).len(), entries.len());
        assert!(cache.weight_bytes() <= capacity, "{}", cache.weight_bytes());
    }
    assert!(!cache.is_empty());
    cache.forget_file(9);
    assert!(cache.is_empty());
}

#[test]
fn concurrent_readers_share_one_table() {
    let vfs = sim();
    let path = sst_path(1);
    let (options, entries) = small_table();
    write_table(&vfs, &path, options, &entries);
    let table = open(&vfs, &path, 4096).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let table = Arc::clone(&table);
            let entries = &entries;
            s.spawn(move || {
                for round in 0..50 {
                    let e = &entries[(t * 7 + round * 3) % entries.len()];
                    assert_eq!(table.get(&e.key, u64::MAX).unwrap().as_ref(), Some(e));
                }
                assert_eq!(
                    scan(&table, KeyRange::all(), Direction::Reverse).len(),
                    entries.len()
                );
            });
        }
    });
}
