//! The Markdown tables `seedbench` prints: one row per engine, every peer figure followed by its
//! ratio to kvstore's figure from the same run.

use std::fmt::Write as _;

use crate::seed::Report;

const MB: f64 = 1024.0 * 1024.0;

/// One column: header, the figure of a report, and how to print it.
struct Column {
    header: &'static str,
    figure: fn(&Report) -> f64,
    decimals: usize,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "write kops/s",
        figure: |r| r.write.ops_per_sec / 1000.0,
        decimals: 0,
    },
    Column {
        header: "get in order kops/s",
        figure: |r| r.get_in_order.ops_per_sec / 1000.0,
        decimals: 0,
    },
    Column {
        header: "get shuffled kops/s",
        figure: |r| r.get_shuffled.ops_per_sec / 1000.0,
        decimals: 0,
    },
    Column {
        header: "scan kops/s",
        figure: |r| r.scan.ops_per_sec / 1000.0,
        decimals: 0,
    },
    Column {
        header: "peak RSS MB",
        figure: |r| r.peak_rss_bytes as f64 / MB,
        decimals: 0,
    },
    Column {
        header: "disk MB after write / close",
        figure: |r| r.disk_after_write_bytes as f64 / MB,
        decimals: 0,
    },
    Column {
        header: "write amp",
        figure: Report::write_amp,
        decimals: 2,
    },
];

/// `value / base` as a ratio (`0.85x`); `-` when `base` is not positive.
pub fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}x", value / base)
    } else {
        "-".to_owned()
    }
}

/// `value` with `decimals` decimals, followed by its ratio to `base` when there is one.
pub fn cell(value: f64, base: Option<f64>, decimals: usize) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{value:.decimals$} ({})", ratio(value, b)),
        _ => format!("{value:.decimals$}"),
    }
}

/// The throughput table of `reports` (one mode): every figure of a peer with its ratio to the
/// kvstore row of the same slice, if there is one.
pub fn throughput(reports: &[Report]) -> String {
    let base = reports.iter().find(|r| r.engine == "kvstore");
    let mut out = String::from("| engine | mode |");
    for c in COLUMNS {
        let _ = write!(out, " {} |", c.header);
    }
    out.push_str("\n|---|---|");
    for _ in COLUMNS {
        out.push_str("---:|");
    }
    for r in reports {
        let _ = write!(out, "\n| {} | {} |", r.engine, r.mode);
        for c in COLUMNS {
            let value = (c.figure)(r);
            let base = base.filter(|b| b.engine != r.engine).map(|b| (c.figure)(b));
            let mut text = cell(value, base, c.decimals);
            if c.header.starts_with("disk") {
                let _ = write!(text, " / {:.0}", r.disk_after_close_bytes as f64 / MB);
            }
            let _ = write!(out, " {text} |");
        }
    }
    out.push('\n');
    out
}

/// The detail table: seconds and latency percentiles of every phase.
pub fn detail(reports: &[Report]) -> String {
    let mut out = String::from(
        "| engine | mode | write s | batch p50/p99 ms | get in order s | get p50/p99 us | get shuffled s | get p50/p99 us | scan s | OS bytes written / user bytes |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for r in reports {
        let _ = write!(
            out,
            "\n| {} | {} | {:.2} | {:.2} / {:.2} | {:.2} | {:.1} / {:.1} | {:.2} | {:.1} / {:.1} | {:.2} | {:.2} |",
            r.engine,
            r.mode,
            r.write.secs,
            r.write.p50_us / 1000.0,
            r.write.p99_us / 1000.0,
            r.get_in_order.secs,
            r.get_in_order.p50_us,
            r.get_in_order.p99_us,
            r.get_shuffled.secs,
            r.get_shuffled.p50_us,
            r.get_shuffled.p99_us,
            r.scan.secs,
            r.os_write_bytes as f64 / r.user_bytes.max(1) as f64,
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Phase;

    fn report(engine: &str, write_ops: f64) -> Report {
        Report {
            engine: engine.to_owned(),
            mode: "nosync".to_owned(),
            n: 1000,
            write: Phase {
                secs: 1.0,
                ops_per_sec: write_ops,
                p50_us: 10.0,
                p99_us: 20.0,
            },
            user_bytes: 265_000,
            counted_write_bytes: 530_000,
            ..Report::default()
        }
    }

    #[test]
    fn peers_carry_their_ratio_to_kvstore() {
        let t = throughput(&[report("kvstore", 2000.0), report("fjall", 1000.0)]);
        assert!(t.contains("| kvstore | nosync | 2 |"), "{t}");
        assert!(t.contains("| fjall | nosync | 1 (0.50x) |"), "{t}");
        assert!(t.contains("2.00 (1.00x)"), "{t}");
    }

    #[test]
    fn report_lines_round_trip() {
        let r = report("kvstore", 1234.5);
        assert_eq!(Report::from_line(&r.to_line()), Some(r));
        assert_eq!(Report::from_line("something else"), None);
    }
}
