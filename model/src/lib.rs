//! # kvstore-model
//!
//! The in-memory reference model of kvstore's semantics (`spec/SEMANTICS.md` in executable form) and
//! the crash-recovery campaigns that check the real engine, running on `kvstore_faults::SimVfs`,
//! against it: proptest state machines, stateright exhaustive search and crash-point enumeration.
//!
//! This crate is filled by the model-and-campaigns issue; the engine core has to land first.
