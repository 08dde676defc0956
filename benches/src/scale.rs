//! The scale sweep's data (issue 16): one CSV row per seed-workload run, written by
//! `seedbench --csv` as each run ends and read back by `scaleplot`, which draws ops/s per speed
//! column against N.
//!
//! Invariants:
//! - A file holds exactly one header line, [`HEADER`], before its rows; appending to an existing
//!   file never writes a second one.
//! - [`parse`] accepts only what [`row`] writes: a line with another field count or a field that is
//!   not a number is an error naming the line, not a point silently dropped.

use std::io::Write as _;
use std::path::Path;

use crate::BenchResult;
use crate::seed::Report;

/// The header line; the order of [`row`]'s fields.
pub const HEADER: &str = "engine,mode,n,write_ops_per_sec,get_in_order_ops_per_sec,get_shuffled_ops_per_sec,scan_ops_per_sec,peak_rss_bytes";

/// The speed columns of the seed workload, in [`Point::ops_per_sec`] order.
pub const COLUMNS: [&str; 4] = ["write", "get in order", "get shuffled", "scan"];

/// One run as the plot sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Engine name.
    pub engine: String,
    /// `sync` or `nosync`.
    pub mode: String,
    /// Entries written and read.
    pub n: u64,
    /// Ops/s of each of [`COLUMNS`].
    pub ops_per_sec: [f64; 4],
    /// Peak resident set size, bytes.
    pub peak_rss_bytes: u64,
}

/// The CSV row of `report`, without a newline.
pub fn row(report: &Report) -> String {
    format!(
        "{},{},{},{:.0},{:.0},{:.0},{:.0},{}",
        report.engine,
        report.mode,
        report.n,
        report.write.ops_per_sec,
        report.get_in_order.ops_per_sec,
        report.get_shuffled.ops_per_sec,
        report.scan.ops_per_sec,
        report.peak_rss_bytes
    )
}

/// Appends `report`'s row to the CSV file at `path`, first writing [`HEADER`] if the file is new
/// or empty.
pub fn append(path: &Path, report: &Report) -> BenchResult<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if file.metadata()?.len() == 0 {
        writeln!(file, "{HEADER}")?;
    }
    writeln!(file, "{}", row(report))?;
    Ok(())
}

/// The points of a CSV file's `text`.
pub fn parse(text: &str) -> BenchResult<Vec<Point>> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        other => {
            return Err(format!("the first line is not the header {HEADER:?}: {other:?}").into());
        }
    }
    let fields_per_row = HEADER.split(',').count();
    let mut points = Vec::new();
    for (index, line) in lines {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", index + 1);
        let fields: Vec<&str> = line.split(',').collect();
        let &[engine, mode, n, write, in_order, shuffled, scan, rss] = &fields[..] else {
            return Err(bad(&format!("{} fields, not {fields_per_row}", fields.len())).into());
        };
        let number = |text: &str| text.parse::<f64>().map_err(|_| bad("not a number"));
        let integer = |text: &str| text.parse::<u64>().map_err(|_| bad("not an integer"));
        points.push(Point {
            engine: engine.to_owned(),
            mode: mode.to_owned(),
            n: integer(n)?,
            ops_per_sec: [
                number(write)?,
                number(in_order)?,
                number(shuffled)?,
                number(scan)?,
            ],
            peak_rss_bytes: integer(rss)?,
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Phase;

    fn report(engine: &str, n: u64) -> Report {
        let phase = |ops_per_sec| Phase {
            ops_per_sec,
            ..Phase::default()
        };
        Report {
            engine: engine.to_owned(),
            mode: "nosync".to_owned(),
            n,
            write: phase(1000.4),
            get_in_order: phase(2000.0),
            get_shuffled: phase(300.0),
            scan: phase(4000.0),
            peak_rss_bytes: 5 << 20,
            ..Report::default()
        }
    }

    #[test]
    fn appended_rows_parse_back_under_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scale.csv");
        append(&path, &report("kvstore", 100_000)).unwrap();
        append(&path, &report("heed", 1_000_000)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(HEADER).count(), 1, "{text}");
        let points = parse(&text).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].engine, "heed");
        assert_eq!(points[1].n, 1_000_000);
        assert_eq!(points[0].ops_per_sec, [1000.0, 2000.0, 300.0, 4000.0]);
        assert_eq!(points[0].peak_rss_bytes, 5 << 20);
    }

    #[test]
    fn malformed_rows_are_errors_naming_the_line() {
        let short = format!("{HEADER}\nkvstore,nosync,100\n");
        assert!(parse(&short).unwrap_err().to_string().contains("line 2"));
        let text = format!("{HEADER}\nkvstore,nosync,100,x,1,1,1,1\n");
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
        assert!(parse("engine,n\n").is_err());
    }
}
