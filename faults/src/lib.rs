//! # kvstore-faults
//!
//! `SimVfs`: an in-memory implementation of `kvstore::vfs::Vfs` that crashes at any numbered I/O
//! operation, tears writes, loses unsynced data and lies about fsync, deterministically from a seed.
