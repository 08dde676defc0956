//! [`Readers`]: the history horizon in memory and the registry of revisions live readers pin;
//! together they give compaction its floor.
//!
//! Invariants:
//! - `horizon` only grows, and is at or below the newest committed revision.
//! - A revision `r` is pinned only while `r >= horizon` held at the moment of pinning (checked
//!   under the same lock that raises the horizon), so a pinned read never starts below what the
//!   tables still hold.
//! - [`Readers::floor`] is the smallest of the horizon and every pinned revision: flush and
//!   compaction keep every version above it plus the newest one at or below it, so a read at any
//!   revision `>= floor` (every pinned one, every one at or above the horizon) sees exactly what
//!   it saw when it started. A read at the newest revision needs no pin: its versions are kept
//!   whatever the floor.
//! - Pins are counted per revision and removed when their [`Pin`] drops; the registry holds at
//!   most one entry per distinct pinned revision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

use super::inner::lock;

#[derive(Debug, Default)]
struct Registry {
    horizon: u64,
    /// Pinned revision -> number of live pins.
    pinned: BTreeMap<u64, usize>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub(crate) struct Readers {
    registry: Mutex<Registry>,
}

impl Readers {
    /// The registry of a database whose durable horizon is `horizon`.
    pub(crate) fn new(horizon: u64) -> Arc<Readers> {
        Arc::new(Readers {
            registry: Mutex::new(Registry {
                horizon,
                pinned: BTreeMap::new(),
            }),
        })
    }

    /// The oldest revision reads may ask for.
    pub(crate) fn horizon(&self) -> u64 {
        lock(&self.registry).horizon
    }

    /// The oldest revision any reader may still read at (see the module doc).
    pub(crate) fn floor(&self) -> u64 {
        let registry = lock(&self.registry);
        // Sabotage for negative controls (feature `failpoints`): forget the pinned revisions.
        fail::fail_point!("readers::ignore_pins", |_| registry.horizon);
        registry
            .pinned
            .keys()
            .next()
            .map_or(registry.horizon, |&oldest| oldest.min(registry.horizon))
    }

    /// Pins `revision` for a read; `Err(Compacted)` below the horizon.
    pub(crate) fn pin(self: &Arc<Self>, revision: u64) -> Result<Pin> {
        let mut registry = lock(&self.registry);
        if revision < registry.horizon {
            return Err(Error::Compacted {
                requested: revision,
                horizon: registry.horizon,
            });
        }
        let count = registry.pinned.entry(revision).or_insert(0);
        *count = count.saturating_add(1);
        Ok(Pin {
            readers: Arc::clone(self),
            revision,
        })
    }

    /// Raises the horizon to `horizon` (a no-op if it is not above the current one).
    /// REQUIRES: the new horizon is durable (in the manifest).
    pub(crate) fn raise_horizon(&self, horizon: u64) {
        let mut registry = lock(&self.registry);
        registry.horizon = registry.horizon.max(horizon);
    }
}

/// A pinned revision: while it lives, compaction keeps what a read at `revision` sees.
#[derive(Debug)]
pub(crate) struct Pin {
    readers: Arc<Readers>,
    revision: u64,
}

impl Pin {
    /// A second pin of the same revision (no horizon check: this one already holds the floor).
    pub(crate) fn duplicate(&self) -> Pin {
        let mut registry = lock(&self.readers.registry);
        let count = registry.pinned.entry(self.revision).or_insert(0);
        *count = count.saturating_add(1);
        Pin {
            readers: Arc::clone(&self.readers),
            revision: self.revision,
        }
    }

    /// The pinned revision.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// Moves the pin forward to `to` (no horizon check: the floor is held at this pin's
    /// revision until the move, under the registry's lock). A `to` at or below the pinned
    /// revision changes nothing.
    pub(crate) fn advance(&mut self, to: u64) {
        if to <= self.revision {
            return;
        }
        let mut registry = lock(&self.readers.registry);
        let count = registry.pinned.entry(to).or_insert(0);
        *count = count.saturating_add(1);
        if let Some(count) = registry.pinned.get_mut(&self.revision) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.pinned.remove(&self.revision);
            }
        }
        self.revision = to;
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut registry = lock(&self.readers.registry);
        if let Some(count) = registry.pinned.get_mut(&self.revision) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.pinned.remove(&self.revision);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_oldest_pin_or_the_horizon() {
        let r = Readers::new(5);
        assert_eq!(r.floor(), 5);
        let a = r.pin(7).unwrap();
        let b = r.pin(6).unwrap();
        let c = r.pin(6).unwrap();
        assert_eq!(r.floor(), 5);
        r.raise_horizon(9);
        assert_eq!(r.floor(), 6, "a pin below the new horizon holds the floor");
        drop(b);
        assert_eq!(r.floor(), 6, "pins are counted");
        drop(c);
        assert_eq!(r.floor(), 7);
        assert_eq!(a.revision(), 7);
        let shared = a.duplicate();
        drop(a);
        assert_eq!(
            r.floor(),
            7,
            "a shared pin holds the floor below the horizon"
        );
        assert_eq!(shared.revision(), 7);
        let mut moving = shared.duplicate();
        moving.advance(8);
        assert_eq!(r.floor(), 7, "the other pin of 7 still holds it");
        drop(shared);
        assert_eq!(
            r.floor(),
            8,
            "a pin moved forward below the horizon holds the floor"
        );
        moving.advance(2);
        assert_eq!(moving.revision(), 8, "a pin never moves back");
        drop(moving);
        assert_eq!(r.floor(), 9);
        r.raise_horizon(3);
        assert_eq!(r.horizon(), 9, "the horizon never goes back");
    }

    #[test]
    fn a_pin_below_the_horizon_is_refused() {
        let r = Readers::new(5);
        assert!(matches!(
            r.pin(4),
            Err(Error::Compacted {
                requested: 4,
                horizon: 5
            })
        ));
        assert!(r.pin(5).is_ok());
    }
}
