//! Progress of long work (load, dump, export, import, compact, backup create and restore, the
//! key index a search rebuilds) on a terminal: indicatif bars drawn on stderr, which indicatif
//! hides when stderr is not a terminal, so a pipe or a redirect sees only the command's results.
//!
//! Invariant: a bar never writes to stdout, and every bar is cleared when its work ends, also
//! when it ends in an error (each is made [`ProgressFinish::AndClear`], so dropping it clears
//! it).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// How often a spinner redraws while the work gives no news.
const TICK_INTERVAL: Duration = Duration::from_millis(120);

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, shown in KiB, MiB…
    Bytes,
    /// Keys.
    Keys,
}

/// The look of a bar of `unit`s: a bar with rate and ETA when the `total` is known (`~` before
/// it when it is an `estimate`), a spinner with the count, rate and time taken when not.
fn style(unit: Unit, total: Option<u64>, estimate: bool) -> Option<ProgressStyle> {
    let about = if estimate { "~" } else { "" };
    let template = match (unit, total) {
        (Unit::Bytes, Some(_)) => {
            format!(
                "{{bar:40}} {{bytes}}/{about}{{total_bytes}} {{bytes_per_sec}} eta {{eta}} {{msg}}"
            )
        }
        (Unit::Bytes, None) => "{spinner} {bytes} {bytes_per_sec} {elapsed} {msg}".to_owned(),
        (Unit::Keys, Some(_)) => {
            format!(
                "{{bar:40}} {{human_pos}}/{about}{{human_len}} keys {{per_sec}} eta {{eta}} {{msg}}"
            )
        }
        (Unit::Keys, None) => "{spinner} {human_pos} keys {per_sec} {elapsed} {msg}".to_owned(),
    };
    ProgressStyle::with_template(&template).ok()
}

/// A bar of `total` `unit`s, or a spinner counting them when the total is unknown (stdin, an
/// export whose size is known only at its end). Advance it by the units done.
pub fn counting(unit: Unit, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    }
    .with_finish(ProgressFinish::AndClear);
    if let Some(style) = style(unit, total, false) {
        bar.set_style(style);
    }
    bar
}

/// A bar of `unit`s whose total is an estimate (`~` before it): advance it with
/// [`advance_estimated`], which stretches the total when the work passes it.
pub fn estimated(unit: Unit, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total).with_finish(ProgressFinish::AndClear);
    if let Some(style) = style(unit, Some(total), true) {
        bar.set_style(style);
    }
    bar
}

/// Advances `bar` (made by [`estimated`]) by `units`, its total stretched to what is done.
pub fn advance_estimated(bar: &ProgressBar, units: u64) {
    bar.inc(units);
    let done = bar.position();
    if bar.length().is_some_and(|total| done > total) {
        bar.set_length(done);
    }
}

/// A spinner for work that reports nothing until it ends (a compaction): what it does and
/// the time it has taken.
pub fn working(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(TICK_INTERVAL);
    bar
}

/// The engine's progress of one piece of work ([`kvstore::progress::Progress`]) drawn as a bar
/// of `unit`s named `what`; nothing is drawn until the work starts. Clear it with
/// [`Reporter::clear`] when the call that did the work returns.
#[derive(Debug, Clone)]
pub struct Reporter {
    bar: ProgressBar,
    unit: Unit,
    what: &'static str,
}

impl Reporter {
    /// A reporter of `unit`s, its bar labelled `what`.
    pub fn new(unit: Unit, what: &'static str) -> Reporter {
        Reporter {
            bar: ProgressBar::hidden().with_finish(ProgressFinish::AndClear),
            unit,
            what,
        }
    }

    /// Clears the bar, if the work drew one.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl kvstore::progress::Progress for Reporter {
    fn start(&self, total: Option<u64>) {
        if let Some(style) = style(self.unit, total, false) {
            self.bar.set_style(style);
        }
        if let Some(total) = total {
            self.bar.set_length(total);
        }
        self.bar.set_message(self.what);
        self.bar.reset();
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
    }
}
