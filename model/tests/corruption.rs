//! Corruption campaign: damage at rest in every file of a small database, one damage at a time
//! (a flipped bit in every byte; a zeroed and a garbage-filled 512-byte sector in every sector),
//! each followed by a reopen and a full read.
//!
//! The database (built on `SimVfs` by the harness, `Durability::Sync`, campaign options): two
//! flushed L0 tables compacted into L1, one more L0 table, the manifest listing them, and a WAL
//! segment holding the unflushed commits (puts, a delete, a batch), the last one a put. Two
//! images of it: at rest (taken while it is open, so nothing is flushed by a close), and after a
//! power cut in one more flush just before its manifest write (a durable orphan table that open
//! deletes, two WAL segments, the old manifest).
//!
//! For each damage, the file is rewritten with it on a fresh copy of the disk, and the database
//! is opened and read whole: a full scan, a point read of every scanned key (the two must agree),
//! and a point read of every key the workload ever touched. The rule (`spec/SEMANTICS.md` "Errors
//! are never data", "What recovery does with a torn tail and with corruption"): each damage must
//! end as one of
//! - `open: corruption`: `Db::open` fails with `Error::Corruption`;
//! - `read: corruption`: a read fails with `Error::Corruption`;
//! - `unaffected`: every read returns exactly the expected state (the damaged bytes are never
//!   read, e.g. an orphan table that open deletes). These are listed by file and offset;
//! - `WAL tail cut`: the damage touches the WAL's last record, which replay cannot tell from a
//!   torn tail (FORMAT.md § 3.6, limit (a); with a sector, the earlier records it damages too
//!   lose their only witnesses, limit (b)); the state must then be the prefix of the commits
//!   that keeps every commit whose record ends before the damage (checked by
//!   `Oracle::recovered`). Damage anywhere else in the WAL has an intact later record as witness
//!   and must be reported.
//!
//! Anything else fails the test with the damage's location: a wrong value, a phantom or missing
//! key, a wrong revision, another error kind, or a panic (caught with `catch_unwind`).
//!
//! Budget: CI flips one bit of every byte of every file (bit `(offset + file index) % 8`, so every
//! bit position is exercised across the bytes); `KVSTORE_CAMPAIGN=deep` flips every bit of every
//! byte. Sectors are all damaged in both budgets.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kvstore::vfs::Vfs;
use kvstore::{Db, Durability, Error};
use kvstore_faults::{DiskImage, OpKind, PersistenceModel, SimVfs};
use kvstore_model::harness::{DB_DIR, stamp_for};
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
    /// Every commit of the workload, in order (commit `i` got revision `i + 1`).
    mutations: Vec<Mutation>,
    /// Where each commit's WAL record was appended: segment, start and end offset in it.
    records: Vec<(PathBuf, u64, u64)>,
    /// Every key the workload touched.
    keys: BTreeSet<Vec<u8>>,
}

impl Fixture {
    /// The oracle that requires every commit before `from` and accepts any prefix of the rest.
    fn losing_from(&self, from: usize) -> Oracle {
        let mut oracle = Oracle::new();
        for (i, m) in self.mutations.iter().enumerate() {
            // The stamp the harness gave the commit when the workload ran.
            let stamp = stamp_for(oracle.current()).unwrap_or(0);
            oracle.issue_stamped(m.clone(), stamp);
            let revision = u64::try_from(i + 1).unwrap_or(u64::MAX);
            oracle
                .acknowledge(revision, i < from)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        oracle
    }

    /// The first commit whose WAL record ends after byte `offset` of segment `path`, or is in a
    /// later segment (present in the image): damage at `offset` may cut it and every later one.
    fn first_after(&self, path: &Path, offset: u64) -> Option<usize> {
        let live = self.image.live_paths();
        self.records.iter().position(|(p, _, end)| {
            live.contains(p) && ((p == path && *end > offset) || p.as_path() > path)
        })
    }

    /// What `damage` may legitimately cut (FORMAT.md § 3.6 limits (a) and (b)): if it touches
    /// the WAL's last record, replay cannot tell it from a torn tail, so the damaged records
    /// from the first one on may be cut (every later record, their only witness, is damaged
    /// too). `None` if it must be reported or harmless.
    fn tail(&self, damage: &Damage) -> Option<Oracle> {
        if !Fixture::is_wal(&damage.path) {
            return None;
        }
        let live = self.image.live_paths();
        let (last_path, last_start, last_end) = self
            .records
            .iter()
            .rev()
            .find(|(p, _, _)| live.contains(p))?;
        let start = u64::try_from(damage.offset).ok()?;
        let end = start.saturating_add(u64::try_from(damage.len).ok()?);
        let touches_last = *last_path == damage.path && start < *last_end && end > *last_start;
        if !touches_last {
            return None;
        }
        Some(self.losing_from(self.first_after(&damage.path, start)?))
    }

    /// Whether `path` is a WAL segment.
    fn is_wal(path: &Path) -> bool {
        path.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wal-"))
    }
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
    let mut engine = Engine::open(SimVfs::new(SEED), setup.clone(), Oracle::new())
        .unwrap_or_else(|e| panic!("open: {e}"));
    let mut mutations = Vec::new();
    let mut records = Vec::new();
    for step in &steps {
        let before = wal_sizes(engine.sim());
        engine
            .step(step)
            .unwrap_or_else(|e| panic!("{step:?}: {e}"));
        let Step::Write(m, _) = step else {
            continue;
        };
        let grown: Vec<(PathBuf, u64, u64)> = wal_sizes(engine.sim())
            .into_iter()
            .filter_map(|(p, len)| {
                let old = before.get(&p).copied().unwrap_or(0);
                (len > old).then_some((p, old, len))
            })
            .collect();
        let [record] = grown.as_slice() else {
            panic!("{step:?} should have grown exactly one WAL segment: {grown:?}");
        };
        mutations.push(m.clone());
        records.push(record.clone());
    }
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
    let mut keys = BTreeSet::new();
    for m in &mutations {
        keys.extend(m.keys());
    }
    Fixture {
        image,
        setup,
        expected,
        mutations,
        records,
        keys,
    }
}

/// How one flip ended.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Caught {
    OpenCorruption,
    ReadCorruption,
    Unaffected,
    /// The damage was taken for a torn WAL tail and cut: allowed where `trial`'s `tail` says.
    TailCut,
    /// A violation: the message says what.
    Violation(String),
}

impl Caught {
    fn column(&self) -> &'static str {
        match self {
            Caught::OpenCorruption => "open: corruption",
            Caught::ReadCorruption => "read: corruption",
            Caught::Unaffected => "unaffected",
            Caught::TailCut => "WAL tail cut",
            Caught::Violation(_) => "VIOLATION",
        }
    }
}

const COLUMNS: [&str; 5] = [
    "open: corruption",
    "read: corruption",
    "unaffected",
    "WAL tail cut",
    "VIOLATION",
];

/// How a damage changes the bytes it covers.
#[derive(Clone, Copy, Debug)]
enum How {
    /// Each byte xored with this mask (one bit: a bit flip).
    Xor(u8),
    /// Zeros (a sector that was never written, or trimmed).
    Zero,
    /// Random bytes from this seed (another write's leftovers).
    Garbage(u64),
}

/// One damage to one file at rest: `len` bytes from `offset` (clamped to the file).
#[derive(Clone, Debug)]
struct Damage {
    path: PathBuf,
    offset: usize,
    len: usize,
    how: How,
}

/// A fresh copy of the disk with `damage` applied.
fn corrupted(image: &DiskImage, damage: &Damage) -> SimVfs {
    let sim = SimVfs::from_image(image, 0);
    let mut bytes = image
        .live_bytes(&damage.path)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let end = damage.offset.saturating_add(damage.len).min(bytes.len());
    let mut rng = match damage.how {
        How::Garbage(seed) => seed,
        _ => 0,
    };
    for b in bytes.get_mut(damage.offset..end).unwrap_or_default() {
        *b = match damage.how {
            How::Xor(mask) => *b ^ mask,
            How::Zero => 0,
            How::Garbage(_) => u8::try_from(splitmix64(&mut rng) & 0xff).unwrap_or(0),
        };
    }
    let rewritten = sim.create(&damage.path).and_then(|f| {
        f.append(&bytes)?;
        f.sync_data()
    });
    rewritten.unwrap_or_else(|e| panic!("rewriting {}: {e}", damage.path.display()));
    sim
}

/// Opens and reads the corrupted disk; classifies the result. `tail` is what the damage may
/// legitimately cut (a WAL tail replay cannot tell from a torn one): the oracle accepting it.
fn trial(fixture: &Fixture, sim: SimVfs, tail: Option<Oracle>) -> Caught {
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
    if let Some(mut oracle) = tail
        && oracle.recovered(&found).is_ok()
    {
        return Caught::TailCut;
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
    let fixture = build(At::Rest);
    run("bit flips, at rest", &fixture, bit_flips(&fixture));
}

#[test]
fn every_flipped_bit_of_a_crash_image_mid_flush_is_reported_or_harmless() {
    let fixture = build(At::MidFlush);
    run(
        "bit flips, mid-flush crash image",
        &fixture,
        bit_flips(&fixture),
    );
}

/// Every 512-byte sector of every file of both images zeroed, and filled with garbage.
#[test]
fn every_damaged_sector_is_reported_or_harmless() {
    for (name, at) in [
        ("sectors, at rest", At::Rest),
        ("sectors, mid-flush", At::MidFlush),
    ] {
        let fixture = build(at);
        let damages = files(&fixture)
            .into_iter()
            .flat_map(|(path, len)| {
                (0..len.div_ceil(512)).flat_map(move |sector| {
                    let offset = sector * 512;
                    [How::Zero, How::Garbage(u64::try_from(offset).unwrap_or(0))].map(|how| {
                        Damage {
                            path: path.clone(),
                            offset,
                            len: 512,
                            how,
                        }
                    })
                })
            })
            .collect();
        run(name, &fixture, damages);
    }
}

/// The files of the image and their sizes.
fn files(fixture: &Fixture) -> Vec<(PathBuf, usize)> {
    fixture
        .image
        .live_paths()
        .into_iter()
        .map(|p| {
            let len = fixture.image.live_bytes(&p).map_or(0, <[u8]>::len);
            (p, len)
        })
        .collect()
}

/// One bit of every byte of every file (bit `(offset + file index) % 8`); every bit in the deep
/// budget.
fn bit_flips(fixture: &Fixture) -> Vec<Damage> {
    let deep = Budget::from_env() == Budget::Deep;
    let mut damages = Vec::new();
    for (file_index, (path, len)) in files(fixture).into_iter().enumerate() {
        for offset in 0..len {
            for bit in 0..8 {
                if deep || bit == (offset + file_index) % 8 {
                    damages.push(Damage {
                        path: path.clone(),
                        offset,
                        len: 1,
                        how: How::Xor(1 << bit),
                    });
                }
            }
        }
    }
    damages
}

/// Applies each damage to a fresh copy of `fixture`'s disk, classifies what open and reads did,
/// prints the table, and fails on any violation.
fn run(name: &str, fixture: &Fixture, damages: Vec<Damage>) {
    let started = Instant::now();
    let budget = Budget::from_env();
    let files = files(fixture);
    let mut table: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut unaffected: BTreeMap<PathBuf, BTreeSet<usize>> = BTreeMap::new();
    let mut violations: Vec<String> = Vec::new();
    let flips = damages.len();
    eprintln!(
        "[corruption, {name}] database: {}; last WAL record {:?}",
        files
            .iter()
            .map(|(p, len)| format!("{} ({len} B)", p.display()))
            .collect::<Vec<_>>()
            .join(", "),
        fixture.records.last()
    );
    for damage in &damages {
        let sim = corrupted(&fixture.image, damage);
        let tail = fixture.tail(damage);
        let caught =
            catch_unwind(AssertUnwindSafe(|| trial(fixture, sim, tail))).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Caught::Violation(format!("panic: {what}"))
            });
        *table
            .entry(kind(&damage.path))
            .or_default()
            .entry(caught.column())
            .or_default() += 1;
        match caught {
            Caught::Unaffected => {
                unaffected
                    .entry(damage.path.clone())
                    .or_default()
                    .insert(damage.offset);
            }
            Caught::Violation(what) => violations.push(format!("{damage:?}: {what}")),
            _ => {}
        }
    }
    eprintln!(
        "[corruption, {name}] {flips} damages in {} files, {:.1}s (budget {budget:?})",
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
            "  unaffected damages in {}: at bytes {}",
            path.display(),
            ranges(offsets)
        );
    }
    assert!(
        violations.is_empty(),
        "{name}: {} damages broke the rule (replay: this test, budget {budget:?}); first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
