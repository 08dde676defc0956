//! [`Retention`]: where [`HistoryRetention`] puts the history horizon at a flush.
//!
//! Invariants:
//! - [`Retention::horizon_at`] never returns more than the flushed table's last revision (the
//!   horizon must be at or below a durable revision), and for `Revisions(n)` never more than
//!   `last - n`; for `Millis(t)` never a revision committed later than `t` ms before now as this
//!   process saw it (a sample's revision was committed at or before the sample's time).
//! - `samples` is ordered by time and by revision, each at most [`SAMPLES_MAX`] entries: the
//!   oldest are dropped first, so a horizon computed from them is at most one sample interval
//!   older than asked, never newer.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::options::HistoryRetention;

use super::inner::lock;

/// Most (time, revision) samples kept for [`HistoryRetention::Millis`]: one per flush, at most
/// one per tenth of the retention period (etcd's periodic compactor samples the same way).
const SAMPLES_MAX: usize = 11;

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Retention {
    policy: HistoryRetention,
    /// `(time_ms, revision)`: `revision` was the newest committed at `time_ms`. Oldest first.
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl Retention {
    /// Retention by `policy` for a database opened (at `now_ms()`, read only if the policy is
    /// by time) with `last_revision` recovered.
    pub(crate) fn new(
        policy: HistoryRetention,
        now_ms: impl FnOnce() -> u64,
        last_revision: u64,
    ) -> Self {
        let samples = match policy {
            HistoryRetention::Millis(_) => VecDeque::from([(now_ms(), last_revision)]),
            HistoryRetention::Manual | HistoryRetention::Revisions(_) => VecDeque::new(),
        };
        Retention {
            policy,
            samples: Mutex::new(samples),
        }
    }

    /// The horizon the policy asks for at a flush (at `now_ms()`, read only if the policy is by
    /// time) of a table whose newest revision is `last` (`None`: the policy asks for nothing, or
    /// for no more than `current`).
    pub(crate) fn horizon_at(
        &self,
        now_ms: impl FnOnce() -> u64,
        last: u64,
        current: u64,
    ) -> Option<u64> {
        let wanted = match self.policy {
            HistoryRetention::Manual => return None,
            HistoryRetention::Revisions(n) => last.saturating_sub(n),
            HistoryRetention::Millis(period_ms) => self.sampled(now_ms(), last, period_ms),
        };
        (wanted > current).then_some(wanted)
    }

    /// Records `(now_ms, last)` and returns the newest sampled revision at least `period_ms`
    /// old (0 if none is).
    fn sampled(&self, now_ms: u64, last: u64, period_ms: u64) -> u64 {
        let mut samples = lock(&self.samples);
        // `None` while nothing can be a period old yet.
        let cutoff = now_ms.checked_sub(period_ms);
        let old_enough = |time: u64| cutoff.is_some_and(|cutoff| time <= cutoff);
        let wanted = samples
            .iter()
            .rev()
            .find(|(time, _)| old_enough(*time))
            .map_or(0, |(_, revision)| *revision);
        let interval = period_ms / 10;
        let due = samples
            .back()
            .is_none_or(|(time, _)| now_ms.saturating_sub(*time) >= interval);
        if due {
            samples.push_back((now_ms, last));
        }
        // Keep the newest sample old enough (later horizons start from it), and at most
        // SAMPLES_MAX.
        while samples.len() > SAMPLES_MAX || samples.get(1).is_some_and(|(t, _)| old_enough(*t)) {
            samples.pop_front();
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_keep_the_newest_n() {
        let r = Retention::new(HistoryRetention::Revisions(10), || 0, 0);
        assert_eq!(r.horizon_at(|| 0, 5, 0), None, "fewer than n revisions");
        assert_eq!(r.horizon_at(|| 0, 25, 0), Some(15));
        assert_eq!(
            r.horizon_at(|| 0, 25, 15),
            None,
            "the horizon never goes back"
        );
        assert_eq!(r.horizon_at(|| 0, 26, 15), Some(16));
        let manual = Retention::new(HistoryRetention::Manual, || 0, 0);
        assert_eq!(manual.horizon_at(|| 0, 1_000, 0), None);
        let newest_only = Retention::new(HistoryRetention::Revisions(0), || 0, 0);
        assert_eq!(newest_only.horizon_at(|| 0, 7, 3), Some(7));
    }

    #[test]
    fn millis_keep_at_least_the_period() {
        let r = Retention::new(HistoryRetention::Millis(1_000), || 0, 10);
        assert_eq!(
            r.horizon_at(|| 500, 20, 0),
            None,
            "nothing is a period old yet"
        );
        // At 1,000 ms the sample of the open (revision 10 at 0 ms) is a period old.
        assert_eq!(r.horizon_at(|| 1_000, 30, 0), Some(10));
        // Revision 20 was committed by 500 ms, 30 by 1,000 ms: at 1,999 ms only 20 is old
        // enough, at 2,000 ms 30 is.
        assert_eq!(r.horizon_at(|| 1_999, 40, 10), Some(20));
        assert_eq!(r.horizon_at(|| 2_000, 50, 20), Some(30));
        assert_eq!(r.horizon_at(|| 2_001, 60, 30), None);
    }

    #[test]
    fn samples_stay_bounded() {
        let r = Retention::new(HistoryRetention::Millis(100), || 0, 0);
        for step in 1..10_000u64 {
            let now = step * 7;
            let horizon = r.horizon_at(|| now, step, 0).unwrap_or(0);
            // A sample's revision equals its step, committed at step * 7 ms.
            assert!(
                horizon * 7 <= now.saturating_sub(100),
                "a horizon newer than the period"
            );
            assert!(lock(&r.samples).len() <= SAMPLES_MAX);
        }
    }
}
