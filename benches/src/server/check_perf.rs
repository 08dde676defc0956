//! `etcdctl check perf --load=LOAD` against one endpoint, and the verdict it prints: etcd's own
//! judgement of a server (60 s of puts from many clients; PASS when the throughput, the slowest
//! request and the standard deviation are all within the load's limits).
//!
//! Its stdout is a progress bar (carriage returns) then lines such as
//! `PASS: Throughput is 149 writes/s`, `PASS: Slowest request took 0.378060s`,
//! `FAIL: Stddev too high: 0.51s` and a last `PASS` or `FAIL`.

use std::path::Path;
use std::process::Command;

use crate::BenchResult;

/// What one `check perf` run said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The last line: every check passed.
    pub pass: bool,
    pub writes_per_sec: f64,
    pub slowest_secs: f64,
    pub stddev_secs: f64,
}

/// The first number in `text` (digits and dots), if any.
fn number_in(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Parses `check perf`'s stdout; `None` if the verdict or a figure is missing.
pub fn parse(stdout: &str) -> Option<Verdict> {
    let lines: Vec<&str> = stdout
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let figure = |what: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with("PASS: ") || l.starts_with("FAIL: "))
            .find(|l| l.contains(what))
            .and_then(|l| number_in(l))
    };
    let pass = match *lines.last()? {
        "PASS" => true,
        "FAIL" => false,
        _ => return None,
    };
    Some(Verdict {
        pass,
        writes_per_sec: figure("Throughput")?,
        slowest_secs: figure("Slowest")?,
        stddev_secs: figure("Stddev")?,
    })
}

/// Runs `ETCDCTL check perf --load=LOAD` against `endpoint` and parses its verdict.
pub fn run(etcdctl: &Path, endpoint: &str, load: &str) -> BenchResult<Verdict> {
    let output = Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["check", "perf", &format!("--load={load}")])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse(&stdout).ok_or_else(|| {
        format!(
            "check perf printed no verdict (exit {}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pass_after_the_progress_bar() {
        let out = "\r 0 / 60    0.00%\r 60 / 60  100.00% 1m0s\nPASS: Throughput is 149 writes/s\n\
                   PASS: Slowest request took 0.378060s\nPASS: Stddev is 0.026244s\nPASS\n";
        let v = parse(out).unwrap();
        assert!(v.pass);
        assert_eq!(v.writes_per_sec, 149.0);
        assert_eq!(v.slowest_secs, 0.378060);
        assert_eq!(v.stddev_secs, 0.026244);
    }

    #[test]
    fn parses_a_fail_and_refuses_output_without_a_verdict() {
        let out = "FAIL: Throughput too low: 20 writes/s\nPASS: Slowest request took 0.5s\n\
                   FAIL: Stddev too high: 0.61s\nFAIL\n";
        let v = parse(out).unwrap();
        assert!(!v.pass);
        assert_eq!((v.writes_per_sec, v.stddev_secs), (20.0, 0.61));
        assert_eq!(parse("PASS: Throughput is 149 writes/s\n"), None);
        assert_eq!(parse(""), None);
    }
}
