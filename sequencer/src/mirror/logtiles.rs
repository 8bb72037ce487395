//! The log's hash tiles, each authenticated against its signed checkpoint
//! before anything is believed of it, in bounded memory.
//!
//! For a checkpoint of size `N` and root `R`:
//!
//! 1. the *edge*: the partial tile of each level at `N` (every hash of a
//!    partial tile lies under one of the complete subtrees whose fold is
//!    the root) must fold to `R`;
//! 2. a full tile is believed once the root of its 256 hashes is the hash
//!    its parent tile holds for it, the parent being believed first (a full
//!    tile or an edge tile above it).
//!
//! Only one full tile per level is held: the mirror walks the log left to
//! right, so each tile is fetched once.

use stele_tiles::Hash;
use stele_tiles::bundle;
use stele_tiles::integrate::RightEdge;
use stele_tiles::tile::{
    TILE_HEIGHT, TILE_WIDTH, Tile, TileKind, node_hash_from_tile, tile_for_node, tile_width,
};
use stele_tiles::tree::{Node, perfect_root};

use super::MirrorError;
use super::evidence::Divergence;
use super::source::{Layout, Source, fetch_hashes};

/// The log's tree at one checkpoint, read tile by tile.
pub(super) struct LogTiles<'a> {
    source: &'a dyn Source,
    layout: Layout,
    size: u64,
    /// The authenticated partial tile of each level (empty where the level
    /// has none).
    edge: Vec<Vec<Hash>>,
    /// Per level, the last full tile authenticated: its index and hashes.
    held: Vec<Option<(u64, Vec<Hash>)>>,
}

impl<'a> LogTiles<'a> {
    /// Reads the edge of the log's tree of `size` leaves and checks that it
    /// folds to `root`.
    pub(super) async fn open(
        source: &'a dyn Source,
        layout: Layout,
        size: u64,
        root: Hash,
    ) -> Result<LogTiles<'a>, MirrorError> {
        let mut edge: Vec<Vec<Hash>> = Vec::new();
        let mut paths = Vec::new();
        for tile in RightEdge::tiles_needed(TILE_HEIGHT, size) {
            let TileKind::Hashes { level } = tile.kind else {
                continue;
            };
            let (fetched, hashes) = fetch_hashes(source, layout, &tile).await?;
            paths.push(fetched.path);
            let level = usize::from(level);
            if edge.len() <= level {
                edge.resize(level + 1, Vec::new());
            }
            edge[level] = hashes;
        }
        // The right edge's root depends on the tiles alone; an encoded
        // bundle of the right width stands in for the entries.
        let width = (size % u64::from(TILE_WIDTH)) as usize;
        let stand_in = bundle::encode(&vec![b""; width])
            .map_err(|err| MirrorError::Internal(format!("a stand-in bundle: {err}")))?;
        let computed = RightEdge::from_tiles(TILE_HEIGHT, size, edge.clone(), stand_in)
            .map_err(|err| MirrorError::Internal(format!("the log's right edge: {err}")))?
            .root();
        if computed != root {
            return Err(Divergence::new(format!(
                "the log's partial tiles at tree size {size} ({}) hash to root {computed}, but \
                 its checkpoint has root {root}",
                if paths.is_empty() {
                    "none".to_owned()
                } else {
                    paths.join(", ")
                }
            ))
            .object(layout.checkpoint_path())
            .into());
        }
        let levels = edge.len().max(1);
        Ok(LogTiles {
            source,
            layout,
            size,
            edge,
            held: vec![None; levels + 1],
        })
    }

    /// The authenticated partial tile of `level` (empty if it has none).
    pub(super) fn edge(&self, level: u8) -> &[Hash] {
        self.edge
            .get(usize::from(level))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The authenticated hashes of the full tile `index` of `level`;
    /// `prefetched`, when given, is that tile as already read from the log.
    pub(super) async fn full(
        &mut self,
        level: u8,
        index: u64,
        prefetched: Option<(String, Vec<Hash>)>,
    ) -> Result<&[Hash], MirrorError> {
        // The tiles from `level` up to the first one already believed (held,
        // or on the edge), then believed top-down.
        let mut chain = vec![(level, index)];
        loop {
            let (l, i) = chain[chain.len() - 1];
            let parent = (l + 1, i >> TILE_HEIGHT);
            if self.is_known(parent.0, parent.1) {
                break;
            }
            if tile_width(TILE_HEIGHT, parent.0, parent.1, self.size) == 0 {
                return Err(MirrorError::Internal(format!(
                    "tile {index} of level {level} is not in the tree of {} leaves",
                    self.size
                )));
            }
            chain.push(parent);
        }
        let mut prefetched = prefetched;
        while let Some((l, i)) = chain.pop() {
            if self.is_held(l, i) {
                continue;
            }
            let (path, hashes) = match (chain.is_empty(), prefetched.take()) {
                (true, Some(fetched)) => fetched,
                _ => {
                    let tile = Tile::hashes(l, i, TILE_WIDTH);
                    let (fetched, hashes) = fetch_hashes(self.source, self.layout, &tile).await?;
                    (fetched.path, hashes)
                }
            };
            let expected = self.stored_hash(l + 1, i)?;
            let computed = perfect_root(&hashes);
            if computed != expected {
                return Err(Divergence::new(format!(
                    "the log's {path} hashes to {computed}, but the tile above it holds \
                     {expected} for it: it is not a tile of the checkpoint's tree"
                ))
                .object(&path)
                .found(&stele_tiles::tile::encode_hashes(&hashes))
                .into());
            }
            let slot = usize::from(l);
            if self.held.len() <= slot {
                self.held.resize(slot + 1, None);
            }
            self.held[slot] = Some((i, hashes));
        }
        match self.held.get(usize::from(level)) {
            Some(Some((held, hashes))) if *held == index => Ok(hashes),
            _ => Err(MirrorError::Internal(format!(
                "tile {index} of level {level} was not kept"
            ))),
        }
    }

    /// The authenticated hash of `node`, a complete subtree of the tree.
    pub(super) async fn node(&mut self, node: Node) -> Result<Hash, MirrorError> {
        let tile = tile_for_node(TILE_HEIGHT, self.size, node);
        let level = tile.level().unwrap_or_default();
        let hashes = if tile.is_partial() {
            self.edge(level).to_vec()
        } else {
            self.full(level, tile.index, None).await?.to_vec()
        };
        node_hash_from_tile(&tile, &hashes, node)
            .map_err(|err| MirrorError::Internal(format!("node {node:?}: {err}")))
    }

    /// Whether the tile `index` of `level` is believed without fetching:
    /// held, or on the edge.
    fn is_known(&self, level: u8, index: u64) -> bool {
        let width = tile_width(TILE_HEIGHT, level, index, self.size);
        width > 0 && width < TILE_WIDTH || self.is_held(level, index)
    }

    fn is_held(&self, level: u8, index: u64) -> bool {
        matches!(self.held.get(usize::from(level)), Some(Some((held, _))) if *held == index)
    }

    /// Hash `position` of tile level `level`, from a believed tile.
    fn stored_hash(&self, level: u8, position: u64) -> Result<Hash, MirrorError> {
        let index = position >> TILE_HEIGHT;
        let offset = (position & u64::from(TILE_WIDTH - 1)) as usize;
        let width = tile_width(TILE_HEIGHT, level, index, self.size);
        let hashes = if width > 0 && width < TILE_WIDTH {
            self.edge(level)
        } else {
            match self.held.get(usize::from(level)) {
                Some(Some((held, hashes))) if *held == index => hashes.as_slice(),
                _ => &[],
            }
        };
        hashes.get(offset).copied().ok_or_else(|| {
            MirrorError::Internal(format!(
                "hash {position} of level {level} is in no believed tile"
            ))
        })
    }
}
