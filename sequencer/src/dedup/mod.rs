//! The deduplication index: from a leaf hash to the index of the first
//! entry of the log with that hash, exact, with memory and start-up cost
//! that do not grow with the log's size in any way that matters.
//!
//! # Layout
//!
//! The index lives in the log's own storage, under the private prefix
//! `.stele/dedup/`, as immutable *runs*. A run covers the leaves
//! `[start, end)` of the log and holds one 16-byte record per leaf: the
//! first 8 bytes of its leaf hash (the *key*, big-endian) and its index,
//! sorted by key then index, cut into *pages* of about [`PAGE_RECORDS`]
//! records (equal keys never straddle two pages). Each page is an object;
//! the run's *meta* object holds, per page, its first key and a binary fuse
//! filter of its keys (about 9–10 bits a leaf). A run's content is a
//! function of the log's leaves in its range, so rewriting a run after a
//! crash writes the very same bytes.
//!
//! The *manifest* (`.stele/dedup/manifest`) lists the live runs, which
//! cover `[0, indexed)` without gaps, and runs merged away whose objects
//! are still to be deleted. It is written with `If-Match` on the version
//! last read, so two writers cannot both move it.
//!
//! # Memory
//!
//! In memory are the filters and first keys of every run's pages (about
//! 1.2–1.3 bytes a leaf) and the *tail*: a map of the committed leaves not
//! yet in a run, `[indexed, tree size)`, fewer than two flushes' worth.
//!
//! # Lookups
//!
//! The tail answers exactly. In a run, the page that may hold the key is
//! found by its first key; its filter rules the key out with probability
//! 1 − 1/256 when absent; otherwise the page is read (through a cache) and
//! each record with the key is a *candidate*, confirmed by reading the
//! leaf hash at its index from the published level-0 tile, so a shared
//! 8-byte prefix never turns into a false answer. Runs are searched
//! oldest first, so the answer is the smallest index with that leaf.
//!
//! # Writes
//!
//! Once the tail holds [`DedupConfig::flush_entries`] leaves beyond
//! `indexed`, a background task writes them as a run, merges the newest
//! runs while the older of the last two is no larger than the newer (so
//! sizes fall from oldest to newest and there are at most about
//! log2(n / flush) runs), writes the manifest, and only then drops those
//! leaves from the tail. A crash at any point leaves the previous manifest
//! in force and the tail is read again from the level-0 tiles at start;
//! objects written for a manifest that was never written are rewritten
//! with identical bytes or left as unreferenced private objects.
//!
//! On start, [`DedupIndex::open`] reads the manifest, one meta object per
//! run and the level-0 tiles of the tail. A log whose tail is long (a log
//! from before the index existed, or adopted from another implementation)
//! is first indexed in bulk by [`build`].

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{StreamExt, TryStreamExt};
use stele_tiles::Hash;
use stele_tiles::tile::{TILE_WIDTH, Tile};
use tracing::{info, warn};
use xorf::BinaryFuse8;

use crate::error::Error;
use crate::storage::{Condition, ETag, Key, PutOptions, Storage, StorageError};
use crate::tilecache::TileCache;

mod format;

use format::{
    Manifest, PageInfo, RECORD_LEN, Record, Run, corrupt, decode_page, encode_page, key_of,
    meta_key, page_key, run_dir, storage_key,
};

/// Where the index lives.
pub const DEDUP_PREFIX: &str = ".stele/dedup/";
/// The manifest object.
pub const MANIFEST_KEY: &str = ".stele/dedup/manifest";
/// Records per page, about: 8,192 records of 16 bytes are 128 KiB.
pub const PAGE_RECORDS: usize = 8192;
/// Default [`DedupConfig::flush_entries`]: 2^14 leaves, 64 level-0 tiles.
pub const DEFAULT_FLUSH_ENTRIES: u64 = 1 << 14;
/// Default [`DedupConfig::page_cache_bytes`].
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 16 << 20;
/// Leaves sorted in memory at once by [`build`]: 2^20 (48 MiB of hashes
/// and records).
const BULK_CHUNK: u64 = 1 << 20;
/// Objects read or written at once.
const CONCURRENCY: usize = 16;

/// How the index flushes and caches.
#[derive(Debug, Clone)]
pub struct DedupConfig {
    /// Leaves per new run: the tail is written out once it holds this many
    /// beyond the indexed size. A multiple of 256 (a full level-0 tile).
    pub flush_entries: u64,
    /// Memory for pages read by lookups (0: read storage every time).
    pub page_cache_bytes: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            flush_entries: DEFAULT_FLUSH_ENTRIES,
            page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES,
        }
    }
}

/// Where a merge is in one input run: its pages still to come, and the
/// records left of the current one.
type Cursor<'a> = (
    BoxStream<'a, Result<Vec<Record>, Error>>,
    std::vec::IntoIter<Record>,
);

/// Why a lookup could not finish: a page gone (the runs changed under
/// it), or anything else.
#[derive(Debug)]
enum Missing {
    Page(Key),
    Other(Error),
}

/// Reads the manifest: it and its version, or an empty one.
async fn read_manifest(storage: &dyn Storage) -> Result<(Manifest, Option<ETag>), Error> {
    match storage.get(&storage_key(MANIFEST_KEY)?).await? {
        Some(object) => Ok((Manifest::decode(&object.bytes)?, Some(object.etag))),
        None => Ok((Manifest::default(), None)),
    }
}

/// Writes the manifest over the version `known` (none: there is none yet).
async fn write_manifest(
    storage: &dyn Storage,
    manifest: &Manifest,
    known: Option<&ETag>,
) -> Result<ETag, Error> {
    let condition = match known {
        Some(etag) => Condition::IfMatch(etag.clone()),
        None => Condition::CreateOnly,
    };
    let bytes = Bytes::from(manifest.encode());
    match storage
        .put(
            &storage_key(MANIFEST_KEY)?,
            bytes.clone(),
            PutOptions::private(condition),
        )
        .await
    {
        Ok(outcome) => Ok(outcome.etag().clone()),
        Err(StorageError::PreconditionFailed { .. } | StorageError::Conflict { .. }) => {
            // Our own write whose reply was lost, or another writer.
            match storage.get(&storage_key(MANIFEST_KEY)?).await? {
                Some(current) if current.bytes == bytes => Ok(current.etag),
                _ => Err(Error::TakenOver {
                    detail: format!("{MANIFEST_KEY} was changed by another writer"),
                }),
            }
        }
        Err(err) => Err(err.into()),
    }
}

async fn read_run(storage: &dyn Storage, start: u64, end: u64) -> Result<Run, Error> {
    let key = meta_key(start, end)?;
    let object = storage
        .get(&key)
        .await?
        .ok_or_else(|| corrupt(format!("{key} is missing")))?;
    Run::decode_meta(&object.bytes, start, end)
}

async fn read_runs(storage: &dyn Storage, manifest: &Manifest) -> Result<Vec<Arc<Run>>, Error> {
    // Owned pairs, not a closure over borrowed ones, so that the future
    // stays provably `Send` inside callers' boxed futures.
    let runs = manifest.runs.clone();
    futures::stream::iter(
        runs.into_iter().map(move |(start, end)| async move {
            read_run(storage, start, end).await.map(Arc::new)
        }),
    )
    .buffered(CONCURRENCY)
    .try_collect()
    .await
}

/// Deletes the objects of runs merged away; a failure leaves them for the
/// next time.
async fn delete_runs(storage: &dyn Storage, runs: &[(u64, u64, u32)]) -> bool {
    let mut keys = Vec::new();
    for &(start, end, pages) in runs {
        for page in 0..pages as usize {
            keys.extend(page_key(start, end, page));
        }
        keys.extend(meta_key(start, end));
    }
    let failures = futures::stream::iter(
        keys.into_iter()
            .map(|key| async move { storage.delete(&key).await.map_err(|err| (key, err)) }),
    )
    .buffer_unordered(CONCURRENCY)
    .filter_map(|result| async move { result.err() })
    .collect::<Vec<_>>()
    .await;
    for (key, err) in &failures {
        warn!(%err, %key, "could not delete an index object merged away; retried later");
    }
    failures.is_empty()
}

/// Writes a run page by page as its sorted records arrive, a few writes in
/// flight, building the filters; [`RunWriter::finish`] writes the meta.
struct RunWriter<'a> {
    storage: &'a dyn Storage,
    start: u64,
    end: u64,
    buffer: Vec<Record>,
    pages: Vec<PageInfo>,
    writes: FuturesUnordered<futures::future::BoxFuture<'a, Result<(), Error>>>,
}

impl<'a> RunWriter<'a> {
    fn new(storage: &'a dyn Storage, start: u64, end: u64) -> Self {
        RunWriter {
            storage,
            start,
            end,
            buffer: Vec::with_capacity(PAGE_RECORDS + 16),
            pages: Vec::new(),
            writes: FuturesUnordered::new(),
        }
    }

    async fn push(&mut self, record: Record) -> Result<(), Error> {
        if self.buffer.len() >= PAGE_RECORDS
            && self.buffer.last().is_some_and(|last| last.0 != record.0)
        {
            self.write_page().await?;
        }
        self.buffer.push(record);
        Ok(())
    }

    async fn write_page(&mut self) -> Result<(), Error> {
        let records = std::mem::replace(&mut self.buffer, Vec::with_capacity(PAGE_RECORDS + 16));
        let Some(&(first_key, _)) = records.first() else {
            return Ok(());
        };
        let mut keys: Vec<u64> = records.iter().map(|record| record.0).collect();
        keys.dedup();
        let filter = BinaryFuse8::try_from(&keys[..])
            .map_err(|err| corrupt(format!("cannot build a page filter: {err}")))?;
        self.pages.push(PageInfo {
            first_key,
            records: records.len() as u32,
            filter,
        });
        let key = page_key(self.start, self.end, self.pages.len() - 1)?;
        let bytes = Bytes::from(encode_page(&records));
        let storage = self.storage;
        while self.writes.len() >= CONCURRENCY / 2 {
            if let Some(result) = self.writes.next().await {
                result?;
            }
        }
        self.writes.push(Box::pin(async move {
            storage
                .put(&key, bytes, PutOptions::private(Condition::None))
                .await?;
            Ok(())
        }));
        Ok(())
    }

    async fn finish(mut self) -> Result<Run, Error> {
        self.write_page().await?;
        while let Some(result) = self.writes.next().await {
            result?;
        }
        let run = Run {
            start: self.start,
            end: self.end,
            pages: self.pages,
        };
        let written: u64 = run.pages.iter().map(|page| u64::from(page.records)).sum();
        if written != run.len() {
            return Err(corrupt(format!(
                "run {} would hold {written} records for {} leaves",
                run_dir(run.start, run.end),
                run.len()
            )));
        }
        self.storage
            .put(
                &meta_key(run.start, run.end)?,
                Bytes::from(run.encode_meta()),
                PutOptions::private(Condition::None),
            )
            .await?;
        Ok(run)
    }
}

/// Writes leaves `start..` (given in log order) as a run.
async fn write_run(storage: &dyn Storage, start: u64, leaves: &[Hash]) -> Result<Run, Error> {
    let mut records: Vec<Record> = leaves
        .iter()
        .enumerate()
        .map(|(offset, leaf)| (key_of(leaf), start + offset as u64))
        .collect();
    records.sort_unstable();
    let mut writer = RunWriter::new(storage, start, start + leaves.len() as u64);
    for record in records {
        writer.push(record).await?;
    }
    writer.finish().await
}

/// Reads a page of a run.
async fn read_page(
    storage: &dyn Storage,
    start: u64,
    end: u64,
    page: usize,
) -> Result<Vec<Record>, Error> {
    let key = page_key(start, end, page)?;
    let object = storage
        .get(&key)
        .await?
        .ok_or_else(|| corrupt(format!("{key} is missing")))?;
    decode_page(&object.bytes, key.as_str())
}

/// Merges adjacent runs (oldest first) into one, streaming their pages.
async fn merge_runs(storage: &dyn Storage, inputs: &[Arc<Run>]) -> Result<Run, Error> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err(corrupt("nothing to merge"));
    };
    let mut writer = RunWriter::new(storage, first.start, last.end);
    let mut cursors: Vec<Cursor<'_>> = inputs
        .iter()
        .map(|run| {
            let (start, end) = (run.start, run.end);
            let pages = futures::stream::iter(
                (0..run.pages.len()).map(move |page| read_page(storage, start, end, page)),
            )
            .buffered(2)
            .boxed();
            (pages, Vec::new().into_iter())
        })
        .collect();
    // Smallest record first, across inputs.
    let mut heap = BinaryHeap::new();
    for (input, cursor) in cursors.iter_mut().enumerate() {
        if let Some(record) = next_record(cursor).await? {
            heap.push(std::cmp::Reverse((record, input)));
        }
    }
    while let Some(std::cmp::Reverse((record, input))) = heap.pop() {
        writer.push(record).await?;
        if let Some(next) = next_record(&mut cursors[input]).await? {
            heap.push(std::cmp::Reverse((next, input)));
        }
    }
    writer.finish().await
}

async fn next_record(cursor: &mut Cursor<'_>) -> Result<Option<Record>, Error> {
    loop {
        if let Some(record) = cursor.1.next() {
            return Ok(Some(record));
        }
        match cursor.0.next().await {
            Some(page) => cursor.1 = page?.into_iter(),
            None => return Ok(None),
        }
    }
}

/// Applies the merge rule to `runs` (oldest first): while the older of the
/// last two is no larger than the newer, merge them. Returns the runs
/// merged away.
async fn settle(
    storage: &dyn Storage,
    runs: &mut Vec<Arc<Run>>,
) -> Result<Vec<(u64, u64, u32)>, Error> {
    let mut obsolete = Vec::new();
    while runs.len() >= 2 && runs[runs.len() - 2].len() <= runs[runs.len() - 1].len() {
        let newer = runs.pop().ok_or_else(|| corrupt("no run"))?;
        let older = runs.pop().ok_or_else(|| corrupt("no run"))?;
        let merged = merge_runs(storage, &[older.clone(), newer.clone()]).await?;
        for run in [older, newer] {
            obsolete.push((run.start, run.end, run.pages.len() as u32));
        }
        runs.push(Arc::new(merged));
    }
    Ok(obsolete)
}

fn manifest_of(runs: &[Arc<Run>], obsolete: Vec<(u64, u64, u32)>) -> Manifest {
    Manifest {
        runs: runs.iter().map(|run| (run.start, run.end)).collect(),
        obsolete,
    }
}

/// What [`build`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The tree size asked for.
    pub tree_size: u64,
    /// Leaves in runs before.
    pub indexed_before: u64,
    /// Leaves in runs now (the rest, fewer than a flush, is read from the
    /// level-0 tiles at every start).
    pub indexed: u64,
    /// Live runs now.
    pub runs: usize,
}

/// Indexes in bulk the published leaves of a tree of `tree_size` leaves
/// that the persistent index does not cover yet, up to the last multiple
/// of [`DEFAULT_FLUSH_ENTRIES`]. `progress(done, total)` counts leaves.
/// Memory is bounded by 2^20 leaves at a time and the filters.
/// Stopped at any point and run again, it finishes.
pub async fn build(
    storage: &dyn Storage,
    tree_size: u64,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<BuildReport, Error> {
    build_with(storage, tree_size, DEFAULT_FLUSH_ENTRIES, progress).await
}

async fn build_with(
    storage: &dyn Storage,
    tree_size: u64,
    flush_entries: u64,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<BuildReport, Error> {
    let (manifest, etag) = read_manifest(storage).await?;
    let indexed_before = manifest.indexed();
    if indexed_before > tree_size {
        return Err(corrupt(format!(
            "the index covers {indexed_before} leaves but the log has {tree_size}"
        )));
    }
    let mut runs = read_runs(storage, &manifest).await?;
    let target = indexed_before + (tree_size - indexed_before) / flush_entries * flush_entries;
    let total = target - indexed_before;
    progress(0, total);
    if total == 0 {
        return Ok(BuildReport {
            tree_size,
            indexed_before,
            indexed: indexed_before,
            runs: runs.len(),
        });
    }
    let mut chunks = Vec::new();
    let mut start = indexed_before;
    while start < target {
        let end = (start + BULK_CHUNK).min(target);
        let leaves = crate::published::read_leaf_hashes_range(storage, start, end).await?;
        chunks.push(Arc::new(write_run(storage, start, &leaves).await?));
        start = end;
        progress(start - indexed_before, total);
    }
    let mut obsolete = manifest.obsolete.clone();
    if chunks.len() > 1 {
        let merged = merge_runs(storage, &chunks).await?;
        obsolete.extend(
            chunks
                .iter()
                .map(|run| (run.start, run.end, run.pages.len() as u32)),
        );
        runs.push(Arc::new(merged));
    } else {
        runs.extend(chunks);
    }
    obsolete.extend(settle(storage, &mut runs).await?);
    let manifest = manifest_of(&runs, obsolete.clone());
    let etag = write_manifest(storage, &manifest, etag.as_ref()).await?;
    if delete_runs(storage, &obsolete).await {
        write_manifest(storage, &manifest_of(&runs, Vec::new()), Some(&etag)).await?;
    }
    info!(
        indexed = target,
        runs = runs.len(),
        "deduplication index built in bulk"
    );
    Ok(BuildReport {
        tree_size,
        indexed_before,
        indexed: target,
        runs: runs.len(),
    })
}

/// The index of a running log; cheap to share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct DedupIndex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    tiles: TileCache,
    pages: Option<PageCache>,
    config: DedupConfig,
    state: RwLock<State>,
    /// Set while a flush runs.
    flushing: AtomicBool,
    /// Held by whoever changes the runs: a flush, or a reload.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    runs: Arc<Vec<Arc<Run>>>,
    /// Committed leaves not in a run: `[indexed, next)`.
    tail: HashMap<Hash, u64, foldhash::fast::RandomState>,
    indexed: u64,
    next: u64,
    manifest_etag: Option<ETag>,
    /// Runs merged away whose deletion is not yet recorded.
    obsolete: Vec<(u64, u64, u32)>,
}

/// Pages read by lookups, by run start, run end and page number.
type PageCache = quick_cache::sync::Cache<(u64, u64, usize), Arc<Vec<Record>>, PageBytes>;

#[derive(Debug, Clone, Copy, Default)]
struct PageBytes;

impl quick_cache::Weighter<(u64, u64, usize), Arc<Vec<Record>>> for PageBytes {
    fn weight(&self, _key: &(u64, u64, usize), page: &Arc<Vec<Record>>) -> u64 {
        (page.len() * RECORD_LEN + 64) as u64
    }
}

impl DedupIndex {
    /// Opens the index of a log whose committed and published tree has
    /// `tree_size` leaves: reads the manifest, each run's meta object and
    /// the tail's level-0 tiles (indexing in bulk first if the tail is
    /// longer than four flushes). `tiles` is the cache the log's proofs
    /// use; candidates are confirmed through it.
    pub async fn open(
        storage: Arc<dyn Storage>,
        tiles: TileCache,
        tree_size: u64,
        config: DedupConfig,
    ) -> Result<DedupIndex, Error> {
        if config.flush_entries == 0 || config.flush_entries % u64::from(TILE_WIDTH) != 0 {
            return Err(Error::Config(format!(
                "the index's flush size must be a positive multiple of {TILE_WIDTH}"
            )));
        }
        let (mut manifest, mut etag) = read_manifest(storage.as_ref()).await?;
        if tree_size.saturating_sub(manifest.indexed()) > 4 * config.flush_entries {
            info!(
                tree_size,
                indexed = manifest.indexed(),
                "indexing the log's leaves in bulk before taking submissions"
            );
            let last = std::sync::atomic::AtomicU64::new(0);
            build_with(
                storage.as_ref(),
                tree_size,
                config.flush_entries,
                &|done, total| {
                    // A line per tenth.
                    let tenth = (done * 10).checked_div(total).unwrap_or(10);
                    if last.fetch_max(tenth, Ordering::Relaxed) < tenth {
                        info!(done, total, "indexing");
                    }
                },
            )
            .await?;
            (manifest, etag) = read_manifest(storage.as_ref()).await?;
        }
        let indexed = manifest.indexed();
        if indexed > tree_size {
            return Err(corrupt(format!(
                "the index covers {indexed} leaves but the log has {tree_size}"
            )));
        }
        let runs = read_runs(storage.as_ref(), &manifest).await?;
        let leaves =
            crate::published::read_leaf_hashes_range(storage.as_ref(), indexed, tree_size).await?;
        let mut tail = HashMap::with_capacity_and_hasher(
            (config.flush_entries as usize) * 2,
            foldhash::fast::RandomState::default(),
        );
        for (offset, leaf) in leaves.into_iter().enumerate() {
            tail.entry(leaf).or_insert(indexed + offset as u64);
        }
        let pages = (config.page_cache_bytes > 0).then(|| {
            let items = (config.page_cache_bytes / (PAGE_RECORDS * RECORD_LEN) as u64).max(4);
            quick_cache::sync::Cache::with_weighter(
                items as usize,
                config.page_cache_bytes,
                PageBytes,
            )
        });
        let index = DedupIndex {
            inner: Arc::new(Inner {
                storage,
                tiles,
                pages,
                config,
                state: RwLock::new(State {
                    runs: Arc::new(runs),
                    tail,
                    indexed,
                    next: tree_size,
                    manifest_etag: etag,
                    obsolete: manifest.obsolete.clone(),
                }),
                flushing: AtomicBool::new(false),
                writer: tokio::sync::Mutex::new(()),
            }),
        };
        if !manifest.obsolete.is_empty() || index.pending() >= index.inner.config.flush_entries {
            index.spawn_flush();
        }
        Ok(index)
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leaves held in runs; the rest of the log is in the tail.
    pub fn indexed_size(&self) -> u64 {
        self.state().indexed
    }

    /// Live runs.
    pub fn runs(&self) -> usize {
        self.state().runs.len()
    }

    /// Leaves in the tail, waiting to be written as a run.
    pub fn pending(&self) -> u64 {
        let state = self.state();
        state.next - state.indexed
    }

    /// Bytes of memory the filters, page directories and tail take (the
    /// page cache aside).
    pub fn memory_bytes(&self) -> u64 {
        let state = self.state();
        let filters: u64 = state
            .runs
            .iter()
            .flat_map(|run| run.pages.iter())
            .map(|page| (page.filter.fingerprints.len() + std::mem::size_of::<PageInfo>()) as u64)
            .sum();
        // A map entry: the key, the value and a control byte, at the map's
        // capacity.
        let tail = state.tail.capacity() as u64 * (std::mem::size_of::<(Hash, u64)>() as u64 + 1);
        filters + tail
    }

    /// Sets the index's gauges.
    pub fn observe(&self, metrics: &crate::metrics::Metrics) {
        metrics.dedup_indexed.set(self.indexed_size() as i64);
        metrics.dedup_runs.set(self.runs() as i64);
        metrics.dedup_memory_bytes.set(self.memory_bytes() as i64);
    }

    /// The smallest index of a committed entry with this leaf hash.
    pub async fn lookup(&self, leaf: &Hash) -> Result<Option<u64>, Error> {
        let (runs, in_tail) = self.snapshot(leaf);
        match self.lookup_in(leaf, &runs, in_tail).await {
            Err(Missing::Page(key)) => {
                // A page merged away and deleted: either our own flush
                // replaced the runs since the snapshot, or another process
                // writing this index (one that this process took over, or
                // that took it over) did, and our runs are out of date.
                // Our own merges replace the runs before they delete any,
                // so only a page gone under unchanged runs needs the lock
                // (which a long merge may hold for a while).
                if Arc::ptr_eq(&runs, &self.state().runs) {
                    let _writer = self.inner.writer.lock().await;
                    if Arc::ptr_eq(&runs, &self.state().runs) {
                        warn!(%key, "an index page is gone; reading the manifest again");
                        self.reload().await?;
                    }
                }
                let (runs, in_tail) = self.snapshot(leaf);
                match self.lookup_in(leaf, &runs, in_tail).await {
                    Err(Missing::Page(key)) => Err(corrupt(format!("{key} is missing"))),
                    Err(Missing::Other(err)) => Err(err),
                    Ok(found) => Ok(found),
                }
            }
            Err(Missing::Other(err)) => Err(err),
            Ok(found) => Ok(found),
        }
    }

    /// Takes the index as storage holds it now (the caller holds the
    /// writer lock): the manifest, its runs, and the leaves between its
    /// indexed size and ours, read from the level-0 tiles into the tail.
    async fn reload(&self) -> Result<(), Error> {
        let storage = self.inner.storage.as_ref();
        let (manifest, etag) = read_manifest(storage).await?;
        let runs = read_runs(storage, &manifest).await?;
        let indexed = manifest.indexed();
        let (ours, next) = {
            let state = self.state();
            (state.indexed, state.next)
        };
        if indexed > next {
            // Only a sequencer that committed more than this one knows of
            // can have indexed that far.
            return Err(Error::TakenOver {
                detail: format!(
                    "another process indexed {indexed} leaves; this one knows of {next}"
                ),
            });
        }
        let missing = if indexed < ours {
            crate::published::read_leaf_hashes_range(storage, indexed, ours).await?
        } else {
            Vec::new()
        };
        let mut state = self.state_mut();
        for (offset, leaf) in missing.into_iter().enumerate() {
            let index = indexed + offset as u64;
            state
                .tail
                .entry(leaf)
                .and_modify(|known| *known = (*known).min(index))
                .or_insert(index);
        }
        state.tail.retain(|_, index| *index >= indexed);
        state.runs = Arc::new(runs);
        state.indexed = indexed;
        state.manifest_etag = etag;
        state.obsolete = manifest.obsolete;
        info!(
            indexed,
            runs = state.runs.len(),
            "deduplication index reloaded"
        );
        Ok(())
    }

    fn snapshot(&self, leaf: &Hash) -> (Arc<Vec<Arc<Run>>>, Option<u64>) {
        let state = self.state();
        (state.runs.clone(), state.tail.get(leaf).copied())
    }

    async fn lookup_in(
        &self,
        leaf: &Hash,
        runs: &[Arc<Run>],
        in_tail: Option<u64>,
    ) -> Result<Option<u64>, Missing> {
        let key = key_of(leaf);
        for run in runs.iter() {
            let Some(page) = run.page_for(key) else {
                continue;
            };
            let records = self.page(run, page).await?;
            let first = records.partition_point(|record| record.0 < key);
            for &(_, index) in records[first..].iter().take_while(|record| record.0 == key) {
                if self.leaf_at(index).await.map_err(Missing::Other)? == *leaf {
                    return Ok(Some(index));
                }
            }
        }
        Ok(in_tail)
    }

    /// [`DedupIndex::lookup`] of every leaf, a few at once.
    pub async fn lookup_batch(&self, leaves: &[Hash]) -> Result<Vec<Option<u64>>, Error> {
        // Owned hashes: a closure over borrowed ones would make the future
        // impossible to prove `Send` for callers that box it.
        let index = self.clone();
        futures::stream::iter(leaves.iter().copied().map(move |leaf| {
            let index = index.clone();
            async move { index.lookup(&leaf).await }
        }))
        .buffered(CONCURRENCY)
        .try_collect()
        .await
    }

    async fn page(&self, run: &Run, page: usize) -> Result<Arc<Vec<Record>>, Missing> {
        let read = async {
            let key = page_key(run.start, run.end, page).map_err(Missing::Other)?;
            match self.inner.storage.get(&key).await {
                Ok(Some(object)) => decode_page(&object.bytes, key.as_str())
                    .map(Arc::new)
                    .map_err(Missing::Other),
                Ok(None) => Err(Missing::Page(key)),
                Err(err) => Err(Missing::Other(err.into())),
            }
        };
        match &self.inner.pages {
            Some(cache) => {
                cache
                    .get_or_insert_async(&(run.start, run.end, page), read)
                    .await
            }
            None => read.await,
        }
    }

    /// The leaf hash at `index`, from its full level-0 tile (every leaf in a
    /// run is in a full tile: runs end at multiples of 256).
    async fn leaf_at(&self, index: u64) -> Result<Hash, Error> {
        let width = u64::from(TILE_WIDTH);
        let tile = Tile::hashes(0, index / width, TILE_WIDTH);
        let hashes = self
            .inner
            .tiles
            .hashes(self.inner.storage.as_ref(), &tile)
            .await?;
        hashes
            .get((index % width) as usize)
            .copied()
            .ok_or_else(|| corrupt(format!("{tile} is short")))
    }

    /// Records the committed leaves `first_index..first_index + len`; the
    /// next range starts where this one ends. Starts a flush in the
    /// background once enough leaves wait.
    pub fn record(&self, first_index: u64, leaves: &[Hash]) {
        let pending = {
            let mut state = self.state_mut();
            // Leaves already recorded are skipped; a gap would be a bug of
            // the caller, and the leaves after it are not taken.
            let end = first_index + leaves.len() as u64;
            if first_index > state.next {
                tracing::error!(
                    first_index,
                    expected = state.next,
                    "leaves recorded past a gap; not indexed"
                );
                return;
            }
            for index in state.next..end {
                let leaf = leaves[(index - first_index) as usize];
                state.tail.entry(leaf).or_insert(index);
            }
            state.next = state.next.max(end);
            state.next - state.indexed
        };
        if pending >= self.inner.config.flush_entries {
            self.spawn_flush();
        }
    }

    fn spawn_flush(&self) {
        if self.inner.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let index = self.clone();
        tokio::spawn(async move {
            let result = index.flush().await;
            index.inner.flushing.store(false, Ordering::Release);
            match result {
                Ok(()) => {}
                // Retried at the next batch; the tail keeps the leaves.
                Err(err) => warn!(%err, "could not write the deduplication index; will retry"),
            }
        });
    }

    /// Writes runs while the tail holds a flush's worth of leaves, then
    /// deletes the runs merged away.
    pub async fn flush(&self) -> Result<(), Error> {
        let _writer = self.inner.writer.lock().await;
        match self.flush_runs().await {
            Ok(()) => Ok(()),
            Err(err) => {
                // If another writer moved the manifest (and deleted runs
                // this process was merging), take its runs and go on.
                let moved = match read_manifest(self.inner.storage.as_ref()).await {
                    Ok((_, etag)) => etag != self.state().manifest_etag,
                    Err(_) => false,
                };
                if !moved {
                    return Err(err);
                }
                warn!(%err, "the index changed under this flush; taking it as it is");
                self.reload().await?;
                self.flush_runs().await
            }
        }
    }

    /// [`DedupIndex::flush`], with the writer lock held.
    async fn flush_runs(&self) -> Result<(), Error> {
        let storage = self.inner.storage.as_ref();
        let flush = self.inner.config.flush_entries;
        loop {
            let (start, leaves, mut runs, etag, mut obsolete) = {
                let state = self.state();
                if state.next - state.indexed < flush {
                    break;
                }
                let start = state.indexed;
                let mut leaves = vec![Hash::EMPTY; flush as usize];
                let mut found = 0;
                for (leaf, &index) in &state.tail {
                    if let Some(slot) = index
                        .checked_sub(start)
                        .and_then(|offset| leaves.get_mut(offset as usize))
                    {
                        *slot = *leaf;
                        found += 1;
                    }
                }
                if found != leaves.len() {
                    // A leaf repeated in the tail keeps only its first
                    // index: take the range from the published tiles.
                    leaves.clear();
                }
                (
                    start,
                    leaves,
                    state.runs.as_ref().clone(),
                    state.manifest_etag.clone(),
                    state.obsolete.clone(),
                )
            };
            let end = start + flush;
            let leaves = if leaves.is_empty() {
                crate::published::read_leaf_hashes_range(storage, start, end).await?
            } else {
                leaves
            };
            runs.push(Arc::new(write_run(storage, start, &leaves).await?));
            obsolete.extend(settle(storage, &mut runs).await?);
            let manifest = manifest_of(&runs, obsolete.clone());
            let etag = match write_manifest(storage, &manifest, etag.as_ref()).await {
                Ok(etag) => etag,
                Err(Error::TakenOver { detail }) => {
                    // Another process wrote the manifest: a sequencer this
                    // one took over, or one that took over this one (whose
                    // next commit then fails). Runs are a function of the
                    // log, so theirs serve as well: take them and go on.
                    warn!(detail, "taking the index as another writer left it");
                    self.reload().await?;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let mut state = self.state_mut();
            state.runs = Arc::new(runs);
            state.indexed = end;
            state.tail.retain(|_, index| *index >= end);
            state.manifest_etag = Some(etag);
            state.obsolete = obsolete;
            info!(
                indexed = end,
                runs = state.runs.len(),
                "deduplication index written"
            );
        }
        let obsolete = self.state().obsolete.clone();
        if !obsolete.is_empty() && delete_runs(storage, &obsolete).await {
            // The manifest still lists them until its next write; deleting
            // a missing object again is harmless.
            self.state_mut()
                .obsolete
                .retain(|run| !obsolete.contains(run));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn leaf(n: u64) -> Hash {
        stele_tiles::leaf_hash(&n.to_be_bytes())
    }

    /// A log's level-0 tiles in memory storage, for the index to confirm
    /// candidates against.
    async fn publish_leaves(storage: &MemoryStorage, leaves: &[Hash]) {
        for (number, chunk) in leaves.chunks(TILE_WIDTH as usize).enumerate() {
            let tile = Tile::hashes(0, number as u64, chunk.len() as u32);
            let bytes: Vec<u8> = chunk.iter().flat_map(|h| *h.as_bytes()).collect();
            storage
                .put(
                    &Key::new(tile.path()).expect("test"),
                    Bytes::from(bytes),
                    PutOptions::immutable(),
                )
                .await
                .expect("test");
        }
    }

    #[tokio::test]
    async fn matches_a_naive_map_through_flushes_merges_and_reopens() {
        let memory = Arc::new(MemoryStorage::new());
        let storage: Arc<dyn Storage> = memory.clone();
        let config = DedupConfig {
            flush_entries: 512,
            page_cache_bytes: 1 << 20,
        };
        // 10,000 leaves with some repeated values, recorded in batches.
        let leaves: Vec<Hash> = (0..10_000u64).map(|n| leaf(n % 9_000)).collect();
        publish_leaves(&memory, &leaves).await;
        let index = DedupIndex::open(storage.clone(), TileCache::new(0), 0, config.clone())
            .await
            .expect("test");
        let mut naive: HashMap<Hash, u64> = HashMap::new();
        let mut next = 0usize;
        for batch in [1usize, 7, 300, 1000, 2, 4000, 4690] {
            let range = next..next + batch;
            index.record(next as u64, &leaves[range.clone()]);
            for position in range {
                naive.entry(leaves[position]).or_insert(position as u64);
            }
            next += batch;
            index.flush().await.expect("test");
        }
        assert_eq!(next, leaves.len());
        assert!(index.indexed_size() >= 9_728 && index.runs() <= 6);
        let check = |index: DedupIndex, naive: HashMap<Hash, u64>| async move {
            for n in 0..9_000u64 {
                assert_eq!(
                    index.lookup(&leaf(n)).await.expect("test"),
                    naive.get(&leaf(n)).copied()
                );
            }
            for n in 9_000..12_000u64 {
                assert_eq!(index.lookup(&leaf(n)).await.expect("test"), None);
            }
        };
        check(index.clone(), naive.clone()).await;
        // Reopened from storage, with the tail read from the tiles.
        let reopened = DedupIndex::open(storage.clone(), TileCache::new(0), 10_000, config)
            .await
            .expect("test");
        assert_eq!(reopened.indexed_size(), index.indexed_size());
        check(reopened, naive).await;
    }

    /// A store with the level-0 tiles of `count` leaves, and an index on it
    /// (256-leaf flushes, no page cache) that has written the first run.
    async fn two_writers_setup(
        count: u64,
    ) -> (
        Arc<MemoryStorage>,
        Arc<dyn Storage>,
        DedupConfig,
        Vec<Hash>,
        DedupIndex,
    ) {
        let memory = Arc::new(MemoryStorage::new());
        let storage: Arc<dyn Storage> = memory.clone();
        let config = DedupConfig {
            flush_entries: 256,
            page_cache_bytes: 0,
        };
        let leaves: Vec<Hash> = (0..count).map(leaf).collect();
        publish_leaves(&memory, &leaves).await;
        let first = DedupIndex::open(storage.clone(), TileCache::new(0), 0, config.clone())
            .await
            .expect("test");
        first.record(0, &leaves[..256]);
        first.flush().await.expect("test");
        (memory, storage, config, leaves, first)
    }

    #[tokio::test]
    async fn a_second_writer_merging_runs_away_does_not_stop_lookups_or_flushes() {
        let (memory, storage, config, leaves, first) = two_writers_setup(2048).await;
        // A second process opens the log at 1,024 leaves: one run, the rest
        // in its tail.
        let second = DedupIndex::open(storage.clone(), TileCache::new(0), 1024, config.clone())
            .await
            .expect("test");
        assert_eq!((second.indexed_size(), second.runs()), (256, 1));
        // The first goes on: its merges delete the run the second holds.
        first.record(256, &leaves[256..1024]);
        first.flush().await.expect("test");
        assert!(!memory.contains(&meta_key(0, 256).expect("test")));
        // The second still finds every leaf, reading the manifest again
        // when a page is gone.
        for (position, leaf) in leaves[..1024].iter().enumerate() {
            assert_eq!(
                second.lookup(leaf).await.expect("test"),
                Some(position as u64)
            );
        }
        assert_eq!(second.indexed_size(), 1024);
        // The first moves the manifest again; the second's flush, refused
        // by the manifest's version, takes the first's runs and goes on.
        first.record(1024, &leaves[1024..1280]);
        first.flush().await.expect("test");
        second.record(1024, &leaves[1024..1792]);
        second.flush().await.expect("test");
        assert_eq!(second.indexed_size(), 1792);
        for (position, leaf) in leaves[..1792].iter().enumerate() {
            assert_eq!(
                second.lookup(leaf).await.expect("test"),
                Some(position as u64)
            );
        }
        assert_eq!(second.lookup(&leaf(5000)).await.expect("test"), None);
    }

    #[tokio::test]
    async fn a_flush_whose_runs_were_merged_away_takes_the_other_writers_runs() {
        let (memory, storage, config, leaves, first) = two_writers_setup(1024).await;
        let second = DedupIndex::open(storage.clone(), TileCache::new(0), 512, config)
            .await
            .expect("test");
        // The first merges [0, 256) away.
        first.record(256, &leaves[256..512]);
        first.flush().await.expect("test");
        assert!(!memory.contains(&meta_key(0, 256).expect("test")));
        // The second's flush would merge [0, 256) with its own [256, 512):
        // it finds the run gone, takes the first's runs, and goes on.
        second.record(512, &leaves[512..768]);
        second.flush().await.expect("test");
        assert_eq!((second.indexed_size(), second.runs()), (768, 2));
        for (position, leaf) in leaves[..768].iter().enumerate() {
            assert_eq!(
                second.lookup(leaf).await.expect("test"),
                Some(position as u64)
            );
        }
        assert_eq!(second.lookup(&leaves[800]).await.expect("test"), None);
    }
}
