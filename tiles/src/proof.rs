//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4), built in
//! two phases as a tiled reader wants them: first the plan (which stored
//! hashes are needed), then one batched read, then the combination.
//!
//! Every proof hash is the Merkle tree hash of some range of leaves. The plan
//! splits each range into complete subtrees ([`Node`]s), which are exactly
//! what tiles store; [`tiles_for_nodes`] names the tiles that hold them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::hash::node_hash;
use crate::tile::{Tile, TileKind, tile_for_node};
use crate::tree::{Node, fold_range, range_nodes, split_point};
use crate::{Error, Hash};

/// Reads stored hashes in one batch, in the order asked.
pub trait HashReader {
    /// Returns the hash of each node, in order.
    fn read_hashes(&self, nodes: &[Node]) -> Result<Vec<Hash>, Error>;
}

/// The stored hashes a proof (or a root) needs, and how they combine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    /// Stored hashes to read, in order.
    pub nodes: Vec<Node>,
    /// For each proof hash, the run of `nodes` whose fold it is.
    groups: Vec<std::ops::Range<usize>>,
}

impl ProofPlan {
    fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> ProofPlan {
        let mut nodes = Vec::new();
        let mut groups = Vec::new();
        for (start, end) in ranges {
            let first = nodes.len();
            nodes.extend(range_nodes(start, end));
            groups.push(first..nodes.len());
        }
        ProofPlan { nodes, groups }
    }

    /// Number of hashes in the finished proof.
    pub fn proof_len(&self) -> usize {
        self.groups.len()
    }

    /// Combines the hashes read for [`ProofPlan::nodes`] into the proof.
    pub fn combine(&self, hashes: &[Hash]) -> Result<Vec<Hash>, Error> {
        if hashes.len() != self.nodes.len() {
            return Err(Error::HashReaderCount {
                expected: self.nodes.len(),
                actual: hashes.len(),
            });
        }
        Ok(self
            .groups
            .iter()
            .map(|group| fold_range(&hashes[group.clone()]))
            .collect())
    }

    /// Reads and combines in one step.
    pub fn execute(&self, reader: &impl HashReader) -> Result<Vec<Hash>, Error> {
        let hashes = reader.read_hashes(&self.nodes)?;
        self.combine(&hashes)
    }
}

/// Plan for the root of a tree of `tree_size` leaves (a single "proof hash").
pub fn root_plan(tree_size: u64) -> ProofPlan {
    ProofPlan::from_ranges([(0, tree_size)])
}

/// Computes the root of a tree of `tree_size` leaves from stored hashes.
pub fn tree_root(tree_size: u64, reader: &impl HashReader) -> Result<Hash, Error> {
    if tree_size == 0 {
        return Ok(Hash::EMPTY);
    }
    let proof = root_plan(tree_size).execute(reader)?;
    Ok(proof[0])
}

/// Plan for the inclusion proof of leaf `index` in a tree of `tree_size`
/// leaves: RFC 9162 §2.1.3.1 `PATH(m, D[n])`, deepest hash first.
pub fn inclusion_plan(index: u64, tree_size: u64) -> Result<ProofPlan, Error> {
    if index >= tree_size {
        return Err(Error::IndexOutOfRange { index, tree_size });
    }
    let mut ranges = Vec::new();
    let (mut low, mut high) = (0, tree_size);
    while high - low > 1 {
        let k = split_point(high - low);
        if index < low + k {
            ranges.push((low + k, high));
            high = low + k;
        } else {
            ranges.push((low, low + k));
            low += k;
        }
    }
    ranges.reverse();
    Ok(ProofPlan::from_ranges(ranges))
}

/// Plan for the consistency proof between tree sizes `old_size` and
/// `new_size`: RFC 9162 §2.1.4.1 `PROOF(m, D[n])`. Empty when the sizes are
/// equal or the old tree is empty.
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<ProofPlan, Error> {
    if old_size > new_size {
        return Err(Error::TreeSizeOrder { old_size, new_size });
    }
    let mut ranges = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(ProofPlan::from_ranges(ranges));
    }
    // SUBPROOF(m, D[low:high], whole), unrolled.
    let (mut m, mut low, mut high, mut whole) = (old_size, 0, new_size, true);
    while m != high - low {
        let k = split_point(high - low);
        if m <= k {
            ranges.push((low + k, high));
            high = low + k;
        } else {
            ranges.push((low, low + k));
            low += k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        ranges.push((low, high));
    }
    ranges.reverse();
    Ok(ProofPlan::from_ranges(ranges))
}

/// Builds the inclusion proof of leaf `index` in a tree of `tree_size`.
pub fn prove_inclusion(
    index: u64,
    tree_size: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, Error> {
    inclusion_plan(index, tree_size)?.execute(reader)
}

/// Builds the consistency proof from `old_size` to `new_size`.
pub fn prove_consistency(
    old_size: u64,
    new_size: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, Error> {
    consistency_plan(old_size, new_size)?.execute(reader)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= tree_size {
        return Err(Error::IndexOutOfRange { index, tree_size });
    }
    let expected = inclusion_plan(index, tree_size)?.proof_len();
    if proof.len() != expected {
        return Err(Error::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let computed = root_from_inclusion(leaf, index, tree_size, proof);
    if computed != *root {
        return Err(Error::ProofRoot {
            computed: computed.to_hex(),
            expected: root.to_hex(),
        });
    }
    Ok(())
}

/// The root an inclusion proof leads to, assuming its length is right.
pub fn root_from_inclusion(leaf: &Hash, index: u64, tree_size: u64, proof: &[Hash]) -> Hash {
    let (mut position, mut last) = (index, tree_size - 1);
    let mut result = *leaf;
    for sibling in proof {
        if position & 1 == 1 || position == last {
            result = node_hash(sibling, &result);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            result = node_hash(&result, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    result
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2). Sizes equal: the proof
/// must be empty and the roots equal. Old size 0: the proof must be empty
/// and the old root the empty tree's.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    let expected = consistency_plan(old_size, new_size)?.proof_len();
    if proof.len() != expected {
        return Err(Error::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if old_size == 0 {
        if *old_root != Hash::EMPTY {
            return Err(Error::Consistency {
                reason: format!("tree of size 0 must have the empty root, not {old_root}"),
            });
        }
        return Ok(());
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(Error::Consistency {
                reason: format!("two roots for tree size {old_size}: {old_root} and {new_root}"),
            });
        }
        return Ok(());
    }
    let mut path = proof;
    let seed;
    if old_size.is_power_of_two() {
        seed = *old_root;
    } else {
        seed = path[0];
        path = &path[1..];
    }
    let (mut first, mut second) = (old_size - 1, new_size - 1);
    while first & 1 == 1 {
        first >>= 1;
        second >>= 1;
    }
    let (mut old_result, mut new_result) = (seed, seed);
    for hash in path {
        if second == 0 {
            return Err(Error::Consistency {
                reason: "proof is longer than the tree is deep".into(),
            });
        }
        if first & 1 == 1 || first == second {
            old_result = node_hash(hash, &old_result);
            new_result = node_hash(hash, &new_result);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                second >>= 1;
            }
        } else {
            new_result = node_hash(&new_result, hash);
        }
        first >>= 1;
        second >>= 1;
    }
    if old_result != *old_root {
        return Err(Error::ProofRoot {
            computed: old_result.to_hex(),
            expected: old_root.to_hex(),
        });
    }
    if new_result != *new_root {
        return Err(Error::ProofRoot {
            computed: new_result.to_hex(),
            expected: new_root.to_hex(),
        });
    }
    Ok(())
}

/// The hash tiles of a tree of `tree_size` leaves that hold the given nodes,
/// each named once, in order: what a reader must fetch for a plan.
pub fn tiles_for_nodes(height: u8, tree_size: u64, nodes: &[Node]) -> Vec<Tile> {
    let mut tiles: Vec<Tile> = nodes
        .iter()
        .map(|node| tile_for_node(height, tree_size, *node))
        .collect();
    tiles.sort();
    tiles.dedup();
    tiles
}

/// Hash tiles held in memory, as a [`HashReader`] for a tree of a given size.
///
/// The sequencer builds one from the right edge and the tiles of a batch to
/// prove the batch's entries; tests and readers fill one from fetched tiles.
#[derive(Clone, Debug, Default)]
pub struct TileSet {
    height: u8,
    tree_size: u64,
    tiles: BTreeMap<(u8, u64), StoredTile>,
}

/// A tile's hashes and, computed on first use, the complete subtrees above
/// them inside the tile: proofs then read interior nodes instead of
/// rehashing up to 255 hashes per node, and each interior node of a tile is
/// hashed at most once per set.
#[derive(Clone, Debug, Default)]
struct StoredTile {
    hashes: Vec<Hash>,
    /// `interior[j - 1]` holds the nodes `j` levels above the tile's row.
    interior: OnceLock<Vec<Vec<Hash>>>,
}

impl StoredTile {
    fn interior(&self) -> &[Vec<Hash>] {
        self.interior.get_or_init(|| {
            let mut levels: Vec<Vec<Hash>> = Vec::new();
            let mut below: &[Hash] = &self.hashes;
            while below.len() >= 2 {
                let above: Vec<Hash> = below
                    .chunks_exact(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect();
                levels.push(above);
                below = levels.last().map(Vec::as_slice).unwrap_or_default();
            }
            levels
        })
    }

    /// The node `within` levels above the row, at position `position` among
    /// the nodes of that height inside this tile.
    fn node(&self, within: u8, position: u64) -> Option<Hash> {
        let row = if within == 0 {
            &self.hashes
        } else {
            self.interior().get(usize::from(within) - 1)?
        };
        row.get(usize::try_from(position).ok()?).copied()
    }
}

impl TileSet {
    /// An empty set for a tree of `tree_size` leaves.
    pub fn new(height: u8, tree_size: u64) -> TileSet {
        TileSet {
            height,
            tree_size,
            tiles: BTreeMap::new(),
        }
    }

    /// Adds a tile's hashes; a wider copy of the same tile replaces a
    /// narrower one.
    pub fn insert(&mut self, tile: &Tile, hashes: Vec<Hash>) {
        let TileKind::Hashes { level } = tile.kind else {
            return;
        };
        let slot = self.tiles.entry((level, tile.index)).or_default();
        if hashes.len() >= slot.hashes.len() {
            *slot = StoredTile {
                hashes,
                interior: OnceLock::new(),
            };
        }
    }

    /// The hashes held for a tile position, if any.
    pub fn get(&self, level: u8, index: u64) -> Option<&[Hash]> {
        self.tiles
            .get(&(level, index))
            .map(|stored| stored.hashes.as_slice())
    }
}

impl HashReader for TileSet {
    fn read_hashes(&self, nodes: &[Node]) -> Result<Vec<Hash>, Error> {
        nodes
            .iter()
            .map(|node| {
                let tile = tile_for_node(self.height, self.tree_size, *node);
                let level = tile.level().unwrap_or(0);
                let stored = self.tiles.get(&(level, tile.index)).ok_or_else(|| {
                    Error::HashReader(format!(
                        "no tile at level {level} index {} for node {node:?}",
                        tile.index
                    ))
                })?;
                let within = node.level % self.height;
                // Nodes of this height inside one tile: 2^(height - within).
                let position = node.index - (tile.index << (self.height - within));
                stored.node(within, position).ok_or(Error::TileCoordinates {
                    reason: "tile is too narrow for the requested node",
                })
            })
            .collect()
    }
}
