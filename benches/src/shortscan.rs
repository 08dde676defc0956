//! The short-scan workload callgrind profiles (`shortscan` binary, issue 16's YCSB E): `records`
//! YCSB records loaded one put each (keys `user<hash>` in random key order, 1000-byte values,
//! [`crate::ycsb::mix`]) on `SimVfs` with inline flushes and compactions (so the tree has the same
//! shape on every run: a part-full memtable, L0 tables and deeper levels), then `scans` scans
//! in `scan_phase`, each from a scrambled-zipfian record for a length uniform in
//! 1..=[`SCAN_LEN_MAX`], taking lent rows through `Scan::visit` as seedbench's kvstore adapter
//! does; `scan_phase` is a function of its own so that callgrind can count it alone:
//!
//! ```sh
//! cargo build --release -p kvstore-benches --bin shortscan
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*scan_phase*' \
//!     target/release/shortscan --records 50000 --scans 2000
//! ```
//!
//! Invariants: every scan is checked after the measured phase against the sorted set of loaded
//! keys (its row count and a hash of its keys and value lengths), so a scan that is cheaper
//! because it is wrong fails instead of counting.

use std::collections::BTreeSet;
use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::sync::Arc;

use kvstore::{Db, KeyRange, ScanOptions};
use kvstore_faults::SimVfs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::BenchResult;
use crate::scancount;
use crate::ycsb::mix::{self, RECORD_LEN_BYTES, Records, SCAN_LEN_MAX};
use crate::ycsb::zipf::ScrambledZipfian;

/// Seed of the records, the start keys and the scan lengths.
pub const SEED: u64 = 0x5507_5CA7;

/// One scan to run: its start key and its length.
struct Request {
    start: Vec<u8>,
    len: usize,
}

/// What one scan returned: its row count and a hash of its keys and value lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answer {
    rows: usize,
    hash: u64,
}

/// FNV-1a step over `bytes`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The answer a correct scan of `len` rows from `start` gives over `keys`.
fn expected(keys: &BTreeSet<Vec<u8>>, start: &[u8], len: usize) -> Answer {
    let mut answer = Answer { rows: 0, hash: 0 };
    for key in keys
        .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
        .take(len)
    {
        answer.rows += 1;
        answer.hash = fnv(fnv(answer.hash, key), &RECORD_LEN_BYTES.to_le_bytes());
    }
    answer
}

/// Loads `records` records, then runs `scan_phase` over `scans` scans and checks each; returns
/// the rows they streamed. REQUIRES: `records >= 2`.
pub fn run(records: u64, scans: u64) -> BenchResult<u64> {
    if records < 2 {
        return Err("shortscan: --records must be at least 2".into());
    }
    let db = Db::open_with_vfs(
        Arc::new(SimVfs::new(SEED)),
        Path::new("/db"),
        scancount::options(),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let pool = Records::new(&mut rng);
    let mut key = String::new();
    let mut keys = BTreeSet::new();
    for keynum in 0..records {
        mix::key(keynum, &mut key);
        db.put(key.as_bytes(), pool.pick(&mut rng))?;
        keys.insert(key.as_bytes().to_vec());
    }
    let chooser = ScrambledZipfian::new(records);
    let requests: Vec<Request> = (0..scans)
        .map(|_| {
            mix::key(chooser.next(&mut rng), &mut key);
            Request {
                start: key.as_bytes().to_vec(),
                len: rng.random_range(1..=SCAN_LEN_MAX),
            }
        })
        .collect();
    let answers = scan_phase(&db, &requests)?;
    let mut rows = 0;
    for (request, answer) in requests.iter().zip(&answers) {
        let want = expected(&keys, &request.start, request.len);
        if *answer != want {
            return Err(format!(
                "shortscan: scan of {} from {}: {answer:?}, expected {want:?}",
                request.len,
                String::from_utf8_lossy(&request.start)
            )
            .into());
        }
        rows += answer.rows as u64;
    }
    db.close()?;
    Ok(rows)
}

/// The measured part: every scan of `requests`, lent rows, each answer summarised.
#[inline(never)]
fn scan_phase(db: &Db, requests: &[Request]) -> BenchResult<Vec<Answer>> {
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let range = KeyRange::new(Bound::Included(request.start.clone()), Bound::Unbounded);
        let options = ScanOptions {
            limit: Some(request.len),
            ..ScanOptions::default()
        };
        let mut answer = Answer { rows: 0, hash: 0 };
        let flow = db.scan(range, options)?.visit(|k, v| {
            answer.rows += 1;
            answer.hash = fnv(fnv(answer.hash, k), &v.len().to_le_bytes());
            ControlFlow::<()>::Continue(())
        })?;
        debug_assert!(flow.is_continue(), "the visitor never breaks");
        answers.push(answer);
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scan_matches_the_loaded_keys() {
        assert!(run(3000, 200).unwrap() > 200);
    }
}
