//! Reading a chunk of published entries for the indexes, and merging what
//! it gives into the index objects of all three families (digest, signer
//! key, namespace), which share one format (`stele_rekor::index`).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use stele_rekor::index::{Kind, collect_all, parse, render};

use super::CACHE_INDEX;
use crate::error::Error;
use crate::published::{key, read_entries};
use crate::storage::{CONTENT_TYPE_TEXT, Condition, PutOptions, Storage};

/// Index objects read-modify-written at once.
const CONCURRENCY: usize = 16;

/// What the published entries `[start, end)` add to the indexes.
#[derive(Debug)]
pub(super) struct Chunk {
    /// Every index object the chunk touches, by path, with the chunk's
    /// indices in it.
    pub(super) objects: BTreeMap<String, BTreeSet<u64>>,
    /// The kind of each entry, in order.
    pub(super) kinds: Vec<Kind>,
}

/// Reads the published entries `[start, end)` and what they add. Reading a
/// release statement checks its signature, so the entries are read on a
/// blocking thread, away from the tasks that answer requests.
pub(super) async fn read_chunk(
    storage: &dyn Storage,
    start: u64,
    end: u64,
) -> Result<Chunk, Error> {
    let entries = read_entries(storage, start, end).await?;
    let (objects, kinds) =
        match tokio::task::spawn_blocking(move || collect_all(start, &entries)).await {
            Ok(read) => read,
            // A panic there is a bug: let it be one here too.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        };
    Ok(Chunk { objects, kinds })
}

fn index_options() -> PutOptions {
    PutOptions::new(Condition::None, CONTENT_TYPE_TEXT, CACHE_INDEX)
}

/// Merges `additions` into the index objects (read, merge, write back);
/// with `replace`, writes them with exactly these indices. Returns each
/// object's number of indices below `below`: after the merge, the exact
/// number of entries of the object's digest, key or namespace in the tree
/// of size `below`, when every entry below it is indexed.
pub(super) async fn write_objects(
    storage: &dyn Storage,
    additions: BTreeMap<String, BTreeSet<u64>>,
    replace: bool,
    below: u64,
) -> Result<BTreeMap<String, u64>, Error> {
    futures::stream::iter(additions.into_iter().map(|(path, indices)| async move {
        let key = key(&path)?;
        let mut merged = indices;
        let mut unchanged = false;
        if !replace {
            if let Some(object) = storage.get(&key).await? {
                let existing = parse(&object.bytes).map_err(|problem| Error::Corrupt {
                    what: "index",
                    detail: format!("{key}: {problem} (`stele reindex` rebuilds it)"),
                })?;
                let known = existing.len();
                merged.extend(existing);
                // Every index is listed already (a range indexed again):
                // the write would change nothing.
                unchanged = merged.len() == known;
            }
        }
        if !unchanged {
            storage
                .put(&key, Bytes::from(render(&merged)), index_options())
                .await?;
        }
        let count = merged.range(..below).count() as u64;
        Ok::<(String, u64), Error>((path, count))
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<BTreeMap<String, u64>>()
    .await
}
