//! Incremental integration: the sequencer's hot path.
//!
//! The [`RightEdge`] of a tree is everything needed to append to it without
//! reading anything else: the partial tile at each level, the partial entry
//! bundle, and the frontier (the hashes of the complete subtrees that make up
//! the root, one per set bit of the size). Appending a batch computes each
//! new leaf hash and each new interior hash exactly once, and emits exactly
//! the tiles and bundles that changed (those [`crate::tile::new_tiles`]
//! names), full and partial.

use std::sync::OnceLock;

use crate::bundle::{self, MAX_ENTRY_SIZE};
use crate::checkpoint::Checkpoint;
use crate::hash::{leaf_hash, node_hash};
use crate::proof::{HashReader, TileSet, prove_inclusion};
use crate::tile::{Tile, TileKind, encode_hashes, level_size};
use crate::tree::Node;
use crate::{Error, Hash};

/// The right edge of a tree: what integration needs and keeps up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RightEdge {
    height: u8,
    size: u64,
    /// Hashes of the complete subtrees whose fold is the root, largest
    /// (leftmost) first; one per set bit of `size`.
    frontier: Vec<Hash>,
    /// Per tile level, the hashes of the partial tile at the right edge
    /// (`level_size % 2^height` of them; empty when the level is aligned).
    partial_tiles: Vec<Vec<Hash>>,
    /// The encoded entries of the partial entry bundle.
    partial_bundle: Vec<u8>,
    /// Number of entries in `partial_bundle`.
    partial_bundle_len: u32,
}

/// What one call to [`RightEdge::integrate`] produced.
#[derive(Clone, Debug)]
pub struct Integration {
    /// Tree size before the batch.
    pub old_size: u64,
    /// Tree size after the batch.
    pub new_size: u64,
    /// Root of the new tree.
    pub root: Hash,
    /// Leaf hash of each entry of the batch, in order.
    pub leaf_hashes: Vec<Hash>,
    /// Every hash tile that changed, with its hashes.
    pub hash_tiles: Vec<(Tile, Vec<Hash>)>,
    /// Every entry bundle that changed, encoded.
    pub bundles: Vec<(Tile, Vec<u8>)>,
    /// Tile height.
    height: u8,
    /// Partial tiles of levels the batch did not change: with `hash_tiles`
    /// they hold every hash the batch's inclusion proofs need.
    unchanged_partials: Vec<(Tile, Vec<Hash>)>,
    /// Built on the first proof request, so that integration alone copies
    /// no tile.
    proof_tiles: OnceLock<TileSet>,
}

impl Integration {
    /// Every hash tile that changed, encoded for publication.
    pub fn encoded_hash_tiles(&self) -> impl Iterator<Item = (Tile, Vec<u8>)> + '_ {
        self.hash_tiles
            .iter()
            .map(|(tile, hashes)| (*tile, encode_hashes(hashes)))
    }

    /// Every object the batch changed, as published: the hash tiles
    /// encoded, then the entry bundles. Each goes to [`Tile::path`].
    pub fn objects(&self) -> impl Iterator<Item = (Tile, Vec<u8>)> + '_ {
        self.encoded_hash_tiles().chain(
            self.bundles
                .iter()
                .map(|(tile, data)| (*tile, data.clone())),
        )
    }

    /// The checkpoint body of the new tree, for the log `origin`, with no
    /// extension lines: what the log signs once the objects are published.
    pub fn checkpoint(&self, origin: &str) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            size: self.new_size,
            root: self.root,
            extensions: Vec::new(),
        }
    }

    /// Inclusion proof, in the new tree, of an entry of this batch.
    pub fn inclusion_proof(&self, index: u64) -> Result<Vec<Hash>, Error> {
        if index < self.old_size || index >= self.new_size {
            return Err(Error::IndexOutOfRange {
                index,
                tree_size: self.new_size,
            });
        }
        prove_inclusion(index, self.new_size, self.proof_reader())
    }

    /// A reader over the tiles of this batch and the right edge before it.
    /// It holds every hash needed to prove the batch's entries.
    pub fn proof_reader(&self) -> &impl HashReader {
        self.proof_tiles.get_or_init(|| {
            let mut set = TileSet::new(self.height, self.new_size);
            for (tile, hashes) in self.unchanged_partials.iter().chain(&self.hash_tiles) {
                set.insert(tile, hashes.clone());
            }
            set
        })
    }
}

impl RightEdge {
    /// The right edge of the empty tree.
    pub fn empty(height: u8) -> RightEdge {
        RightEdge {
            height,
            size: 0,
            frontier: Vec::new(),
            partial_tiles: Vec::new(),
            partial_bundle: Vec::new(),
            partial_bundle_len: 0,
        }
    }

    /// The tiles a reader must fetch to rebuild the right edge of a tree of
    /// `tree_size` leaves: the partial hash tile of each level that has one,
    /// and the partial entry bundle.
    pub fn tiles_needed(height: u8, tree_size: u64) -> Vec<Tile> {
        let mut tiles = Vec::new();
        let mut level: u8 = 0;
        loop {
            let count = level_size(height, level, tree_size);
            if count == 0 {
                break;
            }
            let width = (count % (1 << height)) as u32;
            if width > 0 {
                let index = count >> height;
                tiles.push(Tile {
                    height,
                    kind: TileKind::Hashes { level },
                    index,
                    width,
                });
                if level == 0 {
                    tiles.push(Tile {
                        height,
                        kind: TileKind::Entries,
                        index,
                        width,
                    });
                }
            }
            level += 1;
        }
        tiles
    }

    /// Rebuilds the right edge of a tree of `tree_size` leaves from its
    /// partial tiles (indexed by level; levels with no partial tile are
    /// empty) and its encoded partial entry bundle. Checks every length; the
    /// caller checks the result's [`RightEdge::root`] against a checkpoint.
    pub fn from_tiles(
        height: u8,
        tree_size: u64,
        mut partial_tiles: Vec<Vec<Hash>>,
        partial_bundle: Vec<u8>,
    ) -> Result<RightEdge, Error> {
        let full = 1u64 << height;
        let mut levels = 0usize;
        while level_size(height, levels as u8, tree_size) > 0 {
            levels += 1;
        }
        partial_tiles.resize(partial_tiles.len().max(levels), Vec::new());
        for (level, hashes) in partial_tiles.iter().enumerate() {
            let expected = level_size(height, level as u8, tree_size) % full;
            if hashes.len() as u64 != expected {
                return Err(Error::RightEdge {
                    tree_size,
                    reason: format!(
                        "level {level} partial tile has {} hashes, expected {expected}",
                        hashes.len()
                    ),
                });
            }
        }
        partial_tiles.truncate(levels);
        let bundle_len = (tree_size % full) as usize;
        bundle::decode(&partial_bundle, Some(bundle_len)).map_err(|err| Error::RightEdge {
            tree_size,
            reason: format!("partial entry bundle: {err}"),
        })?;

        // Each set bit k = height·L + j of the size is a complete subtree
        // whose 2^j hashes at tree level height·L sit at the end of the
        // level-L partial tile, just before the subtrees of lower bits.
        let mut frontier = Vec::new();
        for bit in (0..64u32).rev() {
            if tree_size >> bit & 1 == 0 {
                continue;
            }
            let level = bit / u32::from(height);
            let within = bit % u32::from(height);
            let hashes = &partial_tiles[level as usize];
            let count = level_size(height, level as u8, tree_size) % full;
            let end = count & !((1u64 << within) - 1);
            let start = end - (1 << within);
            frontier.push(crate::tree::perfect_root(
                &hashes[start as usize..end as usize],
            ));
        }
        Ok(RightEdge {
            height,
            size: tree_size,
            frontier,
            partial_tiles,
            partial_bundle,
            partial_bundle_len: bundle_len as u32,
        })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Tile height.
    pub fn height(&self) -> u8 {
        self.height
    }

    /// The tree's root (RFC 6962 `MTH`).
    pub fn root(&self) -> Hash {
        crate::tree::fold_range(&self.frontier)
    }

    /// Appends a batch of entries. On error (an entry over 65535 bytes)
    /// nothing changes.
    pub fn integrate<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Result<Integration, Error> {
        if let Some(entry) = entries.iter().find(|e| e.as_ref().len() > MAX_ENTRY_SIZE) {
            return Err(Error::EntryTooLarge {
                length: entry.as_ref().len(),
            });
        }
        let old_size = self.size;
        let new_size = old_size + entries.len() as u64;
        let full = 1usize << self.height;
        let mut hash_tiles = Vec::new();
        let mut bundles = Vec::new();
        let mut leaf_hashes = Vec::with_capacity(entries.len());

        for entry in entries {
            let entry = entry.as_ref();
            let index = self.size;
            bundle::push_entry(&mut self.partial_bundle, entry)?;
            self.partial_bundle_len += 1;
            if self.partial_bundle_len as usize == full {
                let tile = Tile {
                    height: self.height,
                    kind: TileKind::Entries,
                    index: index >> self.height,
                    width: full as u32,
                };
                bundles.push((tile, std::mem::take(&mut self.partial_bundle)));
                self.partial_bundle_len = 0;
            }

            let leaf = leaf_hash(entry);
            leaf_hashes.push(leaf);
            self.store(0, index, leaf, &mut hash_tiles);
            // Merge with the frontier: each trailing one bit of the old size
            // closes a complete subtree.
            let mut hash = leaf;
            let mut level = 0u32;
            let mut remaining = index;
            while remaining & 1 == 1 {
                let Some(left) = self.frontier.pop() else {
                    return Err(Error::RightEdge {
                        tree_size: index,
                        reason: "frontier shorter than the size's set bits".into(),
                    });
                };
                hash = node_hash(&left, &hash);
                level += 1;
                remaining >>= 1;
                if level % u32::from(self.height) == 0 {
                    let tile_level = (level / u32::from(self.height)) as u8;
                    self.store(tile_level, index >> level, hash, &mut hash_tiles);
                }
            }
            self.frontier.push(hash);
            self.size += 1;
        }

        // The partial tiles that changed (crash-safe publication relies on
        // emitting exactly these), and those that did not, for proofs.
        let mut unchanged_partials = Vec::new();
        for (level, hashes) in self.partial_tiles.iter().enumerate() {
            let level = level as u8;
            let old_count = level_size(self.height, level, old_size);
            let new_count = level_size(self.height, level, new_size);
            if hashes.is_empty() {
                continue;
            }
            let tile = Tile {
                height: self.height,
                kind: TileKind::Hashes { level },
                index: new_count >> self.height,
                width: hashes.len() as u32,
            };
            if old_count != new_count {
                hash_tiles.push((tile, hashes.clone()));
            } else {
                unchanged_partials.push((tile, hashes.clone()));
            }
        }
        if self.partial_bundle_len > 0 && old_size != new_size {
            let tile = Tile {
                height: self.height,
                kind: TileKind::Entries,
                index: new_size >> self.height,
                width: self.partial_bundle_len,
            };
            bundles.push((tile, self.partial_bundle.clone()));
        }
        Ok(Integration {
            old_size,
            new_size,
            root: self.root(),
            leaf_hashes,
            hash_tiles,
            bundles,
            height: self.height,
            unchanged_partials,
            proof_tiles: OnceLock::new(),
        })
    }

    /// Appends a stored hash to its level's partial tile, emitting the tile
    /// when it fills.
    fn store(
        &mut self,
        tile_level: u8,
        hash_index: u64,
        hash: Hash,
        emitted: &mut Vec<(Tile, Vec<Hash>)>,
    ) {
        let full = 1usize << self.height;
        let level = usize::from(tile_level);
        if self.partial_tiles.len() <= level {
            self.partial_tiles.resize(level + 1, Vec::new());
        }
        let partial = &mut self.partial_tiles[level];
        if partial.capacity() < full {
            partial.reserve_exact(full - partial.len());
        }
        partial.push(hash);
        if partial.len() == full {
            let tile = Tile {
                height: self.height,
                kind: TileKind::Hashes { level: tile_level },
                index: hash_index >> self.height,
                width: full as u32,
            };
            emitted.push((tile, std::mem::take(partial)));
        }
    }

    /// The stored hash of a node on the frontier (for tests and recovery
    /// checks): the node must be one of the root's complete subtrees.
    pub fn frontier_nodes(&self) -> Vec<(Node, Hash)> {
        crate::tree::root_nodes(self.size)
            .into_iter()
            .zip(self.frontier.iter().copied())
            .collect()
    }
}
