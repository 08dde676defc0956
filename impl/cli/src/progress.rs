//! Progress of long work (load, export, import, compact) on a terminal: indicatif bars drawn
//! on stderr, which indicatif hides when stderr is not a terminal, so a pipe or a redirect sees
//! only the command's results.
//!
//! Invariant: a bar never writes to stdout, and every bar is cleared when its work ends.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a spinner redraws while the work gives no news.
const TICK_INTERVAL: Duration = Duration::from_millis(120);

/// A bar of `total` bytes, or a spinner counting bytes when the total is unknown (stdin, an
/// export whose size is known only at its end). Advance it by the bytes done.
pub fn bytes(total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {bytes_per_sec} {elapsed} {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A spinner for work that reports nothing until it ends (a compaction): what it does and
/// the time it has taken.
pub fn working(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(TICK_INTERVAL);
    bar
}
