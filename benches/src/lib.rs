//! # kvstore-benches
//!
//! The measuring kit: the seed's 1M write / read / scan workload side by side with fjall, redb, sled,
//! LMDB (heed) and RocksDB (and its scale sweep, 100k to 10M), the YCSB core workloads on the same
//! engines, contended counters under optimistic transactions beside fjall's and RocksDB's,
//! criterion micro-benchmarks, and the instruction-count regression check that CI runs.
//! Every comparison it prints is a ratio measured in one run.
//!
//! Modules:
//! - [`workload`]: the seed's keys and values (deterministic PRNG), shuffling, latency percentiles.
//! - [`counting`]: [`counting::CountingVfs`], a `Vfs` wrapper that counts the bytes the engine writes.
//! - [`disk`]: the disk's own limit for the seed's write phase: the same bytes and syncs, no engine.
//! - [`engine`]: the small [`engine::Engine`] trait every measured store implements, and kvstore's;
//!   [`engine::TxnEngine`], the same for optimistic transactions.
//! - [`lease`]: the `leasebench` workload: one-key leases granted, kept alive and expired.
//! - [`peers`]: the peer engines, each behind its cargo feature.
//! - [`process`]: what the OS says about this process (peak RSS, bytes written) and a directory.
//! - [`scale`]: the scale sweep's CSV (one row per seed run), written by `seedbench --csv`.
//! - [`scancount`]: the scan-only workload callgrind profiles (write N, one checked scan).
//! - [`shortscan`]: the short-scan workload callgrind profiles (YCSB records, checked short
//!   scans from zipfian keys: workload E's scans).
//! - [`search`]: the `searchbench` workload: contains search via the key index vs a full scan,
//!   and the index's write cost.
//! - [`seed`]: the seed workload's phases and their report.
//! - [`server`]: the `serverbench` load generator: `kvstore serve` against etcd 3.4 through the
//!   `etcd-client` crate, and `etcdctl check perf`.
//! - [`table`]: the Markdown tables of a run, peers as ratios to kvstore.
//! - [`txn`]: the `txn` workload: counters incremented by optimistic transactions from 1-4 threads.
//! - [`watch`]: the `watchbench` workload: watchers on overlapping prefixes while puts commit.
//! - [`ycsb`]: the YCSB core workloads A-F (load, then each mix) from 1 or more threads, with
//!   YCSB's scrambled zipfian, skewed-latest and uniform key choice.
//! - [`workcount`]: the small fixed workload the callgrind regression check counts.
//!
//! Invariants:
//! - The same seed gives the same keys, values and shuffled order on every engine.
//! - Every value read back is compared with the value written; a mismatch is an error, not a number.

pub mod counting;
pub mod disk;
pub mod engine;
pub mod lease;
pub mod peers;
pub mod process;
pub mod report_line;
pub mod scale;
pub mod scancount;
pub mod search;
pub mod seed;
pub mod server;
pub mod shortscan;
pub mod table;
pub mod txn;
pub mod watch;
pub mod workcount;
pub mod workload;
pub mod ycsb;

/// The error type of the benchmark kit: the harness reports and stops, it never recovers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Result of the benchmark kit.
pub type BenchResult<T> = Result<T, BoxError>;
