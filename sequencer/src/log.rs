//! The log: a handle that takes submissions, and the one task that sequences
//! them through the commit protocol (see [`crate::commit`]).
//!
//! Submitters hand canonical entry bytes to [`Log::submit`]. Entries wait in
//! a bounded pool; a full pool answers [`SubmitError::PoolFull`] at once
//! (503 with `Retry-After` over HTTP) so memory never grows without bound.
//! The sequencing task takes a batch when it holds `max_batch` entries or
//! `batch_interval` has passed since its first entry, runs it through
//! [`crate::commit`], and only then answers each submitter with its receipt.
//!
//! The pool is bounded twice: in entries (`pool_size`) and in bytes
//! (`pool_bytes`, counted from submission until the entry's answer), so the
//! memory that submitters can make the process hold has a bound in bytes
//! whatever the entry sizes.
//!
//! A storage fault the host can clear (a full disk, a folder remounted
//! read-only, no file descriptors left, a store that times out) does not
//! stop the process. The batch in flight is answered "unavailable", the
//! log is marked *degraded* ([`Log::fault`]), and the sequencer runs its
//! recovery path with backoff until storage answers again. While degraded,
//! new entries are refused at once with [`SubmitError::Degraded`] (503 with
//! `Retry-After`), duplicates of published entries are still answered from
//! the published tiles, and reads go on. Only what no retry can fix ends the
//! sequencer: another sequencer took the log over, or storage holds state
//! that does not verify.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::note::{NoteSigner, NoteVerifier};
use stele_tiles::receipt::Receipt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tracing::{Instrument, error, info, info_span, warn};

use crate::commit::{self, LogState};
use crate::prove;
use crate::published::{self, Published};
use crate::tilecache::TileCache;

/// A boxed future that is `Send`.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
use crate::dedup::{DedupConfig, DedupIndex};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::witness::Witnesses;

/// The object recovery writes after a storage fault to see that storage
/// takes writes again (private; its content never matters).
pub const PROBE_KEY: &str = ".stele/write-probe";

/// Longest wait between recovery attempts while storage fails.
const MAX_RECOVERY_DELAY: Duration = Duration::from_secs(5);

/// Largest entry the log can hold (an entry bundle's uint16 length prefix).
pub const MAX_ENTRY_SIZE: usize = stele_tiles::bundle::MAX_ENTRY_SIZE;

/// Default bound of [`LogConfig::pool_bytes`]: 32 MiB, about 125,000
/// entries of 256 bytes or 512 of the largest (64 KiB): many batches of
/// typical entries. A batch being committed is held a few times over
/// (entries, bundles, the staging object), so the memory this bounds is a
/// small multiple of it; see README.md, "Staying up".
pub const DEFAULT_POOL_BYTES: usize = 32 << 20;

/// How the log batches and what it signs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The checkpoint origin line.
    pub origin: String,
    /// Most new entries in one batch.
    pub max_batch: usize,
    /// Longest wait from a batch's first entry to its sequencing.
    pub batch_interval: Duration,
    /// Most entries waiting to be sequenced; beyond it submitters get
    /// [`SubmitError::PoolFull`].
    pub pool_size: usize,
    /// Most bytes of entries waiting to be sequenced or being committed;
    /// beyond it submitters get [`SubmitError::PoolFull`].
    pub pool_bytes: usize,
    /// Delete partial tiles and bundles once the full tile is published.
    pub delete_partials: bool,
    /// Witnesses that cosign each checkpoint before it is published.
    pub witnesses: Option<Arc<Witnesses>>,
    /// Memory for published hash tiles, from which the proofs of duplicate
    /// submissions are built (0: read storage every time).
    pub tile_cache_bytes: u64,
    /// How the persistent deduplication index flushes and caches.
    pub dedup: DedupConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            origin: "localhost/stele".into(),
            max_batch: 4096,
            batch_interval: Duration::from_millis(50),
            pool_size: 65536,
            pool_bytes: DEFAULT_POOL_BYTES,
            delete_partials: false,
            witnesses: None,
            tile_cache_bytes: crate::tilecache::DEFAULT_CAPACITY_BYTES,
            dedup: DedupConfig::default(),
        }
    }
}

/// An accepted entry: its index and everything its receipt needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Index of the entry in the log.
    pub index: u64,
    /// Whether the entry was already in the log (or earlier in the batch).
    pub duplicate: bool,
    /// Leaf hash of the entry.
    pub leaf_hash: Hash,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: Arc<Vec<u8>>,
    /// The parsed checkpoint.
    pub tree: Checkpoint,
    /// Inclusion proof of the entry in `tree`.
    pub proof: Vec<Hash>,
}

impl Accepted {
    /// The c2sp.org/tlog-proof receipt.
    pub fn receipt(&self) -> Receipt {
        Receipt {
            extra: None,
            index: self.index,
            proof: self.proof.clone(),
            checkpoint: self.checkpoint.as_ref().clone(),
        }
    }
}

/// Why a submission was not accepted. Nothing was logged in any case but
/// [`SubmitError::Unavailable`], where the entry may have been committed:
/// submitting it again returns its index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The pool is full (in entries or in bytes): try again after the
    /// given time.
    #[error(
        "the log is busy: {pending} entries ({pending_bytes} bytes) are waiting; \
         retry after {}s", retry_after.as_secs()
    )]
    PoolFull {
        pending: usize,
        pending_bytes: usize,
        retry_after: Duration,
    },
    /// Storage is failing (a full disk, a read-only folder, no descriptors
    /// left, ...): nothing was logged, and the sequencer retries by itself.
    #[error(
        "the log cannot write to its storage ({reason}); nothing was logged; \
         retry after {}s", retry_after.as_secs()
    )]
    Degraded {
        reason: String,
        retry_after: Duration,
    },
    /// The entry is larger than the log accepts.
    #[error("entry of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge { length: usize, limit: usize },
    /// The log is shutting down and takes no more entries.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// Storage failed; the entry may or may not be logged.
    #[error("the log could not publish the entry: {0}; retry later")]
    Unavailable(String),
}

struct Request {
    entry: Vec<u8>,
    leaf: Hash,
    reply: oneshot::Sender<Result<Accepted, SubmitError>>,
    /// The entry's share of the pool's bytes, given back when the request
    /// is answered (or dropped).
    _bytes: PoolBytes,
}

/// Bytes held in the pool: a semaphore permit that also keeps the
/// `pool_bytes` gauge right.
struct PoolBytes {
    permit: OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl Drop for PoolBytes {
    fn drop(&mut self) {
        self.gauge.sub(self.permit.num_permits() as i64);
    }
}

/// Why the log is degraded, while it is.
#[derive(Debug, Clone)]
struct Fault {
    /// The error, as the log and `/healthz` say it.
    reason: String,
    /// Its kind (`disk_full`, `read_only`, `descriptors`, ...).
    kind: &'static str,
    /// When the next recovery attempt is due, for `Retry-After`.
    retry_after: Duration,
}

/// What readers of the handle share with the sequencing task.
#[derive(Debug)]
struct Shared {
    /// Leaf hash to index, for every entry in the published tree.
    dedup: DedupIndex,
    /// Published hash tiles, for the proofs of duplicates.
    tiles: TileCache,
    /// Bytes the pool may still take (see [`LogConfig::pool_bytes`]).
    pool_bytes: Arc<Semaphore>,
    /// Set while storage fails and the sequencer is recovering.
    fault: std::sync::Mutex<Option<Fault>>,
}

impl Shared {
    fn fault(&self) -> Option<Fault> {
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_fault(&self, fault: Option<Fault>) {
        *self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }

    /// The index of the first committed entry with this leaf hash, if any.
    async fn lookup(&self, leaf: &Hash) -> Result<Option<u64>, Error> {
        self.dedup.lookup(leaf).await
    }

    /// [`Shared::lookup`] of every leaf of a batch.
    async fn lookup_batch(&self, leaves: &[Hash]) -> Result<Vec<Option<u64>>, Error> {
        self.dedup.lookup_batch(leaves).await
    }

    /// Records committed leaves `first_index..` in the deduplication index.
    fn record(&self, first_index: u64, leaves: &[Hash]) {
        self.dedup.record(first_index, leaves);
    }
}

/// A handle to a running log; cheap to clone.
#[derive(Clone, Debug)]
pub struct Log {
    submissions: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    published: watch::Receiver<Published>,
    storage: Arc<dyn Storage>,
    shutdown: Arc<tokio::sync::Notify>,
    config: Arc<LogConfig>,
    metrics: Metrics,
}

/// The sequencing task; run it with [`Sequencer::run`] (usually spawned).
pub struct Sequencer {
    requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    published: watch::Sender<Published>,
    state: LogState,
    storage: Arc<dyn Storage>,
    signer: Arc<dyn NoteSigner>,
    verifier: Arc<dyn NoteVerifier>,
    shutdown: Arc<tokio::sync::Notify>,
    config: Arc<LogConfig>,
    metrics: Metrics,
    /// The deduplication index holds every leaf below this size.
    indexed_size: u64,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("tree_size", &self.state.edge.size())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log in `storage`: recovers whatever a crash left (finishing
    /// publication of a committed batch), creates the log if the store is
    /// empty, and rebuilds the deduplication index from the published
    /// level-0 tiles. Returns the handle and the task to run.
    pub async fn open(
        storage: Arc<dyn Storage>,
        signer: Arc<dyn NoteSigner>,
        verifier: Arc<dyn NoteVerifier>,
        config: LogConfig,
        metrics: Metrics,
    ) -> Result<(Log, Sequencer), Error> {
        if config.max_batch == 0 || config.pool_size == 0 {
            return Err(Error::Config(
                "max_batch and pool_size must be at least 1".into(),
            ));
        }
        if config.pool_bytes < MAX_ENTRY_SIZE {
            return Err(Error::Config(format!(
                "pool_bytes must be at least {MAX_ENTRY_SIZE} (the largest entry)"
            )));
        }
        let state = commit::recover(
            storage.as_ref(),
            &config.origin,
            signer.as_ref(),
            verifier.as_ref(),
            config.witnesses.as_deref(),
        )
        .await?;
        let started = Instant::now();
        let tiles = TileCache::new(config.tile_cache_bytes);
        let dedup = DedupIndex::open(
            storage.clone(),
            tiles.clone(),
            state.edge.size(),
            config.dedup.clone(),
        )
        .await?;
        info!(
            tree_size = state.edge.size(),
            indexed = dedup.indexed_size(),
            runs = dedup.runs(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log opened"
        );
        metrics.tree_size.set(state.edge.size() as i64);
        dedup.observe(&metrics);
        let indexed_size = state.edge.size();
        let shared = Arc::new(Shared {
            dedup,
            tiles,
            pool_bytes: Arc::new(Semaphore::new(config.pool_bytes)),
            fault: std::sync::Mutex::new(None),
        });
        let (submissions, requests) = mpsc::channel(config.pool_size);
        let (published_tx, published_rx) = watch::channel(state.published.clone());
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let config = Arc::new(config);
        let log = Log {
            submissions,
            shared: shared.clone(),
            published: published_rx,
            storage: storage.clone(),
            shutdown: shutdown.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
        };
        let sequencer = Sequencer {
            requests,
            shared,
            published: published_tx,
            state,
            storage,
            signer,
            verifier,
            shutdown,
            config,
            metrics,
            indexed_size,
        };
        Ok((log, sequencer))
    }

    /// The latest published checkpoint.
    pub fn published(&self) -> Published {
        self.published.borrow().clone()
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The storage the log publishes to.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Entries waiting to be sequenced.
    pub fn pool_depth(&self) -> usize {
        self.submissions.max_capacity() - self.submissions.capacity()
    }

    /// Bytes of entries waiting to be sequenced or being committed.
    pub fn pool_bytes(&self) -> usize {
        self.config.pool_bytes - self.shared.pool_bytes.available_permits()
    }

    /// While storage fails and the sequencer retries: the reason. New
    /// entries are refused meanwhile; reads and duplicates are answered.
    pub fn fault(&self) -> Option<String> {
        self.shared.fault().map(|fault| fault.reason)
    }

    /// Asks the sequencer to stop taking entries, sequence and publish what
    /// is pending, answer every waiting submitter, and return.
    pub fn shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// The index of an entry already in the published tree, if any.
    pub async fn lookup(&self, leaf: &Hash) -> Result<Option<u64>, Error> {
        self.shared.lookup(leaf).await
    }

    /// Logs `entry` (its canonical bytes) and waits for its receipt. An entry
    /// already in the log gets its original index.
    pub async fn submit(&self, entry: Vec<u8>) -> Result<Accepted, SubmitError> {
        let received = Instant::now();
        if entry.len() > MAX_ENTRY_SIZE {
            return Err(SubmitError::TooLarge {
                length: entry.len(),
                limit: MAX_ENTRY_SIZE,
            });
        }
        let leaf = stele_tiles::leaf_hash(&entry);
        let known = self
            .lookup(&leaf)
            .await
            .map_err(|err| SubmitError::Unavailable(err.to_string()))?;
        if let Some(index) = known {
            self.metrics
                .submissions
                .with_label_values(&["duplicate"])
                .inc();
            let result = prove_published(
                self.storage.as_ref(),
                &self.shared.tiles,
                &self.published(),
                index,
                leaf,
            )
            .await
            .map_err(|err| SubmitError::Unavailable(err.to_string()));
            self.metrics
                .submit_seconds
                .observe(received.elapsed().as_secs_f64());
            return result;
        }
        if let Some(fault) = self.shared.fault() {
            self.metrics
                .submissions
                .with_label_values(&["degraded"])
                .inc();
            return Err(SubmitError::Degraded {
                reason: fault.reason,
                retry_after: fault.retry_after,
            });
        }
        // An entry is at most MAX_ENTRY_SIZE (65535) bytes, so this fits.
        let size = u32::try_from(entry.len().max(1)).unwrap_or(u32::MAX);
        let Ok(permit) = self.shared.pool_bytes.clone().try_acquire_many_owned(size) else {
            return Err(self.pool_full());
        };
        self.metrics.pool_bytes.add(i64::from(size));
        let bytes = PoolBytes {
            permit,
            gauge: self.metrics.pool_bytes.clone(),
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            entry,
            leaf,
            reply,
            _bytes: bytes,
        };
        match self.submissions.try_send(request) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(self.pool_full()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(SubmitError::ShuttingDown);
            }
        }
        self.metrics.pool_depth.set(self.pool_depth() as i64);
        let result = answer.await.unwrap_or(Err(SubmitError::ShuttingDown));
        self.metrics
            .submit_seconds
            .observe(received.elapsed().as_secs_f64());
        result
    }

    fn pool_full(&self) -> SubmitError {
        self.metrics
            .submissions
            .with_label_values(&["pool_full"])
            .inc();
        SubmitError::PoolFull {
            pending: self.pool_depth(),
            pending_bytes: self.pool_bytes(),
            retry_after: self.retry_after(),
        }
    }

    /// A hint for rejected submitters: about the time to drain the pool.
    fn retry_after(&self) -> Duration {
        let batches = self.pool_depth().div_ceil(self.config.max_batch).max(1) as u32;
        (self.config.batch_interval * batches).max(Duration::from_secs(1))
    }
}

/// Builds the answer for an entry already in the published tree, with a
/// proof made from the published tiles (cached in `tiles`). The proof is
/// checked against the published root first: if a tile storage once
/// returned damaged is in the cache, the tiles are dropped and read again,
/// and a proof that still does not verify is an error, never an answer.
async fn prove_published(
    storage: &dyn Storage,
    tiles: &TileCache,
    published: &Published,
    index: u64,
    leaf: Hash,
) -> Result<Accepted, Error> {
    let tree = &published.checkpoint;
    let verify = |proof: &[Hash]| {
        stele_tiles::proof::verify_inclusion(&leaf, index, tree.size, proof, &tree.root)
    };
    let mut proof = prove::prove_from_storage(storage, Some(tiles), index, tree.size).await?;
    if verify(&proof).is_err() {
        warn!(
            index,
            tree_size = tree.size,
            "a proof from cached tiles did not verify; reading them again"
        );
        tiles.forget(&prove::inclusion_tiles(index, tree.size)?);
        proof = prove::prove_from_storage(storage, None, index, tree.size).await?;
        verify(&proof).map_err(|err| {
            Error::corrupt(
                "published tiles",
                format!("the inclusion proof of entry {index} they give does not verify: {err}"),
            )
        })?;
    }
    Ok(Accepted {
        index,
        duplicate: true,
        leaf_hash: leaf,
        checkpoint: published.note.clone(),
        tree: published.checkpoint.clone(),
        proof,
    })
}

/// What publishing a batch ends with: the published checkpoint and the
/// public checkpoint's ETag.
type PublishOutcome = Result<(Published, Option<crate::storage::ETag>), Error>;

/// A committed batch being published (steps 4 and 5), and who waits for it.
struct Publishing {
    /// Steps 4 and 5. It owns what it needs, so that the sequencing task
    /// drives it beside the next batch's staging and commit; if the task
    /// ends (a crash, as the tests make it), it ends with it.
    future: BoxFuture<'static, PublishOutcome>,
    batch: Arc<commit::Pending>,
    /// The submitters of each new entry of the batch: the first, then
    /// duplicates from within the batch.
    waiters: Vec<Vec<Request>>,
    /// Set once the batch's tiles are public: from then on the next batch's
    /// staging object need not carry them.
    tiles_published: Arc<AtomicBool>,
}

/// The sequencer's pipeline, two batches deep: one batch being published
/// while the next is taken, sequenced, staged and committed.
#[derive(Default)]
struct Pipeline {
    publishing: Option<Publishing>,
    /// Leaf hash to index of every entry committed and not yet published
    /// (so not yet in the deduplication index).
    in_flight: HashMap<Hash, u64, foldhash::fast::RandomState>,
    /// Duplicates of such entries, answered once their batch is public.
    awaiting: Vec<(Request, u64)>,
}

/// The batch in flight's publication; never ready when there is none.
async fn publication(publishing: &mut Option<Publishing>) -> PublishOutcome {
    match publishing {
        Some(publishing) => (&mut publishing.future).await,
        None => std::future::pending().await,
    }
}

/// Answers every request "unavailable": it may be committed (then
/// submitting it again gets its index) or not.
fn refuse(requests: impl IntoIterator<Item = Request>, cause: &Error) {
    let message = cause.to_string();
    for request in requests {
        let _ = request
            .reply
            .send(Err(SubmitError::Unavailable(message.clone())));
    }
}

impl Sequencer {
    /// Runs until [`Log::shutdown`] (returning `Ok` once everything pending
    /// is published and answered) or a fatal error (another sequencer took
    /// over, storage holds inconsistent state): then it stops writing and
    /// returns the error, and the process should exit non-zero.
    pub async fn run(mut self) -> Result<(), Error> {
        let mut draining = false;
        let mut pipeline = Pipeline::default();
        loop {
            let outcome = match self.gather(&mut draining, &mut pipeline).await {
                Ok(Some(batch)) => {
                    self.metrics.pool_depth.set(self.requests.len() as i64);
                    let span = info_span!(
                        "batch",
                        size = batch.len(),
                        tree_size = self.state.edge.size()
                    );
                    self.sequence(batch, &mut pipeline).instrument(span).await
                }
                Ok(None) => {
                    // Shutting down and nothing is queued: publish the
                    // batch in flight, answer it, and stop.
                    let outcome = match pipeline.publishing.is_some() {
                        true => {
                            let published = publication(&mut pipeline.publishing).await;
                            self.finish_publication(&mut pipeline, published)
                        }
                        false => Ok(()),
                    };
                    match outcome {
                        Ok(()) => return Ok(()),
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            };
            if let Err(err) = outcome {
                // Whatever failed, the batch being published (if any) ends
                // first: its writes must not race recovery's.
                self.abandon(&mut pipeline, &err).await;
                if err.is_fatal() {
                    error!(%err, "sequencer stopping");
                    return Err(err);
                }
                warn!(%err, kind = err.fault_kind(), "batch failed; recovering from storage");
                if !self.recover_until_ok(&err).await? {
                    warn!(
                        "shutting down while storage fails; the next start finishes \
                         publishing whatever was committed"
                    );
                    return Ok(());
                }
                if draining && self.requests.is_empty() && self.requests.is_closed() {
                    return Ok(());
                }
            }
        }
    }

    /// Takes the next batch: waits for a first entry, then takes entries
    /// until `max_batch` or until `batch_interval` has passed since the
    /// first, while the batch in flight is published (and answered as soon
    /// as it is public). `None` once the log is shutting down and nothing is
    /// queued. If the publication fails, the entries taken so far are
    /// answered "unavailable" and the error returned.
    async fn gather(
        &mut self,
        draining: &mut bool,
        pipeline: &mut Pipeline,
    ) -> Result<Option<Vec<Request>>, Error> {
        let first = loop {
            tokio::select! {
                request = self.requests.recv() => match request {
                    Some(request) => break request,
                    None => return Ok(None),
                },
                () = self.shutdown.notified(), if !*draining => {
                    info!("shutting down: sequencing what is pending");
                    self.requests.close();
                    *draining = true;
                }
                published = publication(&mut pipeline.publishing) => {
                    self.finish_publication(pipeline, published)?;
                }
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.config.batch_interval;
        while batch.len() < self.config.max_batch {
            // Take what is already queued without waiting.
            match self.requests.try_recv() {
                Ok(request) => {
                    batch.push(request);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if *draining {
                break;
            }
            tokio::select! {
                request = tokio::time::timeout_at(deadline, self.requests.recv()) => {
                    match request {
                        Ok(Some(request)) => batch.push(request),
                        Ok(None) | Err(_) => break,
                    }
                }
                () = self.shutdown.notified() => {
                    // Stop waiting for the interval: take what is queued
                    // and sequence it now.
                    info!("shutting down: sequencing what is pending");
                    self.requests.close();
                    *draining = true;
                }
                published = publication(&mut pipeline.publishing) => {
                    if let Err(err) = self.finish_publication(pipeline, published) {
                        refuse(batch, &err);
                        return Err(err);
                    }
                }
            }
        }
        Ok(Some(batch))
    }

    /// Runs `work` (which owns what it needs) while the batch in flight is
    /// published, answering that batch as soon as it is public. Returns the
    /// work's output, and the publication's error if it failed meanwhile
    /// (its submitters are answered by then).
    async fn alongside<T>(
        &mut self,
        pipeline: &mut Pipeline,
        work: impl Future<Output = T>,
    ) -> (T, Option<Error>) {
        tokio::pin!(work);
        if pipeline.publishing.is_some() {
            tokio::select! {
                output = &mut work => return (output, None),
                published = publication(&mut pipeline.publishing) => {
                    let failure = self.finish_publication(pipeline, published).err();
                    return (work.await, failure);
                }
            }
        }
        (work.await, None)
    }

    /// The end of the batch in flight's publication. Published: the batch's
    /// entries go into the deduplication index, and its submitters and the
    /// duplicates that waited for it are answered (step 6). Failed: its
    /// submitters are answered "unavailable" (the batch is committed, so
    /// submitting again gets the original index) and the error is returned
    /// for the caller to recover.
    fn finish_publication(
        &mut self,
        pipeline: &mut Pipeline,
        outcome: PublishOutcome,
    ) -> Result<(), Error> {
        let Some(Publishing { batch, waiters, .. }) = pipeline.publishing.take() else {
            return outcome.map(|_| ());
        };
        let (published, public_etag) = match outcome {
            Ok(published) => published,
            Err(err) => {
                refuse(waiters.into_iter().flatten(), &err);
                return Err(err);
            }
        };
        // Step 6, acknowledge: the batch is committed and published. The
        // new checkpoint is handed out before the entries enter the index,
        // so that a duplicate the index answers is proven against it.
        let integration = &batch.integration;
        let _ = self.published.send(published.clone());
        self.shared
            .record(integration.old_size, &integration.leaf_hashes);
        self.shared.dedup.observe(&self.metrics);
        self.indexed_size = integration.new_size;
        for leaf in &integration.leaf_hashes {
            pipeline.in_flight.remove(leaf);
        }
        // The tiles just published are the ones the next duplicates' proofs
        // most likely need (the right edge of the tree).
        for (tile, hashes) in &integration.hash_tiles {
            self.shared.tiles.insert(*tile, hashes);
        }
        self.state.published = published.clone();
        self.state.public_etag = public_etag;
        self.metrics.tree_size.set(integration.new_size as i64);
        self.metrics
            .submissions
            .with_label_values(&["new"])
            .inc_by(integration.leaf_hashes.len() as u64);
        for (offset, waiters) in waiters.into_iter().enumerate() {
            let index = integration.old_size + offset as u64;
            let proof = integration.inclusion_proof(index);
            for (position, request) in waiters.into_iter().enumerate() {
                let answer = proof
                    .clone()
                    .map(|proof| Accepted {
                        index,
                        duplicate: position > 0,
                        leaf_hash: request.leaf,
                        checkpoint: published.note.clone(),
                        tree: published.checkpoint.clone(),
                        proof,
                    })
                    .map_err(|err| SubmitError::Unavailable(err.to_string()));
                let _ = request.reply.send(answer);
            }
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut pipeline.awaiting)
            .into_iter()
            .partition(|(_, index)| *index < integration.new_size);
        pipeline.awaiting = waiting;
        self.answer_logged(ready);
        // Clean-up, off the submitters' path; a failure loses nothing and
        // recovery deletes what is left.
        let storage = self.storage.clone();
        let staging = batch.staging.clone();
        tokio::spawn(async move {
            if let Err(err) = storage.delete(&staging).await {
                warn!(%err, key = %staging, "could not delete staging object");
            }
        });
        Ok(())
    }

    /// Starts publishing a committed batch (steps 4 and 5); it runs while
    /// the next batch is taken, sequenced, staged and committed.
    fn start_publishing(
        &self,
        pipeline: &mut Pipeline,
        batch: Arc<commit::Pending>,
        waiters: Vec<Vec<Request>>,
    ) {
        let tiles_published = Arc::new(AtomicBool::new(false));
        let storage = self.storage.clone();
        let config = self.config.clone();
        let metrics = self.metrics.clone();
        let public_etag = self.state.public_etag.clone();
        let published_flag = tiles_published.clone();
        let pending = batch.clone();
        let future: BoxFuture<'static, PublishOutcome> = Box::pin(async move {
            let publisher = commit::Publisher {
                storage: storage.as_ref(),
                witnesses: config.witnesses.as_deref(),
                delete_partials: config.delete_partials,
                metrics: &metrics,
            };
            commit::publish_batch(publisher, &pending, public_etag, &published_flag).await
        });
        pipeline.publishing = Some(Publishing {
            future,
            batch,
            waiters,
            tiles_published,
        });
    }

    /// After a failure: lets the batch in flight finish its publication
    /// (its writes must not race recovery's) and answers it either way,
    /// then answers "unavailable" to the duplicates that waited for it.
    async fn abandon(&mut self, pipeline: &mut Pipeline, cause: &Error) {
        if pipeline.publishing.is_some() {
            let published = publication(&mut pipeline.publishing).await;
            if let Err(err) = self.finish_publication(pipeline, published) {
                warn!(%err, "the batch being published failed too");
            }
        }
        refuse(
            std::mem::take(&mut pipeline.awaiting)
                .into_iter()
                .map(|(request, _)| request),
            cause,
        );
        pipeline.in_flight.clear();
    }

    /// Recovers from storage after a failed batch, retrying faults that
    /// may pass with backoff (the log is degraded meanwhile, see
    /// [`Log::fault`]); fatal faults end the sequencer. Returns `false` if
    /// a shutdown was asked for before storage came back.
    async fn recover_until_ok(&mut self, cause: &Error) -> Result<bool, Error> {
        let mut delay = Duration::from_millis(50);
        self.enter_fault(cause, delay);
        loop {
            // Boxed as `Send` explicitly: the compiler cannot prove it
            // through the trait-object references on its own.
            let recovery: BoxFuture<'_, Result<LogState, Error>> = Box::pin(commit::recover(
                self.storage.as_ref(),
                &self.config.origin,
                self.signer.as_ref(),
                self.verifier.as_ref(),
                self.config.witnesses.as_deref(),
            ));
            // Recovery only reads when nothing was committed, so after a
            // storage fault a write shows that storage takes writes again
            // before submissions are let back in.
            let recovered = match recovery.await {
                Ok(state) => self.probe_writes().await.map(|()| state),
                Err(err) => Err(err),
            };
            match recovered {
                Ok(state) => {
                    let committed = state.edge.size();
                    if committed > self.indexed_size {
                        // The failed batch did commit: learn its leaves.
                        let leaves = published::read_leaf_hashes_range(
                            self.storage.as_ref(),
                            self.indexed_size,
                            committed,
                        )
                        .await?;
                        self.shared.record(self.indexed_size, &leaves);
                        self.indexed_size = committed;
                    }
                    self.state = state;
                    self.metrics.tree_size.set(committed as i64);
                    let _ = self.published.send(self.state.published.clone());
                    self.shared.set_fault(None);
                    self.metrics.degraded.set(0);
                    info!(tree_size = committed, "recovered; taking submissions again");
                    return Ok(true);
                }
                Err(err) if err.is_fatal() => return Err(err),
                Err(err) => {
                    delay = (delay * 2).min(MAX_RECOVERY_DELAY);
                    warn!(
                        %err,
                        kind = err.fault_kind(),
                        retry_in_ms = delay.as_millis() as u64,
                        "recovery failed; retrying"
                    );
                    self.enter_fault(&err, delay);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.shutdown.notified() => {
                            self.refuse_queued(|| SubmitError::ShuttingDown);
                            return Ok(false);
                        }
                    }
                }
            }
        }
    }

    /// Writes the private probe object ([`PROBE_KEY`]).
    async fn probe_writes(&self) -> Result<(), Error> {
        let key = crate::storage::Key::new(PROBE_KEY)?;
        let options = crate::storage::PutOptions::private(crate::storage::Condition::None);
        self.storage
            .put(&key, bytes::Bytes::from_static(b"stele\n"), options)
            .await?;
        Ok(())
    }

    /// Marks the log degraded by `err` and refuses what is already queued:
    /// those submitters get their 503 now rather than at their timeout.
    fn enter_fault(&mut self, err: &Error, delay: Duration) {
        let fault = Fault {
            reason: err.to_string(),
            kind: err.fault_kind(),
            retry_after: delay.max(Duration::from_secs(1)).min(MAX_RECOVERY_DELAY),
        };
        self.metrics
            .storage_faults
            .with_label_values(&[fault.kind])
            .inc();
        self.metrics.degraded.set(1);
        self.shared.set_fault(Some(fault.clone()));
        self.refuse_queued(|| SubmitError::Degraded {
            reason: fault.reason.clone(),
            retry_after: fault.retry_after,
        });
    }

    fn refuse_queued(&mut self, error: impl Fn() -> SubmitError) {
        while let Ok(request) = self.requests.try_recv() {
            let _ = request.reply.send(Err(error()));
        }
        self.metrics.pool_depth.set(self.requests.len() as i64);
    }

    /// One batch: deduplicate, sequence, stage and commit it while the batch
    /// before is published, then start its own publication once that one is
    /// public. Its submitters are answered when it is published (see
    /// [`Sequencer::finish_publication`]).
    async fn sequence(
        &mut self,
        batch: Vec<Request>,
        pipeline: &mut Pipeline,
    ) -> Result<(), Error> {
        // Duplicates of an entry committed in the batch in flight: not yet
        // in the deduplication index, answered once that batch is public.
        // Looked at before the index, so that an entry the batch in flight
        // records meanwhile is seen in one or the other.
        let mut requests = Vec::with_capacity(batch.len());
        let mut in_flight = Vec::new();
        for request in batch {
            match pipeline.in_flight.get(&request.leaf) {
                Some(&index) => in_flight.push((request, index)),
                None => requests.push(request),
            }
        }
        let leaves: Vec<Hash> = requests.iter().map(|request| request.leaf).collect();
        let shared = self.shared.clone();
        // Boxed as `Send` explicitly (as below): the compiler cannot prove
        // it through the references inside on its own.
        let lookup: BoxFuture<'static, Result<Vec<Option<u64>>, Error>> =
            Box::pin(async move { shared.lookup_batch(&leaves).await });
        let (known, failure) = self.alongside(pipeline, lookup).await;
        let known = match (known, failure) {
            (Ok(known), None) => known,
            (Err(err), _) | (Ok(_), Some(err)) => {
                refuse(requests, &err);
                refuse(in_flight.into_iter().map(|(request, _)| request), &err);
                return Err(err);
            }
        };

        // Split into new entries and duplicates (of the published log, of
        // the batch in flight, or of an entry earlier in this batch).
        let published_size = self.state.published.checkpoint.size;
        let mut logged: Vec<(Request, u64)> = Vec::new();
        let duplicates = in_flight.len();
        for (request, index) in in_flight {
            if index < published_size {
                logged.push((request, index));
            } else {
                pipeline.awaiting.push((request, index));
            }
        }
        let mut new_entries: Vec<Vec<u8>> = Vec::with_capacity(requests.len());
        let mut new_waiters: Vec<Vec<Request>> = Vec::with_capacity(requests.len());
        let mut in_batch: HashMap<Hash, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(requests.len(), Default::default());
        for (mut request, known) in requests.into_iter().zip(known) {
            if let Some(index) = known {
                logged.push((request, index));
            } else if let Some(&position) = in_batch.get(&request.leaf) {
                new_waiters[position].push(request);
            } else {
                in_batch.insert(request.leaf, new_entries.len());
                new_entries.push(std::mem::take(&mut request.entry));
                new_waiters.push(vec![request]);
            }
        }
        self.metrics
            .submissions
            .with_label_values(&["duplicate"])
            .inc_by((logged.len() + duplicates) as u64);
        // Duplicates of published entries are answered now, off this task.
        self.answer_logged(logged);
        if new_entries.is_empty() {
            return Ok(());
        }
        self.metrics.batch_size.observe(new_entries.len() as f64);

        // Step 1, sequence. The staging object carries the batch in flight's
        // tiles while they are not known to be public, so that recovery from
        // this batch's checkpoint alone publishes every tile of its tree.
        let carried = pipeline
            .publishing
            .as_ref()
            .filter(|publishing| !publishing.tiles_published.load(Ordering::SeqCst))
            .map(|publishing| publishing.batch.clone());
        let sequenced = commit::sequence_batch(
            &self.config.origin,
            self.signer.as_ref(),
            &self.metrics,
            &self.state.edge,
            &new_entries,
            carried.as_deref(),
        );
        drop(carried);
        let commit::Sequenced {
            pending,
            edge,
            staged,
        } = match sequenced {
            Ok(sequenced) => sequenced,
            Err(err) => {
                refuse(new_waiters.into_iter().flatten(), &err);
                return Err(err);
            }
        };
        let pending = Arc::new(pending);

        // Steps 2 and 3, stage and commit, while the batch before is being
        // published. The lock's If-Match chain stays serial: this commit
        // starts from the previous one's ETag.
        if pipeline.publishing.is_some() {
            self.metrics.pipelined_batches.inc();
        }
        let storage = self.storage.clone();
        let metrics = self.metrics.clone();
        let lock_etag = self.state.lock_etag.clone();
        let committing = pending.clone();
        let commit: BoxFuture<'static, Result<crate::storage::ETag, Error>> =
            Box::pin(async move {
                commit::stage_and_commit(
                    storage.as_ref(),
                    &metrics,
                    &lock_etag,
                    &committing,
                    staged,
                )
                .await
            });
        let (committed, failure) = self.alongside(pipeline, commit).await;
        match committed {
            Ok(lock_etag) => {
                self.state.edge = edge;
                self.state.lock_etag = lock_etag;
            }
            Err(err) => {
                refuse(new_waiters.into_iter().flatten(), &err);
                // A fatal error (another sequencer) wins over the other.
                return Err(match failure {
                    Some(failure) if !err.is_fatal() => failure,
                    _ => err,
                });
            }
        }
        // From here on the batch is in the log, whatever fails next.
        let integration = &pending.integration;
        for (offset, leaf) in integration.leaf_hashes.iter().enumerate() {
            pipeline
                .in_flight
                .insert(*leaf, integration.old_size + offset as u64);
        }
        if let Some(err) = failure {
            refuse(new_waiters.into_iter().flatten(), &err);
            return Err(err);
        }
        // Checkpoints are published in order: the batch before must be
        // public before this one's publication starts.
        if pipeline.publishing.is_some() {
            let published = publication(&mut pipeline.publishing).await;
            if let Err(err) = self.finish_publication(pipeline, published) {
                refuse(new_waiters.into_iter().flatten(), &err);
                return Err(err);
            }
        }
        self.start_publishing(pipeline, pending, new_waiters);
        Ok(())
    }

    /// Answers duplicates of entries already published, with proofs read
    /// from storage, off the sequencing task.
    fn answer_logged(&self, logged: Vec<(Request, u64)>) {
        if logged.is_empty() {
            return;
        }
        let storage = self.storage.clone();
        let shared = self.shared.clone();
        let published = self.state.published.clone();
        tokio::spawn(async move {
            for (request, index) in logged {
                let answer = prove_published(
                    storage.as_ref(),
                    &shared.tiles,
                    &published,
                    index,
                    request.leaf,
                )
                .await
                .map_err(|err| SubmitError::Unavailable(err.to_string()));
                let _ = request.reply.send(answer);
            }
        });
    }
}
