//! The key index's crash campaign, shared by `index_crash.rs` (it must pass) and
//! `index_sabotage.rs` (with a bug planted in the index, it must fail): a workload of puts,
//! deletes, batches, a flush and a sync on a database with `Options::key_index`, crashed after
//! every I/O op under every persistence model; each rebooted disk must open and answer every
//! search (contains and fuzzy, several substrings and words, with and without a limit) exactly as
//! a scan with the same predicate, before and after one more write.

use std::path::Path;
use std::sync::Arc;

use kvstore::vfs::Vfs;
use kvstore::{Db, Durability, KeyRange, Options, ScanOptions, WriteBatch};
use kvstore_faults::{Campaign, DiskImage, SimVfs};
use kvstore_model::campaign_options;

pub const DIR: &str = "/db";

/// Substrings searched for (short ones scan; the others read postings).
const SUBSTRINGS: &[&[u8]] = &[b"ab", b"user", b"ser/0", b"m-01", b"/02", b"zzz"];
/// Words searched for within distance 0..=2.
const WORDS: &[&[u8]] = &[b"user/013", b"item-021", b"abc007"];

pub fn options(durability: Durability, key_index: bool) -> Options {
    Options {
        key_index,
        ..campaign_options(durability)
    }
}

fn key(i: u32) -> Vec<u8> {
    let family = ["user/", "item-", "abc"][(i % 3) as usize];
    format!("{family}{:03}", (i * 7) % 40).into_bytes()
}

/// Puts, deletes (so postings must go), a batch, a flush and a sync; errors (a crash) end it.
pub fn workload(sim: &SimVfs, durability: Durability, key_index: bool, rounds: u32) {
    let _ = run(sim, durability, key_index, rounds);
}

fn run(
    sim: &SimVfs,
    durability: Durability,
    key_index: bool,
    rounds: u32,
) -> kvstore::error::Result<()> {
    let db = Db::open_with_vfs(Arc::new(sim.clone()), DIR, options(durability, key_index))?;
    for i in 0..rounds {
        db.put(&key(i), b"v")?;
        if i % 3 == 2 {
            db.delete(&key(i - 1))?;
        }
        if i % 5 == 4 {
            let mut batch = WriteBatch::new();
            batch.put(&key(i + 11), b"b");
            batch.delete(&key(i + 3));
            db.write(batch)?;
        }
        if i == rounds / 2 {
            db.flush()?;
        }
        if i == rounds * 3 / 4 {
            db.sync()?;
        }
    }
    db.close()
}

fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            current.push(
                (previous[j] + usize::from(x != y))
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// Every search against the scan predicate; the first disagreement.
pub fn check_searches(db: &Db) -> Result<(), String> {
    let keys: Vec<Vec<u8>> = db
        .scan(KeyRange::all(), ScanOptions::default())
        .and_then(|scan| scan.keys().collect())
        .map_err(|e| format!("scan: {e}"))?;
    for limit in [usize::MAX, 2] {
        for &sub in SUBSTRINGS {
            let expected: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| k.windows(sub.len()).any(|w| w == sub))
                .take(limit)
                .cloned()
                .collect();
            let found = db.search_contains(sub, limit).map_err(|e| e.to_string())?;
            if found != expected {
                return Err(format!(
                    "contains {:?} (limit {limit}): search {:?}, scan {:?}",
                    String::from_utf8_lossy(sub),
                    lossy(found.iter()),
                    lossy(expected.iter())
                ));
            }
        }
        for &word in WORDS {
            for max in 0..=2 {
                let mut expected: Vec<(Vec<u8>, usize)> = keys
                    .iter()
                    .map(|k| (k.clone(), levenshtein(k, word)))
                    .filter(|(_, d)| *d <= max)
                    .collect();
                expected.sort_by(|(a, da), (b, db)| da.cmp(db).then(a.cmp(b)));
                expected.truncate(limit);
                let found = db
                    .search_fuzzy(word, max, limit)
                    .map_err(|e| e.to_string())?;
                if found != expected {
                    return Err(format!(
                        "fuzzy {:?} within {max} (limit {limit}): search {found:?}, scan {expected:?}",
                        String::from_utf8_lossy(word)
                    ));
                }
            }
        }
    }
    Ok(())
}

fn lossy<'a>(keys: impl Iterator<Item = &'a Vec<u8>>) -> Vec<String> {
    keys.map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// Checks a rebooted disk: it opens with the index, searches equal scans, and still do after a
/// put and a delete.
pub fn check(vfs: Arc<dyn Vfs>, durability: Durability) -> Result<(), String> {
    let db = Db::open_with_vfs(vfs, Path::new(DIR), options(durability, true))
        .map_err(|e| format!("open: {e}"))?;
    check_searches(&db).map_err(|e| format!("after recovery: {e}"))?;
    db.put(b"user/0139", b"after").map_err(|e| e.to_string())?;
    db.delete(&key(0)).map_err(|e| e.to_string())?;
    check_searches(&db).map_err(|e| format!("after a write past recovery: {e}"))
}

/// The campaign over the workload from an empty disk (or from `image`); the crash points
/// checked, or the failure with its replay line.
pub fn campaign(
    seed: u64,
    durability: Durability,
    image: Option<&DiskImage>,
    rounds: u32,
) -> Result<u64, String> {
    let mut campaign = Campaign::new(seed);
    if let Some(image) = image {
        campaign = campaign.starting_from(image.clone());
    }
    campaign
        .run(
            |sim| workload(sim, durability, true, rounds),
            |_point, (), rebooted| check(Arc::new(rebooted), durability),
        )
        .map(|report| report.crash_points)
        .map_err(|failure| format!("seed {seed:#x} {durability:?}: {failure}"))
}

/// A disk whose index is behind: the workload with the index, then more commits without it
/// (and, if `compact`, their history compacted away, so the next open must rebuild).
pub fn behind_image(seed: u64, compact: bool) -> DiskImage {
    let sim = SimVfs::new(seed);
    run(&sim, Durability::Sync, true, 8).expect("the setup runs without a crash");
    let db = Db::open_with_vfs(Arc::new(sim.clone()), DIR, options(Durability::Sync, false))
        .expect("reopen without the index");
    for i in 20..26 {
        db.put(&key(i), b"w").expect("put");
        db.delete(&key(i + 2)).expect("delete");
    }
    if compact {
        db.compact_history(db.stats().last_revision)
            .expect("compact");
    }
    db.close().expect("close");
    sim.image()
}
