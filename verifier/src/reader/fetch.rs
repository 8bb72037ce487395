//! Fetching one hash tile or entry bundle, and checking its shape; the
//! reader authenticates what these return.

use bytes::Bytes;
use stele_tiles::Hash;
use stele_tiles::bundle;
use stele_tiles::hash::leaf_hash;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, tile_width};

use crate::error::{Error, Result};
use crate::fetch::{Fetcher, MAX_BUNDLE_BYTES, MAX_TILE_BYTES};

/// One fetched file, and whether it came from the cache.
pub(super) struct Fetched {
    pub(super) tile: Tile,
    pub(super) path: String,
    pub(super) hashes: Vec<Hash>,
    pub(super) raw: Option<Bytes>,
    pub(super) cached: bool,
}

/// Fetches one hash tile and checks its length; a missing partial tile is
/// read as the prefix of the full one.
pub(super) async fn fetch_tile(fetcher: &Fetcher, tile: Tile, use_cache: bool) -> Result<Fetched> {
    let full = tile.full();
    let decode = |tile: &Tile, path: &str, data: &[u8]| {
        tile.decode_hashes(data).map_err(|source| Error::Malformed {
            location: fetcher.location(path),
            source,
        })
    };
    if !tile.is_partial() && use_cache {
        let path = full.path();
        if let Some(data) = fetcher.cached(&path).await {
            if let Ok(hashes) = tile.decode_hashes(&data) {
                return Ok(Fetched {
                    tile,
                    path,
                    hashes,
                    raw: None,
                    cached: true,
                });
            }
        }
    }
    let path = tile.path();
    match fetcher.get(&path, MAX_TILE_BYTES).await {
        Ok(data) => Ok(Fetched {
            tile,
            hashes: decode(&tile, &path, &data)?,
            path,
            raw: Some(data),
            cached: false,
        }),
        Err(Error::NotFound { .. }) if tile.is_partial() => {
            let path = full.path();
            let data = fetcher.get(&path, MAX_TILE_BYTES).await?;
            let mut hashes = decode(&full, &path, &data)?;
            hashes.truncate(tile.width as usize);
            Ok(Fetched {
                tile,
                path,
                hashes,
                raw: None,
                cached: false,
            })
        }
        Err(err) => Err(err),
    }
}

/// An entry bundle as read, not yet checked.
pub(super) struct RawBundle {
    pub(super) tile: Tile,
    pub(super) path: String,
    pub(super) data: Bytes,
    /// Set when a full bundle stands in for a missing partial one: how many
    /// entries to keep.
    pub(super) take: Option<usize>,
    pub(super) from_cache: bool,
}

/// Reads bundle `tile_index` of a tree of `tree_size`: a full bundle from
/// the cache if there, a missing partial bundle as the prefix of the full.
pub(super) async fn fetch_bundle(
    fetcher: &Fetcher,
    tile_index: u64,
    tree_size: u64,
) -> Result<RawBundle> {
    let width = tile_width(TILE_HEIGHT, 0, tile_index, tree_size);
    let tile = Tile::entries(tile_index, width);
    let full = tile.full();
    let raw = |path: String, data: Bytes, take: Option<usize>, from_cache: bool| RawBundle {
        tile,
        path,
        data,
        take,
        from_cache,
    };
    if tile.is_partial() {
        return match fetcher.get(&tile.path(), MAX_BUNDLE_BYTES).await {
            Ok(data) => Ok(raw(tile.path(), data, None, false)),
            Err(Error::NotFound { .. }) => {
                let data = fetcher.get(&full.path(), MAX_BUNDLE_BYTES).await?;
                Ok(raw(full.path(), data, Some(width as usize), false))
            }
            Err(err) => Err(err),
        };
    }
    if let Some(data) = fetcher.cached(&full.path()).await {
        return Ok(raw(full.path(), data, None, true));
    }
    let data = fetcher.get(&full.path(), MAX_BUNDLE_BYTES).await?;
    Ok(raw(full.path(), data, None, false))
}

pub(super) fn check_bundle(
    location: &str,
    tile: &Tile,
    data: &[u8],
    take: Option<usize>,
    leaves: &[Hash],
    tile_index: u64,
) -> Result<Vec<Vec<u8>>> {
    let expected_count = if take.is_some() {
        TILE_WIDTH as usize
    } else {
        tile.width as usize
    };
    let mut entries: Vec<Vec<u8>> = bundle::decode(data, Some(expected_count))
        .map_err(|source| Error::Malformed {
            location: location.to_owned(),
            source,
        })?
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    entries.truncate(tile.width as usize);
    for (position, (entry, leaf)) in entries.iter().zip(leaves).enumerate() {
        let computed = leaf_hash(entry);
        if computed != *leaf {
            let index = (tile_index << TILE_HEIGHT) + position as u64;
            return Err(Error::BundleLeaf {
                location: location.to_owned(),
                tile: Tile::hashes(0, tile_index, leaves.len() as u32).path(),
                index,
                computed: computed.to_hex(),
                expected: leaf.to_hex(),
            });
        }
    }
    Ok(entries)
}
