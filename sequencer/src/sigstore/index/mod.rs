//! The static indexes: for every artifact digest, signer key and release
//! namespace in the log, a public object listing the indices of its
//! entries, so that an artifact, a maintainer's key or a project leads to
//! its entries with plain GETs (Rekor v2 has no search); and the
//! statistics that count them ([`stats`]).
//!
//! - `index/<sha256|sha384|sha512>/<hex digest>`: hashedrekord entries
//!   about that artifact digest;
//! - `index/key/<key ID>`: hashedrekord entries signed by that key (public
//!   key or certificate key) and release statements signed by it;
//! - `index/namespace/<namespace, / as ~>`: the release statements of that
//!   namespace; only statements that parse and whose signature verifies are
//!   indexed (`stele_rekor::index::classify`).
//!
//! The objects' format, its one parser and writer are in `stele-rekor`
//! ([`stele_rekor::index`]); this module writes them. An object only grows,
//! so it is cached briefly ([`CACHE_INDEX`]), not as immutable.
//!
//! # Derived data, and crash safety
//!
//! The indexes are built only from the published log: [`Indexer`] follows
//! the published checkpoint and reads each new range of entries back from
//! the published entry bundles, so an index object never names an entry
//! beyond the published tree. It is written after step 5 of the commit
//! protocol (docs/commit-protocol.md), by the one sequencer process. Each
//! chunk of entries is one pass: the index objects of the three families,
//! then the statistics' summary ([`stats::SUMMARY_KEY`]), then (at most
//! every [`MARKER_INTERVAL`]) the private object [`MARKER_KEY`] recording how
//! far it got:
//!
//! - crash before or while writing index objects: the marker still holds
//!   the old size, and the next start indexes the range again. Writing a
//!   range twice is harmless (each object is a set of indices, merged);
//! - crash after the index objects, before the summary or the marker: the
//!   same. The summary names the tree size it covers, so the statistics
//!   never count a range twice ([`stats`] explains how).
//!
//! # What it costs
//!
//! One object per digest, key or namespace is one PUT per distinct one in
//! each window the indexer covers (a poll), plus one for the summary: no
//! layout with the same lookup (one plain GET of a path derived from the
//! name) can write less. What the index adds beyond that is kept small: an
//! object that already lists every index of the window (a range indexed
//! again after a restart) is not written again, and the running [`Indexer`]
//! moves the marker at most once every [`MARKER_INTERVAL`] (and when it
//! stops), not after every poll. A crash in between indexes the last
//! interval again, which costs reads only. The statistics cost no read of
//! their own: the count of each key and namespace is the length of the
//! object the indexer reads back anyway.
//!
//! `stele reindex` rebuilds every object and the summary from the log with
//! [`rebuild`], and removes objects that name no entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stele_rekor::index::{INDEX_PREFIX, KEY_PREFIX, NAMESPACE_PREFIX};
use stele_tiles::tile::TILE_WIDTH;
use tracing::{info, warn};

use crate::error::Error;
use crate::log::Log;
use crate::published::key;
use crate::storage::{Condition, KeyPrefix, PutOptions, Storage};

mod objects;
pub mod stats;
#[cfg(test)]
mod tests;

use objects::{read_chunk, write_objects};
use stats::{Kinds, Summary, read_summary, write_summary};

/// `Cache-Control` of index objects: public, and short-lived, since they grow.
pub const CACHE_INDEX: &str = "public, max-age=60";
/// Private object holding the tree size the index covers, in decimal.
pub const MARKER_KEY: &str = ".stele/index-size";
/// Entries indexed per step when catching up a long range.
const CHUNK: u64 = 16 * TILE_WIDTH as u64;
/// Least time between two marker writes of a running [`Indexer`].
pub const MARKER_INTERVAL: Duration = Duration::from_secs(10);

/// The tree size the index covers (0 when never written).
pub async fn read_marker(storage: &dyn Storage) -> Result<u64, Error> {
    let Some(object) = storage.get(&key(MARKER_KEY)?).await? else {
        return Ok(0);
    };
    std::str::from_utf8(&object.bytes)
        .ok()
        .and_then(|text| text.trim_end().parse().ok())
        .ok_or_else(|| Error::Corrupt {
            what: "digest index marker",
            detail: format!("{MARKER_KEY} does not hold a tree size"),
        })
}

async fn write_marker(storage: &dyn Storage, tree_size: u64) -> Result<(), Error> {
    storage
        .put(
            &key(MARKER_KEY)?,
            Bytes::from(format!("{tree_size}\n")),
            PutOptions::private(Condition::None),
        )
        .await?;
    Ok(())
}

/// Indexes the published entries `[from, to)` and moves the marker to `to`.
/// When the summary covers less than `from` (there is none yet), the range
/// from where it stops is read again first, so that it counts every entry.
pub async fn index_range(storage: &dyn Storage, from: u64, to: u64) -> Result<(), Error> {
    index_range_by(storage, from, to, CHUNK).await
}

/// [`index_range`] in chunks of `chunk` entries.
async fn index_range_by(
    storage: &dyn Storage,
    from: u64,
    to: u64,
    chunk: u64,
) -> Result<(), Error> {
    let mut summary = read_summary(storage).await?.unwrap_or_default();
    let mut start = from.min(summary.tree_size);
    while start < to {
        let end = chunk_end(start, to, chunk);
        index_chunk(storage, start, end, &mut summary).await?;
        // After the index objects and the summary: a crash before this
        // line indexes the chunk again, which changes nothing.
        write_marker(storage, end).await?;
        start = end;
    }
    Ok(())
}

/// Where the chunk of about `chunk` entries from `start` ends: at `to`, or
/// at a tile boundary before it. The entries are read at the chunk's tree
/// size; below `to` only a full tile is sure to be there (the partial tile
/// of a tree size that was never published does not exist).
fn chunk_end(start: u64, to: u64, chunk: u64) -> u64 {
    let width = u64::from(TILE_WIDTH);
    let end = start.saturating_add(chunk.max(1));
    if end >= to {
        return to;
    }
    let aligned = end / width * width;
    if aligned > start {
        aligned
    } else {
        ((start / width + 1) * width).min(to)
    }
}

/// Writes the index objects of the published entries `[start, end)`, then
/// the summary if the chunk goes past it, leaving the marker alone.
/// `summary` (what storage holds) is updated only once it is written.
async fn index_chunk(
    storage: &dyn Storage,
    start: u64,
    end: u64,
    summary: &mut Summary,
) -> Result<(), Error> {
    let chunk = read_chunk(storage, start, end).await?;
    let counts = write_objects(storage, chunk.objects, false, end).await?;
    if end > summary.tree_size {
        let mut next = summary.clone();
        stats::advance(&mut next, start, end, &chunk.kinds, &counts)?;
        *summary = stats::advance_summary(storage, next).await?;
    }
    Ok(())
}

/// The published tree size, from the public checkpoint.
pub async fn published_size(storage: &dyn Storage) -> Result<u64, Error> {
    let Some(object) = storage.get(&key(crate::published::CHECKPOINT_KEY)?).await? else {
        return Ok(0);
    };
    let note = stele_tiles::note::Note::parse(&object.bytes)?;
    Ok(stele_tiles::checkpoint::Checkpoint::parse(&note.text)?.size)
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The tree size indexed.
    pub tree_size: u64,
    /// Index objects written, of the three families.
    pub objects: usize,
    /// Of which signer key objects.
    pub keys: usize,
    /// Of which namespace objects.
    pub namespaces: usize,
    /// Index objects removed (naming no entry of the log).
    pub removed: usize,
}

/// Rebuilds every index from the published log: every object written
/// afresh, objects for digests, keys and namespaces not in the log removed,
/// the summary recounted, the marker set.
pub async fn rebuild(storage: &dyn Storage) -> Result<RebuildReport, Error> {
    let tree_size = published_size(storage).await?;
    let mut all: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut kinds = Kinds::default();
    let mut start = 0;
    while start < tree_size {
        let end = chunk_end(start, tree_size, CHUNK);
        let chunk = read_chunk(storage, start, end).await?;
        for (path, indices) in chunk.objects {
            all.entry(path).or_default().extend(indices);
        }
        for kind in chunk.kinds {
            kinds.add(kind);
        }
        start = end;
    }
    let existing = storage.list(&KeyPrefix::new(INDEX_PREFIX)?).await?;
    let mut removed = 0;
    for stale in existing
        .iter()
        .filter(|key| !all.contains_key(key.as_str()))
    {
        storage.delete(stale).await?;
        removed += 1;
    }
    let objects = all.len();
    let count = |prefix: &str| all.keys().filter(|path| path.starts_with(prefix)).count();
    let (keys, namespaces) = (count(KEY_PREFIX), count(NAMESPACE_PREFIX));
    let counts = write_objects(storage, all, true, tree_size).await?;
    write_summary(storage, &Summary::from_counts(tree_size, kinds, &counts)).await?;
    write_marker(storage, tree_size).await?;
    Ok(RebuildReport {
        tree_size,
        objects,
        keys,
        namespaces,
        removed,
    })
}

/// Keeps the index up to date with a running log: after each published
/// checkpoint (polled every `poll` interval), indexes the new entries.
/// Storage faults are retried; the task ends when `log` shuts down... or
/// never, when spawned beside a server: it holds no state worth flushing,
/// since the marker makes it resume where it stopped.
#[derive(Debug)]
pub struct Indexer {
    storage: Arc<dyn Storage>,
    log: Log,
    poll: Duration,
}

impl Indexer {
    pub fn new(log: Log, poll: Duration) -> Indexer {
        Indexer::with_storage(log.storage().clone(), log, poll)
    }

    /// An indexer that reaches the log's storage through `storage` (the
    /// same store, seen through a decorator: the storage bill counts the
    /// index's requests apart from the sequencer's).
    pub fn with_storage(storage: Arc<dyn Storage>, log: Log, poll: Duration) -> Indexer {
        Indexer { storage, log, poll }
    }

    /// Runs until `stop` resolves, then makes one last pass, so that the
    /// index covers everything published before the stop (a shutdown
    /// stops the indexer after the sequencer has drained).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut indexed: Option<Indexed> = None;
        let mut delay = self.poll;
        loop {
            match self.step(&mut indexed).await {
                Ok(()) => delay = self.poll,
                Err(err) => {
                    delay = (delay * 2).min(Duration::from_secs(30));
                    warn!(
                        %err,
                        retry_in_s = delay.as_secs_f64(),
                        "index update failed; retrying"
                    );
                }
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        let last = match self.step(&mut indexed).await {
            Ok(()) => self.flush_marker(&indexed).await,
            Err(err) => Err(err),
        };
        if let Err(err) = last {
            // Nothing is lost: the next start indexes from the marker.
            warn!(%err, "the last index update before stopping failed");
        }
    }

    /// Indexes what was published since the last step; moves the marker
    /// when [`MARKER_INTERVAL`] has passed since it last moved (also when
    /// nothing new was published).
    async fn step(&self, indexed: &mut Option<Indexed>) -> Result<(), Error> {
        let storage = self.storage.as_ref();
        let state = match indexed {
            Some(state) => state,
            None => {
                let marker = read_marker(storage).await?;
                let summary = read_summary(storage).await?.unwrap_or_default();
                indexed.insert(Indexed {
                    // A summary behind the marker (none yet) is caught up
                    // by reading from where it stops.
                    size: marker.min(summary.tree_size),
                    marker,
                    marker_moved: tokio::time::Instant::now(),
                    summary,
                })
            }
        };
        let published = self.log.published().checkpoint.size;
        let from = state.size;
        while state.size < published {
            let end = chunk_end(state.size, published, CHUNK);
            index_chunk(storage, state.size, end, &mut state.summary).await?;
            state.size = end;
            if state.marker_moved.elapsed() >= MARKER_INTERVAL {
                write_marker(storage, end).await?;
                state.marker = end;
                state.marker_moved = tokio::time::Instant::now();
            }
        }
        // Once the log goes quiet, the marker still catches up within an
        // interval, not only at the next entry or the stop.
        if state.size > state.marker && state.marker_moved.elapsed() >= MARKER_INTERVAL {
            write_marker(storage, state.size).await?;
            state.marker = state.size;
            state.marker_moved = tokio::time::Instant::now();
        }
        if published > from {
            info!(from, to = published, "indexes and statistics updated");
        }
        Ok(())
    }

    /// Moves the marker to what is indexed, if it is behind.
    async fn flush_marker(&self, indexed: &Option<Indexed>) -> Result<(), Error> {
        match indexed {
            Some(state) if state.size > state.marker => {
                write_marker(self.storage.as_ref(), state.size).await
            }
            _ => Ok(()),
        }
    }
}

/// How far a running [`Indexer`] got.
#[derive(Debug, Clone)]
struct Indexed {
    /// The summary as written last (at most 200 names and three counts:
    /// the statistics need no other state).
    summary: Summary,
    /// Entries below this are indexed.
    size: u64,
    /// The tree size the marker holds.
    marker: u64,
    /// When the marker last moved (or the indexer started).
    marker_moved: tokio::time::Instant,
}
