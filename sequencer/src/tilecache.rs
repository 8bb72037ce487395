//! Published hash tiles kept in memory, for the proofs the sequencer builds
//! from storage: the answer to a duplicate submission, which would
//! otherwise cost a few storage reads each (S3 GETs, paid for) and lets
//! anyone who resubmits a logged entry make the log read its bucket.
//!
//! The cache can never be stale: a tile's contents at its path never change
//! (c2sp.org/tlog-tiles; a partial tile's width is in its path). What it
//! holds either came from storage or was just published by the sequencer.
//! A proof built from it is still checked against the published root
//! before anyone sees it (see [`crate::log`]), so a tile that storage
//! returned damaged is caught and dropped rather than served forever.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use stele_tiles::Hash;
use stele_tiles::tile::{TILE_WIDTH, Tile};

use crate::error::Error;
use crate::storage::Storage;

/// Default size of the cache, 32 MiB: about 4,000 full tiles of 8 KiB. For
/// a log of 2^26 entries that is all 1,029 tiles above level 0 and the
/// level-0 tiles of the latest 770,000 entries.
pub const DEFAULT_CAPACITY_BYTES: u64 = 32 << 20;

/// Bytes a cached tile of `hashes` hashes is counted for: the hashes and
/// the map's overhead.
fn tile_bytes(hashes: usize) -> u64 {
    (hashes * std::mem::size_of::<Hash>() + 96) as u64
}

/// Weighs cached tiles by [`tile_bytes`].
#[derive(Clone, Copy, Debug, Default)]
struct TileBytes;

impl Weighter<Tile, Arc<[Hash]>> for TileBytes {
    fn weight(&self, _tile: &Tile, hashes: &Arc<[Hash]>) -> u64 {
        tile_bytes(hashes.len())
    }
}

/// The map itself: a tile to its hashes, bounded by bytes.
type Tiles = Cache<Tile, Arc<[Hash]>, TileBytes>;

/// A bounded cache of published hash tiles; cheap to clone (shared).
#[derive(Clone)]
pub struct TileCache {
    /// `None`: caching is off, and every read goes to storage.
    tiles: Option<Arc<Tiles>>,
}

impl std::fmt::Debug for TileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileCache")
            .field("tiles", &self.len())
            .field(
                "bytes",
                &self.tiles.as_ref().map_or(0, |tiles| tiles.weight()),
            )
            .finish()
    }
}

impl TileCache {
    /// A cache of at most `capacity_bytes` (0: caches nothing).
    pub fn new(capacity_bytes: u64) -> TileCache {
        if capacity_bytes == 0 {
            return TileCache { tiles: None };
        }
        let items = (capacity_bytes / tile_bytes(TILE_WIDTH as usize)).max(1) as usize;
        TileCache {
            tiles: Some(Arc::new(Tiles::with_weighter(
                items,
                capacity_bytes,
                TileBytes,
            ))),
        }
    }

    /// The hashes of a published `tile`, from memory or else from storage.
    /// Concurrent misses on one tile read it once.
    pub async fn hashes(&self, storage: &dyn Storage, tile: &Tile) -> Result<Arc<[Hash]>, Error> {
        let read = async {
            let data = crate::published::read_tile(storage, tile).await?;
            Ok::<_, Error>(Arc::from(tile.decode_hashes(&data)?))
        };
        match &self.tiles {
            Some(tiles) => tiles.get_or_insert_async(tile, read).await,
            None => read.await,
        }
    }

    /// Adds a tile the sequencer has just published.
    pub fn insert(&self, tile: Tile, hashes: &[Hash]) {
        if let Some(tiles) = &self.tiles {
            tiles.insert(tile, Arc::from(hashes));
        }
    }

    /// Forgets `tiles`, after a proof built from them failed to verify.
    pub fn forget(&self, tiles: &[Tile]) {
        if let Some(cache) = &self.tiles {
            for tile in tiles {
                cache.remove(tile);
            }
        }
    }

    /// Number of tiles held.
    pub fn len(&self) -> usize {
        self.tiles.as_ref().map_or(0, |tiles| tiles.len())
    }

    /// Whether no tile is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
