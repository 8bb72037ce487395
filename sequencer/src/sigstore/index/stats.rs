//! `stats/v1/summary.json`: entries by kind, and the [`TOP`] signer keys
//! and namespaces with the most entries (docs/formats.md, "Statistics"),
//! kept by the indexer in the same pass that writes the index objects. The
//! format and the step over a chunk are `stele_rekor::stats`; this module
//! reads and writes the object, and says why the top lists stay exact.
//!
//! # Exact top lists in constant state
//!
//! The summary is the only state: three counters and two lists of at most
//! [`TOP`] names with their counts, whatever the size of the log or the
//! number of distinct signers. It stays exact because of two facts:
//!
//! 1. **Every count the indexer needs it reads anyway.** For each key and
//!    namespace a chunk `[start, end)` touches, the indexer reads the index
//!    object back before merging into it; the merged object lists every
//!    entry of that key in the published tree up to `end` (everything below
//!    `start` is indexed already, the chunk adds the rest), so its number of
//!    indices below `end` is that key's exact count at tree size `end`.
//!    (Counting below `end`, not the whole object, keeps the count exact
//!    even when a crash left indices of a later chunk in the object.)
//! 2. **Counts only grow, and only touched keys grow.** Rank keys by
//!    (count descending, name ascending). Let `L` be the exact top list at
//!    tree size `T` and `k` a key neither in `L` nor touched by the chunk.
//!    If `L` is full, every key of `L` ranked before `k` at `T`; their counts
//!    can only have grown since and `k`'s has not changed (no entry of `k`
//!    in `[T, end)`, as the chunk covers that range), so all [`TOP`] of them
//!    still rank before `k`, and `k` is not in the new top list. If `L` is
//!    not full, it held every key that had an entry, and `k` has none.
//!
//! So the new top list is the top [`TOP`] of `L` (with touched keys at their
//! new counts) and the touched keys: a key enters when its exact count
//! ranks it above the list's last, and only another key's growth can push
//! it out. Untouched keys of `L` keep their counts, which are still exact.
//!
//! # Crash safety
//!
//! The summary names the `tree_size` it covers and is written after the
//! chunk's index objects and before the marker. A chunk that ends at or
//! below `tree_size` (a range indexed again after a crash) leaves it alone;
//! a chunk that crosses it adds the kinds of its entries from `tree_size`
//! on only, so no entry is counted twice. The indexer starts from the lower
//! of the marker and the summary's `tree_size`, so a missing summary (a log
//! indexed before statistics existed, or one deleted by hand) is rebuilt by
//! reading the log again from the start, which writes no index object that
//! is already complete.

use std::collections::BTreeMap;

use bytes::Bytes;
use stele_rekor::index::Kind;
pub use stele_rekor::stats::{
    CACHE_STATS, CONTENT_TYPE_JSON, Kinds, SUMMARY_PATH as SUMMARY_KEY, Summary, TOP, TopNamespace,
    TopSigner,
};

use crate::error::Error;
use crate::published::key;
use crate::storage::{Condition, PutOptions, Storage, StorageError};

/// [`Summary::advance`], its refusal as an error of the sequencer.
pub(super) fn advance(
    summary: &mut Summary,
    start: u64,
    end: u64,
    kinds: &[Kind],
    counts: &BTreeMap<String, u64>,
) -> Result<(), Error> {
    summary
        .advance(start, end, kinds, counts)
        .map_err(|detail| Error::Corrupt {
            what: "statistics",
            detail,
        })
}

/// The summary in storage, if there is one.
pub async fn read_summary(storage: &dyn Storage) -> Result<Option<Summary>, Error> {
    let Some(object) = storage.get(&key(SUMMARY_KEY)?).await? else {
        return Ok(None);
    };
    Summary::parse(&object.bytes)
        .map(Some)
        .map_err(|problem| Error::Corrupt {
            what: "statistics",
            detail: format!("{SUMMARY_KEY}: {problem} (`stele reindex` rebuilds it)"),
        })
}

/// Writes `next` unless storage already holds a summary that covers as
/// much or more (written meanwhile by another indexer: a sequencer that has
/// lost the log to another, or the one that took it over), and returns the
/// summary storage holds afterwards. The write is conditional on the
/// version read, so a summary never goes back to a smaller tree.
pub(super) async fn advance_summary(
    storage: &dyn Storage,
    next: Summary,
) -> Result<Summary, Error> {
    let path = key(SUMMARY_KEY)?;
    loop {
        let condition = match storage.get(&path).await? {
            Some(object) => {
                let stored = Summary::parse(&object.bytes).map_err(|problem| Error::Corrupt {
                    what: "statistics",
                    detail: format!("{SUMMARY_KEY}: {problem} (`stele reindex` rebuilds it)"),
                })?;
                if stored.tree_size >= next.tree_size {
                    return Ok(stored);
                }
                Condition::IfMatch(object.etag)
            }
            None => Condition::CreateOnly,
        };
        let written = storage
            .put(
                &path,
                Bytes::from(next.render()),
                PutOptions::new(condition, CONTENT_TYPE_JSON, CACHE_STATS),
            )
            .await;
        match written {
            Ok(_) => return Ok(next),
            // Written meanwhile: look again.
            Err(StorageError::PreconditionFailed { .. } | StorageError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Writes `summary` whatever storage holds (`stele reindex`).
pub(super) async fn write_summary(storage: &dyn Storage, summary: &Summary) -> Result<(), Error> {
    storage
        .put(
            &key(SUMMARY_KEY)?,
            Bytes::from(summary.render()),
            PutOptions::new(Condition::None, CONTENT_TYPE_JSON, CACHE_STATS),
        )
        .await?;
    Ok(())
}
