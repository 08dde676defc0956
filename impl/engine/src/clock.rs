//! [`Clock`]: where commit timestamps (`created_at_ms`) and lease deadlines come from.
//!
//! Invariants:
//! - The engine reads the time only through the [`Clock`] in [`crate::options::Options`], so a
//!   test or a campaign that installs a [`FixedClock`], a [`LogicalClock`] or a [`ManualClock`]
//!   gets the same bytes from the same operations.
//! - Timestamps are informational (they are stored, never compared for correctness): a clock that
//!   goes backwards cannot break recovery or reads. Lease deadlines are read from it and never
//!   stored: a clock that jumps makes leases expire early or late, never breaks recovery.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of unix milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock stopped at one instant.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A clock that advances by one millisecond each time it is read, from a given start.
#[derive(Debug, Default)]
pub struct LogicalClock(AtomicU64);

impl LogicalClock {
    /// A clock whose first reading is `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        LogicalClock(AtomicU64::new(start_ms))
    }
}

impl Clock for LogicalClock {
    fn now_ms(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// A clock that stands still until told to move: for tests that decide when leases expire.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock(AtomicU64::new(start_ms))
    }

    /// Moves the clock `ms` forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A shared clock as [`crate::options::Options`] holds it. Two handles are equal iff they share
/// the same clock object.
#[derive(Clone, Debug)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl SharedClock {
    /// Wraps `clock`.
    pub fn new(clock: impl Clock + 'static) -> Self {
        SharedClock(Arc::new(clock))
    }

    /// The current time of the shared clock, unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock::new(SystemClock)
    }
}

impl PartialEq for SharedClock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedClock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_logical_clocks_are_deterministic() {
        assert_eq!(FixedClock(7).now_ms(), 7);
        let c = LogicalClock::new(10);
        assert_eq!((c.now_ms(), c.now_ms()), (10, 11));
        let m = ManualClock::new(5);
        m.advance(3);
        assert_eq!((m.now_ms(), m.now_ms()), (8, 8));
        assert!(SystemClock.now_ms() > 1_600_000_000_000);
        let a = SharedClock::default();
        assert_eq!(a, a.clone());
        assert_ne!(a, SharedClock::default());
    }
}
