//! What one YCSB phase measured ([`YcsbReport`]), the line a child prints for it, and the Markdown
//! tables `seedbench --workload ycsb` prints: per thread count, one row per engine, every peer
//! figure followed by its ratio to kvstore's.

use std::fmt::Write as _;

use crate::report_line;
use crate::table::cell;

/// Figures of one phase (the load or one workload) of one (engine, threads) run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct YcsbReport {
    /// Engine name.
    pub engine: String,
    /// `sync` or `nosync`.
    pub mode: String,
    /// `zipfian` or `uniform`.
    pub distribution: String,
    /// Threads sharing the engine.
    pub threads: u64,
    /// Records loaded.
    pub records: u64,
    /// `load`, or the workload's letter.
    pub phase: String,
    /// Operations done.
    pub ops: u64,
    /// Wall seconds, plus the closing sync in `nosync`.
    pub secs: f64,
    /// Median latency of one operation, microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency of one operation, microseconds.
    pub p99_us: f64,
    /// Peak resident set size of the child (all its phases), bytes.
    pub peak_rss_bytes: u64,
}

impl YcsbReport {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    /// The line printed on stderr as the phase ends.
    pub fn summary(&self) -> String {
        format!(
            "{:>8} {} threads {:>4}: {:9} ops {:8.3} s {:>10.0} ops/s  p50 {:8.1} us  p99 {:8.1} us",
            self.engine,
            self.threads,
            self.phase,
            self.ops,
            self.secs,
            self.ops_per_sec(),
            self.p50_us,
            self.p99_us
        )
    }

    /// One line of `key=value` pairs, what a child process prints for its parent.
    pub fn to_line(&self) -> String {
        format!(
            "@ycsb engine={} mode={} distribution={} threads={} records={} phase={} ops={} secs={} p50={} p99={} rss={}",
            self.engine,
            self.mode,
            self.distribution,
            self.threads,
            self.records,
            self.phase,
            self.ops,
            self.secs,
            self.p50_us,
            self.p99_us,
            self.peak_rss_bytes
        )
    }

    /// Parses a line made by [`YcsbReport::to_line`]; `None` if it is not one.
    pub fn from_line(line: &str) -> Option<YcsbReport> {
        let mut r = YcsbReport::default();
        for (k, v) in report_line::fields(line, "@ycsb ")? {
            match k {
                "engine" => r.engine = v.text(),
                "mode" => r.mode = v.text(),
                "distribution" => r.distribution = v.text(),
                "threads" => r.threads = v.u64()?,
                "records" => r.records = v.u64()?,
                "phase" => r.phase = v.text(),
                "ops" => r.ops = v.u64()?,
                "secs" => r.secs = v.f64()?,
                "p50" => r.p50_us = v.f64()?,
                "p99" => r.p99_us = v.f64()?,
                "rss" => r.peak_rss_bytes = v.u64()?,
                _ => return None,
            }
        }
        Some(r)
    }
}

/// The distinct values of `field` over `reports`, in their first-seen order (phases: load, then
/// the workloads as run; engines: as the run went through them).
fn first_seen(reports: &[YcsbReport], field: impl Fn(&YcsbReport) -> &str) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for r in reports {
        let value = field(r);
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The tables of `reports` from one thread count: kops/s per phase (peers with their ratio to
/// kvstore) and peak RSS; then p50 / p99 latency per phase.
pub fn tables(reports: &[YcsbReport]) -> String {
    let phases = first_seen(reports, |r| &r.phase);
    let find = |engine: &str, phase: &str| {
        reports
            .iter()
            .find(|r| r.engine == engine && r.phase == phase)
    };
    let mut speed = String::from("| engine | threads |");
    let mut latency = String::from("| engine | threads |");
    for phase in &phases {
        let _ = write!(speed, " {phase} kops/s |");
        let _ = write!(latency, " {phase} p50 / p99 us |");
    }
    speed.push_str(" peak RSS MB |\n|---|---:|");
    latency.push_str("\n|---|---:|");
    for _ in &phases {
        speed.push_str("---:|");
        latency.push_str("---:|");
    }
    speed.push_str("---:|");
    for engine in first_seen(reports, |r| &r.engine) {
        let threads = reports
            .iter()
            .find(|r| r.engine == engine)
            .map_or(0, |r| r.threads);
        let _ = write!(speed, "\n| {engine} | {threads} |");
        let _ = write!(latency, "\n| {engine} | {threads} |");
        let mut rss = 0;
        for phase in &phases {
            let Some(r) = find(engine, phase) else {
                speed.push_str(" - |");
                latency.push_str(" - |");
                continue;
            };
            rss = r.peak_rss_bytes;
            let base = find("kvstore", phase)
                .filter(|_| engine != "kvstore")
                .map(|b| b.ops_per_sec() / 1000.0);
            let _ = write!(speed, " {} |", cell(r.ops_per_sec() / 1000.0, base, 0));
            let _ = write!(latency, " {:.1} / {:.1} |", r.p50_us, r.p99_us);
        }
        let _ = write!(speed, " {:.0} |", rss as f64 / (1024.0 * 1024.0));
    }
    format!("{speed}\n\n{latency}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(engine: &str, phase: &str, secs: f64) -> YcsbReport {
        YcsbReport {
            engine: engine.to_owned(),
            mode: "nosync".to_owned(),
            distribution: "zipfian".to_owned(),
            threads: 2,
            records: 1000,
            phase: phase.to_owned(),
            ops: 1000,
            secs,
            p50_us: 1.5,
            p99_us: 9.0,
            peak_rss_bytes: 3 << 20,
        }
    }

    #[test]
    fn lines_round_trip() {
        let r = report("heed", "E", 0.25);
        assert_eq!(YcsbReport::from_line(&r.to_line()), Some(r));
        assert_eq!(YcsbReport::from_line("@txn engine=kvstore"), None);
    }

    #[test]
    fn peers_carry_their_ratio_per_phase() {
        let t = tables(&[
            report("kvstore", "load", 1.0),
            report("kvstore", "A", 0.5),
            report("fjall", "load", 2.0),
            report("fjall", "A", 0.25),
        ]);
        assert!(
            t.contains("| engine | threads | load kops/s | A kops/s |"),
            "{t}"
        );
        assert!(t.contains("| kvstore | 2 | 1 | 2 | 3 |"), "{t}");
        assert!(
            t.contains("| fjall | 2 | 0 (0.50x) | 4 (2.00x) | 3 |"),
            "{t}"
        );
        assert!(t.contains("| fjall | 2 | 1.5 / 9.0 | 1.5 / 9.0 |"), "{t}");
    }
}
