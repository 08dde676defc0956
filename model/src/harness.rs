//! [`Engine`]: the real `kvstore::Db` on a `SimVfs`, driven step by step beside an [`Oracle`].
//!
//! Invariants:
//! - Deterministic: inline background work and a fixed clock, so the same steps on the same seed
//!   issue the same I/O trace (what crash-point enumeration needs).
//! - Every read is compared with the model while no commit is in doubt; every acknowledged revision
//!   is compared with the model's; every recovery is checked by the oracle (full scan, each key's
//!   value and revision, and the last revision).
//! - At most one snapshot is held ([`Step::TakeSnapshot`]), beside the model's state at its
//!   revision; it is released by [`Step::CheckSnapshot`], and dropped whenever the engine closes
//!   (reopen, failure, crash).
//! - An error is expected only once the disk has crashed (or a sabotage is installed); otherwise
//!   it is a violation.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{FixedClock, SharedClock};
use kvstore::vfs::Vfs;
use kvstore::{
    BackgroundMode, Db, Durability, HistoryRetention, KeyRange, Options, ScanOptions, WriteBatch,
    WriteOptions,
};
use kvstore_faults::SimVfs;

use crate::model::{Cell, Expect, Model, Mutation, RevisionError, WatchedEvent};
use crate::oracle::Oracle;
use crate::sabotage::{Sabotage, Sabotaged};
use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore::watch::{WatchEvent, WatchRequest, WatchResponse, Watcher};

/// The database directory on the simulated disk.
pub const DB_DIR: &str = "/db";

/// The fixed commit time of every campaign.
pub const CLOCK_MS: u64 = 1_700_000_000_000;

/// Small sizes so short workloads cross WAL rotation, flush, compaction and manifest rewrites.
pub fn campaign_options(durability: Durability) -> Options {
    Options {
        memtable_size_bytes: kvstore::options::MEMTABLE_SIZE_BYTES_MIN,
        sst_block_size_bytes: kvstore::options::BLOCK_SIZE_BYTES_MIN,
        sst_target_file_size_bytes: 16 * 1024,
        l0_compaction_trigger_files: 2,
        l0_stall_files: 4,
        l0_stop_files: 6,
        l1_target_size_bytes: 64 * 1024,
        wal_segment_size_bytes: kvstore::options::WAL_SEGMENT_SIZE_BYTES_MIN,
        block_cache_size_bytes: 0,
        background: BackgroundMode::Inline,
        durability,
        clock: SharedClock::new(FixedClock(CLOCK_MS)),
        // The model's horizon moves only by `compact_history`, as the engine's then does.
        history_retention: HistoryRetention::Manual,
        ..Options::default()
    }
}

/// How an engine is set up: its options and an optional sabotage of its filesystem.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The options every open uses.
    pub options: Options,
    /// A deliberate bug in the filesystem under the engine (negative controls).
    pub sabotage: Sabotage,
}

impl Setup {
    /// Campaign options in `durability`, no sabotage.
    pub fn new(durability: Durability) -> Setup {
        Setup {
            options: campaign_options(durability),
            sabotage: Sabotage::None,
        }
    }

    fn vfs(&self, sim: &SimVfs) -> Arc<dyn Vfs> {
        match self.sabotage {
            Sabotage::None => Arc::new(sim.clone()),
            s => Arc::new(Sabotaged::new(sim.clone(), s)),
        }
    }
}

/// One step of a workload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// A commit, in the setup's durability mode unless `Some` overrides it.
    Write(Mutation, Option<Durability>),
    /// `get(key)`, compared with the model.
    Get(Vec<u8>),
    /// A full scan, compared with the model.
    Scan,
    /// A whole read (scan and point reads) at `back` revisions before the newest, compared with
    /// the model's history (or its refusal below the horizon).
    ReadAt(u64),
    /// `compact_history(newest - back)`; refusals compared with the model's.
    CompactHistory(u64),
    /// `snapshot()`, held (replacing any held one) beside the model's state at its revision,
    /// until [`Step::CheckSnapshot`]: it pins its revision across the steps in between.
    TakeSnapshot,
    /// Reads the held snapshot whole (a scan and a point read of each key the model ever held),
    /// compares it with the model's state at its revision, and releases it; nothing without one.
    CheckSnapshot,
    /// `flush()`.
    Flush,
    /// `compact_range(all)`.
    Compact,
    /// `sync()`.
    Sync,
    /// `close()`, then open again and check recovery.
    Reopen,
    /// A watch of every key from `back` revisions before the newest (at least the horizon),
    /// replacing any held one; it is resumed after every recovery from the last revision it
    /// delivered, and every event it delivered must survive the recovery.
    Watch(u64),
    /// Takes what the held watch delivered so far (it must survive any later crash), then
    /// `sync()`, then reads it up to the newest revision and compares everything it delivered
    /// since its start with the model's history; nothing without one.
    CheckWatch,
}

/// What a step did, when it broke no rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// It succeeded.
    Done,
    /// It failed after the disk crashed (or with a sabotage installed): the engine is unusable
    /// until recovery.
    Failed,
}

/// Why [`read_all`] could not read a state.
#[derive(Debug)]
pub enum ReadError {
    /// A read returned this engine error (e.g. `Error::Corruption`).
    Engine(kvstore::Error),
    /// The engine's reads disagree with each other (a scan and a point read).
    Inconsistent(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Engine(e) => write!(f, "read failed: {e}"),
            ReadError::Inconsistent(what) => f.write_str(what),
        }
    }
}

/// Reads the whole state of `db`: a full scan, each key's value and revision from a point read
/// (which must agree with the scan), and the last revision. Keeps the engine's error, for
/// campaigns that tell corruption reports from other failures.
pub fn read_all(db: &Db) -> Result<Model, ReadError> {
    let scan = db
        .scan(KeyRange::all(), ScanOptions::default())
        .map_err(ReadError::Engine)?;
    let mut map = std::collections::BTreeMap::new();
    for item in scan {
        let (key, value) = item.map_err(ReadError::Engine)?;
        let versioned = db
            .get_versioned(&key)
            .map_err(ReadError::Engine)?
            .ok_or_else(|| {
                ReadError::Inconsistent(format!("scan returned {key:?} but get does not"))
            })?;
        if versioned.value != value {
            return Err(ReadError::Inconsistent(format!(
                "scan and get disagree on {key:?}"
            )));
        }
        map.insert(key, cell(versioned));
    }
    Ok(Model::from_parts(map, db.stats().last_revision))
}

fn cell(versioned: kvstore::Versioned) -> Cell {
    Cell {
        value: versioned.value,
        revision: versioned.revision,
        create_revision: versioned.create_revision,
        version: versioned.version,
    }
}

/// Revisions [`check_history`] reads at most: all of them for short histories, else an even
/// sample including both ends.
pub const HISTORY_READS_MAX: u64 = 4;

/// Reads `db` as of `revision` (a scan at it, and a point read of each key it returns and of
/// each key `model` ever held, which must agree) and compares it with `model.state_at(revision)`;
/// a revision below the model's horizon must be refused with `Compacted`, one above its last
/// revision with `FutureRevision`.
pub fn check_read_at(db: &Db, model: &Model, revision: u64) -> Result<(), String> {
    let expected = match model.state_at(revision) {
        Ok(state) => state,
        Err(refusal) => {
            let got = db.scan(
                KeyRange::all(),
                ScanOptions {
                    revision: Some(revision),
                    ..ScanOptions::default()
                },
            );
            return match (refusal, got) {
                (RevisionError::Compacted, Err(kvstore::Error::Compacted { .. }))
                | (RevisionError::Future, Err(kvstore::Error::FutureRevision { .. })) => Ok(()),
                (refusal, Err(e)) => Err(format!(
                    "read at {revision}: {e}, the model says {refusal:?}"
                )),
                (refusal, Ok(_)) => Err(format!(
                    "read at {revision} accepted, the model says {refusal:?}"
                )),
            };
        }
    };
    let opts = ScanOptions {
        revision: Some(revision),
        ..ScanOptions::default()
    };
    let mut map = std::collections::BTreeMap::new();
    let scan = db
        .scan(KeyRange::all(), opts)
        .map_err(|e| format!("scan at {revision}: {e}"))?;
    for row in scan.versioned() {
        let (key, versioned) = row.map_err(|e| format!("scan at {revision}: {e}"))?;
        map.insert(key, cell(versioned));
    }
    for key in model.keys_ever() {
        let got = db
            .get_at(key, revision)
            .map_err(|e| format!("get_at({key:?}, {revision}): {e}"))?
            .map(cell);
        if got.as_ref() != map.get(key) {
            return Err(format!(
                "get_at({key:?}, {revision}) returned {got:?}, the scan at it {:?}",
                map.get(key)
            ));
        }
    }
    let found = Model::from_parts(map, revision);
    if found != expected {
        return Err(format!(
            "read at revision {revision}: {}",
            expected.diff(&found)
        ));
    }
    Ok(())
}

/// Reads `db` at every revision from the model's horizon to its last (at most
/// [`HISTORY_READS_MAX`], evenly spread), one below the horizon and one past the last: every
/// read the history promises, compared with the model.
pub fn check_history(db: &Db, model: &Model) -> Result<(), String> {
    let (low, high) = (model.horizon().max(1), model.revision());
    let span = high.saturating_sub(low).saturating_add(1);
    let step = span.div_ceil(HISTORY_READS_MAX).max(1);
    let mut revisions: Vec<u64> = (low..=high)
        .step_by(usize::try_from(step).unwrap_or(1))
        .collect();
    revisions.push(high);
    revisions.push(high.saturating_add(1));
    if model.horizon() > 1 {
        revisions.push(model.horizon() - 1);
    }
    for revision in revisions {
        check_read_at(db, model, revision)?;
    }
    if db.history_horizon() != model.horizon() {
        return Err(format!(
            "history horizon {}, the model says {}",
            db.history_horizon(),
            model.horizon()
        ));
    }
    Ok(())
}

/// Reads `snapshot` whole (a scan, and a point read of each key `model` ever held, which must
/// agree) and compares it with `expected`, the model's state at the snapshot's revision.
pub fn check_snapshot(
    snapshot: &kvstore::Snapshot,
    expected: &Model,
    model: &Model,
) -> Result<(), String> {
    let revision = snapshot.revision();
    let mut map = std::collections::BTreeMap::new();
    let scan = snapshot
        .scan(KeyRange::all(), ScanOptions::default())
        .map_err(|e| format!("scan of the snapshot at {revision}: {e}"))?;
    for row in scan.versioned() {
        let (key, versioned) =
            row.map_err(|e| format!("scan of the snapshot at {revision}: {e}"))?;
        map.insert(key, cell(versioned));
    }
    for key in model.keys_ever() {
        let got = snapshot
            .get_versioned(key)
            .map_err(|e| format!("snapshot get({key:?}) at {revision}: {e}"))?
            .map(cell);
        if got.as_ref() != map.get(key) {
            return Err(format!(
                "snapshot get({key:?}) at {revision} returned {got:?}, its scan {:?}",
                map.get(key)
            ));
        }
    }
    let found = Model::from_parts(map, revision);
    if &found != expected {
        return Err(format!(
            "snapshot at revision {revision}: {}",
            expected.diff(&found)
        ));
    }
    Ok(())
}

/// The campaigns' watch: every key, from `start`, with progress on request.
fn watch_request(start: u64) -> WatchRequest {
    WatchRequest {
        progress_notify: true,
        ..WatchRequest::new(KeyRange::all()).from_revision(start)
    }
}

/// The events of one revision's watch response as the oracle records them.
fn watched(revision: u64, batch: Vec<WatchEvent>) -> impl Iterator<Item = WatchedEvent> {
    batch
        .into_iter()
        .map(move |e| (revision, e.key, e.value.map(|v| v.value)))
}

/// Every response `watcher` holds now, without waiting: its events.
fn peek_watch(watcher: &Watcher) -> Result<Vec<WatchedEvent>, String> {
    let mut events = Vec::new();
    while let Some(response) = watcher.try_next().map_err(|e| e.to_string())? {
        if let WatchResponse::Events {
            revision,
            events: batch,
        } = response
        {
            events.extend(watched(revision, batch));
        }
    }
    Ok(events)
}

/// Reads `watcher` until a progress response says every event through `through` came; returns
/// the events, `(revision, key, value)`.
fn drain_watch(watcher: &Watcher, through: u64) -> Result<Vec<WatchedEvent>, String> {
    // The dispatcher is another thread: give it time (a stall, not slowness, is the failure).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut events = Vec::new();
    let mut last_progress = None;
    while std::time::Instant::now() < deadline {
        watcher.request_progress().map_err(|e| e.to_string())?;
        loop {
            match watcher.next_timeout(std::time::Duration::from_secs(30)) {
                Ok(Some(WatchResponse::Events {
                    revision,
                    events: batch,
                })) => events.extend(watched(revision, batch)),
                Ok(Some(WatchResponse::Progress { revision })) if revision >= through => {
                    return Ok(events);
                }
                Ok(Some(WatchResponse::Progress { revision })) => {
                    last_progress = Some(revision);
                    break;
                }
                Ok(None) => return Err("the watch ended or stalled".to_owned()),
                Err(e) => return Err(format!("the watch failed: {e}")),
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Err(format!(
        "the watch never reached revision {through} (its last progress: {last_progress:?})"
    ))
}

/// [`read_all`] with the error as a message.
pub fn observe(db: &Db) -> Result<Model, String> {
    read_all(db).map_err(|e| e.to_string())
}

/// The real engine beside its oracle.
#[derive(Debug)]
pub struct Engine {
    sim: SimVfs,
    setup: Setup,
    db: Option<Db>,
    oracle: Oracle,
    recoveries: u64,
    /// The snapshot [`Step::TakeSnapshot`] holds and the model's state at its revision.
    snapshot: Option<(kvstore::Snapshot, Model)>,
    /// The watch [`Step::Watch`] started (its events are recorded in the oracle).
    watcher: Option<Watcher>,
}

impl Engine {
    /// Opens (recovering) the database on `sim` and checks what it holds against `oracle`. If the
    /// disk crashes during the open, the engine is returned closed ([`Engine::is_open`] false).
    pub fn open(sim: SimVfs, setup: Setup, oracle: Oracle) -> Result<Engine, String> {
        let mut engine = Engine {
            sim,
            setup,
            db: None,
            oracle,
            recoveries: 0,
            snapshot: None,
            watcher: None,
        };
        engine.reopen()?;
        Ok(engine)
    }

    /// Opens the database and checks recovery; with the disk crashed during it, the engine stays
    /// closed and the result is `Ok`.
    fn reopen(&mut self) -> Result<(), String> {
        self.snapshot = None;
        self.watcher = None;
        self.db = None;
        let db = match Db::open_with_vfs(
            self.setup.vfs(&self.sim),
            DB_DIR,
            self.setup.options.clone(),
        ) {
            Ok(db) => db,
            Err(_) if self.sim.is_crashed() => return Ok(()),
            Err(e) => return Err(format!("recovery failed on an uncrashed disk: {e}")),
        };
        let found = match observe(&db) {
            Ok(found) => found,
            Err(_) if self.sim.is_crashed() => return Ok(()),
            Err(e) => return Err(e),
        };
        self.oracle.recovered(&found)?;
        self.oracle.recovered_horizon(db.history_horizon())?;
        match check_history(&db, self.oracle.current()) {
            Ok(()) => {}
            Err(_) if self.sim.is_crashed() => return Ok(()),
            Err(e) => return Err(format!("after recovery: {e}")),
        }
        if let Some(resume) = self.oracle.watch_after_recovery()? {
            match db.watch(watch_request(resume)) {
                Ok(watcher) => self.watcher = Some(watcher),
                Err(_) if self.sim.is_crashed() => return Ok(()),
                Err(e) => return Err(format!("resuming the watch at {resume}: {e}")),
            }
        }
        self.recoveries = self.recoveries.saturating_add(1);
        self.db = Some(db);
        Ok(())
    }

    /// Whether the database is open and usable.
    pub fn is_open(&self) -> bool {
        self.db.is_some()
    }

    /// The database, while it is open: for campaigns that drive calls the [`Step`]s do not
    /// cover (an optimistic transaction), recording them in [`Engine::oracle_mut`].
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// The oracle, for a campaign that drives [`Engine::db`] itself.
    pub fn oracle_mut(&mut self) -> &mut Oracle {
        &mut self.oracle
    }

    /// The disk.
    pub fn sim(&self) -> &SimVfs {
        &self.sim
    }

    /// The oracle.
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    /// Recoveries checked so far.
    pub fn recoveries(&self) -> u64 {
        self.recoveries
    }

    /// Runs one step. `Err` is a violation of the semantics; `Ok(Failed)` an error the crash (or
    /// sabotage) explains, after which the engine is closed.
    pub fn step(&mut self, step: &Step) -> Result<Outcome, String> {
        let Some(db) = self.db.clone() else {
            return Ok(Outcome::Failed);
        };
        let default = self.setup.options.durability;
        let result: Result<(), String> = match step {
            Step::Write(mutation, durability) => {
                let durability = durability.unwrap_or(default);
                self.oracle.issue(mutation.clone());
                let opts = WriteOptions {
                    durability: Some(durability),
                };
                match commit(&db, mutation, opts) {
                    Ok(revision) => {
                        self.oracle
                            .acknowledge(revision, durability != Durability::Buffered)?;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Step::Get(key) => match db.get_versioned(key) {
                Ok(found) => {
                    let found = found.map(cell);
                    let expected = self.oracle.current().get(key);
                    if found.as_ref() != expected {
                        return Err(format!(
                            "get({key:?}) returned {found:?}, the model says {expected:?}"
                        ));
                    }
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            Step::Scan => match observe(&db) {
                Ok(found) => {
                    let expected = self.oracle.current();
                    if &found != expected {
                        return Err(format!("scan differs: {}", expected.diff(&found)));
                    }
                    let half = db
                        .scan(
                            KeyRange::new(Bound::Unbounded, Bound::Excluded(b"k1".to_vec())),
                            ScanOptions {
                                reverse: true,
                                limit: None,
                                revision: None,
                            },
                        )
                        .and_then(|s| s.collect::<kvstore::error::Result<Vec<_>>>());
                    match half {
                        Ok(mut got) => {
                            got.reverse();
                            let want =
                                expected.scan(Bound::Unbounded, Bound::Excluded(b"k1".as_slice()));
                            if got != want {
                                return Err(format!(
                                    "reverse range scan returned {got:?}, the model says {want:?}"
                                ));
                            }
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e),
            },
            Step::ReadAt(back) => {
                let model = self.oracle.current();
                check_read_at(&db, model, model.revision().saturating_sub(*back))
            }
            Step::CompactHistory(back) => {
                let horizon = self.oracle.current().revision().saturating_sub(*back);
                let mut expected = self.oracle.current().clone();
                let model_says = expected.compact_history(horizon);
                match (db.compact_history(horizon), model_says) {
                    (Ok(()), Ok(())) => self.oracle.history_compacted(horizon),
                    (Err(kvstore::Error::Compacted { .. }), Err(RevisionError::Compacted))
                    | (Err(kvstore::Error::FutureRevision { .. }), Err(RevisionError::Future)) => {
                        Ok(())
                    }
                    (Err(e), Ok(())) => {
                        self.oracle.history_compaction_failed(horizon);
                        Err(e.to_string())
                    }
                    (got, want) => Err(format!(
                        "compact_history({horizon}) returned {got:?}, the model says {want:?}"
                    )),
                }
            }
            Step::TakeSnapshot => match db.snapshot() {
                Ok(snapshot) => {
                    let model = self.oracle.current();
                    if snapshot.revision() != model.revision() {
                        return Err(format!(
                            "snapshot() at revision {}, the model's last is {}",
                            snapshot.revision(),
                            model.revision()
                        ));
                    }
                    match model.state_at(model.revision()) {
                        Ok(state) => {
                            self.snapshot = Some((snapshot, state));
                            Ok(())
                        }
                        Err(refusal) => Err(format!("the model's own state: {refusal:?}")),
                    }
                }
                Err(e) => Err(e.to_string()),
            },
            Step::CheckSnapshot => match self.snapshot.take() {
                Some((snapshot, expected)) => {
                    check_snapshot(&snapshot, &expected, self.oracle.current())
                }
                None => Ok(()),
            },
            Step::Watch(back) => {
                let model = self.oracle.current();
                // A watch starts above the horizon (`spec/SEMANTICS.md`, "Watches").
                let start = model
                    .revision()
                    .saturating_sub(*back)
                    .max(model.horizon().saturating_add(1))
                    .max(1);
                match db.watch(watch_request(start)) {
                    Ok(watcher) => {
                        self.watcher = Some(watcher);
                        self.oracle.watch_started(start);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Step::CheckWatch => match self.watcher.as_ref() {
                None => Ok(()),
                Some(watcher) => match peek_watch(watcher).and_then(|early| {
                    // Delivered before this step's sync: they must survive any crash.
                    self.oracle.watch_delivered(early);
                    db.sync().map_err(|e| e.to_string())
                }) {
                    Ok(()) => {
                        self.oracle.all_acknowledged_durable();
                        let through = self.oracle.current().revision();
                        let events = drain_watch(watcher, through)?;
                        self.oracle.watch_delivered(events);
                        self.oracle.watch_check(through)
                    }
                    Err(e) => Err(e),
                },
            },
            Step::Flush => self.durable_point(db.flush()),
            Step::Compact => self.durable_point(db.compact_range(KeyRange::all())),
            Step::Sync => self.durable_point(db.sync()),
            Step::Reopen => {
                self.snapshot = None;
                self.db = None;
                let closed = db.close();
                match closed {
                    Ok(()) => {
                        self.oracle.all_acknowledged_durable();
                        self.reopen()?;
                        return Ok(if self.db.is_some() {
                            Outcome::Done
                        } else {
                            Outcome::Failed
                        });
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(()) => Ok(Outcome::Done),
            Err(e) if self.sim.is_crashed() || self.setup.sabotage != Sabotage::None => {
                let _ = e;
                self.snapshot = None;
                self.db = None;
                Ok(Outcome::Failed)
            }
            Err(e) => Err(format!("{step:?} failed on an uncrashed disk: {e}")),
        }
    }

    fn durable_point(&mut self, result: kvstore::error::Result<()>) -> Result<(), String> {
        match result {
            Ok(()) => {
                self.oracle.all_acknowledged_durable();
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Crashes the disk now, drops the engine (its cleanup fails on the dead disk) and returns
    /// the disk and the oracle.
    pub fn crash(mut self) -> (SimVfs, Oracle) {
        self.sim.crash();
        self.snapshot = None;
        self.watcher = None;
        self.db = None;
        (self.sim, self.oracle)
    }

    /// Drops the engine without crashing (a crash may be armed) and returns the disk and oracle.
    pub fn into_parts(mut self) -> (SimVfs, Oracle) {
        self.snapshot = None;
        self.db = None;
        (self.sim, self.oracle)
    }
}

/// Sends one commit to `db`: a put, a delete or a batch (the one place a [`Mutation`] becomes an
/// engine call, shared by every campaign).
pub fn commit(db: &Db, mutation: &Mutation, opts: WriteOptions) -> kvstore::error::Result<u64> {
    match mutation {
        Mutation::Put(k, v) => db.put_with(k, v, opts),
        Mutation::Delete(k) => db.delete_with(k, opts),
        Mutation::Batch(ops) => {
            let mut batch = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                };
            }
            db.write_with(batch, opts)
        }
        Mutation::Txn {
            compares,
            success,
            failure,
        } => {
            let compare = |(key, expect): &(Vec<u8>, Expect)| {
                let target = match expect {
                    Expect::Value(v) => CompareTarget::Value(v.clone()),
                    Expect::Absent => CompareTarget::Version(0),
                    Expect::Version(n) => CompareTarget::Version(*n),
                };
                Compare::key(key, CompareOp::Equal, target)
            };
            let ops = |ops: &[crate::model::BatchOp]| -> Vec<TxnOp> {
                ops.iter()
                    .map(|(key, value)| match value {
                        Some(value) => TxnOp::Put {
                            key: key.clone(),
                            value: value.clone(),
                        },
                        None => TxnOp::DeleteRange(KeyRange::key(key)),
                    })
                    .collect()
            };
            let txn = Txn {
                compares: compares.iter().map(compare).collect(),
                success: ops(success),
                failure: ops(failure),
            };
            db.txn_with(txn, opts).map(|response| response.revision)
        }
        Mutation::DeleteRange(start, end) => {
            let range = KeyRange::new(Bound::Included(start.clone()), Bound::Excluded(end.clone()));
            db.delete_range_with(range, opts)
                .map(|(revision, _)| revision)
        }
    }
}

/// Runs `steps` on a fresh engine over `sim` until the first failure: the workload of a crash
/// campaign. Returns the oracle (what a recovery may find) or the violation seen on the way.
pub fn run_workload(sim: &SimVfs, setup: &Setup, steps: &[Step]) -> Result<Oracle, String> {
    let mut engine = Engine::open(sim.clone(), setup.clone(), Oracle::new())?;
    for step in steps {
        if engine.step(step)? == Outcome::Failed {
            break;
        }
    }
    Ok(engine.into_parts().1)
}

/// Recovers `sim` (a rebooted disk) and checks it against `oracle`; returns the recovered engine.
pub fn recover(sim: &SimVfs, setup: &Setup, oracle: Oracle) -> Result<Engine, String> {
    let engine = Engine::open(sim.clone(), setup.clone(), oracle)?;
    if !engine.is_open() {
        return Err("recovery on a rebooted, uncrashed disk did not open".to_owned());
    }
    Ok(engine)
}

/// The path of the database directory.
pub fn db_dir() -> &'static Path {
    Path::new(DB_DIR)
}
