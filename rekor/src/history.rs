//! The checkpoint history's formats, and the hourly and daily statistics
//! derived from it (docs/formats.md, "Checkpoint history").
//!
//! The sequencer copies its published checkpoint to
//! `history/checkpoint/<tree size>` on a schedule and lists each copy in
//! the year's list `history/<YYYY>`: one line per snapshot,
//! `<RFC 3339 UTC time, seconds, Z> <tree size>\n`, both strictly
//! ascending. The growth of the log over time is read from these lists
//! alone; each snapshot is a signed checkpoint, so any two can be proved
//! consistent from the tiles.
//!
//! `stats/v1/hourly.json` and `stats/v1/daily.json` are computed from the
//! lists by [`buckets`], here, so that the sequencer that writes them and
//! the verifier that recomputes them agree by construction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where the history lives, in the log's storage and URL space.
pub const HISTORY_PREFIX: &str = "history/";
/// Where the hourly statistics live.
pub const HOURLY_PATH: &str = "stats/v1/hourly.json";
/// Where the daily statistics live.
pub const DAILY_PATH: &str = "stats/v1/daily.json";
/// Buckets in `hourly.json`: a week.
pub const HOURS: u64 = 168;
/// Buckets in `daily.json`: a year, leap day included.
pub const DAYS: u64 = 366;
/// The earliest year a list may name.
const MIN_YEAR: u32 = 1970;
/// The latest year a list may name (RFC 3339 has four-digit years).
const MAX_YEAR: u32 = 9999;

/// The path of the snapshot of the checkpoint of `tree_size`.
pub fn snapshot_path(tree_size: u64) -> String {
    format!("{HISTORY_PREFIX}checkpoint/{tree_size}")
}

/// The path of the list of `year`'s snapshots.
pub fn year_path(year: u32) -> String {
    format!("{HISTORY_PREFIX}{year:04}")
}

/// The UTC year of a time (seconds since the epoch).
pub fn year_of(unix_seconds: u64) -> u32 {
    // The first four characters of its RFC 3339 form.
    rfc3339(unix_seconds)[..4].parse().unwrap_or(MAX_YEAR)
}

/// `time` as RFC 3339 UTC with seconds and `Z`.
pub fn rfc3339(unix_seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_seconds)).to_string()
}

/// The storage path of an HTTP request path, when it is exactly a history
/// object: `/history/<YYYY>` or `/history/checkpoint/<decimal size>`.
/// Anything else is not a history path.
pub fn parse_request_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?.strip_prefix(HISTORY_PREFIX)?;
    if let Some(size) = rest.strip_prefix("checkpoint/") {
        return decimal(size).map(snapshot_path);
    }
    let year: u32 = (rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()))
        .then(|| rest.parse().ok())
        .flatten()?;
    (MIN_YEAR..=MAX_YEAR)
        .contains(&year)
        .then(|| year_path(year))
}

/// A decimal without sign or leading zeros.
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// One line of a year's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was taken, in seconds since the epoch (UTC).
    pub time: u64,
    /// The tree size of the checkpoint copied.
    pub tree_size: u64,
}

/// Why bytes are not a year's list: the line at fault (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HistoryError {
    /// The line at fault, counting from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses the list of `year` strictly: every line `<time> <size>\n`, the
/// time in `year`, RFC 3339 UTC with seconds and `Z` exactly as
/// [`rfc3339`] writes it, both strictly ascending. An empty list is
/// refused: a list exists only once it has a snapshot.
pub fn parse_year(year: u32, data: &[u8]) -> Result<Vec<Snapshot>, HistoryError> {
    let bad = |line: usize, reason: String| HistoryError { line, reason };
    let text = std::str::from_utf8(data).map_err(|_| bad(1, "not UTF-8".into()))?;
    if text.is_empty() {
        return Err(bad(1, "the list is empty".into()));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(bad(
            text.split('\n').count(),
            "last line does not end in a newline".into(),
        ));
    };
    let mut snapshots: Vec<Snapshot> = Vec::new();
    for (number, line) in body.split('\n').enumerate().map(|(i, l)| (i + 1, l)) {
        let Some((time, size)) = line.split_once(' ') else {
            return Err(bad(number, "not `<time> <tree size>`".into()));
        };
        let parsed_time = humantime::parse_rfc3339(time)
            .ok()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs())
            .filter(|&seconds| rfc3339(seconds) == time)
            .ok_or_else(|| {
                bad(
                    number,
                    format!("{time:?} is not an RFC 3339 UTC time like 2026-12-02T08:00:00Z"),
                )
            })?;
        if year_of(parsed_time) != year {
            return Err(bad(number, format!("{time} is not in {year}")));
        }
        let tree_size =
            decimal(size).ok_or_else(|| bad(number, format!("{size:?} is not a tree size")))?;
        if let Some(last) = snapshots.last() {
            if parsed_time <= last.time || tree_size <= last.tree_size {
                return Err(bad(
                    number,
                    "times and tree sizes must both be strictly ascending".into(),
                ));
            }
        }
        snapshots.push(Snapshot {
            time: parsed_time,
            tree_size,
        });
    }
    Ok(snapshots)
}

/// One line of a year's list, as [`parse_year`] reads it.
pub fn render_line(snapshot: Snapshot) -> String {
    format!("{} {}\n", rfc3339(snapshot.time), snapshot.tree_size)
}

/// Hourly or daily statistics (`stats/v1/hourly.json`, `daily.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buckets {
    /// The tree size of the latest snapshot counted.
    pub tree_size: u64,
    /// Oldest first.
    pub buckets: Vec<Bucket>,
}

/// The entries logged in one hour or day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// The bucket's start, RFC 3339 UTC.
    pub start: String,
    /// The growth between the last snapshots at or before its start and
    /// its end.
    pub entries: u64,
}

/// The last `count` buckets of `width` seconds up to and including the
/// one holding `now`, from snapshots in ascending order (any number of
/// years' lists, concatenated oldest first).
pub fn buckets(snapshots: &[Snapshot], now: u64, width: u64, count: u64) -> Buckets {
    // The size of the last snapshot at or before `time` (0 before any).
    // The size of the last snapshot at or before `time`. Before the first
    // snapshot the log's growth is unknown, not zero: a log that starts its
    // history with entries already in it (an upgrade, an adopted log) has
    // them counted in no bucket, rather than all in the first one.
    let baseline = snapshots.first().map_or(0, |first| first.tree_size);
    let size_at = |time: u64| -> u64 {
        let after = snapshots.partition_point(|snapshot| snapshot.time <= time);
        after
            .checked_sub(1)
            .map_or(baseline, |last| snapshots[last].tree_size)
    };
    let current = now - now % width;
    let first = current.saturating_sub(width * (count - 1));
    let buckets = (0..count)
        .map(|k| first + k * width)
        .filter(|start| *start <= current)
        .map(|start| Bucket {
            start: rfc3339(start),
            // A snapshot exactly at the end belongs to the next bucket.
            entries: size_at(start + width - 1) - size_at(start.saturating_sub(1)),
        })
        .collect();
    Buckets {
        tree_size: snapshots.last().map_or(0, |last| last.tree_size),
        buckets,
    }
}

/// [`buckets`] by the hour, over [`HOURS`].
pub fn hourly(snapshots: &[Snapshot], now: u64) -> Buckets {
    buckets(snapshots, now, 3600, HOURS)
}

/// [`buckets`] by the day, over [`DAYS`].
pub fn daily(snapshots: &[Snapshot], now: u64) -> Buckets {
    buckets(snapshots, now, 86_400, DAYS)
}

/// Seconds since the epoch of a [`SystemTime`] (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> u64 {
        unix_seconds(humantime::parse_rfc3339(text).expect("a time"))
    }

    #[test]
    fn year_list_round_trip() {
        let snapshots = vec![
            Snapshot {
                time: at("2026-01-01T00:00:00Z"),
                tree_size: 1,
            },
            Snapshot {
                time: at("2026-12-31T23:59:59Z"),
                tree_size: 18_446_744_073_709_551_615,
            },
        ];
        let text: String = snapshots.iter().copied().map(render_line).collect();
        assert_eq!(
            text,
            "2026-01-01T00:00:00Z 1\n2026-12-31T23:59:59Z 18446744073709551615\n"
        );
        assert_eq!(
            parse_year(2026, text.as_bytes()).expect("parses"),
            snapshots
        );
    }

    #[test]
    fn year_list_strictness() {
        let cases: &[(&str, usize)] = &[
            ("", 1),
            ("2026-01-01T00:00:00Z 1", 1),
            ("2026-01-01T00:00:00Z 1\n\n", 2),
            ("2026-01-01T00:00:00Z  1\n", 1),
            ("2026-01-01T00:00:00Z 01\n", 1),
            ("2026-01-01T00:00:00Z +1\n", 1),
            ("2026-01-01T00:00:00Z -1\n", 1),
            ("2026-01-01T00:00:00Z 18446744073709551616\n", 1),
            ("2026-01-01T00:00:00.5Z 1\n", 1),
            ("2026-01-01T00:00:00+00:00 1\n", 1),
            ("2026-01-01 00:00:00Z 1\n", 1),
            ("2025-12-31T23:59:59Z 1\n", 1),
            ("2027-01-01T00:00:00Z 1\n", 1),
            ("2026-01-01T00:00:00Z 2\n2026-01-01T00:00:01Z 2\n", 2),
            ("2026-01-01T00:00:01Z 1\n2026-01-01T00:00:01Z 2\n", 2),
            ("2026-01-01T00:00:02Z 1\n2026-01-01T00:00:01Z 2\n", 2),
            ("2026-01-01T00:00:00Z 1\r\n", 1),
            ("\u{feff}2026-01-01T00:00:00Z 1\n", 1),
        ];
        for (text, line) in cases {
            let err = parse_year(2026, text.as_bytes()).expect_err("refused");
            assert_eq!(err.line, *line, "{text:?}: {err}");
        }
        assert!(parse_year(2026, b"\xff\n").is_err());
    }

    #[test]
    fn request_paths() {
        assert_eq!(
            parse_request_path("/history/2026").as_deref(),
            Some("history/2026")
        );
        assert_eq!(
            parse_request_path("/history/checkpoint/0").as_deref(),
            Some("history/checkpoint/0")
        );
        assert_eq!(
            parse_request_path("/history/checkpoint/1234").as_deref(),
            Some("history/checkpoint/1234")
        );
        for bad in [
            "/history/",
            "/history/26",
            "/history/1969",
            "/history/20261",
            "/history/checkpoint/",
            "/history/checkpoint/01",
            "/history/checkpoint/1/",
            "/history/checkpoint/-1",
            "/history/checkpoint/99999999999999999999",
            "/history/../.stele/lock",
            "/history/2026/../../.stele/lock",
            "history/2026",
        ] {
            assert_eq!(parse_request_path(bad), None, "{bad}");
        }
    }

    /// The buckets against a naive count over every second of the window.
    #[test]
    fn buckets_match_a_naive_count() {
        let base = at("2026-03-01T00:00:00Z");
        // Snapshots at irregular times, some exactly on bucket edges.
        let mut snapshots = Vec::new();
        let mut size = 0;
        let mut time = base - 7_200;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        while time < base + 30_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            time += 1 + state % 1_500;
            if state % 5 == 0 {
                time -= time % 600;
            }
            size += 1 + state % 40;
            if snapshots.last().is_none_or(|s: &Snapshot| s.time < time) {
                snapshots.push(Snapshot {
                    time,
                    tree_size: size,
                });
            }
        }
        let now = base + 29_999;
        for (width, count) in [(600, 60), (3600, 5), (3600, 168), (86_400, 3)] {
            let got = buckets(&snapshots, now, width, count);
            let first = (now - now % width).saturating_sub(width * (count - 1));
            let want: Vec<Bucket> = (0..count)
                .map(|k| first + k * width)
                .map(|start| {
                    // Growth = the sum of each snapshot's increase over the
                    // one before it, for snapshots inside the bucket.
                    let mut entries = 0;
                    let mut previous = snapshots.first().map_or(0, |s| s.tree_size);
                    for snapshot in &snapshots {
                        if snapshot.time >= start && snapshot.time < start + width {
                            entries += snapshot.tree_size - previous;
                        }
                        previous = snapshot.tree_size;
                    }
                    Bucket {
                        start: rfc3339(start),
                        entries,
                    }
                })
                .collect();
            assert_eq!(got.buckets, want, "width {width}");
            assert_eq!(got.tree_size, size);
        }
    }

    #[test]
    fn buckets_serialise_as_documented() {
        let baseline = Snapshot {
            time: at("2026-12-02T07:10:00Z"),
            tree_size: 3,
        };
        let later = Snapshot {
            time: at("2026-12-02T08:30:00Z"),
            tree_size: 10,
        };
        // Alone, the baseline counts in no bucket: what came before the
        // history is unknown.
        let alone = hourly(&[baseline], at("2026-12-02T09:10:00Z"));
        assert!(alone.buckets.iter().all(|bucket| bucket.entries == 0));
        assert_eq!(alone.tree_size, 3);
        let got = hourly(&[baseline, later], at("2026-12-02T09:10:00Z"));
        assert_eq!(got.buckets.len(), HOURS as usize);
        let json = serde_json::to_value(&got).expect("json");
        assert_eq!(json["tree_size"], 10);
        let last = &json["buckets"][HOURS as usize - 1];
        assert_eq!(last["start"], "2026-12-02T09:00:00Z");
        assert_eq!(last["entries"], 0);
        assert_eq!(json["buckets"][HOURS as usize - 2]["entries"], 7);
        let back: Buckets = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, got);
    }
}
