//! The peer engines, each behind the cargo feature of the same name (`peers` enables all but
//! RocksDB). Each opens with its documented defaults plus the durability switch the mode needs.
//!
//! Invariants: a peer absent from the build is reported as such by [`open`], never silently
//! replaced.

use std::path::Path;

use crate::BenchResult;
use crate::engine::{Engine, KvstoreEngine, KvstoreTuning, KvstoreTxnEngine, SyncMode, TxnEngine};

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "heed")]
mod heed;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;

/// Every engine the seed bench knows, kvstore first (it is the denominator of every ratio).
pub const ENGINES: &[&str] = &["kvstore", "fjall", "redb", "sled", "heed", "rocksdb"];

/// The engines the `txn` workload knows: those with optimistic transactions, kvstore first.
pub const TXN_ENGINES: &[&str] = &["kvstore", "fjall", "rocksdb"];

/// Whether `name` was compiled into this binary.
pub fn is_built(name: &str) -> bool {
    let built = [
        ("kvstore", true),
        ("fjall", cfg!(feature = "fjall")),
        ("redb", cfg!(feature = "redb")),
        ("sled", cfg!(feature = "sled")),
        ("heed", cfg!(feature = "heed")),
        ("rocksdb", cfg!(feature = "rocksdb")),
    ];
    built.iter().any(|&(engine, yes)| yes && engine == name)
}

/// Opens engine `name` in the empty directory `dir`, configured for `mode` (kvstore: with
/// `kvstore`'s options where it sets them).
pub fn open(
    name: &str,
    dir: &Path,
    mode: SyncMode,
    kvstore: KvstoreTuning,
) -> BenchResult<Box<dyn Engine>> {
    let _ = mode;
    match name {
        "kvstore" => Ok(Box::new(KvstoreEngine::open(dir, kvstore)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall::FjallEngine::open(dir)?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(redb::RedbEngine::open(dir)?)),
        #[cfg(feature = "sled")]
        "sled" => Ok(Box::new(sled::SledEngine::open(dir)?)),
        #[cfg(feature = "heed")]
        "heed" => Ok(Box::new(heed::HeedEngine::open(dir, mode)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(rocksdb::RocksdbEngine::open(dir)?)),
        other if ENGINES.contains(&other) => Err(format!(
            "engine {other} is not in this build: add `--features {other}` (or `peers`)"
        )
        .into()),
        other => Err(format!("unknown engine {other}; known: {}", ENGINES.join(", ")).into()),
    }
}

/// Opens engine `name`'s optimistic transactions in the empty directory `dir`.
pub fn open_txn(name: &str, dir: &Path) -> BenchResult<Box<dyn TxnEngine>> {
    match name {
        "kvstore" => Ok(Box::new(KvstoreTxnEngine::open(dir)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall::FjallTxnEngine::open(dir)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(rocksdb::RocksdbTxnEngine::open(dir)?)),
        other if TXN_ENGINES.contains(&other) => Err(format!(
            "engine {other} is not in this build: add `--features {other}` (or `peers`)"
        )
        .into()),
        other => Err(format!(
            "engine {other} has no optimistic transactions here; the txn workload knows: {}",
            TXN_ENGINES.join(", ")
        )
        .into()),
    }
}
