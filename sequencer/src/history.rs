//! The checkpoint history: on a schedule, an immutable copy of the
//! published checkpoint under `history/checkpoint/<tree size>`, listed in
//! the year's list `history/<YYYY>`, and the hourly and daily statistics
//! computed from those lists (`stats/v1/hourly.json`, `daily.json`). The
//! formats, their one parser and the statistics are in
//! [`stele_rekor::history`]; docs/formats.md describes them.
//!
//! # Derived data, and crash safety
//!
//! Like the digest index, the history is written only from the published
//! checkpoint, off the hot path, by the process that holds the log. Each
//! [`Recorder::step`]:
//!
//! 1. copies the published checkpoint to its snapshot path, create-only
//!    (a snapshot of that size already there, from a run that stopped
//!    before step 2, is kept: both are signed checkpoints of the same tree);
//! 2. appends its line to the year's list, conditional on the version of
//!    the list it read (a second writer, in a takeover, makes this step
//!    fail and retry rather than lose a line);
//! 3. writes the statistics from the lists of the current year and the two
//!    before it.
//!
//! A crash before 2 leaves a snapshot nobody lists yet: the next step lists
//! it (or a later one). A crash before 3 leaves statistics one step old:
//! the next step rewrites them. Nothing is held in memory between steps,
//! so a restart resumes from the lists.
//!
//! A step lists a snapshot only when the published tree has grown since the
//! last listed one, and only when the clock has moved past the last line
//! (a clock set back waits, rather than break the lists' order).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use stele_rekor::history::{
    DAILY_PATH, HOURLY_PATH, Snapshot, daily, hourly, parse_year, render_line, snapshot_path,
    unix_seconds, year_of, year_path,
};
use tracing::{info, warn};

use crate::error::Error;
use crate::log::Log;
use crate::published::{Published, key};
use crate::storage::{
    CACHE_IMMUTABLE, CONTENT_TYPE_TEXT, Condition, PutOptions, Storage, StorageError,
};

/// `Cache-Control` of the year lists and the statistics: they change.
pub const CACHE_HISTORY: &str = "public, max-age=60";
/// Content type of the statistics.
const CONTENT_TYPE_JSON: &str = "application/json";

/// The clock the recorder reads (a test sets its own).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What one [`Recorder::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The published tree was listed at this size.
    Listed(u64),
    /// Nothing new to list (empty tree, no growth, or a clock behind the
    /// last line); the statistics were still brought up to date.
    Unchanged,
}

/// Keeps the checkpoint history of a running log.
pub struct Recorder {
    storage: Arc<dyn Storage>,
    log: Log,
    interval: Duration,
    clock: Clock,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder of `log`'s history every `interval`, on the system clock.
    pub fn new(log: Log, interval: Duration) -> Recorder {
        Recorder::with_clock(log, interval, Arc::new(SystemTime::now))
    }

    /// The same, reading `clock`.
    pub fn with_clock(log: Log, interval: Duration, clock: Clock) -> Recorder {
        Recorder {
            storage: log.storage().clone(),
            log,
            interval,
            clock,
        }
    }

    /// Steps now and then every interval until `stop` resolves. Faults are
    /// logged and retried at the next step; nothing is lost by a missed
    /// step but that snapshot's time resolution.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            match self.step().await {
                Ok(Step::Listed(size)) => info!(tree_size = size, "checkpoint history updated"),
                Ok(Step::Unchanged) => {}
                Err(err) => warn!(%err, "checkpoint history update failed; retrying"),
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Lists the published checkpoint if the tree grew, then rewrites the
    /// statistics.
    pub async fn step(&self) -> Result<Step, Error> {
        let now = unix_seconds((self.clock)());
        let published = self.log.published();
        let year = year_of(now);
        let (mut listed, etag) = self.read_year(year).await?;
        // The two years before: the daily window (366 days) reaches back to
        // the first day of the year before, and its first bucket counts from
        // the last snapshot before that day, which may be two years back.
        let mut earlier = Vec::new();
        for back in [2, 1] {
            if let Some(previous) = year.checked_sub(back) {
                earlier.append(&mut self.read_year(previous).await?.0);
            }
        }
        let last = listed.last().or(earlier.last()).copied();
        let outcome = if grown(last, &published, now) {
            let snapshot = Snapshot {
                time: now,
                tree_size: published.checkpoint.size,
            };
            self.write_snapshot(&published).await?;
            self.append(year, &listed, etag, snapshot).await?;
            listed.push(snapshot);
            Step::Listed(snapshot.tree_size)
        } else {
            Step::Unchanged
        };
        earlier.append(&mut listed);
        self.write_statistics(&earlier, now).await?;
        Ok(outcome)
    }

    /// A year's snapshots and the list's version (none when it does not
    /// exist yet).
    async fn read_year(
        &self,
        year: u32,
    ) -> Result<(Vec<Snapshot>, Option<crate::storage::ETag>), Error> {
        let path = year_path(year);
        let Some(object) = self.storage.get(&key(&path)?).await? else {
            return Ok((Vec::new(), None));
        };
        let snapshots = parse_year(year, &object.bytes).map_err(|err| Error::Corrupt {
            what: "checkpoint history",
            detail: format!("{path}: {err}"),
        })?;
        Ok((snapshots, Some(object.etag)))
    }

    async fn write_snapshot(&self, published: &Published) -> Result<(), Error> {
        let options = PutOptions::new(Condition::CreateOnly, CONTENT_TYPE_TEXT, CACHE_IMMUTABLE);
        let path = key(&snapshot_path(published.checkpoint.size))?;
        match self
            .storage
            .put(&path, Bytes::from(published.note.to_vec()), options)
            .await
        {
            // Another signed checkpoint of the same tree (other
            // cosignatures) was copied first: it stays.
            Ok(_) | Err(StorageError::Conflict { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn append(
        &self,
        year: u32,
        listed: &[Snapshot],
        etag: Option<crate::storage::ETag>,
        snapshot: Snapshot,
    ) -> Result<(), Error> {
        let mut text: String = listed.iter().copied().map(render_line).collect();
        text.push_str(&render_line(snapshot));
        let condition = match etag {
            Some(etag) => Condition::IfMatch(etag),
            None => Condition::CreateOnly,
        };
        let options = PutOptions::new(condition, CONTENT_TYPE_TEXT, CACHE_HISTORY);
        self.storage
            .put(&key(&year_path(year))?, Bytes::from(text), options)
            .await?;
        Ok(())
    }

    async fn write_statistics(&self, snapshots: &[Snapshot], now: u64) -> Result<(), Error> {
        for (path, buckets) in [
            (HOURLY_PATH, hourly(snapshots, now)),
            (DAILY_PATH, daily(snapshots, now)),
        ] {
            let json = serde_json::to_vec(&buckets).map_err(|err| Error::Corrupt {
                what: "statistics",
                detail: err.to_string(),
            })?;
            let options = PutOptions::new(Condition::None, CONTENT_TYPE_JSON, CACHE_HISTORY);
            self.storage
                .put(&key(path)?, Bytes::from(json), options)
                .await?;
        }
        Ok(())
    }
}

/// Whether the published tree is new to the history at `now`: the first
/// snapshot (any size, the baseline), or bigger than the last listed one and
/// later than it.
fn grown(last: Option<Snapshot>, published: &Published, now: u64) -> bool {
    let size = published.checkpoint.size;
    match last {
        // The first snapshot is the history's baseline, whatever the size
        // (an empty log's included): growth is counted from it.
        None => true,
        Some(last) => size > last.tree_size && now > last.time,
    }
}
