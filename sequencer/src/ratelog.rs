//! Warnings whose rate an attacker controls, written at most once an
//! interval per cause.
//!
//! A refused request (a forged ingress MAC, a body that is not an entry, a
//! connection the accept loop cannot take) is worth a line in the log, but
//! one line per request lets whoever sends the requests fill the disk. A
//! [`RateLimitedWarn`] is made once per cause and shared by everything that
//! meets it: [`RateLimitedWarn::warn`] writes the first occurrence at once,
//! then nothing more until the interval has passed; the next line carries
//! how many occurrences there were since the previous one. Every occurrence
//! is also counted in `stele_refusals_total{cause="..."}`, so `/metrics`
//! has the exact figure whatever the log shows.
//!
//! The hot path is two atomic additions and an atomic load; only the one
//! call that writes a line does a compare-and-swap, so callers never wait
//! on each other.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

use crate::metrics::Metrics;

/// The interval used where nothing says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Where a [`RateLimitedWarn`] reads the time.
#[derive(Debug, Clone)]
enum Clock {
    /// The monotonic clock, measured from when the warner was made.
    Monotonic(Instant),
    /// A clock the owner moves by hand (tests).
    Manual(ManualClock),
}

impl Clock {
    fn nanos(&self) -> u64 {
        match self {
            Clock::Monotonic(origin) => saturating_nanos(origin.elapsed()),
            Clock::Manual(clock) => clock.nanos.load(Ordering::Acquire),
        }
    }
}

/// A clock that moves only when told to, for tests of rate limits.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(saturating_nanos(by), Ordering::AcqRel);
    }
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A warning for one cause, written at most once per interval with the
/// number of occurrences since the previous line, and counted every time.
/// Share it (`Arc` or a field of a shared struct) among all the tasks that
/// meet the cause.
#[derive(Debug)]
pub struct RateLimitedWarn {
    cause: &'static str,
    interval: u64,
    clock: Clock,
    counter: Option<IntCounter>,
    /// Clock reading (ns) from which the next line may be written.
    next_line: AtomicU64,
    /// Occurrences not yet reported in a line.
    pending: AtomicU64,
}

impl RateLimitedWarn {
    /// A warner for `cause` (a short snake_case name, also the metric
    /// label) writing at most one line per `interval`, counting every
    /// occurrence in `metrics`' `refusals_total{cause}`.
    pub fn new(cause: &'static str, interval: Duration, metrics: &Metrics) -> RateLimitedWarn {
        let mut warner = RateLimitedWarn::uncounted(cause, interval);
        warner.counter = Some(metrics.refusals.with_label_values(&[cause]));
        warner
    }

    /// A warner that writes lines as [`RateLimitedWarn::new`] does but
    /// counts in no metric (for code with no [`Metrics`] at hand).
    pub fn uncounted(cause: &'static str, interval: Duration) -> RateLimitedWarn {
        RateLimitedWarn {
            cause,
            interval: saturating_nanos(interval),
            clock: Clock::Monotonic(Instant::now()),
            counter: None,
            next_line: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// The same warner reading time from `clock` instead of the monotonic
    /// clock.
    pub fn with_clock(mut self, clock: &ManualClock) -> RateLimitedWarn {
        self.clock = Clock::Manual(clock.clone());
        self
    }

    /// The cause this warner counts.
    pub fn cause(&self) -> &'static str {
        self.cause
    }

    /// Records one occurrence, described by `detail` (formatted only when a
    /// line is written). Returns whether this call wrote the line.
    pub fn warn(&self, detail: impl Display) -> bool {
        if let Some(counter) = &self.counter {
            counter.inc();
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.nanos();
        let due = self.next_line.load(Ordering::Relaxed);
        if now < due {
            return false;
        }
        // One caller wins the right to write this interval's line.
        if self
            .next_line
            .compare_exchange(
                due,
                now.saturating_add(self.interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        let count = self.pending.swap(0, Ordering::AcqRel);
        tracing::warn!(
            cause = self.cause,
            count,
            "{detail} ({count} of this kind since the last such line; at most one line every {})",
            human_duration(Duration::from_nanos(self.interval))
        );
        true
    }
}

/// A duration for people to read: whole seconds (`30s`, `2m 5s`) from a
/// second up, whole milliseconds below that (`250ms`), microseconds below a
/// millisecond (`40us`). Rounds to the nearest unit shown.
pub fn human_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let unit: u128 = if nanos >= 1_000_000_000 {
        1_000_000_000
    } else if nanos >= 1_000_000 {
        1_000_000
    } else {
        1_000
    };
    let rounded = (nanos + unit / 2) / unit * unit;
    let rounded = Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX));
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    /// Log lines written while `body` runs, one string each.
    fn lines_of(body: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        text.lines().map(str::to_owned).collect()
    }

    fn counted(metrics: &Metrics, cause: &str) -> u64 {
        metrics.refusals.with_label_values(&[cause]).get()
    }

    #[test]
    fn one_line_per_interval_with_the_count_and_every_occurrence_counted() {
        let metrics = Metrics::new();
        let clock = ManualClock::new();
        let warner = RateLimitedWarn::new("test_cause", Duration::from_secs(10), &metrics)
            .with_clock(&clock);
        let mut written = Vec::new();
        let lines = lines_of(|| {
            // 1000 at once: the first is written, the rest wait.
            for n in 0..1000 {
                written.push(warner.warn(format_args!("refused request {n}")));
            }
            // Just short of the interval: still nothing.
            clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
            for n in 1000..1500 {
                written.push(warner.warn(format_args!("refused request {n}")));
            }
            // The interval is over: the next one writes, counting all
            // since the first line.
            clock.advance(Duration::from_nanos(1));
            for n in 1500..1502 {
                written.push(warner.warn(format_args!("refused request {n}")));
            }
            // Long silence, then one: written at once, with the count of
            // the one left unreported after the last line.
            clock.advance(Duration::from_secs(3600));
            written.push(warner.warn("refused request 1502"));
        });
        let written_at: Vec<usize> = (0..written.len()).filter(|&n| written[n]).collect();
        assert_eq!(written_at, [0, 1500, 1502]);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for (line, (detail, count)) in lines.iter().zip([
            ("refused request 0", 1),
            ("refused request 1500", 1500),
            ("refused request 1502", 2),
        ]) {
            assert!(line.contains("WARN"), "{line}");
            assert!(
                line.contains(&format!("{detail} ({count} of this kind")),
                "{line}"
            );
            assert!(line.contains("cause=\"test_cause\""), "{line}");
            assert!(line.contains(&format!("count={count}")), "{line}");
            assert!(line.contains("at most one line every 10s"), "{line}");
        }
        assert_eq!(counted(&metrics, "test_cause"), 1503);
        let exposition = metrics.render();
        assert!(
            exposition.contains("stele_refusals_total{cause=\"test_cause\"} 1503"),
            "{exposition}"
        );
    }

    #[test]
    fn causes_are_limited_and_counted_apart() {
        let metrics = Metrics::new();
        let clock = ManualClock::new();
        let first =
            RateLimitedWarn::new("first", Duration::from_secs(1), &metrics).with_clock(&clock);
        let second =
            RateLimitedWarn::new("second", Duration::from_secs(1), &metrics).with_clock(&clock);
        let lines = lines_of(|| {
            for _ in 0..10 {
                first.warn("a");
                second.warn("b");
                second.warn("b");
            }
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(counted(&metrics, "first"), 10);
        assert_eq!(counted(&metrics, "second"), 20);
    }

    /// Many threads at once: exactly one line, and nothing lost from the
    /// counts (the metric has every occurrence, and the next line reports
    /// every one the first did not).
    #[test]
    fn concurrent_callers_write_one_line_and_lose_no_count() {
        let metrics = Metrics::new();
        let clock = ManualClock::new();
        let warner = Arc::new(
            RateLimitedWarn::new("concurrent", Duration::from_secs(5), &metrics).with_clock(&clock),
        );
        let lines = lines_of(|| {
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let warner = warner.clone();
                    let dispatch = dispatch.clone();
                    std::thread::spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            (0..10_000).filter(|_| warner.warn("x")).count()
                        })
                    })
                })
                .collect();
            let written: usize = threads
                .into_iter()
                .map(|thread| thread.join().expect("thread"))
                .sum();
            assert_eq!(written, 1);
            clock.advance(Duration::from_secs(5));
            assert!(warner.warn("x"));
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let count = |line: &str| -> u64 {
            let start = line.find("count=").expect("count field") + "count=".len();
            line[start..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|digits| digits.parse().ok())
                .expect("a count")
        };
        assert_eq!(count(&lines[0]) + count(&lines[1]), 80_001);
        assert_eq!(counted(&metrics, "concurrent"), 80_001);
    }

    #[test]
    fn uncounted_warners_still_limit_lines() {
        let clock = ManualClock::new();
        let warner = RateLimitedWarn::uncounted("plain", DEFAULT_INTERVAL).with_clock(&clock);
        let lines = lines_of(|| {
            for _ in 0..100 {
                warner.warn("p");
            }
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(warner.cause(), "plain");
    }

    #[test]
    fn durations_are_rounded_for_people() {
        for (duration, text) in [
            (Duration::new(9, 999_997_686), "10s"),
            (Duration::new(9, 499_999_999), "9s"),
            (Duration::new(30, 0), "30s"),
            (Duration::new(125, 600_000_000), "2m 6s"),
            (Duration::from_micros(250_400), "250ms"),
            (Duration::from_micros(250_600), "251ms"),
            (Duration::from_nanos(40_400), "40us"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(human_duration(duration), text, "{duration:?}");
        }
    }
}
