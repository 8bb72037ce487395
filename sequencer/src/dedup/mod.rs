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
//! sorted by key then index, cut into *pages* of about 8,192
//! (`PAGE_RECORDS`) records (equal keys never straddle two pages). Each
//! page is an object; the run's *meta* object holds, per page, its first
//! key and a binary fuse filter of its keys (about 9–10 bits a leaf). A
//! run's content is a function of the log's leaves in its range, so
//! rewriting a run after a crash writes the very same bytes.
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use futures::{StreamExt, TryStreamExt};
use stele_tiles::Hash;
use stele_tiles::tile::{TILE_WIDTH, Tile};
use tracing::{info, warn};

use crate::error::Error;
use crate::storage::{ETag, Key, Storage};
use crate::tilecache::TileCache;

mod build;
mod format;
mod runs;
#[cfg(test)]
mod tests;

use build::build_with;
pub use build::{BuildReport, build};
use format::{PageInfo, RECORD_LEN, Record, Run, corrupt, decode_page, key_of, page_key};
use runs::{delete_runs, manifest_of, read_manifest, read_runs, settle, write_manifest, write_run};

/// Where the index lives.
pub const DEDUP_PREFIX: &str = ".stele/dedup/";
/// The manifest object.
pub(crate) const MANIFEST_KEY: &str = ".stele/dedup/manifest";
/// Records per page, about: 8,192 records of 16 bytes are 128 KiB.
pub(crate) const PAGE_RECORDS: usize = 8192;
/// Default [`DedupConfig::flush_entries`]: 2^14 leaves, 64 level-0 tiles.
pub(crate) const DEFAULT_FLUSH_ENTRIES: u64 = 1 << 14;
/// Default [`DedupConfig::page_cache_bytes`].
pub(crate) const DEFAULT_PAGE_CACHE_BYTES: u64 = 16 << 20;
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

/// Why a lookup could not finish: a page gone (the runs changed under
/// it), or anything else.
#[derive(Debug)]
enum Missing {
    Page(Key),
    Other(Error),
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
    pub(crate) fn runs(&self) -> usize {
        self.state().runs.len()
    }

    /// Leaves in the tail, waiting to be written as a run.
    pub(crate) fn pending(&self) -> u64 {
        let state = self.state();
        state.next - state.indexed
    }

    /// Bytes of memory the filters, page directories and tail take (the
    /// page cache aside).
    pub(crate) fn memory_bytes(&self) -> u64 {
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
    pub(crate) fn observe(&self, metrics: &crate::metrics::Metrics) {
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
    pub(crate) async fn lookup_batch(&self, leaves: &[Hash]) -> Result<Vec<Option<u64>>, Error> {
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
    pub(crate) fn record(&self, first_index: u64, leaves: &[Hash]) {
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
