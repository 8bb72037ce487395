//! `stele adopt`: taking over a C2SP tlog-tiles log that another
//! implementation wrote (Go's sumdb tlog, Tessera, a Sunlight-style writer),
//! so that `stele serve` continues it. This is how an operator migrates a
//! log to Stele.
//!
//! Adoption has two phases, and writes nothing until the first has passed:
//!
//! 1. **Check** (`check.rs`), read-only: the public checkpoint is a signed
//!    note whose origin is the given one and which verifies under the given
//!    key; then, streaming over the log in tile order, every entry bundle
//!    decodes to the width its tile has and its entries hash to the leaf
//!    hashes of the level-0 tile; every hash tile of every level the tree has
//!    (full and, at the right edge, partial) equals the one computed from the
//!    tiles below it; and the computed root is the checkpoint's. Memory is
//!    bounded: a window of bundles in flight and one partial tile per level.
//!    The per-entry work (decoding, leaf hashes, the root of each full
//!    level-0 tile) runs in tasks of its own, so it uses every core; only one
//!    hash in 256 is combined in order.
//! 2. **Write** ([`adopt`]): the persistent deduplication index, built from
//!    the log by [`crate::dedup::build`], then the private lock object
//!    ([`LOCK_KEY`]) holding the checkpoint exactly as published. The lock is
//!    the commit protocol's commit point and is written create-only and last:
//!    a run killed before it left no lock, so running again checks and
//!    writes again (both are idempotent); a run that wrote it is done.
//!
//! A store that already holds a lock is a Stele log: if the lock holds the
//! published checkpoint's tree it was adopted (or written by Stele) and
//! there is nothing to do; otherwise adoption is refused, and `stele serve`
//! is what continues it.

mod check;
mod folder;
mod progress;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use stele_tiles::Hash;
use stele_tiles::note::NoteVerifier;
use tracing::info;

use self::check::{check, key, lock_state, refusal};
pub use self::folder::ReadOnlyFolder;
use self::progress::Progress;
use crate::commit::LOCK_KEY;
use crate::error::Error;
use crate::published::CHECKPOINT_KEY;
use crate::storage::{Condition, PutOptions, PutOutcome, Storage, StorageError};

/// What [`adopt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The log was checked and the lock and deduplication index written.
    Adopted {
        tree_size: u64,
        root: Hash,
        /// Leaves the persistent deduplication index covers (the rest, fewer
        /// than one of its flushes, `stele serve` reads at start).
        indexed: u64,
    },
    /// The store already holds a lock for the published tree: a Stele log,
    /// or one adopted before. Nothing was written.
    AlreadyAdopted { tree_size: u64 },
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// A progress bar on stderr when it is a terminal, log lines otherwise.
    Auto,
    /// Log lines only (tests, or output read by a program).
    Lines,
}

/// Adopts the log in `reader` (a read-only view of the store): checks it,
/// then, only if every check passed, opens the store for writing with
/// `open_writer` and writes the deduplication index and the lock.
pub async fn adopt<F>(
    reader: Arc<dyn Storage>,
    open_writer: F,
    origin: &str,
    verifier: &dyn NoteVerifier,
    style: ProgressStyle,
) -> Result<Outcome, Error>
where
    F: std::future::Future<Output = Result<Arc<dyn Storage>, Error>>,
{
    let checked = check(reader, origin, verifier, style).await?;
    let size = checked.checkpoint.size;
    if checked.already_adopted {
        return Ok(Outcome::AlreadyAdopted { tree_size: size });
    }
    let writer = open_writer.await?;

    // The checks read through another handle, before the store was locked
    // for writing: a writer still appending would have moved the checkpoint.
    let now = writer.get(&key(CHECKPOINT_KEY)?).await?;
    if now.as_ref().map(|object| &object.bytes) != Some(&checked.note) {
        return Err(refusal(
            "checkpoint",
            "the public checkpoint changed while the log was being checked: another writer is \
             still appending to it; stop it, then run stele adopt again",
        ));
    }
    if lock_state(writer.as_ref(), &checked.checkpoint, origin, verifier).await? {
        return Ok(Outcome::AlreadyAdopted { tree_size: size });
    }

    let progress = Progress::new("building the deduplication index", size, style);
    let report =
        crate::dedup::build(writer.as_ref(), size, &|done, _total| progress.set(done)).await?;
    progress.finish();

    // The commit point of the adoption: from here on it is a Stele log.
    match writer
        .put(
            &key(LOCK_KEY)?,
            checked.note.clone(),
            PutOptions::private(Condition::CreateOnly),
        )
        .await
    {
        Ok(PutOutcome::Written { .. } | PutOutcome::AlreadyExisted { .. }) => {}
        Err(StorageError::Conflict { .. }) => {
            return Err(refusal(
                "lock object",
                format!(
                    "another process wrote {LOCK_KEY} while this one was adopting the log; \
                     nothing more was written"
                ),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    info!(
        tree_size = size,
        root = %checked.checkpoint.root,
        "adopted the log: stele serve continues it"
    );
    Ok(Outcome::Adopted {
        tree_size: size,
        root: checked.checkpoint.root,
        indexed: report.indexed,
    })
}
