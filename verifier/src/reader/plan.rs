//! Planning which tiles to fetch: the edge tiles of a tree, and the chains
//! of parents that authenticate the tiles holding wanted nodes.

use std::collections::HashSet;

use stele_tiles::proof::{root_plan, tiles_for_nodes};
use stele_tiles::tile::{TILE_HEIGHT, Tile, tile_width};
use stele_tiles::tree::Node;

/// The tile one level up that holds the hash of `tile`, at tree size
/// `tree_size`, or `None` above the top of the tree.
pub fn parent_tile(tile: &Tile, tree_size: u64) -> Option<Tile> {
    let level = tile.level()?.checked_add(1)?;
    let index = tile.index >> TILE_HEIGHT;
    let width = tile_width(TILE_HEIGHT, level, index, tree_size);
    (width > 0).then(|| Tile::hashes(level, index, width))
}

/// The edge tiles of a tree: those holding its maximal complete subtrees.
/// Together they compute the root.
pub fn edge_tiles(tree_size: u64) -> Vec<Tile> {
    tiles_for_nodes(TILE_HEIGHT, tree_size, &root_plan(tree_size).nodes)
}

/// Which tiles to fetch to read `nodes` from a tree of size `tree_size`,
/// parents before children: the edge tiles, then for each tile that holds
/// a node, the chain of parents down from the first one already planned.
/// `known` says which tiles (level, index) are already authenticated; the
/// edge tiles are planned unless all of them are known.
pub fn fetch_plan(
    tree_size: u64,
    nodes: &[Node],
    known: &dyn Fn(u8, u64) -> bool,
) -> (Vec<Tile>, Vec<Tile>) {
    let key = |tile: &Tile| (tile.level().unwrap_or(0), tile.index);
    let edge = edge_tiles(tree_size);
    let mut planned: HashSet<(u8, u64)> = edge.iter().map(key).collect();
    let edge_needed = edge.iter().any(|tile| {
        let (level, index) = key(tile);
        !known(level, index)
    });
    let mut chains = Vec::new();
    for tile in tiles_for_nodes(TILE_HEIGHT, tree_size, nodes) {
        let mut chain = Vec::new();
        let mut current = Some(tile);
        while let Some(tile) = current {
            let (level, index) = key(&tile);
            if planned.contains(&(level, index)) || known(level, index) {
                break;
            }
            planned.insert((level, index));
            chain.push(tile);
            current = parent_tile(&tile, tree_size);
        }
        chain.reverse();
        chains.extend(chain);
    }
    (if edge_needed { edge } else { Vec::new() }, chains)
}
