//! Leases: time-limited grants that keys attach to, as etcd has them (`spec/SEMANTICS.md`,
//! "Leases"). The engine's side is [`crate::Db::grant`] and its siblings; this module holds the
//! public shapes and the lease table the commit pipeline keeps.
//!
//! Invariants:
//! - A lease id is `1..=LEASE_ID_MAX`; 0 means "no lease" everywhere (a version's `lease`, a
//!   put's lease).
//! - Every live key whose newest version names a lease names one that is granted and not
//!   revoked: a put naming another is refused before it is logged, and a revocation deletes
//!   every key attached to the lease in the same revision.
//! - A lease's deadline is not durable: after a restart every lease has its whole TTL again,
//!   counted from the open.

mod table;

use std::time::Duration;

pub use crate::format::{LEASE_ID_MAX, LEASE_TTL_MS_MAX};
pub(crate) use table::{LeaseEffect, LeaseTable};

/// Most key bytes (each key counted with 8 bytes of framing) attached to one lease, so that its
/// revocation always fits one WAL record.
pub const LEASE_KEY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What [`crate::Db::time_to_live`] tells of a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease's id.
    pub id: u64,
    /// The TTL it was granted with.
    pub granted_ttl: Duration,
    /// The time left before its deadline by the engine's clock (zero once the deadline passed,
    /// until the expiry revokes it).
    pub remaining: Duration,
    /// The live keys attached to it, in key order.
    pub keys: Vec<Vec<u8>>,
}

/// How expired leases are revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseExpiry {
    /// A thread revokes the leases whose deadline passed, checking this often (and a lease is
    /// revoked at most this long after its deadline, plus the commit's time).
    Every(Duration),
    /// Only [`crate::Db::expire_leases`] revokes them: for tests and simulations that drive the
    /// clock themselves.
    Manual,
}

impl Default for LeaseExpiry {
    /// Checked every 100 ms.
    fn default() -> Self {
        LeaseExpiry::Every(Duration::from_millis(100))
    }
}
