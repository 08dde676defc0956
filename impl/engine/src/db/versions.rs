//! [`VersionSet`]: what readers see (the memtables and the live SST files) and how it changes:
//! a memtable frozen, an edit persisted in the manifest and installed.
//!
//! Invariants:
//! - `state` holds what readers need, swapped atomically: the active memtable, the frozen ones
//!   (oldest first, each with the WAL offset where its records end) and the [`Tree`] (live
//!   version, its files, the shared cache of open tables). A reader copies the `Arc`s under the
//!   lock and reads without it; the lock is a leaf (nothing else is taken while it is held) and
//!   is never held across I/O.
//! - A commit's entries move only from the active memtable to a frozen one and from a frozen
//!   one to the tree, each move one swap under `state`: every source a reader copied still holds
//!   everything committed up to the revision it read before copying.
//! - Every entry in the tree has a revision at or below the published one: a frozen memtable is
//!   flushed only once every commit in it is published (`Inner::flush_frozen`).
//! - The manifest is persisted before its version is installed, and installs are serialized by
//!   the caller (the work lock), so the installed version is always the durable one.
//! - `next_file_number` only grows, and every number it handed out is below it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::format::manifest::{LeaseMeta, sst_file_name};
use crate::manifest;
use crate::memtable::MemTable;
use crate::sst::Table;
use crate::version::{FileMeta, Version, VersionEdit};
use crate::vfs::Vfs;

use super::inner::lock;
use super::pipeline::Writer;
use super::tables::{LiveFile, TableCache};

/// See the module doc.
#[derive(Debug)]
pub(crate) struct VersionSet {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    state: Mutex<State>,
    next_file_number: AtomicU64,
}

impl VersionSet {
    /// The version set of a database in `dir` whose memtable is `active` and whose files are
    /// `tree`.
    pub(crate) fn new(vfs: Arc<dyn Vfs>, dir: &Path, active: MemTable, tree: Tree) -> Self {
        let next_file_number = AtomicU64::new(tree.version.next_file_number());
        VersionSet {
            vfs,
            dir: dir.to_path_buf(),
            state: Mutex::new(State::new(Arc::new(active), Arc::new(tree))),
            next_file_number,
        }
    }

    /// The current tree.
    pub(crate) fn tree(&self) -> Arc<Tree> {
        Arc::clone(&lock(&self.state).tree)
    }

    /// A read view at `revision`. REQUIRES: every commit up to `revision` was applied before
    /// this call (the caller read the published revision first; see the module doc).
    pub(crate) fn read_view(&self, revision: u64) -> ReadView {
        let state = lock(&self.state);
        ReadView {
            revision,
            mems: Arc::clone(&state.mems),
            tree: Arc::clone(&state.tree),
        }
    }

    /// Where new commits go.
    pub(crate) fn active(&self) -> Arc<MemTable> {
        Arc::clone(&lock(&self.state).active)
    }

    /// Frozen memtable `index` (0: the oldest), if there is one.
    pub(crate) fn frozen(&self, index: usize) -> Option<Frozen> {
        lock(&self.state).frozen.get(index).cloned()
    }

    /// The current tree and how many frozen memtables wait for a flush.
    pub(crate) fn backlog(&self) -> (Arc<Tree>, usize) {
        let state = lock(&self.state);
        (Arc::clone(&state.tree), state.frozen.len())
    }

    /// The bytes of every memtable (active and frozen) and how many are frozen.
    pub(crate) fn memtable_bytes(&self) -> (u64, usize) {
        let state = lock(&self.state);
        let bytes = state.mems.iter().fold(0u64, |sum, mem| {
            sum.saturating_add(mem.approximate_size_bytes())
        });
        (bytes, state.frozen.len())
    }

    /// Freezes the active memtable (its records end at WAL offset `wal_boundary`; the writer's
    /// state then is `writer`) and starts an empty one. REQUIRES: the caller holds the
    /// pipeline's writer lock (`writer`), so no commit is half-inserted.
    pub(crate) fn freeze_active(&self, wal_boundary: u64, writer: &Writer) {
        let mut state = lock(&self.state);
        let frozen = Frozen {
            mem: Arc::clone(&state.active),
            wal_boundary,
            last_revision: writer.last_revision,
            last_stamp: writer.last_stamp,
            turns: writer.turns_taken(),
            leases: writer.leases.granted(),
        };
        state.freeze(frozen, Arc::new(MemTable::new()));
    }

    /// Allocates a file number never used before in this database.
    pub(crate) fn allocate_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::AcqRel)
    }

    /// An edit adding `files` and moving `next_file_number` past every number allocated so far.
    pub(crate) fn edit_adding(
        &self,
        version: &Version,
        files: impl Iterator<Item = FileMeta>,
    ) -> VersionEdit {
        let next = self
            .next_file_number
            .load(Ordering::Acquire)
            .max(version.next_file_number());
        VersionEdit {
            add: files.collect(),
            next_file_number: Some(next),
            ..VersionEdit::default()
        }
    }

    /// Persists `tree.version + edit` as the manifest, then installs it with the readers of
    /// `added` cached (dropping the oldest frozen memtable if `drop_frozen`). The files it no
    /// longer lists are marked obsolete: the last tree listing one removes it. REQUIRES: the
    /// caller serializes installs (the work lock) and `tree` is the current tree.
    pub(crate) fn install(
        &self,
        tree: &Tree,
        edit: &VersionEdit,
        added: Vec<(FileMeta, Arc<Table>)>,
        drop_frozen: bool,
    ) -> Result<()> {
        let version = tree.version.apply(edit)?;
        manifest::persist(
            self.vfs.as_ref(),
            &self.dir,
            &manifest::to_manifest(&version),
        )?;
        for (meta, table) in added {
            tree.tables.insert(meta.number, table);
        }
        // A file both removed and added changed level (a trivial move): it stays live.
        let next = Tree::new(version, &tree.files, Arc::clone(&tree.tables));
        for (number, file) in &tree.files {
            if !next.files.contains_key(number) {
                file.mark_obsolete();
            }
        }
        let mut state = lock(&self.state);
        state.tree = Arc::new(next);
        if drop_frozen {
            state.drop_oldest_frozen();
        }
        Ok(())
    }
}

/// The live SST files and where their readers come from.
#[derive(Debug)]
pub(crate) struct Tree {
    /// Which files are live, by level.
    pub(crate) version: Version,
    /// Every file of `version`, by file number (Fx-hashed: a point read looks up one or more
    /// tables, and file numbers need no seeded hash). Shared with the trees that list it too;
    /// the last tree holding an obsolete file removes it (see [`LiveFile`]).
    pub(crate) files: FxHashMap<u64, Arc<LiveFile>>,
    /// The open readers, at most `Options::max_open_tables` (shared by every tree).
    pub(crate) tables: Arc<TableCache>,
}

impl Tree {
    /// The reader of live file `number`, opened (and checked against the manifest) if it is not
    /// open.
    pub(crate) fn table(&self, dir: &Path, number: u64) -> Result<Arc<Table>> {
        let file = self.files.get(&number).ok_or_else(|| Error::Corruption {
            file: dir.join(sst_file_name(number)),
            offset: 0,
            what: "live file has no entry in the tree".to_owned(),
        })?;
        file.table()
    }

    /// The tree of `version`: its files' entries are taken from `previous` where they are live
    /// there too, and made for the others.
    pub(crate) fn new(
        version: Version,
        previous: &FxHashMap<u64, Arc<LiveFile>>,
        tables: Arc<TableCache>,
    ) -> Tree {
        let mut files = FxHashMap::default();
        for level in 0..version.num_levels() {
            for meta in version.files(level) {
                let file = previous.get(&meta.number).map_or_else(
                    || Arc::new(LiveFile::new(Arc::clone(meta), Arc::clone(&tables))),
                    Arc::clone,
                );
                files.insert(meta.number, file);
            }
        }
        Tree {
            version,
            files,
            tables,
        }
    }
}

/// A memtable frozen for flushing.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    /// Its entries.
    pub(crate) mem: Arc<MemTable>,
    /// The WAL offset where its records end (the segment base after the rotation that froze it).
    pub(crate) wal_boundary: u64,
    /// The last revision assigned when it was frozen.
    pub(crate) last_revision: u64,
    /// The highest stamp of the WAL records below `wal_boundary` (0 if none).
    pub(crate) last_stamp: u64,
    /// The publishing turns taken when it was frozen: once they are published, so is every
    /// commit in it.
    pub(crate) turns: u64,
    /// The leases granted by the WAL records below `wal_boundary`.
    pub(crate) leases: Arc<[LeaseMeta]>,
}

/// What readers see, swapped under one lock.
#[derive(Debug)]
struct State {
    /// Where new commits go.
    active: Arc<MemTable>,
    /// Frozen memtables not yet in an SST, oldest first.
    frozen: Vec<Frozen>,
    /// Live files.
    tree: Arc<Tree>,
    /// The memtables a read consults, newest first: `active`, then `frozen` newest first.
    /// Rebuilt by every change of either, so a snapshot copies one `Arc` instead of a list.
    mems: Arc<[Arc<MemTable>]>,
}

impl State {
    /// The state of a database whose memtable is `active` and whose files are `tree`.
    fn new(active: Arc<MemTable>, tree: Arc<Tree>) -> State {
        let mut state = State {
            active,
            frozen: Vec::new(),
            tree,
            mems: Arc::new([]),
        };
        state.rebuild_mems();
        state
    }

    /// Freezes the active memtable as `frozen` (the newest frozen) and makes `active` the new one.
    fn freeze(&mut self, frozen: Frozen, active: Arc<MemTable>) {
        debug_assert!(Arc::ptr_eq(&frozen.mem, &self.active));
        self.frozen.push(frozen);
        self.active = active;
        self.rebuild_mems();
    }

    /// Drops the oldest frozen memtable (its entries are now in the tree), if any.
    fn drop_oldest_frozen(&mut self) {
        if !self.frozen.is_empty() {
            self.frozen.remove(0);
            self.rebuild_mems();
        }
    }

    fn rebuild_mems(&mut self) {
        let newest_first = self.frozen.iter().rev().map(|f| Arc::clone(&f.mem));
        self.mems = std::iter::once(Arc::clone(&self.active))
            .chain(newest_first)
            .collect();
    }
}

/// A consistent read view: every source a read consults, and the newest revision it may read at.
#[derive(Debug)]
pub(crate) struct ReadView {
    pub(crate) revision: u64,
    /// Active memtable first, then frozen ones newest first.
    pub(crate) mems: Arc<[Arc<MemTable>]>,
    pub(crate) tree: Arc<Tree>,
}
