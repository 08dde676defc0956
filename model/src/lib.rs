//! # kvstore-model
//!
//! The in-memory reference model of kvstore's semantics (`spec/SEMANTICS.md` in executable form) and
//! the equipment of the crash-recovery campaigns that check the real engine, running on
//! `kvstore_faults::SimVfs`, against it.
//!
//! - [`Model`]: a `BTreeMap` of key to (value, revision, lease), one revision per commit that
//!   writes, atomic batches, every version down to the horizon, the granted leases, the last
//!   commit stamp.
//! - [`commit`](mod@commit): a [`Mutation`] as an engine call, and the stamp a campaign's write carries.
//! - [`Oracle`]: the model's state at the last durable point plus the trace issued after it;
//!   a recovered database must equal the state after some prefix of that trace.
//! - [`Engine`]: the real `Db` on a `SimVfs` driven step by step beside an oracle.
//! - [`reads`]: a whole engine state read back (with its leases), reads at older revisions and
//!   snapshots, compared with the model; `watching`: the campaigns' watch.
//! - [`Sabotaged`]: a `Vfs` with a deliberate durability bug, for negative controls.
//! - [`linearizable`]: the linearizability checker of client histories (the server's crash test).
//! - [`Budget`]: CI or deep (`KVSTORE_CAMPAIGN=deep`).
//! - [`campaign_catches`]: the negative controls' check that a planted bug is reported.
//!
//! The campaigns themselves are the integration tests: `tests/crash_points.rs` (every I/O op of
//! scripted workloads, every persistence model, crashes during recovery), `tests/state_machine.rs`
//! (proptest), `tests/stateright.rs` (exhaustive search), `tests/stateright_txn.rs` (exhaustive
//! search over two clients incrementing counters in optimistic transactions, with crashes),
//! `tests/stateright_lease.rs` (exhaustive search over lease grants, leased puts, expiries and a
//! watcher's resume, with crashes; its planted bugs: `tests/lease_sabotage.rs`),
//! `tests/negative_controls.rs` (planted durability bugs that must be reported),
//! `tests/failpoint_sabotage.rs` and `tests/txn_sabotage.rs` (bugs planted in the engine by
//! failpoints, feature `failpoints`), `tests/real_crash.rs` (SIGKILL of a real process
//! on the OS filesystem), `tests/linearizable.rs` (the linearizability checker on hand-written and
//! generated histories), `tests/corruption.rs` (a bit flipped in every byte of every file) and
//! `tests/semantics.rs` (point checks of the spec).

pub mod budget;
pub mod commit;
pub mod harness;
pub mod linearizable;
pub mod model;
pub mod oracle;
pub mod reads;
pub mod rng;
pub mod sabotage;
mod watching;

pub use budget::Budget;
pub use harness::{
    CLOCK_MS, Engine, Outcome, ReadError, Setup, Step, campaign_options, commit, observe, read_all,
    recover, run_workload,
};
pub use model::{BatchOp, Cell, Expect, Model, Mutation, Refusal, WatchedEvent};
pub use oracle::Oracle;
pub use sabotage::{Sabotage, Sabotaged, campaign_catches};
