//! `stele-verify history`: check the log's checkpoint history and the
//! hourly and daily statistics derived from it (docs/formats.md,
//! "Checkpoint history").
//!
//! Every listed snapshot must be a checkpoint signed by the log, of the
//! listed size, and consistent with the latest checkpoint (so any two
//! snapshots are consistent with each other); the statistics must be what
//! the lists give, recomputed here with the one function the sequencer
//! uses (`stele_rekor::history`).

use serde_json::json;
use stele_rekor::history::{
    Buckets, DAILY_PATH, DAYS, HOURLY_PATH, HOURS, Snapshot, buckets, parse_year, rfc3339,
    snapshot_path, unix_seconds, year_of, year_path,
};
use stele_verifier::reader::Log;
use stele_verifier::{Error, Result};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, combine, open_logs, progress_bar};

/// The most bytes of a year's list: a snapshot a minute for a year.
const MAX_LIST_BYTES: usize = 40 << 20;
/// The most bytes of a statistics object.
const MAX_STATS_BYTES: usize = 1 << 20;
/// The most bytes of a snapshot.
const MAX_SNAPSHOT_BYTES: usize = 64 << 10;
/// How far ahead of this machine's clock the log's clock may be.
const CLOCK_SKEW: u64 = 3600;

fn history_error(log: &Log, path: &str, reason: impl Into<String>) -> Error {
    Error::History {
        location: log.fetcher.location(path),
        reason: reason.into(),
    }
}

/// The snapshots of `year` (none when its list does not exist).
async fn read_year(log: &Log, year: u32) -> Result<Vec<Snapshot>> {
    let path = year_path(year);
    match log.fetcher.get(&path, MAX_LIST_BYTES).await {
        Ok(bytes) => {
            parse_year(year, &bytes).map_err(|err| history_error(log, &path, err.to_string()))
        }
        Err(Error::NotFound { .. }) => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

/// Checks the published statistics at `path` against the lists.
async fn check_stats(
    log: &Log,
    path: &str,
    snapshots: &[Snapshot],
    width: u64,
    count: u64,
) -> Result<Option<Buckets>> {
    let bytes = match log.fetcher.get(path, MAX_STATS_BYTES).await {
        Ok(bytes) => bytes,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    let published: Buckets = serde_json::from_slice(&bytes)
        .map_err(|err| history_error(log, path, format!("not the statistics format: {err}")))?;
    // Recomputed for the time the published object was computed at: the
    // start of its last bucket.
    let last = published
        .buckets
        .last()
        .ok_or_else(|| history_error(log, path, "no buckets"))?;
    let now = humantime::parse_rfc3339(&last.start)
        .map(unix_seconds)
        .map_err(|err| history_error(log, path, format!("bucket start {:?}: {err}", last.start)))?;
    // Only the snapshots it could have seen: a step may have listed one
    // since the object was written.
    let seen: Vec<Snapshot> = snapshots
        .iter()
        .copied()
        .take_while(|snapshot| snapshot.tree_size <= published.tree_size)
        .collect();
    // The time is the object's own claim: it must be one the sequencer
    // could have computed it at, not a later one (whose window would hide
    // the growth of the log) nor one before the snapshots it counts.
    let clock = unix_seconds(std::time::SystemTime::now());
    if now > clock + CLOCK_SKEW {
        return Err(history_error(
            log,
            path,
            format!(
                "it is computed for {}, after this machine's clock ({})",
                last.start,
                rfc3339(clock)
            ),
        ));
    }
    if let Some(counted) = seen.last().filter(|counted| counted.time >= now + width) {
        return Err(history_error(
            log,
            path,
            format!(
                "it is computed for {}, before the snapshot it counts (size {} at {})",
                last.start,
                counted.tree_size,
                rfc3339(counted.time)
            ),
        ));
    }
    let expected = buckets(&seen, now, width, count);
    if expected != published {
        let differs = expected
            .buckets
            .iter()
            .zip(&published.buckets)
            .find(|(want, got)| want != got)
            .map(|(want, got)| {
                format!(
                    "the bucket at {} has {} entries, but the lists give {}",
                    got.start, got.entries, want.entries
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "it covers tree size {} with {} buckets; the lists give {} with {}",
                    published.tree_size,
                    published.buckets.len(),
                    expected.tree_size,
                    expected.buckets.len()
                )
            });
        return Err(history_error(log, path, differs));
    }
    Ok(Some(published))
}

pub(crate) async fn run(cli: &Cli, args: &LogArgs, years: &[u32]) -> Result<Report> {
    let mut reports = Vec::new();
    for target in open_logs(cli, args).await? {
        reports.push((target.shard, check(cli, &target.log, years).await?));
    }
    Ok(combine(reports))
}

/// Checks the history of one log.
async fn check(cli: &Cli, log: &Log, years: &[u32]) -> Result<Report> {
    let latest = log.checkpoint().await?;
    // The statistics span this year and the one before, and count from
    // the last snapshot before their first day, which may be two years
    // back: they are checked when those three are the years read, as the
    // sequencer reads them.
    let check_statistics = years.is_empty();
    let years: Vec<u32> = if years.is_empty() {
        let this = year_of(unix_seconds(std::time::SystemTime::now()));
        vec![this.saturating_sub(2), this.saturating_sub(1), this]
    } else {
        let mut years = years.to_vec();
        years.sort_unstable();
        years.dedup();
        years
    };
    let mut snapshots: Vec<Snapshot> = Vec::new();
    for year in &years {
        let listed = read_year(log, *year).await?;
        if let (Some(last), Some(first)) = (snapshots.last(), listed.first()) {
            if first.tree_size <= last.tree_size {
                return Err(history_error(
                    log,
                    &year_path(*year),
                    format!(
                        "its first snapshot (size {}) is not bigger than the last of the year before (size {})",
                        first.tree_size, last.tree_size
                    ),
                ));
            }
        }
        snapshots.extend(listed);
    }

    let mut reader = log.reader(&latest.checkpoint);
    let bar = progress_bar(cli, snapshots.len() as u64, "checking snapshots");
    for snapshot in &snapshots {
        let path = snapshot_path(snapshot.tree_size);
        let bytes = log.fetcher.get(&path, MAX_SNAPSHOT_BYTES).await?;
        let verified = log.verify_checkpoint(bytes, &log.fetcher.location(&path))?;
        if verified.checkpoint.size != snapshot.tree_size {
            return Err(history_error(
                log,
                &path,
                format!(
                    "it is a checkpoint of size {}, listed as size {}",
                    verified.checkpoint.size, snapshot.tree_size
                ),
            ));
        }
        if snapshot.tree_size > latest.checkpoint.size {
            return Err(history_error(
                log,
                &path,
                format!(
                    "it is bigger than the latest checkpoint (size {})",
                    latest.checkpoint.size
                ),
            ));
        }
        let (_, consistent) = reader.check_consistency(&verified.checkpoint).await;
        consistent?;
        reader.forget_leaves();
        bar.inc(1);
    }
    bar.finish_and_clear();

    let (hourly, daily) = if check_statistics {
        (
            check_stats(log, HOURLY_PATH, &snapshots, 3600, HOURS).await?,
            check_stats(log, DAILY_PATH, &snapshots, 86_400, DAYS).await?,
        )
    } else {
        (None, None)
    };
    let stats_text = match (&hourly, &daily) {
        (Some(_), Some(_)) => "hourly and daily statistics recomputed from the lists: equal",
        _ if !check_statistics => {
            "statistics not checked (they need the current year and the two before)"
        }
        _ => "no statistics published",
    };
    let span = match (snapshots.first(), snapshots.last()) {
        (Some(first), Some(last)) => format!(
            "{} snapshots from {} (size {}) to {} (size {})",
            snapshots.len(),
            rfc3339(first.time),
            first.tree_size,
            rfc3339(last.time),
            last.tree_size
        ),
        _ => "no snapshots".to_owned(),
    };
    Ok(Report {
        json: json!({
            "years": years,
            "snapshots": snapshots.iter().map(|s| json!({"time": rfc3339(s.time), "tree_size": s.tree_size})).collect::<Vec<_>>(),
            "latest": {"size": latest.checkpoint.size, "root": latest.checkpoint.root.to_hex()},
            "statistics_checked": hourly.is_some() && daily.is_some(),
            "fetched": reader.stats,
        }),
        text: format!(
            "history OK: {span} in {years:?}, each signed by the log and consistent with its latest checkpoint (size {}); {stats_text}",
            latest.checkpoint.size
        ),
    })
}
