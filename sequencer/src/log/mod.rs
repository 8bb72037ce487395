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
use std::sync::atomic::AtomicBool;
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

mod batch;
mod sequencer;

/// The object recovery writes after a storage fault to see that storage
/// takes writes again (private; its content never matters).
pub(crate) const PROBE_KEY: &str = ".stele/write-probe";

/// Longest wait between recovery attempts while storage fails.
const MAX_RECOVERY_DELAY: Duration = Duration::from_secs(5);

/// Largest entry the log can hold (an entry bundle's uint16 length prefix).
pub const MAX_ENTRY_SIZE: usize = stele_tiles::bundle::MAX_ENTRY_SIZE;

/// Default bound of [`LogConfig::pool_bytes`]: 32 MiB, about 125,000
/// entries of 256 bytes or 512 of the largest (64 KiB): many batches of
/// typical entries. A batch being committed is held a few times over
/// (entries, bundles, the staging object), so the memory this bounds is a
/// small multiple of it; see docs/operations.md, "Faults and limits".
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
    /// An ML-DSA-44 key that signs every checkpoint after the log's key.
    pub companion: Option<CompanionSigner>,
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
            companion: None,
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
    /// The log's key, then its companion key if it has one.
    signers: Vec<Arc<dyn NoteSigner>>,
    verifier: Arc<dyn NoteVerifier>,
    shutdown: Arc<tokio::sync::Notify>,
    config: Arc<LogConfig>,
    metrics: Metrics,
    /// The deduplication index holds every leaf below this size.
    indexed_size: u64,
}

/// A second key signing every checkpoint (see [`LogConfig::companion`]).
#[derive(Clone)]
pub struct CompanionSigner(pub Arc<dyn NoteSigner>);

impl std::fmt::Debug for CompanionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:08x}", self.0.name(), self.0.key_id())
    }
}

/// The signers as the commit protocol takes them.
fn signer_refs(signers: &[Arc<dyn NoteSigner>]) -> Vec<&dyn NoteSigner> {
    signers.iter().map(|signer| signer.as_ref()).collect()
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
        let mut signers = vec![signer];
        signers.extend(
            config
                .companion
                .as_ref()
                .map(|companion| companion.0.clone()),
        );
        let state = commit::recover(
            storage.as_ref(),
            &config.origin,
            &signer_refs(&signers),
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
            signers,
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
