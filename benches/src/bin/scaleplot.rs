//! `scaleplot`: draws the scale sweep (issue 16) from the CSV `seedbench --csv` writes: one panel
//! per speed column of the seed workload (write, get in order, get shuffled, scan), ops/s against
//! N on a log axis, one line per engine, for one mode; a PNG.
//!
//! ```sh
//! cargo run --release -p kvstore-benches --bin scaleplot -- --csv benches/plots/scale.csv --out benches/plots/scale.png
//! ```
//!
//! Text is drawn with a TrueType font read at start (`--font`; DejaVu Sans by default, Debian's
//! `fonts-dejavu-core`), so the binary needs no system font library.

use std::path::PathBuf;

use clap::Parser;
use kvstore_benches::BenchResult;
use kvstore_benches::peers::ENGINES;
use kvstore_benches::scale::{self, COLUMNS, Point};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

#[derive(Parser, Debug)]
#[command(about = "Plot seedbench's scale sweep (ops/s per column against N) as a PNG")]
struct Args {
    /// The CSV `seedbench --csv` wrote.
    #[arg(long, default_value = "benches/plots/scale.csv")]
    csv: PathBuf,
    /// The PNG to write.
    #[arg(long, default_value = "benches/plots/scale.png")]
    out: PathBuf,
    /// The mode whose rows to draw: nosync or sync.
    #[arg(long, default_value = "nosync")]
    mode: String,
    /// A TrueType font for the text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

/// Pixels of the whole image.
const SIZE_PX: (u32, u32) = (1400, 1000);

/// One colour per engine, in [`ENGINES`] order (kvstore first, in the strongest colour).
const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

const _: () = assert!(PALETTE.len() == ENGINES.len());

fn main() -> BenchResult<()> {
    let args = Args::parse();
    let font: &'static [u8] = Vec::leak(std::fs::read(&args.font).map_err(|e| {
        format!(
            "font {}: {e} (pass --font with a .ttf file)",
            args.font.display()
        )
    })?);
    register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| format!("{} is not a TrueType font", args.font.display()))?;
    let points: Vec<Point> = scale::parse(&std::fs::read_to_string(&args.csv)?)?
        .into_iter()
        .filter(|p| p.mode == args.mode)
        .collect();
    if points.is_empty() {
        return Err(format!("no {} rows in {}", args.mode, args.csv.display()).into());
    }
    draw(&points, &args)?;
    eprintln!("scaleplot: wrote {}", args.out.display());
    Ok(())
}

/// Draws the four panels of `points` (one mode) into `args.out`.
fn draw(points: &[Point], args: &Args) -> BenchResult<()> {
    let root = BitMapBackend::new(&args.out, SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "seedbench scale sweep ({}): ops/s against N, log-log",
            args.mode
        ),
        ("sans-serif", 28),
    )?;
    let n_min = points.iter().map(|p| p.n).min().unwrap_or(1) as f64;
    let n_max = points.iter().map(|p| p.n).max().unwrap_or(1) as f64;
    for (column, panel) in root.split_evenly((2, 2)).iter().enumerate() {
        let ops = |p: &Point| p.ops_per_sec[column];
        let lo = points.iter().map(ops).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(ops).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(COLUMNS[column], ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (n_min / 1.5..n_max * 1.5).log_scale(),
                (lo / 1.5..hi * 1.5).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_labels(4)
            .y_labels(6)
            .x_desc("N (entries)")
            .y_desc("ops/s")
            .x_label_formatter(&|n| format!("{n:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 16))
            .draw()?;
        for (engine, colour) in ENGINES.iter().zip(PALETTE) {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.engine == *engine)
                .map(|p| (p.n as f64, ops(p)))
                .collect();
            if line.is_empty() {
                continue;
            }
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let width = if *engine == "kvstore" { 4 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    line.iter().copied(),
                    colour.stroke_width(width),
                ))?
                .label(*engine)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(width))
                });
            chart.draw_series(
                line.iter()
                    .map(|&(n, v)| Circle::new((n, v), 4, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
