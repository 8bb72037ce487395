//! The commit protocol (docs/commit-protocol.md), step by step,
//! with the crash point between each pair of steps.
//!
//! 1. Sequence: integrate the batch into a copy of the right edge, in memory
//!    ([`sequence_batch`]).
//! 2. Stage: write one private object with every tile and bundle of the
//!    batch and the signed checkpoint ([`stage_and_commit`]).
//! 3. Commit: replace the private lock object, which holds the latest signed
//!    checkpoint, on the condition that it is still the version we read
//!    (`If-Match`). This is the commit point.
//! 4. Publish tiles and bundles, create-only: a path only ever holds one
//!    content ([`publish_batch`]).
//! 5. Publish the checkpoint, never over a newer one.
//! 6. Acknowledge (the caller, once step 5 is done).
//!
//! # The pipeline
//!
//! The sequencer ([`crate::log`]) overlaps batches, two deep: while batch N
//! goes through steps 4 and 5, batch N+1 is taken from the pool and goes
//! through steps 1 to 3. What keeps the promises:
//!
//! - Commits stay serial: N+1's `If-Match` is the ETag N's commit returned,
//!   so two sequencers still cannot both commit (no fork).
//! - Publications stay serial and in order: N+1's tiles and checkpoint are
//!   published only once N's checkpoint is, so the public checkpoint never
//!   goes back, and no two publications write the same paths at once.
//! - Acknowledgement waits for the batch's own checkpoint (or a later one)
//!   to be public; a duplicate of an entry of N that arrives while N is
//!   committed but unpublished gets N's index, and its answer waits for N.
//! - Recovery reads only the staging object of the checkpoint in the lock.
//!   So while N's tiles are not known to be public, N+1's staging object
//!   carries them too (those N+1 does not rewrite wider): a crash after N+1's
//!   commit and before N's tiles were published loses nothing, because
//!   recovery publishes N+1's tree, which includes N, from N+1's staging
//!   object. N's own checkpoint is then never published; N+1's covers it.
//! - Any failure lets the batch in flight finish (its writes must not race
//!   recovery's), answers every submitter not yet answered "unavailable"
//!   (the entry may be committed: submitting it again gets its index), and
//!   runs [`recover`].
//!
//! [`recover`] runs on start and after any failed batch: it reads the lock
//! object, finishes steps 4 and 5 from that checkpoint's staging object, and
//! rebuilds the right edge from the published tiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::integrate::{Integration, RightEdge};
use stele_tiles::note::{Note, NoteSigner, NoteVerifier};
use stele_tiles::tile::{TILE_HEIGHT, Tile};
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::metrics::Metrics;
use crate::published::{CACHE_CHECKPOINT, CHECKPOINT_KEY, Published, key, read_right_edge};
use crate::staging::{STAGING_PREFIX, Staged, staging_key};
use crate::storage::{
    CONTENT_TYPE_TEXT, Condition, ETag, Key, KeyPrefix, PutOptions, Storage, StorageError,
};
use crate::witness::Witnesses;

/// The private lock object: the latest committed signed checkpoint.
pub const LOCK_KEY: &str = ".stele/lock";
/// How many objects are read or written at once.
const CONCURRENCY: usize = 16;

/// What the sequencer knows about the committed log.
#[derive(Debug, Clone)]
pub(crate) struct LogState {
    /// The right edge of the committed (and published) tree.
    pub edge: RightEdge,
    /// ETag of the lock object, for the next commit's `If-Match`.
    pub lock_etag: ETag,
    /// The published checkpoint (equal to the committed one between batches).
    pub published: Published,
    /// ETag of the public checkpoint object as last written or read.
    pub public_etag: Option<ETag>,
}

/// A batch through steps 1 to 3 (sequenced, staged, committed) whose
/// publication (steps 4 and 5) is still to come.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Its tiles, root and the proofs of its entries.
    pub integration: Integration,
    /// The committed checkpoint.
    pub checkpoint: Checkpoint,
    /// The log-signed checkpoint note, as in the lock object.
    pub note: Vec<u8>,
    /// Every tile and bundle the batch publishes.
    pub objects: Vec<(Tile, Bytes)>,
    /// The batch's staging object: the caller deletes it once the batch is
    /// published, off the submitters' path (recovery deletes any that a
    /// crash leaves).
    pub staging: Key,
}

/// A batch after step 1: what to stage, and the right edge it leads to.
#[derive(Debug)]
pub(crate) struct Sequenced {
    pub pending: Pending,
    /// The right edge of the tree with the batch, to keep once committed.
    pub edge: RightEdge,
    /// The encoded staging object.
    pub staged: Bytes,
}

/// What every batch is published with: the store, the witnesses and the
/// publication options.
#[derive(Clone, Copy)]
pub(crate) struct Publisher<'a> {
    pub storage: &'a dyn Storage,
    pub witnesses: Option<&'a Witnesses>,
    pub delete_partials: bool,
    pub metrics: &'a Metrics,
}

impl std::fmt::Debug for Publisher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("storage", &self.storage)
            .field("witnesses", &self.witnesses)
            .field("delete_partials", &self.delete_partials)
            .finish_non_exhaustive()
    }
}

fn phase(metrics: &Metrics, name: &str, started: Instant) {
    metrics
        .batch_phase_seconds
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
}

/// Step 1, sequence: integrates `entries` into a copy of `edge`, signs the
/// checkpoint and encodes the staging object, all in memory.
///
/// `carried` is the batch before this one while it is committed but its
/// tiles are not yet known to be public: its tiles and bundles that this
/// batch does not rewrite go into this batch's staging object too, so that
/// recovery from this batch's checkpoint (the only staging object recovery
/// reads) publishes every tile of its tree. Tiles this batch rewrites (the
/// same tile, wider or full) are left out: the tree of this checkpoint does
/// not need the narrower ones.
pub(crate) fn sequence_batch(
    origin: &str,
    signers: &[&dyn NoteSigner],
    metrics: &Metrics,
    edge: &RightEdge,
    entries: &[Vec<u8>],
    carried: Option<&Pending>,
) -> Result<Sequenced, Error> {
    let started = Instant::now();
    let mut edge = edge.clone();
    let integration = edge.integrate(entries)?;
    let checkpoint = integration.checkpoint(origin);
    let note = sign_by_all(&checkpoint, signers)?.to_bytes();
    let objects: Vec<(Tile, Bytes)> = integration
        .objects()
        .map(|(tile, data)| (tile, Bytes::from(data)))
        .collect();
    let rewritten = |tile: &Tile| {
        objects
            .iter()
            .any(|(own, _)| own.kind == tile.kind && own.index == tile.index)
    };
    let carried_objects: Vec<&(Tile, Bytes)> = carried
        .into_iter()
        .flat_map(|carried| carried.objects.iter())
        .filter(|(tile, _)| !rewritten(tile))
        .collect();
    let staged = Staged {
        checkpoint: note.clone(),
        objects: objects
            .iter()
            .chain(carried_objects)
            .map(|(tile, data)| (tile.path(), data.to_vec()))
            .collect(),
    };
    let staging = key(&staging_key(checkpoint.size, &checkpoint.root))?;
    let staged = Bytes::from(staged.encode());
    phase(metrics, "sequence", started);
    Ok(Sequenced {
        pending: Pending {
            integration,
            checkpoint,
            note,
            objects,
            staging,
        },
        edge,
        staged,
    })
}

/// Steps 2 and 3, stage and commit. Returns the lock object's new ETag. On
/// error the batch may or may not be committed: the caller must
/// [`recover`].
pub(crate) async fn stage_and_commit(
    storage: &dyn Storage,
    metrics: &Metrics,
    lock_etag: &ETag,
    pending: &Pending,
    staged: Bytes,
) -> Result<ETag, Error> {
    // Step 2, stage. Crash after this: the lock still names the previous
    // checkpoint, so the staging object is an orphan that recovery deletes;
    // no submitter of this batch was answered.
    let started = Instant::now();
    // Overwriting is safe: a staging object is only ever read for the
    // checkpoint in the lock, and an ECDSA re-signature after a crash would
    // make a create-only write fail for no reason.
    storage
        .put(
            &pending.staging,
            staged,
            PutOptions::private(Condition::None),
        )
        .await?;
    phase(metrics, "stage", started);

    // Step 3, commit: the commit point. Crash after this: recovery finds the
    // new checkpoint in the lock and finishes steps 4 and 5 from staging.
    let started = Instant::now();
    let lock_etag = commit_lock(storage, lock_etag, &pending.note).await?;
    phase(metrics, "commit", started);
    Ok(lock_etag)
}

/// Steps 4 and 5 of a committed batch: publishes its tiles and bundles
/// (then sets `tiles_published`), has witnesses cosign, publishes the
/// checkpoint, and deletes the partial tiles its full tiles replace if
/// asked to. Returns the published checkpoint and the public checkpoint's
/// new ETag. The caller publishes one batch at a time, in commit order; on
/// error it must [`recover`] (the batch is committed whatever failed).
pub(crate) async fn publish_batch(
    publisher: Publisher<'_>,
    pending: &Pending,
    public_etag: Option<ETag>,
    tiles_published: &AtomicBool,
) -> Result<(Published, Option<ETag>), Error> {
    let Publisher {
        storage,
        witnesses,
        delete_partials,
        metrics,
    } = publisher;

    // Step 4, publish tiles and bundles. Crash after this: recovery uploads
    // them again; identical bytes at a path are a success.
    let started = Instant::now();
    let mut uploads = Vec::with_capacity(pending.objects.len());
    for (tile, data) in &pending.objects {
        uploads.push((key(&tile.path())?, data.clone()));
    }
    publish_objects(storage, uploads).await?;
    tiles_published.store(true, Ordering::SeqCst);
    phase(metrics, "publish_tiles", started);

    // Witnesses cosign the committed checkpoint; the tiles they may need
    // for nothing but the proof are public by now. Too few cosignatures
    // fail the batch here, committed but unpublished: recovery retries.
    let started = Instant::now();
    let note = cosign(
        storage,
        witnesses,
        pending.note.clone(),
        &pending.checkpoint,
    )
    .await?;
    phase(metrics, "witness", started);

    // Step 5, publish the checkpoint. Crash after this: recovery sees the
    // public checkpoint is current and only cleans up.
    let started = Instant::now();
    let public_etag = publish_checkpoint(storage, public_etag, &pending.checkpoint, &note).await?;
    phase(metrics, "publish_checkpoint", started);

    if delete_partials {
        delete_stale_partials(storage, &pending.integration).await;
    }
    Ok((
        Published {
            note: Arc::new(note),
            checkpoint: pending.checkpoint.clone(),
        },
        public_etag,
    ))
}

/// Adds the witnesses' cosignatures to a log-signed checkpoint, if the log
/// has witnesses.
async fn cosign(
    storage: &dyn Storage,
    witnesses: Option<&Witnesses>,
    note: Vec<u8>,
    checkpoint: &Checkpoint,
) -> Result<Vec<u8>, Error> {
    match witnesses {
        Some(witnesses) if !witnesses.is_empty() => {
            witnesses.cosign(storage, &note, checkpoint).await
        }
        _ => Ok(note),
    }
}

/// Step 3: replace the lock object if it is still the version we hold.
async fn commit_lock(storage: &dyn Storage, expected: &ETag, note: &[u8]) -> Result<ETag, Error> {
    let lock = key(LOCK_KEY)?;
    match storage
        .put(
            &lock,
            Bytes::copy_from_slice(note),
            PutOptions::private(Condition::IfMatch(expected.clone())),
        )
        .await
    {
        Ok(outcome) => Ok(outcome.etag().clone()),
        Err(StorageError::PreconditionFailed { .. }) => {
            // Either another sequencer moved the lock, or our own write went
            // through and its reply was lost before a retry: tell them apart
            // by content.
            match storage.get(&lock).await? {
                Some(current) if current.bytes.as_ref() == note => Ok(current.etag),
                _ => Err(Error::TakenOver {
                    detail: format!(
                        "{LOCK_KEY} no longer holds the checkpoint this sequencer committed"
                    ),
                }),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// Step 4: create-only uploads, several at once.
async fn publish_objects(storage: &dyn Storage, uploads: Vec<(Key, Bytes)>) -> Result<(), Error> {
    // Each upload owns its key and bytes (`Bytes` clones share the buffer),
    // which also keeps the futures free of borrowed closure arguments.
    futures::stream::iter(uploads.into_iter().map(|(key, data)| async move {
        match storage.put(&key, data, PutOptions::immutable()).await {
            Ok(_) => Ok(()),
            Err(err @ StorageError::Conflict { .. }) => {
                // "Same path, same bytes" was broken: a bug, or a second
                // writer. Never paper over it.
                tracing::error!(%err, "a public path already holds different bytes");
                Err(Error::corrupt("public tile", err))
            }
            Err(err) => Err(Error::from(err)),
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// Step 5: write the public checkpoint unless a newer (or equal) one is
/// already there. The write is conditional on the version last seen, so a
/// stalled sequencer can never roll the public checkpoint back over a newer
/// one written meanwhile.
async fn publish_checkpoint(
    storage: &dyn Storage,
    mut known: Option<ETag>,
    checkpoint: &Checkpoint,
    note: &[u8],
) -> Result<Option<ETag>, Error> {
    let public = key(CHECKPOINT_KEY)?;
    for _ in 0..8 {
        let condition = match &known {
            Some(etag) => Condition::IfMatch(etag.clone()),
            None => Condition::CreateOnly,
        };
        let options = PutOptions::new(condition, CONTENT_TYPE_TEXT, CACHE_CHECKPOINT);
        match storage
            .put(&public, Bytes::copy_from_slice(note), options)
            .await
        {
            Ok(outcome) => return Ok(Some(outcome.etag().clone())),
            Err(StorageError::PreconditionFailed { .. } | StorageError::Conflict { .. }) => {
                // Someone (or our own lost reply) changed it: look again.
                match storage.get(&public).await? {
                    None => known = None,
                    Some(current) => {
                        let size = public_size(&current.bytes);
                        if current.bytes.as_ref() == note
                            || size.is_some_and(|s| s >= checkpoint.size)
                        {
                            debug!(?size, "public checkpoint already current");
                            return Ok(Some(current.etag));
                        }
                        known = Some(current.etag);
                    }
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(Error::TakenOver {
        detail: "the public checkpoint keeps changing under this sequencer".into(),
    })
}

/// Size line of a public checkpoint, without verifying it (only used to
/// decide whether ours is newer).
fn public_size(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines().nth(1)?.parse().ok()
}

/// Deletes the partial tiles and bundles that a full tile of this batch
/// replaced. Readers fall back to the full tile, as c2sp.org/tlog-tiles
/// allows; the full tile was published in step 4, before this runs.
async fn delete_stale_partials(storage: &dyn Storage, integration: &Integration) {
    let full_tiles = integration
        .hash_tiles
        .iter()
        .map(|(tile, _)| *tile)
        .chain(integration.bundles.iter().map(|(tile, _)| *tile))
        .filter(|tile| !tile.is_partial());
    for tile in full_tiles {
        let prefix = format!("{}.p/", tile.path());
        let Ok(prefix) = KeyPrefix::new(prefix) else {
            continue;
        };
        match storage.list(&prefix).await {
            Ok(keys) => {
                for key in keys {
                    if let Err(err) = storage.delete(&key).await {
                        warn!(%err, %key, "could not delete stale partial tile");
                    }
                }
            }
            Err(err) => warn!(%err, "could not list stale partial tiles"),
        }
    }
}

/// Opens the committed state of the log, finishing whatever a crash left:
/// creates an empty log in an empty store; otherwise verifies the lock's
/// checkpoint, publishes its staged tiles and the checkpoint if they are not
/// yet public, deletes staging objects, and rebuilds the right edge from the
/// published tiles, checking it against the committed root.
pub(crate) async fn recover(
    storage: &dyn Storage,
    origin: &str,
    signers: &[&dyn NoteSigner],
    verifier: &dyn NoteVerifier,
    witnesses: Option<&Witnesses>,
) -> Result<LogState, Error> {
    let lock = key(LOCK_KEY)?;
    let public = key(CHECKPOINT_KEY)?;
    let Some(locked) = storage.get(&lock).await? else {
        return create_log(storage, origin, signers, witnesses).await;
    };
    check_origin(&locked.bytes, origin)?;
    let (checkpoint, locked_note) = open_checkpoint(&locked.bytes, origin, verifier)
        .map_err(|err| Error::corrupt("lock object", err))?;
    check_companion(&locked_note, checkpoint.size, origin, signers)?;

    // Finish step 4 from staging, if the batch left one.
    let staging = key(&staging_key(checkpoint.size, &checkpoint.root))?;
    if let Some(object) = storage.get(&staging).await? {
        let staged = Staged::decode(&object.bytes)?;
        if staged.checkpoint != locked.bytes.as_ref() {
            return Err(Error::corrupt(
                "staging object",
                format!("{staging} holds another checkpoint than {LOCK_KEY}"),
            ));
        }
        info!(
            tree_size = checkpoint.size,
            objects = staged.objects.len(),
            "publishing a committed batch left by an earlier run"
        );
        let mut uploads = Vec::with_capacity(staged.objects.len());
        for (path, data) in staged.objects {
            uploads.push((key(&path)?, Bytes::from(data)));
        }
        publish_objects(storage, uploads).await?;
    }

    // Finish step 5. A public checkpoint of the same tree (the committed
    // one with cosignatures) is current; an older one is replaced by the
    // committed checkpoint, cosigned first if the log has witnesses.
    let (public_etag, public_note) = match storage.get(&public).await? {
        Some(current) => {
            let (published, _) = open_checkpoint(&current.bytes, origin, verifier)
                .map_err(|err| Error::corrupt("public checkpoint", err))?;
            if published.size > checkpoint.size
                || (published.size == checkpoint.size && published.root != checkpoint.root)
            {
                // The lock is always at least as new as the public
                // checkpoint, unless another sequencer moved both since we
                // read the lock: then it is alive, and this one must not
                // write.
                if storage.get(&lock).await?.map(|object| object.bytes)
                    != Some(locked.bytes.clone())
                {
                    return Err(Error::TakenOver {
                        detail: "another sequencer committed while this one was starting".into(),
                    });
                }
                return Err(Error::corrupt(
                    "public checkpoint",
                    format!(
                        "public checkpoint (size {}) is not a predecessor of the committed one (size {})",
                        published.size, checkpoint.size
                    ),
                ));
            }
            if published.size == checkpoint.size {
                (Some(current.etag), current.bytes.to_vec())
            } else {
                let note = cosign(storage, witnesses, locked.bytes.to_vec(), &checkpoint).await?;
                let etag =
                    publish_checkpoint(storage, Some(current.etag), &checkpoint, &note).await?;
                (etag, note)
            }
        }
        None => {
            let note = cosign(storage, witnesses, locked.bytes.to_vec(), &checkpoint).await?;
            let etag = publish_checkpoint(storage, None, &checkpoint, &note).await?;
            (etag, note)
        }
    };

    // Clean up staging objects up to the committed size: the committed one
    // is published, the others are orphans of batches that never committed.
    // Larger ones are left alone: they may belong to another sequencer's
    // batch in flight (which then fails its commit), and go once the lock
    // passes them.
    let prefix = KeyPrefix::new(STAGING_PREFIX)?;
    for orphan in storage.list(&prefix).await? {
        let size = orphan
            .as_str()
            .strip_prefix(STAGING_PREFIX)
            .and_then(|name| name.split_once('-'))
            .and_then(|(size, _)| size.parse::<u64>().ok());
        if size.is_none_or(|size| size <= checkpoint.size) {
            storage.delete(&orphan).await?;
        }
    }

    let edge = read_right_edge(storage, checkpoint.size).await?;
    if edge.root() != checkpoint.root {
        return Err(Error::corrupt(
            "published tiles",
            format!(
                "tiles hash to {} but the committed checkpoint of size {} has root {}",
                edge.root(),
                checkpoint.size,
                checkpoint.root
            ),
        ));
    }
    Ok(LogState {
        edge,
        lock_etag: locked.etag,
        published: Published {
            note: Arc::new(public_note),
            checkpoint,
        },
        public_etag,
    })
}

/// Refuses, with a message that says so, a configured origin that is not
/// the committed checkpoint's: an operator's slip (an ECDSA key file holds
/// no name, so its origin comes from the configuration), not damage. A lock
/// object without a readable first line is left to `open_checkpoint`.
fn check_origin(locked: &[u8], origin: &str) -> Result<(), Error> {
    let first_line = locked
        .split(|byte| *byte == b'\n')
        .next()
        .and_then(|line| std::str::from_utf8(line).ok());
    match first_line {
        Some(found) if !found.is_empty() && found != origin => Err(Error::Config(format!(
            "the log's origin is {found:?} (the first line of its checkpoint), but the \
             configured origin is {origin:?}; the origin of a log cannot change: serve it \
             with --origin {found}"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a start whose ML-DSA-44 companion key (the second signer) is
/// not the one that signed the committed checkpoint: a lost key file, for
/// which a fresh key would have been made, or a replaced one. Readers
/// trust the companion key the log published (`log.mldsa44.vkey`); the log
/// must not move to another one on its own. A checkpoint signed before the
/// log had a companion carries no such line and is accepted (the log's key
/// alone verified it); a log that dropped its companion is not checked.
fn check_companion(
    locked: &Note,
    size: u64,
    origin: &str,
    signers: &[&dyn NoteSigner],
) -> Result<(), Error> {
    let [main, companion] = signers else {
        return Ok(());
    };
    match locked.signatures.iter().find(|line| {
        line.name == origin && line.key_id != main.key_id() && line.key_id != companion.key_id()
    }) {
        Some(line) => Err(Error::Config(format!(
            "the log's committed checkpoint (size {size}) is signed by {origin}+{:08x}, but the \
             ML-DSA-44 companion key (mldsa_key) is {origin}+{:08x}: the log's keys do not \
             change, and readers trust the one it published in log.mldsa44.vkey. Restore the \
             key file that signed it (a missing mldsa_key file is made anew at the start)",
            line.key_id,
            companion.key_id()
        ))),
        None => Ok(()),
    }
}

/// Signs `checkpoint` with every key of the log, the main key first (an
/// ML-DSA-44 companion key after it).
fn sign_by_all(checkpoint: &Checkpoint, signers: &[&dyn NoteSigner]) -> Result<Note, Error> {
    checkpoint.validate()?;
    Ok(Note::sign(&checkpoint.to_text(), signers)?)
}

/// Creates the empty log: the lock object first (create-only, so two
/// sequencers starting on one empty store cannot both succeed), then the
/// public checkpoint.
async fn create_log(
    storage: &dyn Storage,
    origin: &str,
    signers: &[&dyn NoteSigner],
    witnesses: Option<&Witnesses>,
) -> Result<LogState, Error> {
    let public = key(CHECKPOINT_KEY)?;
    if storage.get(&public).await?.is_some() {
        return Err(Error::corrupt(
            "lock object",
            format!(
                "{LOCK_KEY} is missing but a public checkpoint exists; refusing to start a new log over it"
            ),
        ));
    }
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        size: 0,
        root: Hash::EMPTY,
        extensions: Vec::new(),
    };
    let note = sign_by_all(&checkpoint, signers)?.to_bytes();
    let lock = key(LOCK_KEY)?;
    let lock_etag = match storage
        .put(
            &lock,
            Bytes::from(note.clone()),
            PutOptions::private(Condition::CreateOnly),
        )
        .await
    {
        Ok(outcome) => outcome.etag().clone(),
        Err(StorageError::Conflict { .. }) => {
            return Err(Error::TakenOver {
                detail: "another sequencer created this log at the same moment".into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    let note = cosign(storage, witnesses, note, &checkpoint).await?;
    let public_etag = publish_checkpoint(storage, None, &checkpoint, &note).await?;
    info!(origin, "created a new, empty log");
    Ok(LogState {
        edge: RightEdge::empty(TILE_HEIGHT),
        lock_etag,
        published: Published {
            note: Arc::new(note),
            checkpoint,
        },
        public_etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_tiles::note::Ed25519Signer;

    /// The staging object of a batch sequenced behind one still in flight
    /// holds exactly the tiles of its own tree that either batch wrote: its
    /// own, and those of the batch before that it does not rewrite.
    #[test]
    fn a_staging_object_carries_the_tiles_of_the_batch_in_flight() {
        let origin = "test.example/staging";
        let signer = Ed25519Signer::from_seed(origin, &[7; 32]).expect("key");
        let metrics = Metrics::default();
        let entries = |from: usize, to: usize| -> Vec<Vec<u8>> {
            (from..to)
                .map(|i| format!("entry {i}").into_bytes())
                .collect()
        };
        // 250 entries, then a batch that ends in the first tile (N), then
        // one that fills it and starts the next (N+1).
        let mut edge = RightEdge::empty(TILE_HEIGHT);
        edge.integrate(&entries(0, 250)).expect("history");
        let first = sequence_batch(
            origin,
            &[&signer],
            &metrics,
            &edge,
            &entries(250, 253),
            None,
        )
        .expect("batch N");
        let second = sequence_batch(
            origin,
            &[&signer],
            &metrics,
            &first.edge,
            &entries(253, 300),
            Some(&first.pending),
        )
        .expect("batch N+1");
        let alone = sequence_batch(
            origin,
            &[&signer],
            &metrics,
            &first.edge,
            &entries(253, 300),
            None,
        )
        .expect("batch N+1 alone");

        let staged = Staged::decode(&second.staged).expect("staging object");
        let paths: Vec<&str> = staged
            .objects
            .iter()
            .map(|(path, _)| path.as_str())
            .collect();
        let mut distinct = paths.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), paths.len(), "a path twice: {paths:?}");
        // Every object of N+1, with the same bytes as without a carry.
        let own: Vec<(String, Vec<u8>)> = Staged::decode(&alone.staged)
            .expect("staging object")
            .objects;
        for object in &own {
            assert!(staged.objects.contains(object), "{} missing", object.0);
        }
        // Of N's objects, exactly those N+1 does not rewrite.
        let rewritten = |tile: &Tile| {
            second
                .pending
                .objects
                .iter()
                .any(|(own, _)| own.kind == tile.kind && own.index == tile.index)
        };
        let mut carried = 0;
        for (tile, data) in &first.pending.objects {
            let object = (tile.path(), data.to_vec());
            assert_eq!(
                staged.objects.contains(&object),
                !rewritten(tile),
                "{tile} of batch N"
            );
            carried += usize::from(!rewritten(tile));
        }
        assert_eq!(staged.objects.len(), own.len() + carried);
        // N wrote partial versions of level-0 tile 0 and its bundle, which
        // N+1 fills: nothing of N is needed in N+1's tree.
        assert!(
            first
                .pending
                .objects
                .iter()
                .all(|(tile, _)| rewritten(tile))
        );

        // A batch that does not touch N's tiles carries them all: N writes
        // the first full tile, N+1 stays in the second.
        let mut edge = RightEdge::empty(TILE_HEIGHT);
        edge.integrate(&entries(0, 200)).expect("history");
        let first = sequence_batch(
            origin,
            &[&signer],
            &metrics,
            &edge,
            &entries(200, 260),
            None,
        )
        .expect("batch N");
        let second = sequence_batch(
            origin,
            &[&signer],
            &metrics,
            &first.edge,
            &entries(260, 270),
            Some(&first.pending),
        )
        .expect("batch N+1");
        let staged = Staged::decode(&second.staged).expect("staging object");
        let full: Vec<&Tile> = first
            .pending
            .objects
            .iter()
            .map(|(tile, _)| tile)
            .filter(|tile| !tile.is_partial())
            .collect();
        assert!(!full.is_empty(), "batch N fills a tile");
        for tile in full {
            assert!(
                staged.objects.iter().any(|(path, _)| *path == tile.path()),
                "{tile} of batch N is not carried"
            );
        }
    }
}
