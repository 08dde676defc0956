//! [`Engine`]: the real `kvstore::Db` on a `SimVfs`, driven step by step beside an [`Oracle`].
//!
//! Invariants:
//! - Deterministic: inline background work and a fixed clock, so the same steps on the same seed
//!   issue the same I/O trace (what crash-point enumeration needs).
//! - Every read is compared with the model while no commit is in doubt; every acknowledged revision
//!   is compared with the model's; every recovery is checked by the oracle (full scan, each key's
//!   value and revision, the last revision, and the last stamp: every write carries
//!   [`stamp_for`]).
//! - At most one snapshot is held ([`Step::TakeSnapshot`]), beside the model's state at its
//!   revision; it is released by [`Step::CheckSnapshot`], and dropped whenever the engine closes
//!   (reopen, failure, crash).
//! - An error is expected only once the disk has crashed (or a sabotage is installed); otherwise
//!   it is a violation.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use kvstore::clock::{Clock, FixedClock, ManualClock, SharedClock};
use kvstore::vfs::Vfs;
use kvstore::{
    BackgroundMode, Db, Durability, HistoryRetention, KeyRange, LeaseExpiry, Options, ScanOptions,
    WriteOptions,
};
use kvstore_faults::SimVfs;

pub use crate::commit::{commit, stamp_for};
use crate::model::{Model, Mutation, Refusal, RevisionError};
use crate::oracle::Oracle;
use crate::reads::cell;
pub use crate::reads::{
    HISTORY_READS_MAX, ReadError, check_history, check_read_at, check_snapshot, check_visit,
    observe, read_all,
};
use crate::sabotage::{Sabotage, Sabotaged};
use crate::watching::{drain_watch, peek_watch, watch_request};
use kvstore::watch::Watcher;

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
        // Leases expire only at `Step::Expire`, by the engine's manual clock.
        lease_expiry: LeaseExpiry::Manual,
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
    /// `keep_alive(lease)`, compared with the model (its TTL, or `LeaseNotFound` for a lease
    /// not granted or past its deadline).
    KeepAlive(u64),
    /// Moves the engine's clock this many milliseconds forward.
    Advance(u64),
    /// `expire_leases()`: it must revoke exactly the leases the model says are due, in order,
    /// each at the revision the model predicts.
    Expire,
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
    /// The engine's clock ([`Step::Advance`] moves it): [`CLOCK_MS`] at the start of each
    /// engine (a recovery starts it again, as a reboot may).
    clock: Arc<ManualClock>,
}

impl Engine {
    /// Opens (recovering) the database on `sim` and checks what it holds against `oracle`. If the
    /// disk crashes during the open, the engine is returned closed ([`Engine::is_open`] false).
    pub fn open(sim: SimVfs, setup: Setup, oracle: Oracle) -> Result<Engine, String> {
        Engine::open_at(sim, setup, oracle, CLOCK_MS)
    }

    /// [`Engine::open`] with the engine's clock at `now_ms` (a search that carries the time
    /// from step to step).
    pub fn open_at(
        sim: SimVfs,
        setup: Setup,
        oracle: Oracle,
        now_ms: u64,
    ) -> Result<Engine, String> {
        let mut engine = Engine {
            sim,
            setup,
            db: None,
            oracle,
            recoveries: 0,
            snapshot: None,
            watcher: None,
            clock: Arc::new(ManualClock::new(now_ms)),
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
        let options = Options {
            clock: SharedClock(Arc::clone(&self.clock) as Arc<dyn Clock>),
            ..self.setup.options.clone()
        };
        let db = match Db::open_with_vfs(self.setup.vfs(&self.sim), DB_DIR, options) {
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
        self.oracle.leases_restarted(self.clock.now_ms());
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

    /// The engine's clock now.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
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
                let refusal = match self.oracle.in_doubt() {
                    true => None,
                    false => self.oracle.current().refusal(mutation),
                };
                let stamp = stamp_for(self.oracle.current());
                self.oracle
                    .issue_stamped(mutation.clone(), stamp.unwrap_or(0));
                let opts = WriteOptions {
                    durability: Some(durability),
                    stamp,
                    ..WriteOptions::default()
                };
                match (commit(&db, mutation, opts), refusal) {
                    (Ok(revision), None) => {
                        self.oracle
                            .acknowledge(revision, durability != Durability::Buffered)?;
                        if let Mutation::Grant(id, ttl_ms) = mutation {
                            self.oracle.lease_granted(*id, *ttl_ms, self.clock.now_ms());
                        }
                        Ok(())
                    }
                    (Err(kvstore::Error::LeaseNotFound { .. }), Some(Refusal::LeaseNotFound))
                    | (Err(kvstore::Error::LeaseExists { .. }), Some(Refusal::LeaseExists)) => {
                        self.oracle.refused()
                    }
                    (Ok(_), Some(refusal)) => {
                        return Err(format!(
                            "{mutation:?} succeeded, the model says {refusal:?}"
                        ));
                    }
                    (Err(e), _) => Err(e.to_string()),
                }
            }
            Step::KeepAlive(id) => self.keep_alive(&db, *id),
            Step::Advance(ms) => {
                self.clock.advance(*ms);
                Ok(())
            }
            Step::Expire => self.expire(&db),
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
                            check_visit(&db, expected)
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

    /// [`Step::KeepAlive`]. A mismatch with the model is an `Err`: a violation unless the disk
    /// crashed.
    fn keep_alive(&mut self, db: &Db, id: u64) -> Result<(), String> {
        let got = db.keep_alive(id);
        if self.oracle.in_doubt() {
            return got.map(|_| ()).map_err(|e| e.to_string());
        }
        let want = self.oracle.keep_alive(id, self.clock.now_ms());
        match (got, want) {
            (Ok(ttl), Some(ttl_ms)) if ttl == std::time::Duration::from_millis(ttl_ms) => Ok(()),
            (Err(kvstore::Error::LeaseNotFound { .. }), None) => Ok(()),
            (Err(e), _) if self.sim.is_crashed() => Err(e.to_string()),
            (got, want) => Err(format!(
                "keep_alive({id}) returned {got:?}, the model says {want:?} (TTL ms, or not found)"
            )),
        }
    }

    /// [`Step::Expire`].
    fn expire(&mut self, db: &Db) -> Result<(), String> {
        let due = self.oracle.due(self.clock.now_ms());
        let durable = self.setup.options.durability != Durability::Buffered;
        match db.expire_leases() {
            Ok(revoked) => {
                let ids: Vec<u64> = revoked.iter().map(|(id, _)| *id).collect();
                if !self.oracle.in_doubt() && ids != due {
                    return Err(format!(
                        "expire_leases() revoked {ids:?}, the model says {due:?} are due"
                    ));
                }
                for (id, revision) in revoked {
                    self.oracle.issue(Mutation::Revoke(id));
                    self.oracle.acknowledge(revision, durable)?;
                }
                Ok(())
            }
            Err(e) => {
                // Each revocation may or may not have committed.
                for id in due {
                    self.oracle.issue(Mutation::Revoke(id));
                }
                Err(e.to_string())
            }
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
