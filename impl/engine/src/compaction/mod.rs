//! Compaction, the pure half: which files to compact ([`policy`]) and what the merged output
//! becomes ([`merge`]). The worker that reads input SSTs and writes output SSTs comes with the
//! wiring step; it only moves bytes between these decisions.
//!
//! Invariants:
//! - Nothing here performs I/O or keeps state between calls: a decision is a function of the
//!   [`crate::version::Version`] and the [`crate::options::Options`], so the simulator and the
//!   model checker can drive compaction step by step.

pub mod merge;
pub mod policy;

pub use merge::{CompactionStep, CompactionStream, Retention, split_into_files};
pub use policy::{CompactionTask, LevelInputs, STALL_DELAY_MS, StallDecision, pick, stall};
