//! The static digest index: for every artifact digest in the log, a public
//! object listing the indices of the entries about it, so that an artifact
//! leads to its entries with plain GETs (Rekor v2 has no search).
//!
//! The objects' format, its one parser and writer are in `stele-rekor`
//! ([`stele_rekor::index`]); this module writes them. An object only grows,
//! so it is cached briefly ([`CACHE_INDEX`]), not as immutable.
//!
//! # Derived data, and crash safety
//!
//! The index is built only from the published log: [`Indexer`] follows the
//! published checkpoint and reads each new range of entries back from the
//! published entry bundles, so an index object never names an entry beyond
//! the published tree. It is written after step 5 of the commit protocol
//! (docs/commit-protocol.md), by the one sequencer process, and records how far it got in
//! the private object [`MARKER_KEY`], written after the index objects:
//!
//! - crash before or while writing index objects: the marker still holds
//!   the old size, and the next start indexes the range again. Writing a
//!   range twice is harmless (each object is a set of indices, merged);
//! - crash after the index objects, before the marker: the same.
//!
//! # What it costs
//!
//! One object per digest is one PUT per distinct digest in each window the
//! indexer covers (a poll): no layout with the same lookup (one plain GET
//! of a path derived from the digest) can write less. What the index adds
//! beyond that is kept small: an object that already lists every index of
//! the window (a range indexed again after a restart) is not written again,
//! and the running [`Indexer`] moves the marker at most once every
//! [`MARKER_INTERVAL`] (and when it stops), not after every poll. A crash
//! in between indexes the last interval again, which costs reads only.
//!
//! `stele reindex` rebuilds every object from the log with [`rebuild`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use stele_rekor::index::{INDEX_PREFIX, collect, index_path, parse, render};
use stele_rekor::verify::HashAlgorithm;
use stele_tiles::tile::TILE_WIDTH;
use tracing::{info, warn};

use crate::error::Error;
use crate::log::Log;
use crate::published::{key, read_entries};
use crate::storage::{CONTENT_TYPE_TEXT, Condition, KeyPrefix, PutOptions, Storage};

/// `Cache-Control` of index objects: public, and short-lived, since they grow.
pub const CACHE_INDEX: &str = "public, max-age=60";
/// Private object holding the tree size the index covers, in decimal.
pub const MARKER_KEY: &str = ".stele/index-size";
/// Index objects read-modify-written at once.
const CONCURRENCY: usize = 16;
/// Entries indexed per step when catching up a long range.
const CHUNK: u64 = 16 * TILE_WIDTH as u64;
/// Least time between two marker writes of a running [`Indexer`].
pub const MARKER_INTERVAL: Duration = Duration::from_secs(10);

fn index_options() -> PutOptions {
    PutOptions::new(Condition::None, CONTENT_TYPE_TEXT, CACHE_INDEX)
}

/// Merges `additions` into the index objects (read, merge, write back).
/// With `replace`, the objects are written with exactly these indices.
async fn write_objects(
    storage: &dyn Storage,
    additions: BTreeMap<(HashAlgorithm, Vec<u8>), BTreeSet<u64>>,
    replace: bool,
) -> Result<(), Error> {
    futures::stream::iter(
        additions
            .into_iter()
            .map(|((algorithm, digest), indices)| async move {
                let key = key(&index_path(algorithm, &digest))?;
                let mut merged = indices;
                if !replace {
                    if let Some(object) = storage.get(&key).await? {
                        let existing = parse(&object.bytes).map_err(|problem| Error::Corrupt {
                            what: "digest index",
                            detail: format!("{key}: {problem}"),
                        })?;
                        let known = existing.len();
                        merged.extend(existing);
                        if merged.len() == known {
                            // Every index is listed already (a range indexed
                            // again): the write would change nothing.
                            return Ok(());
                        }
                    }
                }
                storage
                    .put(&key, Bytes::from(render(&merged)), index_options())
                    .await?;
                Ok::<(), Error>(())
            }),
    )
    .buffer_unordered(CONCURRENCY)
    .try_collect::<()>()
    .await
}

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
pub async fn index_range(storage: &dyn Storage, from: u64, to: u64) -> Result<(), Error> {
    let mut start = from;
    while start < to {
        let end = (start + CHUNK).min(to);
        index_chunk(storage, start, end).await?;
        // After the index objects: a crash before this line indexes the
        // chunk again, which changes nothing.
        write_marker(storage, end).await?;
        start = end;
    }
    Ok(())
}

/// Writes the index objects of the published entries `[start, end)`,
/// leaving the marker alone.
async fn index_chunk(storage: &dyn Storage, start: u64, end: u64) -> Result<(), Error> {
    let entries = read_entries(storage, start, end).await?;
    write_objects(storage, collect(start, &entries), false).await
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
    /// Index objects written.
    pub objects: usize,
    /// Index objects removed (naming no entry of the log).
    pub removed: usize,
}

/// Rebuilds the whole index from the published log: every object written
/// afresh, objects for digests not in the log removed, marker set.
pub async fn rebuild(storage: &dyn Storage) -> Result<RebuildReport, Error> {
    let tree_size = published_size(storage).await?;
    let mut all: BTreeMap<(HashAlgorithm, Vec<u8>), BTreeSet<u64>> = BTreeMap::new();
    let mut start = 0;
    while start < tree_size {
        let end = (start + CHUNK).min(tree_size);
        let entries = read_entries(storage, start, end).await?;
        for (digest, indices) in collect(start, &entries) {
            all.entry(digest).or_default().extend(indices);
        }
        start = end;
    }
    let wanted: BTreeSet<String> = all
        .keys()
        .map(|(algorithm, digest)| index_path(*algorithm, digest))
        .collect();
    let existing = storage.list(&KeyPrefix::new(INDEX_PREFIX)?).await?;
    let mut removed = 0;
    for stale in existing.iter().filter(|key| !wanted.contains(key.as_str())) {
        storage.delete(stale).await?;
        removed += 1;
    }
    let objects = all.len();
    write_objects(storage, all, true).await?;
    write_marker(storage, tree_size).await?;
    Ok(RebuildReport {
        tree_size,
        objects,
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
                        "digest index update failed; retrying"
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
            warn!(%err, "the last digest index update before stopping failed");
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
                indexed.insert(Indexed {
                    size: marker,
                    marker,
                    marker_moved: tokio::time::Instant::now(),
                })
            }
        };
        let published = self.log.published().checkpoint.size;
        let from = state.size;
        while state.size < published {
            let end = (state.size + CHUNK).min(published);
            index_chunk(storage, state.size, end).await?;
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
            info!(from, to = published, "digest index updated");
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
#[derive(Debug, Clone, Copy)]
struct Indexed {
    /// Entries below this are indexed.
    size: u64,
    /// The tree size the marker holds.
    marker: u64,
    /// When the marker last moved (or the indexer started).
    marker_moved: tokio::time::Instant,
}
