//! What the witness server grants its clients, and its warnings whose rate
//! the clients control.

use std::fmt::Display;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Default [`ServerLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default bound of the evidence folder, in bytes: 64 MiB, at least 63
/// requests of the largest size and thousands of ordinary ones.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 64 << 20;
/// Default interval of rate-limited warnings.
pub const DEFAULT_WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Descriptors the server needs beside its connections: the listener, the
/// runtime, standard streams, state and evidence files, and the tasks that
/// answer 503 to connections over the limit.
pub const RESERVED_DESCRIPTORS: u64 = REFUSERS as u64 + 32;

/// Tasks that may be answering 503 to connections over the limit at once;
/// beyond them, such connections are closed without an answer.
pub(super) const REFUSERS: usize = 32;

/// How the witness server protects itself from its clients.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to send a request's headers, from their first byte.
    pub header_timeout: Duration,
    /// Time to send a request's body, from the end of its headers; past it
    /// the answer is 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Time a connection may wait for a request (the first, or the next on
    /// a kept-alive connection) before it is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// At most one warning line per cause per this interval.
    pub warn_interval: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            warn_interval: DEFAULT_WARN_INTERVAL,
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A warning for one cause whose rate someone else controls: the first
/// occurrence is written at once, then nothing until `interval` has passed;
/// the next line says how many occurrences were not written.
#[derive(Debug)]
pub struct RateLimitedWarn {
    cause: &'static str,
    interval: Duration,
    /// When the last line was written, and occurrences since then.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedWarn {
    /// A warner for `cause`, writing at most one line per `interval`.
    pub fn new(cause: &'static str, interval: Duration) -> RateLimitedWarn {
        RateLimitedWarn {
            cause,
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Records one occurrence, described by `detail`; returns whether a
    /// line was written.
    pub fn warn(&self, detail: &dyn Display) -> bool {
        let now = Instant::now();
        let suppressed = {
            let mut state = lock(&self.state);
            if state
                .0
                .is_some_and(|last| now.duration_since(last) < self.interval)
            {
                state.1 += 1;
                return false;
            }
            state.0 = Some(now);
            std::mem::take(&mut state.1)
        };
        tracing::warn!(
            cause = self.cause,
            suppressed,
            "{detail} ({suppressed} more of this cause not logged since the previous line; at most one line per {})",
            humantime::format_duration(self.interval)
        );
        true
    }
}

/// Raises the soft limit on open descriptors to the hard limit, and returns
/// the soft limit then in force (`None`: unlimited).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        // Refused on some systems for an unlimited hard limit: the soft
        // limit then stays as it was, which is what is reported.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a long interval, only the first occurrence is written and the
    /// others are counted for the next line; with none, every one is.
    #[test]
    fn rate_limited_warnings_count_what_they_do_not_write() {
        let warn = RateLimitedWarn::new("test", Duration::from_secs(3600));
        assert!(warn.warn(&"first"));
        for _ in 0..5 {
            assert!(!warn.warn(&"again"));
        }
        assert_eq!(lock(&warn.state).1, 5);
        let every = RateLimitedWarn::new("test", Duration::ZERO);
        assert!((0..5).all(|_| every.warn(&"each")));
        assert_eq!(lock(&every.state).1, 0);
    }
}
