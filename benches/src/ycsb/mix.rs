//! What a YCSB workload asks for: its operation mix ([`Workload`]), the keys it names
//! ([`key`]), the records it writes ([`Records`]), which key each operation picks
//! ([`KeyChooser`]) and the sequence inserts take their key numbers from ([`InsertSequence`]).
//!
//! The six core workloads, as YCSB's `workloads/workload[a-f]` files define them:
//!
//! | workload | mix | request distribution |
//! |---|---|---|
//! | A | 50 % read, 50 % update | zipfian |
//! | B | 95 % read, 5 % update | zipfian |
//! | C | 100 % read | zipfian |
//! | D | 95 % read, 5 % insert | latest |
//! | E | 95 % scan (length uniform in 1..=100), 5 % insert | zipfian (scan start) |
//! | F | 50 % read, 50 % read-modify-write | zipfian |
//!
//! With `--distribution uniform` every workload, D included, picks uniformly among the records.
//!
//! Invariants:
//! - Record `k`'s key is `user` + the decimal of [`fnv_hash64`]`(k)`, as YCSB's `buildKeyName`
//!   with `insertorder=hashed` (its default): keys are inserted in random key order.
//! - Every key a read, update, scan or read-modify-write picks is below
//!   [`InsertSequence::readable`]: its insert has returned, so it must be found.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::zipf::{ScrambledZipfian, SkewedLatest, fnv_hash64};

/// Fields per record (YCSB's `fieldcount`).
pub const FIELDS: usize = 10;
/// Bytes per field (YCSB's `fieldlength`).
pub const FIELD_LEN_BYTES: usize = 100;
/// Bytes of a record: its ten fields concatenated into one value.
pub const RECORD_LEN_BYTES: usize = FIELDS * FIELD_LEN_BYTES;
/// Longest scan of workload E (YCSB's `maxscanlength`).
pub const SCAN_LEN_MAX: usize = 100;
/// Distinct records [`Records`] holds; writes pick one at random.
const RECORD_POOL: usize = 256;

/// One operation of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Get one record.
    Read,
    /// Overwrite one record with a new value (all fields: YCSB's `writeallfields=true`).
    Update,
    /// Write a new record.
    Insert,
    /// Stream this many records from a key on.
    Scan(usize),
    /// Get one record, change one field, write it back (timed as one operation).
    ReadModifyWrite,
}

/// One of YCSB's core workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Update heavy.
    A,
    /// Read mostly.
    B,
    /// Read only.
    C,
    /// Read latest.
    D,
    /// Short ranges.
    E,
    /// Read-modify-write.
    F,
}

/// How keys are picked (`--distribution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// YCSB's defaults: scrambled zipfian, latest for D.
    Zipfian,
    /// Uniform over the records present.
    Uniform,
}

impl Distribution {
    /// Parses `zipfian` or `uniform`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "zipfian" => Some(Distribution::Zipfian),
            "uniform" => Some(Distribution::Uniform),
            _ => None,
        }
    }

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Zipfian => "zipfian",
            Distribution::Uniform => "uniform",
        }
    }
}

impl Workload {
    /// The order YCSB's documentation runs them in on one load: A, B, C, F, D, then E.
    pub const ORDER: [Workload; 6] = [
        Workload::A,
        Workload::B,
        Workload::C,
        Workload::F,
        Workload::D,
        Workload::E,
    ];

    /// The letter.
    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "A",
            Workload::B => "B",
            Workload::C => "C",
            Workload::D => "D",
            Workload::E => "E",
            Workload::F => "F",
        }
    }

    /// Parses a letter, either case.
    pub fn parse(name: &str) -> Option<Self> {
        Workload::ORDER
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(name))
    }

    /// The share of inserts, which sizes the key space the zipfian chooser covers.
    pub fn insert_share(self) -> f64 {
        match self {
            Workload::D | Workload::E => 0.05,
            _ => 0.0,
        }
    }

    /// The next operation, drawn by `rng` from the mix.
    pub fn next_op(self, rng: &mut impl Rng) -> Op {
        let u: f64 = rng.random();
        match self {
            Workload::A if u < 0.5 => Op::Read,
            Workload::A => Op::Update,
            Workload::B if u < 0.95 => Op::Read,
            Workload::B => Op::Update,
            Workload::C => Op::Read,
            Workload::D if u < 0.95 => Op::Read,
            Workload::D => Op::Insert,
            Workload::E if u < 0.95 => Op::Scan(rng.random_range(1..=SCAN_LEN_MAX)),
            Workload::E => Op::Insert,
            Workload::F if u < 0.5 => Op::Read,
            Workload::F => Op::ReadModifyWrite,
        }
    }
}

/// The key of record `keynum` into `out` (cleared first): `user` + decimal of its FNV hash.
pub fn key(keynum: u64, out: &mut String) {
    out.clear();
    let _ = write!(out, "user{}", fnv_hash64(keynum));
}

/// A pool of seeded random records and fields for writes to pick from, so that making a value
/// costs a pick, not a PRNG fill (the same for every engine either way).
pub struct Records {
    pool: Vec<[u8; RECORD_LEN_BYTES]>,
}

impl Records {
    /// A pool of 256 records (`RECORD_POOL`) from `rng`.
    pub fn new(rng: &mut impl Rng) -> Self {
        let pool = (0..RECORD_POOL)
            .map(|_| {
                let mut record = [0u8; RECORD_LEN_BYTES];
                rng.fill(&mut record[..]);
                record
            })
            .collect();
        Records { pool }
    }

    /// A record picked by `rng`.
    pub fn pick(&self, rng: &mut impl Rng) -> &[u8; RECORD_LEN_BYTES] {
        &self.pool[rng.random_range(0..self.pool.len())]
    }

    /// Overwrites one field of `record`, both picked by `rng`, with another record's field.
    /// REQUIRES: `record.len() == RECORD_LEN_BYTES`.
    pub fn modify(&self, record: &mut [u8], rng: &mut impl Rng) {
        debug_assert_eq!(record.len(), RECORD_LEN_BYTES);
        let field = rng.random_range(0..FIELDS) * FIELD_LEN_BYTES;
        let source = self.pick(rng);
        record[field..field + FIELD_LEN_BYTES]
            .copy_from_slice(&source[field..field + FIELD_LEN_BYTES]);
    }
}

/// The key numbers inserts take (YCSB's `AcknowledgedCounterGenerator`): [`allocate`] hands out
/// the next number, [`acknowledge`] marks its insert done, and [`readable`] is the count of
/// numbers below which every insert is done, which is what readers may pick from.
///
/// [`allocate`]: InsertSequence::allocate
/// [`acknowledge`]: InsertSequence::acknowledge
/// [`readable`]: InsertSequence::readable
pub struct InsertSequence {
    next: AtomicU64,
    readable: AtomicU64,
    /// Acknowledged numbers above `readable` (another thread's insert below them still running).
    pending: Mutex<BTreeSet<u64>>,
}

impl InsertSequence {
    /// A sequence whose first number is `first`, everything below it readable.
    pub fn new(first: u64) -> Self {
        InsertSequence {
            next: AtomicU64::new(first),
            readable: AtomicU64::new(first),
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next key number to insert.
    pub fn allocate(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks the insert of `keynum` (from [`InsertSequence::allocate`]) done.
    pub fn acknowledge(&self, keynum: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut readable = self.readable.load(Ordering::Acquire);
        debug_assert!(keynum >= readable, "{keynum} acknowledged twice");
        pending.insert(keynum);
        while pending.remove(&readable) {
            readable += 1;
        }
        self.readable.store(readable, Ordering::Release);
    }

    /// How many records, `0..readable`, are surely present.
    pub fn readable(&self) -> u64 {
        self.readable.load(Ordering::Acquire)
    }
}

/// Picks the record an operation reads, updates or starts a scan at.
pub enum KeyChooser {
    /// YCSB's scrambled zipfian over the records loaded plus those the workload is expected to
    /// insert (twice its insert share of the operations, as YCSB sizes it), redrawn while the
    /// draw is not yet readable.
    Zipfian(ScrambledZipfian),
    /// Workload D's skewed-latest: the newest readable record most popular.
    Latest(SkewedLatest),
    /// Uniform over the readable records.
    Uniform,
}

impl KeyChooser {
    /// The chooser of `workload` under `distribution`, with `records` readable and `ops`
    /// operations to come. REQUIRES: `records >= 2`.
    pub fn new(workload: Workload, distribution: Distribution, records: u64, ops: u64) -> Self {
        match (distribution, workload) {
            (Distribution::Uniform, _) => KeyChooser::Uniform,
            (Distribution::Zipfian, Workload::D) => KeyChooser::Latest(SkewedLatest::new(records)),
            (Distribution::Zipfian, _) => {
                let expected_new = (ops as f64 * workload.insert_share() * 2.0) as u64;
                KeyChooser::Zipfian(ScrambledZipfian::new(records + expected_new))
            }
        }
    }

    /// A key number below `readable`. REQUIRES: `readable >= 2`.
    pub fn next(&mut self, readable: u64, rng: &mut impl Rng) -> u64 {
        match self {
            KeyChooser::Zipfian(zipfian) => loop {
                let keynum = zipfian.next(rng);
                if keynum < readable {
                    return keynum;
                }
            },
            KeyChooser::Latest(latest) => latest.next(readable, rng),
            KeyChooser::Uniform => rng.random_range(0..readable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mixes_have_their_shares() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws = 100_000;
        for (workload, share_of_first, first) in [
            (Workload::A, 0.5, Op::Read),
            (Workload::B, 0.95, Op::Read),
            (Workload::C, 1.0, Op::Read),
            (Workload::D, 0.05, Op::Insert),
            (Workload::E, 0.05, Op::Insert),
            (Workload::F, 0.5, Op::ReadModifyWrite),
        ] {
            let hits = (0..draws)
                .filter(|_| workload.next_op(&mut rng) == first)
                .count() as f64
                / draws as f64;
            assert!((hits - share_of_first).abs() < 0.01, "{workload:?}: {hits}");
        }
        let lens: Vec<usize> = (0..10_000)
            .filter_map(|_| match Workload::E.next_op(&mut rng) {
                Op::Scan(len) => Some(len),
                _ => None,
            })
            .collect();
        assert_eq!(lens.iter().min(), Some(&1));
        assert_eq!(lens.iter().max(), Some(&SCAN_LEN_MAX));
    }

    #[test]
    fn keys_are_ycsbs() {
        let mut out = String::new();
        key(0, &mut out);
        assert_eq!(out, "user6284781860667377211");
    }

    #[test]
    fn readable_waits_for_the_gap_to_close() {
        let seq = InsertSequence::new(10);
        let (a, b, c) = (seq.allocate(), seq.allocate(), seq.allocate());
        assert_eq!((a, b, c), (10, 11, 12));
        seq.acknowledge(b);
        assert_eq!(seq.readable(), 10, "11 is done but 10 is not");
        seq.acknowledge(a);
        assert_eq!(seq.readable(), 12);
        seq.acknowledge(c);
        assert_eq!(seq.readable(), 13);
    }

    #[test]
    fn choosers_stay_below_readable() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for distribution in [Distribution::Zipfian, Distribution::Uniform] {
            for workload in Workload::ORDER {
                let mut chooser = KeyChooser::new(workload, distribution, 1000, 10_000);
                for readable in [1000, 1001, 1500] {
                    for _ in 0..1000 {
                        assert!(chooser.next(readable, &mut rng) < readable);
                    }
                }
            }
        }
    }

    #[test]
    fn modify_changes_one_field_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let records = Records::new(&mut rng);
        let before = *records.pick(&mut rng);
        let mut after = before;
        records.modify(&mut after, &mut rng);
        let changed = (0..FIELDS)
            .filter(|f| {
                let r = f * FIELD_LEN_BYTES..(f + 1) * FIELD_LEN_BYTES;
                before[r.clone()] != after[r]
            })
            .count();
        assert!(changed <= 1, "{changed} fields changed");
    }
}
