//! Corruption campaign: bit rot at rest in every file of a small database, one flipped bit at a
//! time, each followed by a reopen and a full read.
//!
//! The database (built on `SimVfs` by the harness, `Durability::Sync`, campaign options): two
//! flushed L0 tables compacted into L1, one more L0 table, the manifest listing them, and a WAL
//! segment holding the unflushed commits (puts, a delete, a batch), the last one a put. Two
//! images of it: at rest (taken while it is open, so nothing is flushed by a close), and after a
//! power cut in one more flush just before its manifest write (a durable orphan table that open
//! deletes, two WAL segments, the old manifest), each checked by its own test.
//!
//! For each flip, the file is rewritten with one bit changed on a fresh copy of the disk, and the
//! database is opened and read whole: a full scan, a point read of every scanned key (the two
//! must agree), and a point read of every key the workload ever touched. The rule
//! (`spec/SEMANTICS.md` "Errors are never data", "What recovery does with a torn tail and with
//! corruption"): each flip must end as one of
//! - `open: corruption`: `Db::open` fails with `Error::Corruption`;
//! - `read: corruption`: a read fails with `Error::Corruption`;
//! - `unaffected`: every read returns exactly the expected state (the flipped byte is never
//!   read, e.g. a WAL record below the manifest's `walOffset`, or it is read and rejected in a way
//!   that changes nothing). These are tabulated by file and byte range;
//! - `last record lost`: the flip is in the WAL's last record, which replay cannot tell from a
//!   torn tail and cuts (FORMAT.md § 3.6, limit (a)); the state must then be the oracle's
//!   prefix without that commit (checked by `Oracle::recovered`).
//!
//! Anything else fails the test with the flip's location: a wrong value, a phantom or missing
//! key, a wrong revision, another error kind, or a panic (caught with `catch_unwind`).
//!
//! Budget: CI flips one bit of every byte of every file (bit `(offset + file index) % 8`, so every
//! bit position is exercised across the bytes); `KVSTORE_CAMPAIGN=deep` flips every bit of every
//! byte.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kvstore::vfs::Vfs;
use kvstore::{Db, Durability, Error};
use kvstore_faults::{DiskImage, OpKind, PersistenceModel, SimVfs};
use kvstore_model::harness::DB_DIR;
use kvstore_model::rng::splitmix64;
use kvstore_model::{
    Budget, Engine, Model, Mutation, Oracle, Outcome, ReadError, Setup, Step, read_all,
};

fn key(i: usize) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// A value naming its key and round, padded with bytes that do not compress (so tables span
/// several blocks), 200-400 bytes.
fn value(i: usize, round: usize) -> Vec<u8> {
    let mut v = format!("v{i}.{round}:").into_bytes();
    let mut rng = u64::try_from(i * 1000 + round).unwrap_or(0);
    let len = 200 + (i * 37) % 200;
    while v.len() < len {
        v.extend_from_slice(&splitmix64(&mut rng).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn put(i: usize, round: usize) -> Step {
    Step::Write(Mutation::Put(key(i), value(i, round)), None)
}

/// The workload, phase by phase (see the module doc).
fn steps() -> Vec<Step> {
    let mut steps: Vec<Step> = (0..40).map(|i| put(i, 0)).collect();
    steps.push(Step::Flush);
    steps.extend((20..60).map(|i| put(i, 1)));
    steps.push(Step::Write(Mutation::Delete(key(5)), None));
    steps.push(Step::Write(
        Mutation::Batch(vec![
            (key(7), Some(value(7, 2))),
            (key(8), None),
            (key(61), Some(value(61, 2))),
        ]),
        None,
    ));
    steps.push(Step::Flush);
    steps.extend((60..80).map(|i| put(i, 3)));
    steps.push(Step::Flush);
    steps.extend((80..90).map(|i| put(i, 4)));
    steps.push(Step::Write(Mutation::Delete(key(21)), None));
    steps.push(Step::Write(
        Mutation::Batch(vec![(key(30), None), (key(82), Some(value(82, 5)))]),
        None,
    ));
    steps.push(put(90, 6));
    steps
}

/// The database under test, and what reads of it must return.
struct Fixture {
    image: DiskImage,
    setup: Setup,
    expected: Model,
    /// The oracle that accepts the state with or without the last commit.
    last_in_doubt: Oracle,
    /// The WAL segment holding the last record, and the record's byte range in it.
    last_record: (PathBuf, u64, u64),
    /// Every key the workload touched.
    keys: BTreeSet<Vec<u8>>,
}

fn wal_sizes(sim: &SimVfs) -> BTreeMap<PathBuf, u64> {
    sim.image()
        .live_paths()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wal-"))
        })
        .filter_map(|p| {
            let len = sim.peek(&p)?.len();
            Some((p, u64::try_from(len).ok()?))
        })
        .collect()
}

/// Where the image of the database is taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum At {
    /// While it is open after the workload (see the module doc).
    Rest,
    /// After a power cut during one more flush, just before its manifest is written: the flushed
    /// table is a durable orphan, the WAL has the rotated-from segment (holding every unflushed
    /// record) and a new empty one, and the old manifest is current.
    MidFlush,
}

const SEED: u64 = 0xc022_0001;

/// The op index at which the flush run from `engine`'s current state creates the manifest's
/// temporary file.
fn manifest_write_op(engine: &mut Engine) -> u64 {
    let from = engine.sim().op_count();
    engine
        .step(&Step::Flush)
        .unwrap_or_else(|e| panic!("probe flush: {e}"));
    let op = engine.sim().trace().into_iter().find(|t| {
        t.index >= from
            && t.op == OpKind::Create
            && t.path.file_name().is_some_and(|n| n == "manifest.json.tmp")
    });
    match op {
        Some(t) => t.index,
        None => panic!("the flush wrote no manifest.json.tmp"),
    }
}

fn build(at: At) -> Fixture {
    let setup = Setup::new(Durability::Sync);
    let steps = steps();
    let Some((last, init)) = steps.split_last() else {
        panic!("empty workload");
    };
    let mut engine = Engine::open(SimVfs::new(SEED), setup.clone(), Oracle::new())
        .unwrap_or_else(|e| panic!("open: {e}"));
    for step in init {
        engine
            .step(step)
            .unwrap_or_else(|e| panic!("{step:?}: {e}"));
    }
    let before = wal_sizes(engine.sim());
    engine
        .step(last)
        .unwrap_or_else(|e| panic!("{last:?}: {e}"));
    let after = wal_sizes(engine.sim());
    let grown: Vec<(PathBuf, u64, u64)> = after
        .iter()
        .filter_map(|(p, &len)| {
            let old = before.get(p).copied().unwrap_or(0);
            (len > old).then(|| (p.clone(), old, len))
        })
        .collect();
    let [last_record] = grown.as_slice() else {
        panic!("the last commit should have grown exactly one WAL segment: {grown:?}");
    };
    let expected = engine.oracle().current().clone();
    let image = match at {
        At::Rest => engine.sim().image(),
        At::MidFlush => {
            let crash_op = manifest_write_op(&mut engine);
            // The same workload on a fresh disk (deterministic: inline background work, fixed
            // clock, same seed), crashed at that op.
            let sim = SimVfs::new(SEED);
            let mut again = Engine::open(sim.clone(), setup.clone(), Oracle::new())
                .unwrap_or_else(|e| panic!("open: {e}"));
            for step in &steps {
                again.step(step).unwrap_or_else(|e| panic!("{step:?}: {e}"));
            }
            sim.crash_at(crash_op);
            let outcome = again
                .step(&Step::Flush)
                .unwrap_or_else(|e| panic!("crashed flush: {e}"));
            assert_eq!(
                outcome,
                Outcome::Failed,
                "the flush did not reach op {crash_op}"
            );
            drop(again);
            sim.reboot(PersistenceModel::UnsyncedLost).image()
        }
    };
    let (_, _) = engine.crash();
    let mutations: Vec<Mutation> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Write(m, _) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let mut last_in_doubt = Oracle::new();
    let count = mutations.len();
    let mut keys = BTreeSet::new();
    for (i, m) in mutations.into_iter().enumerate() {
        match &m {
            Mutation::Put(k, _) | Mutation::Delete(k) => {
                keys.insert(k.clone());
            }
            Mutation::Batch(ops) => keys.extend(ops.iter().map(|(k, _)| k.clone())),
        }
        last_in_doubt.issue(m);
        let revision = u64::try_from(i + 1).unwrap_or(u64::MAX);
        last_in_doubt
            .acknowledge(revision, i + 1 < count)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    Fixture {
        image,
        setup,
        expected,
        last_in_doubt,
        last_record: last_record.clone(),
        keys,
    }
}

/// How one flip ended.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Caught {
    OpenCorruption,
    ReadCorruption,
    Unaffected,
    LastRecordLost,
    /// A violation: the message says what.
    Violation(String),
}

impl Caught {
    fn column(&self) -> &'static str {
        match self {
            Caught::OpenCorruption => "open: corruption",
            Caught::ReadCorruption => "read: corruption",
            Caught::Unaffected => "unaffected",
            Caught::LastRecordLost => "last record lost",
            Caught::Violation(_) => "VIOLATION",
        }
    }
}

const COLUMNS: [&str; 5] = [
    "open: corruption",
    "read: corruption",
    "unaffected",
    "last record lost",
    "VIOLATION",
];

/// A fresh copy of the disk with `path`'s byte `offset` xored with `mask`.
fn corrupted(image: &DiskImage, path: &Path, offset: usize, mask: u8) -> SimVfs {
    let sim = SimVfs::from_image(image, 0);
    let mut bytes = image
        .live_bytes(path)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    if let Some(b) = bytes.get_mut(offset) {
        *b ^= mask;
    }
    let rewritten = sim.create(path).and_then(|mut f| {
        f.append(&bytes)?;
        f.sync_data()
    });
    rewritten.unwrap_or_else(|e| panic!("rewriting {}: {e}", path.display()));
    sim
}

/// Opens and reads the corrupted disk; classifies the result.
fn trial(fixture: &Fixture, sim: SimVfs, in_last_record: bool) -> Caught {
    let db = match Db::open_with_vfs(Arc::new(sim), DB_DIR, fixture.setup.options.clone()) {
        Ok(db) => db,
        Err(Error::Corruption { .. }) => return Caught::OpenCorruption,
        Err(e) => {
            return Caught::Violation(format!("open failed with a non-corruption error: {e}"));
        }
    };
    let found = match read_all(&db) {
        Ok(found) => found,
        Err(ReadError::Engine(Error::Corruption { .. })) => return Caught::ReadCorruption,
        Err(e) => return Caught::Violation(format!("read: {e}")),
    };
    for key in &fixture.keys {
        match db.get_versioned(key) {
            Ok(got) => {
                let got = got.map(|v| (v.value, v.revision));
                let scanned = found.get(key).map(|c| (c.value.clone(), c.revision));
                if got != scanned {
                    return Caught::Violation(format!(
                        "get({}) = {got:?} but the scan says {scanned:?}",
                        String::from_utf8_lossy(key)
                    ));
                }
            }
            Err(Error::Corruption { .. }) => return Caught::ReadCorruption,
            Err(e) => return Caught::Violation(format!("get: {e}")),
        }
    }
    if found == fixture.expected {
        return Caught::Unaffected;
    }
    if in_last_record && fixture.last_in_doubt.clone().recovered(&found) == Ok(0) {
        return Caught::LastRecordLost;
    }
    Caught::Violation(format!(
        "wrong state, no error: {}",
        fixture.expected.diff(&found)
    ))
}

fn kind(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".sst") {
        "sst".to_owned()
    } else if name.starts_with("wal-") {
        "wal".to_owned()
    } else {
        name
    }
}

/// Byte offsets as ranges, for the report of unaffected flips.
fn ranges(offsets: &BTreeSet<usize>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for &o in offsets {
        run = match run {
            Some((a, b)) if o == b + 1 => Some((a, o)),
            Some((a, b)) => {
                out.push(if a == b {
                    format!("{a}")
                } else {
                    format!("{a}-{b}")
                });
                Some((o, o))
            }
            None => Some((o, o)),
        };
    }
    if let Some((a, b)) = run {
        out.push(if a == b {
            format!("{a}")
        } else {
            format!("{a}-{b}")
        });
    }
    out.join(",")
}

#[test]
fn every_flipped_bit_is_reported_or_harmless() {
    flip_every_byte("at rest", &build(At::Rest));
}

#[test]
fn every_flipped_bit_of_a_crash_image_mid_flush_is_reported_or_harmless() {
    flip_every_byte("mid-flush crash image", &build(At::MidFlush));
}

/// Flips bits of every byte of every file of `fixture` (see the module doc for which), prints the
/// table, and fails on any violation.
fn flip_every_byte(name: &str, fixture: &Fixture) {
    let started = Instant::now();
    let budget = Budget::from_env();
    let files: Vec<PathBuf> = fixture.image.live_paths();
    let mut table: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut unaffected: BTreeMap<PathBuf, BTreeSet<usize>> = BTreeMap::new();
    let mut violations: Vec<String> = Vec::new();
    let mut flips = 0u64;
    let (wal_path, last_start, last_end) = fixture.last_record.clone();
    eprintln!(
        "[corruption, {name}] database: {}; last WAL record {}..{} of {}",
        files
            .iter()
            .map(|p| format!(
                "{} ({} B)",
                p.display(),
                fixture.image.live_bytes(p).map_or(0, <[u8]>::len)
            ))
            .collect::<Vec<_>>()
            .join(", "),
        last_start,
        last_end,
        wal_path.display()
    );
    for (file_index, path) in files.iter().enumerate() {
        let len = fixture.image.live_bytes(path).map_or(0, <[u8]>::len);
        for offset in 0..len {
            let masks: Vec<u8> = match budget {
                Budget::Ci => vec![1u8 << ((offset + file_index) % 8)],
                Budget::Deep => (0..8).map(|bit| 1u8 << bit).collect(),
            };
            for mask in masks {
                flips += 1;
                let in_last = *path == wal_path
                    && (last_start..last_end).contains(&u64::try_from(offset).unwrap_or(0));
                let sim = corrupted(&fixture.image, path, offset, mask);
                let caught = catch_unwind(AssertUnwindSafe(|| trial(fixture, sim, in_last)))
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        Caught::Violation(format!("panic: {what}"))
                    });
                *table
                    .entry(kind(path))
                    .or_default()
                    .entry(caught.column())
                    .or_default() += 1;
                match caught {
                    Caught::Unaffected => {
                        unaffected.entry(path.clone()).or_default().insert(offset);
                    }
                    Caught::Violation(what) => violations.push(format!(
                        "{} byte {offset} mask {mask:#04x}: {what}",
                        path.display()
                    )),
                    _ => {}
                }
            }
        }
    }
    eprintln!(
        "[corruption, {name}] {flips} flips in {} files, {:.1}s (budget {budget:?})",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "  {:<14}{}",
        "file",
        COLUMNS.map(|c| format!("{c:>18}")).concat()
    );
    for (kind, row) in &table {
        let cells: String = COLUMNS
            .iter()
            .map(|c| format!("{:>18}", row.get(c).copied().unwrap_or(0)))
            .collect();
        eprintln!("  {kind:<14}{cells}");
    }
    for (path, offsets) in &unaffected {
        eprintln!(
            "  unaffected flips in {}: bytes {}",
            path.display(),
            ranges(offsets)
        );
    }
    assert!(
        violations.is_empty(),
        "{name}: {} flips broke the rule (replay: this test, budget {budget:?}); first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
