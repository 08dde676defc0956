//! The raft log, the vote, the committed log id, the last purged log id and the last applied
//! membership, durable in their own engine database (`<dir>/raft/`, `spec/FORMAT.md` § 12.2).
//!
//! Invariants:
//! - Every write openraft must see durable before it goes on (an append before its callback,
//!   the vote, a truncation, a purge) is committed with [`Durability::Sync`] before the call
//!   returns or the callback runs.
//! - The stored entries are exactly the indexes `last_purged + 1 ..= last_log` with no gap: an
//!   append writes a contiguous run after the last entry (openraft truncates first when it
//!   overwrites), a truncation deletes a suffix, and a purge records the new last purged log id
//!   and deletes the prefix up to it in one commit (one txn), so a crash never leaves a hole.
//! - An entry is stored under the key of its own index; a read checks that, and every record
//!   is decoded by [`crate::format`], which refuses what § 12 does not allow.

use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kvstore::txn::{Txn, TxnOp};
use kvstore::vfs::Vfs;
use kvstore::{
    Db, Durability, HistoryRetention, KeyRange, LeaseExpiry, Options, ScanOptions, WriteBatch,
    WriteOptions,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    BasicNode, LogId, OptionalSend, RaftLogReader, StorageError, StoredMembership, Vote,
};

use crate::error::{Error, read_logs, write_logs};
use crate::format::{
    self, FormatError, HEADER_VALUE, TAG_COMMITTED, TAG_HEADER, TAG_LOG, TAG_MEMBERSHIP,
    TAG_PURGED, TAG_VOTE, log_key,
};
use crate::{Entry, TypeConfig};

/// Most bytes of entries one append commits in one engine batch: well under the WAL's largest
/// record (128 MiB), so an append of many large entries is split into several durable batches
/// (a crash between them leaves a prefix of the append, which raft allows).
pub const APPEND_BATCH_BYTES_MAX: usize = 32 * 1024 * 1024;

/// The directory of the raft log database under a member's directory.
pub const RAFT_DB_DIR: &str = "raft";

/// The raft log database: a cheap handle (clones share it) that is openraft's log storage and
/// log reader, and where the state machine records the memberships it applies.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: Db,
    path: PathBuf,
}

fn sync() -> WriteOptions {
    WriteOptions {
        durability: Some(Durability::Sync),
        ..WriteOptions::default()
    }
}

impl LogStore {
    /// Opens (creating if needed) the raft log database in `<dir>/raft/` on `vfs`; `options`
    /// are the engine options the member's databases share (durability, lease expiry and
    /// history retention are set here).
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, options: &Options) -> Result<LogStore, Error> {
        let path = dir.join(RAFT_DB_DIR);
        let options = Options {
            durability: Durability::Sync,
            // Only the newest version of each record is ever read.
            history_retention: HistoryRetention::Revisions(1),
            lease_expiry: LeaseExpiry::Manual,
            key_index: false,
            ..options.clone()
        };
        let db = Db::open_with_vfs(vfs, &path, options)?;
        let store = LogStore { db, path };
        match store.db.get(&[TAG_HEADER])? {
            None => {
                store.db.put_with(&[TAG_HEADER], &HEADER_VALUE, sync())?;
            }
            Some(value) if value == HEADER_VALUE => {}
            Some(_) => {
                return Err(store.corrupt(
                    "header",
                    FormatError::invalid("header", "value", "not KVRAFTDB version 1"),
                ));
            }
        }
        Ok(store)
    }

    fn corrupt(&self, what: impl Into<String>, source: FormatError) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            source,
        }
    }

    fn get<T>(
        &self,
        tag: u8,
        what: &str,
        decode: fn(&[u8]) -> Result<T, FormatError>,
    ) -> Result<Option<T>, Error> {
        match self.db.get(&[tag])? {
            Some(bytes) => decode(&bytes).map(Some).map_err(|e| self.corrupt(what, e)),
            None => Ok(None),
        }
    }

    /// The last purged log id, if any.
    pub fn last_purged(&self) -> Result<Option<LogId<u64>>, Error> {
        self.get(TAG_PURGED, "last purged log id", format::decode_log_id)
    }

    /// The last membership the state machine applied (see [`crate::state_machine`]).
    pub fn applied_membership(&self) -> Result<Option<StoredMembership<u64, BasicNode>>, Error> {
        self.get(
            TAG_MEMBERSHIP,
            "applied membership",
            format::decode_stored_membership,
        )
    }

    /// Records `membership` as the last applied, durably.
    pub fn save_applied_membership(
        &self,
        membership: &StoredMembership<u64, BasicNode>,
    ) -> Result<(), Error> {
        let bytes = format::encode_stored_membership(membership);
        self.db.put_with(&[TAG_MEMBERSHIP], &bytes, sync())?;
        Ok(())
    }

    /// The entries with index in `range`, in index order, each checked against its key.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, Error> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Bound::Included(log_key(i).to_vec()),
            Bound::Excluded(&i) => Bound::Excluded(log_key(i).to_vec()),
            Bound::Unbounded => Bound::Included(vec![TAG_LOG]),
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(log_key(i).to_vec()),
            Bound::Excluded(&i) => Bound::Excluded(log_key(i).to_vec()),
            Bound::Unbounded => Bound::Excluded(vec![TAG_LOG + 1]),
        };
        let rows = self
            .db
            .scan(KeyRange::new(start, end), ScanOptions::default())?;
        let mut entries = Vec::new();
        for row in rows {
            let (key, value) = row?;
            entries.push(self.decode_row(&key, &value)?);
        }
        Ok(entries)
    }

    fn decode_row(&self, key: &[u8], value: &[u8]) -> Result<Entry, Error> {
        let index = format::decode_log_key(key).map_err(|e| self.corrupt("log key", e))?;
        let entry = format::decode_entry(value)
            .map_err(|e| self.corrupt(format!("log entry {index}"), e))?;
        if entry.log_id.index != index {
            return Err(self.corrupt(
                format!("log entry {index}"),
                FormatError::invalid(
                    "Entry",
                    "log_id.index",
                    format!("{} under the key of {index}", entry.log_id.index),
                ),
            ));
        }
        Ok(entry)
    }

    /// The newest entry's log id, if any entry is stored.
    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, Error> {
        let range = KeyRange::new(
            Bound::Included(vec![TAG_LOG]),
            Bound::Excluded(vec![TAG_LOG + 1]),
        );
        let options = ScanOptions {
            reverse: true,
            limit: Some(1),
            ..ScanOptions::default()
        };
        match self.db.scan(range, options)?.next() {
            Some(row) => {
                let (key, value) = row?;
                Ok(Some(self.decode_row(&key, &value)?.log_id))
            }
            None => Ok(None),
        }
    }

    /// The log id of entry `index`: the stored entry's, or the last purged one's if that is
    /// `index`; `None` if neither.
    pub fn log_id_at(&self, index: u64) -> Result<Option<LogId<u64>>, Error> {
        if let Some(purged) = self.last_purged()?
            && purged.index == index
        {
            return Ok(Some(purged));
        }
        Ok(self.entries(index..=index)?.first().map(|e| e.log_id))
    }

    fn append_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Result<(), Error> {
        let mut batch = WriteBatch::new();
        let mut bytes = 0usize;
        let mut next: Option<u64> = None;
        for entry in entries {
            let index = entry.log_id.index;
            if next.is_some_and(|next| next != index) {
                return Err(Error::LogInconsistent(format!(
                    "append of entry {index} after {next:?}: not contiguous"
                )));
            }
            next = index.checked_add(1);
            let value = format::encode_entry(&entry);
            if value.len() > format::VALUE_LEN_MAX {
                return Err(Error::CommandTooLarge {
                    len: value.len(),
                    max: format::VALUE_LEN_MAX,
                });
            }
            bytes = bytes.saturating_add(value.len());
            batch.put(&log_key(index), &value);
            if bytes >= APPEND_BATCH_BYTES_MAX {
                self.db.write_with(std::mem::take(&mut batch), sync())?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.db.write_with(batch, sync())?;
        }
        Ok(())
    }

    fn truncate_from(&self, index: u64) -> Result<(), Error> {
        let range = KeyRange::new(
            Bound::Included(log_key(index).to_vec()),
            Bound::Excluded(vec![TAG_LOG + 1]),
        );
        self.db.delete_range_with(range, sync())?;
        Ok(())
    }

    fn purge_to(&self, log_id: &LogId<u64>) -> Result<(), Error> {
        let txn = Txn {
            compares: Vec::new(),
            success: vec![
                TxnOp::Put {
                    key: vec![TAG_PURGED],
                    value: format::encode_log_id(log_id),
                    lease: 0,
                },
                TxnOp::DeleteRange(KeyRange::new(
                    Bound::Included(vec![TAG_LOG]),
                    Bound::Included(log_key(log_id.index).to_vec()),
                )),
            ],
            failure: Vec::new(),
        };
        self.db.txn_with(txn, sync())?;
        Ok(())
    }

    fn put_record(&self, tag: u8, value: &[u8]) -> Result<(), Error> {
        self.db.put_with(&[tag], value, sync())?;
        Ok(())
    }

    /// Closes the database (flush, sync, release the lock).
    pub fn close(self) -> Result<(), Error> {
        self.db.close()?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        self.entries(range).map_err(read_logs)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged_log_id = self.last_purged().map_err(read_logs)?;
        let last_log_id = self
            .last_entry_id()
            .map_err(read_logs)?
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.put_record(TAG_VOTE, &format::encode_vote(vote))
            .map_err(|e| e.storage(openraft::ErrorSubject::Vote, openraft::ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.get(TAG_VOTE, "vote", format::decode_vote)
            .map_err(|e| e.storage(openraft::ErrorSubject::Vote, openraft::ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        match committed {
            Some(log_id) => self
                .put_record(TAG_COMMITTED, &format::encode_log_id(&log_id))
                .map_err(write_logs),
            None => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        self.get(TAG_COMMITTED, "committed log id", format::decode_log_id)
            .map_err(read_logs)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        match self.append_entries(entries) {
            Ok(()) => {
                // Durable (synced) before openraft is told.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_logs(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.truncate_from(log_id.index).map_err(write_logs)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.purge_to(&log_id).map_err(write_logs)
    }
}
