//! The state machine: the engine database itself, one generation at a time (see
//! [`generation`]), with the applied log id kept by the engine's commit stamps.
//!
//! **Applied log id.** Every durable record that says "entry `i` is applied" is written only
//! after every entry before `i` was applied, and synced before the next entry starts:
//! - an engine commit stamped `i` (a command's writes, module `apply`),
//! - the applied membership record in the raft log database (a membership entry, which writes
//!   nothing to the engine),
//! - the state pointer naming an installed snapshot whose last log id is `i`.
//!
//! So after any crash the applied log id is the greatest of the three, and every entry after it
//! that was applied before the crash wrote nothing durable (a blank entry, a refusal, a
//! read-only txn, a compaction seen again): applying it again changes nothing. That is why the
//! membership record need not share a commit with the engine's writes: it is one more marker of
//! the same prefix, never ahead of what the engine holds.
//!
//! Invariants:
//! - Entries are applied in index order, each one's durable effect complete (synced) before the
//!   next starts; openraft is answered only after the whole batch is.
//! - Apply, snapshot build and install exclude each other (one lock), so a snapshot's data and
//!   its last log id are taken at the same point.
//! - Followers never expire leases by themselves: the engine is opened with
//!   [`LeaseExpiry::Manual`]; a revocation arrives as a [`crate::Command::LeaseRevoke`] entry.

pub(crate) mod apply;
pub mod generation;
mod snapshot;
mod stamp;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kvstore::vfs::Vfs;
use kvstore::{Db, Durability, LeaseExpiry, Options};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, OptionalSend, StorageError, StorageIOError,
    StoredMembership,
};

pub use snapshot::SnapshotBuilder;

use crate::command::Response;
use crate::error::{Error, read_sm, write_sm};
use crate::format::StatePointer;
use crate::log_store::LogStore;
use crate::{Entry, SnapshotData, SnapshotMeta, TypeConfig};

/// The applied log id and the membership as of it.
pub type Applied = (Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

/// The test hook's "no failure planned".
const NEVER: u64 = u64::MAX;

/// A snapshot kept to send to lagging members: its meta and its bytes (an export stream).
#[derive(Clone, Debug)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) bytes: Vec<u8>,
}

/// What apply, build and install share, under one lock.
#[derive(Debug)]
pub(crate) struct Live {
    /// The live generation's database.
    pub(crate) db: Db,
    /// What `SM_CURRENT` says.
    pub(crate) pointer: StatePointer,
    /// The newest snapshot built or installed.
    pub(crate) current: Option<StoredSnapshot>,
    /// Snapshots built by this process, for their ids.
    pub(crate) built: u64,
}

/// The state machine's shared parts: cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) live: Arc<Mutex<Live>>,
    pub(crate) log: LogStore,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    /// Test hook: fail (as a crash would) right after applying this entry index ([`NEVER`]:
    /// never).
    pub(crate) fail_after: Arc<AtomicU64>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic while holding the lock is a bug already reported; the state is still the
        // engine's, which is consistent on its own.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The applied log id and membership: see the module doc.
    pub(crate) fn applied(&self, live: &Live) -> Result<Applied, Error> {
        let installed = live.pointer.installed.as_ref();
        let mut membership = StoredMembership::default();
        for candidate in [
            self.log.applied_membership()?,
            installed.map(|meta| meta.last_membership.clone()),
        ]
        .into_iter()
        .flatten()
        {
            if index_of(candidate.log_id()) >= index_of(membership.log_id()) {
                membership = candidate;
            }
        }
        let mut applied = *membership.log_id();
        if let Some(last) = installed.and_then(|meta| meta.last_log_id)
            && Some(last.index) > index_of(&applied)
        {
            applied = Some(last);
        }
        let stamp = stamp::last_stamp(&live.db);
        if stamp > 0 && Some(stamp) > index_of(&applied) {
            applied = Some(self.log.log_id_at(stamp)?.ok_or_else(|| {
                Error::LogInconsistent(format!(
                    "the state machine holds entry {stamp}, which the log no longer has"
                ))
            })?);
        }
        Ok((applied, membership))
    }
}

fn index_of(log_id: &Option<LogId<u64>>) -> Option<u64> {
    log_id.as_ref().map(|id| id.index)
}

/// The engine options of a state machine generation: `options` with syncing commits and no
/// lease expiry of its own.
fn state_options(options: &Options) -> Options {
    Options {
        durability: Durability::Sync,
        lease_expiry: LeaseExpiry::Manual,
        key_index: false,
        ..options.clone()
    }
}

/// openraft's state machine over the engine.
#[derive(Debug)]
pub struct StateMachine {
    shared: Shared,
}

/// A handle on the state machine's live database, valid across snapshot installs.
#[derive(Clone, Debug)]
pub struct StateHandle {
    shared: Shared,
}

impl StateHandle {
    /// The live generation's database (a clone: after a snapshot install it is closed, and a
    /// new call returns the new one).
    pub fn db(&self) -> Db {
        self.shared.lock().db.clone()
    }

    /// The applied log id as it would be recovered now (see the module doc).
    pub fn durable_applied(&self) -> Result<Option<LogId<u64>>, Error> {
        let live = self.shared.lock();
        Ok(self.shared.applied(&live)?.0)
    }

    /// The live generation number.
    pub fn generation(&self) -> u64 {
        self.shared.lock().pointer.generation
    }

    /// Test hook: the next time entry `index` is applied, fail right after its writes are
    /// durable and before openraft is told, as a crash there would.
    #[doc(hidden)]
    pub fn fail_after_applying(&self, index: u64) {
        self.shared.fail_after.store(index, Ordering::SeqCst);
    }
}

impl StateMachine {
    /// Opens the live generation named by `<dir>/SM_CURRENT`, emptying leftovers of others;
    /// `log` is the member's raft log database (where memberships are recorded).
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: &Options,
        log: LogStore,
    ) -> Result<StateMachine, Error> {
        let pointer = generation::read_pointer(vfs.as_ref(), dir)?;
        generation::clear_others(vfs.as_ref(), dir, pointer.generation)?;
        let options = state_options(options);
        let db = Db::open_with_vfs(
            Arc::clone(&vfs),
            generation::generation_dir(dir, pointer.generation),
            options.clone(),
        )?;
        let live = Live {
            db,
            pointer,
            current: None,
            built: 0,
        };
        Ok(StateMachine {
            shared: Shared {
                live: Arc::new(Mutex::new(live)),
                log,
                vfs,
                dir: dir.to_path_buf(),
                options,
                fail_after: Arc::new(AtomicU64::new(NEVER)),
            },
        })
    }

    /// A handle that outlives this value (openraft owns the state machine once started).
    pub fn handle(&self) -> StateHandle {
        StateHandle {
            shared: self.shared.clone(),
        }
    }

    /// Applies one entry; an error is this member's (I/O), to be reported as the apply of
    /// `entry`'s log id failing.
    fn apply_entry(&self, live: &Live, entry: Entry) -> Result<Response, Error> {
        let log_id = entry.log_id;
        let response = match entry.payload {
            EntryPayload::Blank => Response::Empty,
            EntryPayload::Normal(command) => {
                apply::apply_command(&live.db, log_id.index, &command)?
            }
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(log_id), membership);
                self.shared.log.save_applied_membership(&stored)?;
                Response::Empty
            }
        };
        if self.shared.fail_after.load(Ordering::SeqCst) == log_id.index {
            self.shared.fail_after.store(NEVER, Ordering::SeqCst);
            return Err(Error::Raft(format!(
                "simulated crash after applying entry {log_id}"
            )));
        }
        Ok(response)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let live = self.shared.lock();
        self.shared.applied(&live).map_err(read_sm)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let live = self.shared.lock();
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            match self.apply_entry(&live, entry) {
                Ok(response) => responses.push(response),
                Err(e) => return Err(StorageIOError::apply(log_id, AnyError::new(&e)).into()),
            }
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.shared.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError<u64>> {
        Ok(Box::new(std::io::Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError<u64>> {
        snapshot::install(&self.shared, meta, snapshot.into_inner()).map_err(write_sm)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self
            .shared
            .lock()
            .current
            .as_ref()
            .map(|s| openraft::Snapshot {
                meta: s.meta.clone(),
                snapshot: Box::new(std::io::Cursor::new(s.bytes.clone())),
            }))
    }
}
