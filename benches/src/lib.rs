//! # kvstore-benches
//!
//! The measuring kit: the seed's 1M write / read / scan workload side by side with fjall, redb, sled,
//! LMDB and RocksDB, criterion micro-benchmarks, and the instruction-count regression check that CI
//! runs. Every figure it reports is a ratio against a baseline measured in the same run.
//!
//! This crate is filled by the benchmarks issue; the engine core has to land first.
