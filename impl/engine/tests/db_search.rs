//! Contains and fuzzy key search (`Db::search_contains`, `Db::search_fuzzy`) against a brute-force
//! scan with the same predicate, on `OsVfs` and `SimVfs`: random keys with puts, deletes and
//! batches (in every durability mode), after flushes and compactions, across reopens, after the
//! index directory is deleted, and when the history the index would catch up from is compacted
//! away. Every random run prints its seed on failure.

mod common;

use std::path::Path;
use std::sync::Arc;

use kvstore::{
    Db, Durability, Error, HistoryRetention, KeyRange, Options, ScanOptions, WriteBatch,
};
use kvstore_faults::{PersistenceModel, SimVfs};
use proptest::prelude::*;

const DIR: &str = "/db";

fn options(durability: Durability) -> Options {
    Options {
        durability,
        history_retention: HistoryRetention::Manual,
        key_index: true,
        ..common::small_options()
    }
}

fn open_sim(vfs: &SimVfs, durability: Durability) -> Db {
    Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options(durability)).unwrap()
}

/// A small deterministic generator (xorshift), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Keys over a small alphabet so substrings and near misses are common: 1 to 9 bytes.
fn random_key(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcab_01";
    let len = 1 + rng.below(9) as usize;
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
        .collect()
}

/// Every live key, by a full scan.
fn all_keys(db: &Db) -> Vec<Vec<u8>> {
    db.scan(KeyRange::all(), ScanOptions::default())
        .unwrap()
        .keys()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            let cell = (previous[j] + usize::from(x != y))
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
            current.push(cell);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Checks both searches against the scan predicate for a few queries; the first disagreement.
fn check_searches(db: &Db, queries: &[&[u8]]) -> Result<(), String> {
    let keys = all_keys(db);
    for &query in queries {
        for limit in [usize::MAX, 3] {
            let expected: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| query.is_empty() || k.windows(query.len()).any(|w| w == query))
                .take(limit)
                .cloned()
                .collect();
            let found = db
                .search_contains(query, limit)
                .map_err(|e| e.to_string())?;
            if found != expected {
                return Err(format!(
                    "contains {:?} limit {limit}: found {found:?}, scan {expected:?}",
                    String::from_utf8_lossy(query)
                ));
            }
            for max in 0..=2 {
                let mut expected: Vec<(Vec<u8>, usize)> = keys
                    .iter()
                    .map(|k| (k.clone(), levenshtein(k, query)))
                    .filter(|(_, d)| *d <= max)
                    .collect();
                expected.sort_by(|(a, da), (b, db)| da.cmp(db).then(a.cmp(b)));
                expected.truncate(limit);
                let found = db
                    .search_fuzzy(query, max, limit)
                    .map_err(|e| e.to_string())?;
                if found != expected {
                    return Err(format!(
                        "fuzzy {:?} max {max} limit {limit}: found {found:?}, scan {expected:?}",
                        String::from_utf8_lossy(query)
                    ));
                }
            }
        }
    }
    Ok(())
}

const QUERIES: &[&[u8]] = &[
    b"",
    b"a",
    b"ab",
    b"abc",
    b"cab",
    b"b_0",
    b"_01a",
    b"aaaa",
    b"abcab_01",
    b"zzz",
];

/// Random puts, deletes and batches, with flushes and compactions; checks the searches every 50
/// steps.
fn random_workload(db: &Db, seed: u64, steps: usize) {
    random_writes(db, seed, steps, true);
}

/// [`random_workload`], checking the searches if `checked`.
fn random_writes(db: &Db, seed: u64, steps: usize, checked: bool) {
    let mut rng = Rng(seed | 1);
    for step in 0..steps {
        match rng.below(10) {
            0..=4 => {
                db.put(&random_key(&mut rng), b"v").unwrap();
            }
            5..=6 => {
                db.delete(&random_key(&mut rng)).unwrap();
            }
            7 => {
                let mut batch = WriteBatch::new();
                batch.put(&random_key(&mut rng), b"b");
                let other = random_key(&mut rng);
                batch.delete(&other);
                batch.put(&[other.as_slice(), b"x"].concat(), b"b");
                db.write(batch).unwrap();
            }
            8 if step % 40 == 8 => db.flush().unwrap(),
            9 if step % 100 == 9 => db.compact_range(KeyRange::all()).unwrap(),
            _ => {
                db.delete_range(KeyRange::prefix(&random_key(&mut rng)[..1]))
                    .unwrap();
            }
        }
        if checked && step % 50 == 49 {
            check_searches(db, QUERIES)
                .unwrap_or_else(|e| panic!("seed {seed:#x}, step {step}: {e}"));
        }
    }
}

#[test]
fn search_equals_the_scan_predicate_on_the_real_filesystem_and_across_reopens() {
    let seed = 0x5ea7_c401;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Buffered)).unwrap();
    random_workload(&db, seed, 300);
    db.close().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    check_searches(&db, QUERIES).unwrap_or_else(|e| panic!("seed {seed:#x}, reopened: {e}"));
    random_workload(&db, seed ^ 0xff, 200);
    db.close().unwrap();

    // The index directory deleted: the next open rebuilds it.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    check_searches(&db, QUERIES).unwrap_or_else(|e| panic!("seed {seed:#x}, rebuilt: {e}"));
    random_workload(&db, seed ^ 0xf0, 100);
    db.close().unwrap();

    // The index database corrupt (its manifest garbage): its files are removed and it is rebuilt.
    std::fs::write(dir.path().join("index/manifest.json"), b"not a manifest").unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    check_searches(&db, QUERIES).unwrap_or_else(|e| panic!("seed {seed:#x}, corrupt: {e}"));
}

#[test]
fn search_equals_the_scan_predicate_on_simvfs_after_power_cuts() {
    for (seed, durability) in [
        (0x51_u64, Durability::Sync),
        (0x52, Durability::GroupCommit),
        (0x53, Durability::Buffered),
    ] {
        let vfs = SimVfs::new(seed);
        let db = open_sim(&vfs, durability);
        random_workload(&db, seed, 200);
        vfs.crash();
        drop(db);
        for model in [
            PersistenceModel::UnsyncedLost,
            PersistenceModel::RandomPrefix,
        ] {
            let rebooted = vfs.reboot(model);
            let db = open_sim(&rebooted, durability);
            check_searches(&db, QUERIES)
                .unwrap_or_else(|e| panic!("seed {seed:#x} {durability:?} {model:?}: {e}"));
            random_workload(&db, seed ^ 0x77, 100);
        }
    }
}

#[test]
fn an_index_behind_compacted_history_is_rebuilt() {
    let vfs = SimVfs::new(0xc0);
    let db = open_sim(&vfs, Durability::Sync);
    random_workload(&db, 0xc0, 100);
    db.close().unwrap();
    // Opened without the index: commits the index never sees, then their history compacted.
    let plain = Options {
        key_index: false,
        ..options(Durability::Sync)
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), plain.clone()).unwrap();
    assert!(matches!(
        db.search_contains(b"abc", 10),
        Err(Error::InvalidArgument(_))
    ));
    random_writes(&db, 0xc1, 100, false);
    let last = db.stats().last_revision;
    db.compact_history(last).unwrap();
    db.close().unwrap();
    let db = open_sim(&vfs, Durability::Sync);
    check_searches(&db, QUERIES).unwrap_or_else(|e| panic!("seed 0xc0, rebuilt: {e}"));
    db.close().unwrap();
    // And without compaction: caught up from the history.
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), plain).unwrap();
    random_writes(&db, 0xc2, 100, false);
    db.close().unwrap();
    let db = open_sim(&vfs, Durability::Sync);
    check_searches(&db, QUERIES).unwrap_or_else(|e| panic!("seed 0xc0, caught up: {e}"));
}

#[test]
fn keys_too_long_to_post_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    let long = |tail: &[u8]| [vec![b'q'; kvstore::limits::KEY_LEN_MAX - 3], tail.to_vec()].concat();
    db.put(&long(b"abc"), b"").unwrap();
    db.put(&long(b"xyz"), b"").unwrap();
    db.put(b"xxabc", b"").unwrap();
    check_searches(&db, &[b"abc", b"qab", b"xyz"]).unwrap();
    db.delete(&long(b"abc")).unwrap();
    check_searches(&db, &[b"abc", b"xyz"]).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options(Durability::Sync)).unwrap();
    check_searches(&db, &[b"abc", b"xyz"]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After any sequence of puts and deletes (and a reopen), search equals the scan predicate.
    #[test]
    fn search_is_the_scan_predicate(
        ops in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 1..7)),
            1..60,
        ),
        query in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..6),
        reopen_at in 0usize..60,
    ) {
        let vfs = SimVfs::new(7);
        let mut db = open_sim(&vfs, Durability::Buffered);
        for (i, (put, key)) in ops.iter().enumerate() {
            if i == reopen_at {
                db.close().unwrap();
                db = open_sim(&vfs, Durability::Buffered);
            }
            if *put {
                db.put(key, b"v").unwrap();
            } else {
                db.delete(key).unwrap();
            }
        }
        if let Err(e) = check_searches(&db, &[query.as_slice()]) {
            return Err(TestCaseError::fail(e));
        }
    }
}
