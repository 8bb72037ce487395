//! One shard whose log is open: its sequencer, API and followers (the
//! indexer and the history recorder), how it starts, and how it stops for
//! good when it freezes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stele_tiles::note::{NoteSigner, NoteVerifier};
use tokio::sync::{Mutex as AsyncMutex, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::{Api, ApiConfig};
use crate::error::Error;
use crate::history::{Clock, Recorder};
use crate::log::{Log, LogConfig};
use crate::metrics::Metrics;
use crate::published::{CHECKPOINT_KEY, FINAL_CHECKPOINT_KEY};
use crate::sigstore::SigstoreConfig;
use crate::sigstore::index::Indexer;
use crate::storage::{
    CACHE_IMMUTABLE, CONTENT_TYPE_TEXT, Condition, Key, PutOptions, Storage, StorageError,
};

/// How often the digest index looks for a newly published checkpoint.
const INDEX_POLL: Duration = Duration::from_millis(100);

/// Everything one shard's log needs to open, resolved by the caller (the
/// `stele` binary reads the key files and connects the stores).
pub struct ShardSpec {
    /// The URL segment; `None` for the single log at the root.
    pub name: Option<String>,
    /// When the shard takes entries.
    pub window: crate::config::Window,
    pub storage: Arc<dyn Storage>,
    pub signer: Arc<dyn NoteSigner>,
    pub verifier: Arc<dyn NoteVerifier>,
    pub log: LogConfig,
    pub api: ApiConfig,
    /// The Rekor v2 API and the indexes, when served.
    pub sigstore: Option<SigstoreConfig>,
    /// Checkpoint history interval; zero: no history.
    pub history_interval: Duration,
    /// The verifier key published beside the log (`log.vkey`), if any.
    pub vkey: Option<Vec<u8>>,
    /// The vkey of an ML-DSA-44 key signing beside the log's key
    /// (`log.mldsa44.vkey`), if it has one.
    pub mldsa_vkey: Option<Vec<u8>>,
    /// The shard's metrics (labelled with its name when there are shards).
    pub metrics: Metrics,
}

impl std::fmt::Debug for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSpec")
            .field("name", &self.name)
            .field("window", &self.window)
            .field("origin", &self.log.origin)
            .finish_non_exhaustive()
    }
}

/// A follower task (indexer, history) and the signal that stops it.
struct Follower {
    task: JoinHandle<()>,
    stop: Arc<Notify>,
}

/// An open shard.
pub(super) struct Running {
    pub(super) api: Arc<Api>,
    pub(super) log: Log,
    /// Held across the wait for the task's end, so that a drain that is
    /// given up (a signal during a freeze) leaves the handle for the drain
    /// of the shutdown that follows.
    sequencer: AsyncMutex<Option<JoinHandle<Result<(), Error>>>>,
    followers: AsyncMutex<Vec<Follower>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("tree_size", &self.log.published().checkpoint.size)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Opens the shard's log (recovering whatever a crash left), publishes
    /// the explorer and verifier key beside it, and starts its sequencer
    /// and followers. `ended` hears of the sequencer's end.
    pub(super) async fn start(
        spec: &ShardSpec,
        clock: Clock,
        ended: tokio::sync::mpsc::UnboundedSender<usize>,
        index: usize,
    ) -> Result<Running, Error> {
        let (log, sequencer) = Log::open(
            spec.storage.clone(),
            spec.signer.clone(),
            spec.verifier.clone(),
            spec.log.clone(),
            spec.metrics.clone(),
        )
        .await?;
        if let Some(vkey) = &spec.vkey {
            match crate::explorer::publish(spec.storage.as_ref(), vkey, spec.mldsa_vkey.as_deref())
                .await
            {
                Ok(published) => info!(
                    shard = spec.name.as_deref().unwrap_or(""),
                    written = published.written,
                    unchanged = published.unchanged,
                    "explorer published under explorer/"
                ),
                Err(err) => warn!(%err, "the explorer is not published"),
            }
        }
        let api = Api::with_sigstore(
            log.clone(),
            spec.metrics.clone(),
            spec.api.clone(),
            spec.sigstore.clone(),
        );
        let mut followers = Vec::new();
        if spec.sigstore.is_some() {
            let stop = Arc::new(Notify::new());
            let signal = stop.clone();
            let task = tokio::spawn(
                Indexer::new(log.clone(), INDEX_POLL).run(async move { signal.notified().await }),
            );
            followers.push(Follower { task, stop });
        }
        if !spec.history_interval.is_zero() {
            let stop = Arc::new(Notify::new());
            let signal = stop.clone();
            let task = tokio::spawn(
                Recorder::with_clock(log.clone(), spec.history_interval, clock)
                    .run(async move { signal.notified().await }),
            );
            followers.push(Follower { task, stop });
        }
        let sequencer = tokio::spawn(async move {
            let result = sequencer.run().await;
            let _ = ended.send(index);
            result
        });
        Ok(Running {
            api,
            log,
            sequencer: AsyncMutex::new(Some(sequencer)),
            followers: AsyncMutex::new(followers),
        })
    }

    /// Stops taking entries, publishes what is pending (answering every
    /// waiting submitter), then lets the followers make their last pass.
    /// Returns the sequencer's outcome.
    ///
    /// Safe to give up at any await and call again: a second call asks the
    /// sequencer to stop once more (one that retries a failing store then
    /// gives up, as at a shutdown) and waits for what is left.
    pub(super) async fn drain(&self) -> Result<(), Error> {
        self.log.shutdown();
        let result = {
            let mut sequencer = self.sequencer.lock().await;
            let result = match sequencer.as_mut() {
                Some(task) => match task.await {
                    Ok(result) => result,
                    Err(join) => Err(Error::Config(format!("the sequencer task failed: {join}"))),
                },
                None => Ok(()),
            };
            *sequencer = None;
            result
        };
        let mut followers = self.followers.lock().await;
        // The indexer makes one last pass when stopped, so the index
        // covers what the drain published.
        for follower in followers.iter() {
            follower.stop.notify_one();
        }
        while let Some(follower) = followers.last_mut() {
            let _ = (&mut follower.task).await;
            followers.pop();
        }
        result
    }
}

/// Writes `final-checkpoint`: the exact bytes of the published checkpoint,
/// create-only. Run after the shard's sequencer has drained, so nothing
/// can be published after it. Returns the final checkpoint's bytes.
pub(super) async fn write_final_checkpoint(storage: &dyn Storage) -> Result<Bytes, Error> {
    let checkpoint = storage
        .get(&Key::new(CHECKPOINT_KEY)?)
        .await?
        .ok_or_else(|| Error::Config("the shard has no published checkpoint to freeze".into()))?;
    let key = Key::new(FINAL_CHECKPOINT_KEY)?;
    let options = PutOptions::new(Condition::CreateOnly, CONTENT_TYPE_TEXT, CACHE_IMMUTABLE);
    match storage.put(&key, checkpoint.bytes.clone(), options).await {
        Ok(_) => Ok(checkpoint.bytes),
        Err(StorageError::Conflict { .. }) => Err(Error::Config(format!(
            "{FINAL_CHECKPOINT_KEY} already exists with other bytes than the published checkpoint: \
             the shard was frozen at another size; check the store"
        ))),
        Err(err) => Err(err.into()),
    }
}
