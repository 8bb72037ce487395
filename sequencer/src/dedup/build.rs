//! Indexing a log's published leaves in bulk, for a log whose tail is long
//! (one from before the index existed, or adopted from another
//! implementation).

use std::sync::Arc;

use tracing::info;

use super::DEFAULT_FLUSH_ENTRIES;
use super::format::corrupt;
use super::runs::{
    delete_runs, manifest_of, merge_runs, read_manifest, read_runs, settle, write_manifest,
    write_run,
};
use crate::error::Error;
use crate::storage::Storage;

/// Leaves sorted in memory at once by [`build`]: 2^20 (48 MiB of hashes
/// and records).
const BULK_CHUNK: u64 = 1 << 20;

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
/// of the default flush size (2^14 leaves). `progress(done, total)` counts
/// leaves. Memory is bounded by 2^20 leaves at a time and the filters.
/// Stopped at any point and run again, it finishes.
pub async fn build(
    storage: &dyn Storage,
    tree_size: u64,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<BuildReport, Error> {
    build_with(storage, tree_size, DEFAULT_FLUSH_ENTRIES, progress).await
}

pub(super) async fn build_with(
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
