//! The Markdown tables `serverbench` prints: one row per workload and client count with
//! kvstore's and etcd's figures side by side and their ratio kvstore/etcd (above 1x: kvstore
//! serves more operations a second, or takes longer for its latency figures), and the verdicts
//! of `etcdctl check perf`.

use std::fmt::Write as _;

use super::check_perf::Verdict;
use crate::seed::Phase;
use crate::table::ratio;

/// One workload at one client count, on both servers, in the same run.
#[derive(Clone, Debug)]
pub struct Row {
    pub workload: &'static str,
    pub clients: usize,
    pub kvstore: Phase,
    pub etcd: Phase,
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

/// The load table.
pub fn load_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | clients | kvstore ops/s | etcd ops/s | ops/s kvstore/etcd \
         | kvstore p50 / p99 ms | etcd p50 / p99 ms | p99 kvstore/etcd |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
    );
    for r in rows {
        let _ = write!(
            out,
            "\n| {} | {} | {:.0} | {:.0} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {} |",
            r.workload,
            r.clients,
            r.kvstore.ops_per_sec,
            r.etcd.ops_per_sec,
            ratio(r.kvstore.ops_per_sec, r.etcd.ops_per_sec),
            ms(r.kvstore.p50_us),
            ms(r.kvstore.p99_us),
            ms(r.etcd.p50_us),
            ms(r.etcd.p99_us),
            ratio(r.kvstore.p99_us, r.etcd.p99_us),
        );
    }
    out.push('\n');
    out
}

/// The `check perf` table: kvstore's verdict, etcd's, and the ratio of their figures.
pub fn check_perf_table(load: &str, kvstore: &Verdict, etcd: &Verdict) -> String {
    let verdict = |v: &Verdict| if v.pass { "PASS" } else { "FAIL" };
    let mut out = format!(
        "| check perf --load={load} | verdict | writes/s | slowest s | stddev s |\n|---|---|---:|---:|---:|"
    );
    for (name, v) in [("kvstore", kvstore), ("etcd", etcd)] {
        let _ = write!(
            out,
            "\n| {name} | {} | {:.0} | {:.3} | {:.3} |",
            verdict(v),
            v.writes_per_sec,
            v.slowest_secs,
            v.stddev_secs
        );
    }
    let _ = write!(
        out,
        "\n| kvstore/etcd | | {} | {} | {} |\n",
        ratio(kvstore.writes_per_sec, etcd.writes_per_sec),
        ratio(kvstore.slowest_secs, etcd.slowest_secs),
        ratio(kvstore.stddev_secs, etcd.stddev_secs)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(ops_per_sec: f64, p99_us: f64) -> Phase {
        Phase {
            secs: 1.0,
            ops_per_sec,
            p50_us: p99_us / 2.0,
            p99_us,
        }
    }

    #[test]
    fn rows_carry_the_ratio_kvstore_over_etcd() {
        let t = load_table(&[Row {
            workload: "put",
            clients: 16,
            kvstore: phase(500.0, 4000.0),
            etcd: phase(1000.0, 2000.0),
        }]);
        assert!(
            t.contains("| put | 16 | 500 | 1000 | 0.50x | 2.00 / 4.00 | 1.00 / 2.00 | 2.00x |"),
            "{t}"
        );
    }

    #[test]
    fn check_perf_rows_name_the_verdicts() {
        let pass = Verdict {
            pass: true,
            writes_per_sec: 150.0,
            slowest_secs: 0.2,
            stddev_secs: 0.01,
        };
        let fail = Verdict {
            pass: false,
            writes_per_sec: 100.0,
            ..pass.clone()
        };
        let t = check_perf_table("s", &fail, &pass);
        assert!(t.contains("| kvstore | FAIL | 100 |"), "{t}");
        assert!(t.contains("| etcd | PASS | 150 |"), "{t}");
        assert!(
            t.contains("| kvstore/etcd | | 0.67x | 1.00x | 1.00x |"),
            "{t}"
        );
    }
}
