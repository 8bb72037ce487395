//! `stele mirror`: a verified copy of another party's log, kept as
//! c2sp.org/tlog-mirror lays a mirror out, so that readers need not depend
//! on the log operator's bucket (docs/standards.md, "Mirrors").
//!
//! The mirror *pulls*: it reads the log's objects over HTTP ([`Source`]),
//! in the log's own layout ([`Layout`]: tlog-tiles, or Go's checksum
//! database), and writes a tlog-tiles copy to a store (a folder or a
//! bucket) opened at the log's *origin hash*, `<prefix>/<hex SHA-256 of the
//! origin>/`: `checkpoint`, `tile/<L>/<N>`, `tile/entries/<N>`. A round
//! ([`Mirror::round`]):
//!
//! 1. reads the mirror's own checkpoint and the right edge of its tree from
//!    the store (it must fold to that checkpoint's root);
//! 2. reads the log's checkpoint, which must carry a valid signature by the
//!    log's key (and meet the policy, when one is given);
//! 3. authenticates the log's tiles against that checkpoint
//!    (`logtiles.rs`: the partial tiles fold to its root, each full tile
//!    hashes to what its parent holds), and checks that every complete
//!    subtree of the mirror's tree is the log's: the log's tree contains the
//!    mirror's, which is what a consistency proof shows;
//! 4. reads each new level-0 tile's entries, hashes them onto the mirror's
//!    right edge ([`RightEdge`](stele_tiles::integrate::RightEdge)), and
//!    requires every tile it computes to be the log's authenticated tile:
//!    nothing is written that was not recomputed and authenticated first;
//! 5. writes the tiles and bundles create-only (an object already there
//!    with other bytes is divergence), then, last, the checkpoint: the
//!    log's note, with its signatures, and the mirror's cosignature.
//!
//! Crash safety: the checkpoint is written last, and every other object
//! holds the one content its path allows; a run killed at any point leaves
//! a mirror whose checkpoint names a complete tree, and the next run writes
//! the same objects again (a success) before moving the checkpoint.
//! Memory: one bundle's worth of entries per fetch in flight, one tile per
//! level, the right edge.
//!
//! What the log's checkpoints do not allow stops the mirror with
//! [`MirrorError::Divergence`] and evidence ([`Divergence`]): a signature by
//! the log's key that does not verify, a checkpoint inconsistent with the
//! mirror's, a tile or bundle that does not hash to its checkpoint, a stored
//! object that is not what the log proves. [`Mirror::run`] writes it to
//! `<state>/divergence.json` and refuses to start while that file exists.

mod copy;
mod evidence;
mod key;
mod logtiles;
mod source;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use stele_tiles::Hash;
use stele_tiles::note::NoteVerifier;
use tracing::{info, warn};

pub use self::evidence::{DIVERGENCE_FILE, Divergence, divergence_path, recorded, sha256_hex};
pub use self::key::{MirrorKey, log_verifier};
pub use self::source::{HttpSource, Layout, Source, StoreSource};
use crate::error::Error;
use crate::storage::StorageError;

/// The origin of every Go checksum database's tree notes.
pub const SUMDB_ORIGIN: &str = "go.sum database tree";

/// The folder (or key prefix) of a log in a mirror: the lowercase hex
/// SHA-256 of its origin (c2sp.org/tlog-mirror).
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// A check of the log's checkpoint beyond its signature (a witness
/// policy): the checkpoint note as served in, what fails out.
pub type CheckpointCheck = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// One log mirrored into one store.
pub struct Mirror {
    /// Where the log is read.
    pub source: Arc<dyn Source>,
    /// How the log names its objects.
    pub layout: Layout,
    /// The log's origin: its checkpoints' first line.
    pub origin: String,
    /// The log's key: every checkpoint copied carries its signature.
    pub log_key: Box<dyn NoteVerifier>,
    /// What else a checkpoint must meet (a witness quorum), if anything.
    pub policy: Option<CheckpointCheck>,
    /// The mirror's store, opened at the log's origin hash.
    pub store: Arc<dyn crate::storage::Storage>,
    /// The mirror's key, which cosigns what it copied.
    pub key: MirrorKey,
    /// The state folder: the evidence of a divergence, the checkpoint of a
    /// round in progress.
    pub state: PathBuf,
    /// Log entries fetched at once (level-0 tiles in flight).
    pub in_flight: usize,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("source", &self.source)
            .field("layout", &self.layout)
            .field("origin", &self.origin)
            .field("store", &self.store)
            .field("key", &self.key.name())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mirror copied the log from `old_size` to `new_size`, and
    /// cosigned the new checkpoint.
    Copied {
        old_size: u64,
        new_size: u64,
        root: Hash,
        /// Tiles and bundles written (or found already there, identical).
        objects: u64,
    },
    /// The log's checkpoint is the mirror's: nothing to do.
    UpToDate { size: u64 },
    /// The log serves an older checkpoint than the mirror holds (a cache
    /// lagging behind), consistent with the mirror's tree.
    LogBehind { log_size: u64, mirror_size: u64 },
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The log and its checkpoints disagree, or the mirror holds what the
    /// log does not prove: stop, with the evidence.
    #[error("divergence: {}", .0.message)]
    Divergence(Box<Divergence>),
    /// The log could not be read (unreachable, an HTTP error, a missing
    /// object): tried again next round.
    #[error("reading the log: {0}")]
    Log(String),
    /// The mirror's store failed, or holds a tree that does not verify.
    #[error(transparent)]
    Store(#[from] Error),
    /// Bad options or key material.
    #[error("{0}")]
    Usage(String),
    /// A fault of the mirror itself.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

impl From<Divergence> for MirrorError {
    fn from(divergence: Divergence) -> MirrorError {
        MirrorError::Divergence(Box::new(divergence))
    }
}

impl From<StorageError> for MirrorError {
    fn from(err: StorageError) -> MirrorError {
        MirrorError::Store(Error::Storage(err))
    }
}

impl MirrorError {
    /// Whether a later round may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            MirrorError::Log(_) => true,
            MirrorError::Store(err) => !err.is_fatal(),
            _ => false,
        }
    }
}

impl Mirror {
    /// One round: copy the log up to its current checkpoint, or find that
    /// there is nothing to copy. A divergence comes back with its evidence
    /// filled in, but is not recorded: [`Mirror::run`] records it.
    pub async fn round(&self) -> Result<Outcome, MirrorError> {
        let mut context = copy::Context::default();
        let result = copy::round(self, &mut context).await;
        result.map_err(|err| match err {
            MirrorError::Divergence(mut divergence) => {
                divergence.origin.clone_from(&self.origin);
                divergence.log = self.source.location("");
                divergence.detected_at = evidence::now_rfc3339();
                divergence.mirror_checkpoint = context.mirror.as_deref().map(lossy);
                divergence.log_checkpoint = context.log.as_deref().map(lossy);
                divergence.pending_checkpoint = context.pending.as_deref().map(lossy);
                MirrorError::Divergence(divergence)
            }
            other => other,
        })
    }

    /// Refuses to start while a divergence is recorded in the state folder.
    pub fn check_state(&self) -> Result<(), MirrorError> {
        match recorded(&self.state) {
            None => Ok(()),
            Some(Ok(divergence)) => Err(MirrorError::Divergence(Box::new(divergence))),
            Some(Err(reason)) => Err(MirrorError::Usage(format!(
                "{reason}; it is there, so the mirror does not start: look at it, then remove it"
            ))),
        }
    }

    /// Rounds every `interval` (once with `interval` `None`), until a
    /// divergence (recorded in the state folder, then returned) or an error
    /// a later round cannot mend. A round that fails for a reason that may
    /// pass is logged and tried again at the next interval; with `once` it
    /// is returned.
    pub async fn run(&self, interval: Option<Duration>) -> Result<Outcome, MirrorError> {
        self.check_state()?;
        loop {
            let result = self.round().await;
            match &result {
                Ok(outcome) => report(&self.origin, outcome),
                Err(MirrorError::Divergence(divergence)) => {
                    let path = evidence::record(&self.state, divergence).map_err(|err| {
                        MirrorError::Usage(format!(
                            "{}; and the evidence could not be written to {}: {err}",
                            divergence.message,
                            divergence_path(&self.state).display()
                        ))
                    })?;
                    warn!(evidence = %path.display(), "{}", divergence.message);
                    return result;
                }
                Err(err) if err.is_retryable() && interval.is_some() => {
                    warn!(error = %err, "this round failed; trying again at the next one");
                }
                Err(_) => return result,
            }
            let Some(interval) = interval else {
                return result;
            };
            tokio::time::sleep(interval).await;
        }
    }
}

fn report(origin: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Copied {
            old_size,
            new_size,
            root,
            objects,
        } => info!(
            origin,
            old_size,
            new_size,
            %root,
            objects,
            "copied and cosigned"
        ),
        Outcome::UpToDate { size } => info!(origin, size, "up to date"),
        Outcome::LogBehind {
            log_size,
            mirror_size,
        } => info!(
            origin,
            log_size, mirror_size, "the log serves an older checkpoint than the mirror's"
        ),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
