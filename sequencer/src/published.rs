//! The published tree's read side: the public checkpoint, and the tiles
//! and entry bundles below it, read back from storage. The commit protocol
//! (`commit.rs`) writes these objects; everything that reads them (recovery,
//! the tile cache, proofs, the deduplication index, the digest indexer,
//! `stele adopt`) reads them through here. The object layout is described
//! in docs/storage.md.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::integrate::RightEdge;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, TileKind};
use stele_tiles::{Hash, bundle};

use crate::error::Error;
use crate::storage::{Key, Storage};

/// The public checkpoint.
pub const CHECKPOINT_KEY: &str = "checkpoint";
/// `Cache-Control` of the public checkpoint: it changes with every batch.
pub const CACHE_CHECKPOINT: &str = "public, max-age=2";
/// A frozen shard's last checkpoint: the exact bytes of its public
/// checkpoint when it froze, written once (docs/shards.md). Its presence
/// is what makes a shard frozen.
pub const FINAL_CHECKPOINT_KEY: &str = "final-checkpoint";
/// How many tiles are read at once.
pub(crate) const CONCURRENCY: usize = 16;

/// The published state: the checkpoint every answer is proven against.
#[derive(Debug, Clone)]
pub struct Published {
    /// The signed checkpoint note.
    pub note: Arc<Vec<u8>>,
    /// Its parsed body.
    pub checkpoint: Checkpoint,
}

pub(crate) fn key(text: &str) -> Result<Key, Error> {
    Ok(Key::new(text)?)
}

/// Reads a published tile at the width it has in a tree, falling back to
/// the full tile when the partial one was deleted (c2sp.org/tlog-tiles).
pub async fn read_tile(storage: &dyn Storage, tile: &Tile) -> Result<Vec<u8>, Error> {
    if let Some(object) = storage.get(&key(&tile.path())?).await? {
        return Ok(object.bytes.to_vec());
    }
    if tile.is_partial() {
        if let Some(object) = storage.get(&key(&tile.full().path())?).await? {
            return Ok(match tile.kind {
                TileKind::Hashes { .. } => object
                    .bytes
                    .get(..tile.hash_tile_len())
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        Error::corrupt("published tile", format!("{} is short", tile.full()))
                    })?,
                TileKind::Entries => {
                    let entries = bundle::decode(&object.bytes, None)?;
                    let kept = entries.get(..tile.width as usize).ok_or_else(|| {
                        Error::corrupt("published bundle", format!("{} is short", tile.full()))
                    })?;
                    bundle::encode(kept)?
                }
            });
        }
    }
    Err(Error::corrupt(
        "published tiles",
        format!("{tile} is missing"),
    ))
}

/// Rebuilds the right edge of the published tree of `tree_size` leaves.
pub(crate) async fn read_right_edge(
    storage: &dyn Storage,
    tree_size: u64,
) -> Result<RightEdge, Error> {
    let mut partial_tiles: Vec<Vec<Hash>> = Vec::new();
    let mut partial_bundle = Vec::new();
    for tile in RightEdge::tiles_needed(TILE_HEIGHT, tree_size) {
        let data = read_tile(storage, &tile).await?;
        match tile.kind {
            TileKind::Hashes { level } => {
                let level = usize::from(level);
                if partial_tiles.len() <= level {
                    partial_tiles.resize(level + 1, Vec::new());
                }
                partial_tiles[level] = tile.decode_hashes(&data)?;
            }
            TileKind::Entries => partial_bundle = data,
        }
    }
    Ok(RightEdge::from_tiles(
        TILE_HEIGHT,
        tree_size,
        partial_tiles,
        partial_bundle,
    )?)
}

/// Every leaf hash of the published tree, read from its level-0 tiles.
pub async fn read_leaf_hashes(storage: &dyn Storage, tree_size: u64) -> Result<Vec<Hash>, Error> {
    read_leaf_hashes_range(storage, 0, tree_size).await
}

/// The leaf hashes of leaves `[start, end)` of the published tree of at
/// least `end` leaves.
pub async fn read_leaf_hashes_range(
    storage: &dyn Storage,
    start: u64,
    end: u64,
) -> Result<Vec<Hash>, Error> {
    read_level0_range(
        storage,
        start,
        end,
        |index, width| Tile::hashes(0, index, width),
        |tile, data| Ok(tile.decode_hashes(data)?),
    )
    .await
}

/// The entries `[start, end)` of the published tree of at least `end`
/// leaves, read from its entry bundles.
pub async fn read_entries(
    storage: &dyn Storage,
    start: u64,
    end: u64,
) -> Result<Vec<Vec<u8>>, Error> {
    read_level0_range(storage, start, end, Tile::entries, |tile, data| {
        let entries = bundle::decode(data, Some(tile.width as usize))?;
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    })
    .await
}

/// Items `[start, end)` of the published tree of at least `end` leaves,
/// from the level-0 tiles that hold them (`tile_at(index, width)`: hash
/// tiles or entry bundles), read a few at once and each decoded with
/// `decode`.
async fn read_level0_range<T>(
    storage: &dyn Storage,
    start: u64,
    end: u64,
    tile_at: fn(u64, u32) -> Tile,
    decode: fn(&Tile, &[u8]) -> Result<Vec<T>, Error>,
) -> Result<Vec<T>, Error> {
    if start >= end {
        return Ok(Vec::new());
    }
    let width = u64::from(TILE_WIDTH);
    let first_tile = start / width;
    let last_tile = (end - 1) / width;
    let tiles: Vec<Vec<T>> = futures::stream::iter((first_tile..=last_tile).map(|index| {
        let tile = tile_at(index, (end - index * width).min(width) as u32);
        async move {
            let data = read_tile(storage, &tile).await?;
            decode(&tile, &data)
        }
    }))
    .buffered(CONCURRENCY)
    .try_collect()
    .await?;
    let skip = (start - first_tile * width) as usize;
    Ok(tiles
        .into_iter()
        .flatten()
        .skip(skip)
        .take((end - start) as usize)
        .collect())
}
