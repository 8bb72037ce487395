//! Progress of the checks and of the index build: a bar on a terminal,
//! else log lines.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::info;

use super::ProgressStyle;

/// How often progress is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress over `total` entries: a bar on a terminal, else a log line
/// every few seconds and one at the end.
pub(super) struct Progress {
    label: &'static str,
    total: u64,
    bar: Option<indicatif::ProgressBar>,
    lines: Mutex<(Instant, u64)>,
    started: Instant,
}

impl Progress {
    pub(super) fn new(label: &'static str, total: u64, style: ProgressStyle) -> Progress {
        let bar = (style == ProgressStyle::Auto && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(template) = indicatif::ProgressStyle::with_template(
                "{msg}: [{bar:40}] {human_pos}/{human_len} entries ({per_sec}, {eta} left)",
            ) {
                bar.set_style(template.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        Progress {
            label,
            total,
            bar,
            lines: Mutex::new((Instant::now(), 0)),
            started: Instant::now(),
        }
    }

    pub(super) fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.lines.lock().unwrap_or_else(|err| err.into_inner());
        last.1 = done;
        if last.0.elapsed() >= LOG_EVERY {
            last.0 = Instant::now();
            info!(
                "{}: {done} of {} entries ({:.1}%)",
                self.label,
                self.total,
                percent(done, self.total)
            );
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        let done = self.lines.lock().map(|last| last.1).unwrap_or_default();
        let done = if self.bar.is_some() { self.total } else { done };
        info!(
            "{}: {done} entries in {:.1}s",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    }
}
