//! Inclusion and consistency proofs of the published tree, built from the
//! few tiles each needs (c2sp.org/tlog-tiles), read from storage or through
//! the [`TileCache`].

use futures::{StreamExt, TryStreamExt};
use stele_tiles::Hash;
use stele_tiles::proof::{ProofPlan, TileSet, consistency_plan, inclusion_plan, tiles_for_nodes};
use stele_tiles::tile::{TILE_HEIGHT, Tile};

use crate::error::Error;
use crate::published::{CONCURRENCY, read_tile};
use crate::storage::Storage;
use crate::tilecache::TileCache;

/// Builds the inclusion proof of `index` in the published tree of
/// `tree_size` leaves, reading only the tiles the proof needs, through
/// `cache` if given. The proof is not checked here: see
/// [`crate::log`] for the check against the published root.
pub(crate) async fn prove_from_storage(
    storage: &dyn Storage,
    cache: Option<&TileCache>,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, Error> {
    execute_from_storage(storage, cache, inclusion_plan(index, tree_size)?, tree_size).await
}

/// The tiles [`prove_from_storage`] reads for `index` in a tree of
/// `tree_size` leaves.
pub(crate) fn inclusion_tiles(index: u64, tree_size: u64) -> Result<Vec<Tile>, Error> {
    let plan = inclusion_plan(index, tree_size)?;
    Ok(tiles_for_nodes(TILE_HEIGHT, tree_size, &plan.nodes))
}

/// Builds the consistency proof from `old_size` to the published tree of
/// `tree_size` leaves, reading only the tiles the proof needs.
pub(crate) async fn prove_consistency_from_storage(
    storage: &dyn Storage,
    old_size: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, Error> {
    execute_from_storage(
        storage,
        None,
        consistency_plan(old_size, tree_size)?,
        tree_size,
    )
    .await
}

/// Fetches the tiles a plan needs from the published tree (or `cache`)
/// and combines.
async fn execute_from_storage(
    storage: &dyn Storage,
    cache: Option<&TileCache>,
    plan: ProofPlan,
    tree_size: u64,
) -> Result<Vec<Hash>, Error> {
    let tiles = tiles_for_nodes(TILE_HEIGHT, tree_size, &plan.nodes);
    let fetched: Vec<(Tile, Vec<Hash>)> =
        futures::stream::iter(tiles.into_iter().map(|tile| async move {
            let hashes = match cache {
                Some(cache) => cache.hashes(storage, &tile).await?.to_vec(),
                None => tile.decode_hashes(&read_tile(storage, &tile).await?)?,
            };
            Ok::<_, Error>((tile, hashes))
        }))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut set = TileSet::new(TILE_HEIGHT, tree_size);
    for (tile, hashes) in fetched {
        set.insert(&tile, hashes);
    }
    Ok(plan.execute(&set)?)
}
