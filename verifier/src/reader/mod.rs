//! Reading a log and believing nothing: checkpoints are checked against the
//! log key and the witness policy, and every tile against the signed root.
//!
//! # How tiles are authenticated
//!
//! As Go's `tlog.TileHashReader` does it (golang.org/x/mod/sumdb/tlog):
//! for a checkpoint of tree size `N` and root `R`,
//!
//! 1. the *edge tiles* — the tiles holding the maximal complete subtrees of
//!    the tree, one per tile level, the partial ones among them — are
//!    fetched and must compute `R` ([`Error::RootMismatch`] otherwise);
//! 2. every other tile is full, and its hash (the root of its 256 hashes)
//!    must equal the hash its parent tile holds for it, the parent being
//!    authenticated first, up to an edge tile ([`Error::TileParent`]);
//! 3. an entry bundle must hash, entry by entry, to the leaf hashes of its
//!    authenticated level-0 tile ([`Error::BundleLeaf`]).
//!
//! Proofs are planned first (which stored hashes, hence which tiles), then
//! every tile and the parents it needs are fetched in one concurrent batch,
//! then authenticated top-down, then combined: see [`fetch_plan`].
//!
//! Partial tiles fall back to the full tile when the partial one is gone
//! (c2sp.org/tlog-tiles lets a log delete partial tiles once the full tile
//! exists): the first `W` hashes of the full tile are the partial tile.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures::StreamExt;
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::note::Note;
use stele_tiles::proof::{
    TileSet, consistency_plan, inclusion_plan, tiles_for_nodes, tree_root, verify_consistency,
    verify_inclusion,
};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, node_hash_from_tile};
use stele_tiles::tree::{Node, perfect_root};

use crate::error::{Error, Result};
use crate::fetch::{Fetcher, MAX_BUNDLE_BYTES, MAX_CHECKPOINT_BYTES};
use crate::keys::{Cosigners, LogKey};

mod fetch;
mod plan;

use fetch::{Fetched, RawBundle, check_bundle, fetch_bundle, fetch_tile};
pub use plan::{edge_tiles, fetch_plan, parent_tile};

/// How many files are fetched at once.
const CONCURRENCY: usize = 8;

/// A log to read: where it is, the key its checkpoints must carry, and the
/// witnesses that must have cosigned them.
#[derive(Debug)]
pub struct Log {
    /// Where the files come from.
    pub fetcher: Fetcher,
    /// The log's key and origin.
    pub key: LogKey,
    /// The cosignatures a checkpoint needs (threshold 0: none).
    pub policy: Cosigners,
}

/// A checkpoint whose signature and cosignatures were verified.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The signed note, with every signature line it carried.
    pub note: Note,
    /// The note verbatim, as fetched.
    pub bytes: Bytes,
    /// Witnesses of the policy that cosigned it, with their timestamps.
    pub cosigners: Vec<(String, u64)>,
}

impl Log {
    /// Verifies checkpoint bytes read from `location`.
    pub fn verify_checkpoint(&self, bytes: Bytes, location: &str) -> Result<VerifiedCheckpoint> {
        let (checkpoint, note) = open_checkpoint(&bytes, &self.key.origin, self.key.verifier())
            .map_err(|source| Error::Checkpoint {
                location: location.to_owned(),
                source,
            })?;
        let cosigners = self
            .policy
            .check(&note)
            .map_err(|source| Error::WitnessPolicy {
                location: location.to_owned(),
                source,
            })?;
        Ok(VerifiedCheckpoint {
            checkpoint,
            note,
            bytes,
            cosigners,
        })
    }

    /// Fetches and verifies the log's latest checkpoint.
    pub async fn checkpoint(&self) -> Result<VerifiedCheckpoint> {
        let bytes = self.fetcher.get("checkpoint", MAX_CHECKPOINT_BYTES).await?;
        self.verify_checkpoint(bytes, &self.fetcher.location("checkpoint"))
    }

    /// A reader of the tree that `checkpoint` signs.
    pub fn reader(&self, checkpoint: &Checkpoint) -> TileReader<'_> {
        TileReader {
            log: self,
            tree_size: checkpoint.size,
            root: checkpoint.root,
            tiles: HashMap::new(),
            stats: FetchStats::default(),
        }
    }
}

/// Counts of what a reader fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchStats {
    /// Hash tiles read from the log.
    pub tiles_fetched: usize,
    /// Hash tiles read from the cache.
    pub tiles_cached: usize,
    /// Entry bundles read from the log.
    pub bundles_fetched: usize,
    /// Entry bundles read from the cache.
    pub bundles_cached: usize,
}

/// Reads authenticated hashes and entries of one tree (one checkpoint).
#[derive(Debug)]
pub struct TileReader<'a> {
    log: &'a Log,
    tree_size: u64,
    root: Hash,
    tiles: HashMap<(u8, u64), Vec<Hash>>,
    /// What was fetched so far.
    pub stats: FetchStats,
}

impl TileReader<'_> {
    /// The tree size read.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// Forgets authenticated level-0 tiles, to bound memory on long scans.
    pub fn forget_leaves(&mut self) {
        let edge: HashSet<u64> = edge_tiles(self.tree_size)
            .iter()
            .filter(|tile| tile.level() == Some(0))
            .map(|tile| tile.index)
            .collect();
        self.tiles
            .retain(|(level, index), _| *level > 0 || edge.contains(index));
    }

    /// Reads the stored hashes of `nodes`, fetching and authenticating the
    /// tiles they are in.
    pub async fn hashes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>> {
        self.authenticate(nodes).await?;
        let mut set = TileSet::new(TILE_HEIGHT, self.tree_size);
        for tile in tiles_for_nodes(TILE_HEIGHT, self.tree_size, nodes) {
            let key = (tile.level().unwrap_or(0), tile.index);
            if let Some(hashes) = self.tiles.get(&key) {
                set.insert(&tile, hashes.clone());
            }
        }
        use stele_tiles::proof::HashReader as _;
        set.read_hashes(nodes).map_err(|source| Error::Malformed {
            location: "authenticated tiles".to_owned(),
            source,
        })
    }

    /// The inclusion proof of entry `index`, with its leaf hash; both read
    /// from authenticated tiles, and checked against the root again.
    pub async fn inclusion_proof(&mut self, index: u64) -> Result<(Hash, Vec<Hash>)> {
        let tree_size = self.tree_size;
        let inclusion = |source| Error::Inclusion {
            index,
            tree_size,
            source,
        };
        let plan = inclusion_plan(index, self.tree_size).map_err(inclusion)?;
        let mut nodes = plan.nodes.clone();
        nodes.push(Node::leaf(index));
        let hashes = self.hashes(&nodes).await?;
        let leaf = hashes[hashes.len() - 1];
        let proof = plan
            .combine(&hashes[..hashes.len() - 1])
            .map_err(inclusion)?;
        verify_inclusion(&leaf, index, self.tree_size, &proof, &self.root).map_err(|source| {
            Error::Inclusion {
                index,
                tree_size: self.tree_size,
                source,
            }
        })?;
        Ok((leaf, proof))
    }

    /// Proves that `leaf` is entry `index`.
    pub async fn prove_leaf(&mut self, leaf: &Hash, index: u64) -> Result<Vec<Hash>> {
        let (stored, proof) = self.inclusion_proof(index).await?;
        // The stored leaf is authenticated; a different one means the entry
        // is not at this index.
        if stored != *leaf {
            return Err(Error::LeafMismatch {
                index,
                tree_size: self.tree_size,
                stored: stored.to_hex(),
                given: leaf.to_hex(),
            });
        }
        Ok(proof)
    }

    /// A consistency proof from `old_size` to this tree, read from
    /// authenticated tiles.
    pub async fn consistency_proof(&mut self, old_size: u64) -> Result<Vec<Hash>> {
        let plan = consistency_plan(old_size, self.tree_size).map_err(|_| Error::Rollback {
            old_size,
            new_size: self.tree_size,
        })?;
        let hashes = self.hashes(&plan.nodes).await?;
        plan.combine(&hashes).map_err(|source| Error::Malformed {
            location: "authenticated tiles".to_owned(),
            source,
        })
    }

    /// Proves this tree consistent with the older checkpoint `old`. On
    /// failure the error names both trees; the proof is returned either way
    /// so that a monitor can keep it as evidence.
    pub async fn check_consistency(&mut self, old: &Checkpoint) -> (Vec<Hash>, Result<()>) {
        if old.size > self.tree_size {
            return (
                Vec::new(),
                Err(Error::Rollback {
                    old_size: old.size,
                    new_size: self.tree_size,
                }),
            );
        }
        let proof = match self.consistency_proof(old.size).await {
            Ok(proof) => proof,
            Err(err) => return (Vec::new(), Err(err)),
        };
        let result = verify_consistency(old.size, self.tree_size, &old.root, &self.root, &proof)
            .map_err(|source| Error::Inconsistent {
                old_size: old.size,
                old_root: old.root.to_hex(),
                new_size: self.tree_size,
                new_root: self.root.to_hex(),
                reason: source.to_string(),
            });
        (proof, result)
    }

    /// The authenticated leaf hashes of level-0 tile `tile_index`.
    pub async fn leaf_hashes(&mut self, tile_index: u64) -> Result<Vec<Hash>> {
        let first = tile_index << TILE_HEIGHT;
        if first >= self.tree_size {
            return Ok(Vec::new());
        }
        self.authenticate(&[Node::leaf(first)]).await?;
        Ok(self
            .tiles
            .get(&(0, tile_index))
            .cloned()
            .unwrap_or_default())
    }

    /// The entries of bundle `tile_index`, each checked against its leaf
    /// hash in the authenticated level-0 tile.
    pub async fn bundle(&mut self, tile_index: u64) -> Result<Vec<Vec<u8>>> {
        let mut bundles = self.bundles(tile_index..tile_index + 1).await?;
        Ok(bundles.pop().unwrap_or_default())
    }

    /// The entries of the bundles `tiles` (those in the tree), fetched
    /// concurrently after their level-0 tiles were authenticated in one
    /// batch, each entry checked against its leaf hash.
    pub async fn bundles(&mut self, tiles: std::ops::Range<u64>) -> Result<Vec<Vec<Vec<u8>>>> {
        let end = tiles
            .end
            .min(self.tree_size.div_ceil(u64::from(TILE_WIDTH)));
        let tiles = tiles.start..end.max(tiles.start);
        let nodes: Vec<Node> = tiles
            .clone()
            .map(|tile_index| Node::leaf(tile_index << TILE_HEIGHT))
            .collect();
        self.authenticate(&nodes).await?;
        let fetcher = &self.log.fetcher;
        let tree_size = self.tree_size;
        let raws: Vec<Result<RawBundle>> = futures::stream::iter(tiles.clone())
            .map(|tile_index| fetch_bundle(fetcher, tile_index, tree_size))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::with_capacity(raws.len());
        for (tile_index, raw) in tiles.zip(raws) {
            let raw = raw?;
            let leaves = self
                .tiles
                .get(&(0, tile_index))
                .cloned()
                .unwrap_or_default();
            let location = fetcher.location(&raw.path);
            let result = check_bundle(
                &location, &raw.tile, &raw.data, raw.take, &leaves, tile_index,
            );
            let entries = match result {
                Ok(entries) => {
                    if raw.from_cache {
                        self.stats.bundles_cached += 1;
                    } else {
                        self.stats.bundles_fetched += 1;
                        if !raw.tile.is_partial() {
                            fetcher.store(&raw.path, &raw.data).await;
                        }
                    }
                    entries
                }
                Err(_) if raw.from_cache => {
                    // The cache was damaged: drop it and read the log itself.
                    fetcher.evict(&raw.path).await;
                    let data = fetcher.get(&raw.path, MAX_BUNDLE_BYTES).await?;
                    self.stats.bundles_fetched += 1;
                    let entries =
                        check_bundle(&location, &raw.tile, &data, None, &leaves, tile_index)?;
                    fetcher.store(&raw.path, &data).await;
                    entries
                }
                Err(err) => return Err(err),
            };
            out.push(entries);
        }
        Ok(out)
    }

    /// The entry at `index`, checked against its authenticated leaf hash.
    pub async fn entry(&mut self, index: u64) -> Result<Vec<u8>> {
        if index >= self.tree_size {
            return Err(Error::Inclusion {
                index,
                tree_size: self.tree_size,
                source: stele_tiles::Error::IndexOutOfRange {
                    index,
                    tree_size: self.tree_size,
                },
            });
        }
        let mut entries = self.bundle(index >> TILE_HEIGHT).await?;
        let position = (index % u64::from(TILE_WIDTH)) as usize;
        Ok(std::mem::take(&mut entries[position]))
    }

    /// Finds the index of `leaf` by scanning the level-0 tiles, newest
    /// first. `progress` is called with the number of tiles scanned.
    pub async fn find_leaf(&mut self, leaf: &Hash, progress: &dyn Fn(u64)) -> Result<u64> {
        let tiles = self.tree_size.div_ceil(u64::from(TILE_WIDTH));
        for (scanned, tile_index) in (0..tiles).rev().enumerate() {
            let hashes = self.leaf_hashes(tile_index).await?;
            if let Some(position) = hashes.iter().position(|hash| hash == leaf) {
                return Ok((tile_index << TILE_HEIGHT) + position as u64);
            }
            progress(scanned as u64 + 1);
            if scanned % 64 == 63 {
                self.forget_leaves();
            }
        }
        Err(Error::LeafNotFound {
            leaf: leaf.to_hex(),
            tree_size: self.tree_size,
        })
    }

    /// Fetches and authenticates the tiles holding `nodes`.
    async fn authenticate(&mut self, nodes: &[Node]) -> Result<()> {
        match self.authenticate_with(nodes, true).await {
            Err(
                err @ (Error::RootMismatch { .. }
                | Error::TileParent { .. }
                | Error::Malformed { .. }),
            ) if self.log.fetcher.has_cache() => {
                // A cached tile may be damaged: check again without the
                // cache; if the log's own tiles fail too, that is the error.
                tracing::debug!(%err, "retrying without the cache");
                self.authenticate_with(nodes, false).await
            }
            other => other,
        }
    }

    async fn authenticate_with(&mut self, nodes: &[Node], use_cache: bool) -> Result<()> {
        if self.tree_size == 0 {
            if self.root != Hash::EMPTY {
                return Err(Error::RootMismatch {
                    tiles: "(none)".to_owned(),
                    tree_size: 0,
                    computed: Hash::EMPTY.to_hex(),
                    expected: self.root.to_hex(),
                });
            }
            return Ok(());
        }
        let tiles = &self.tiles;
        let (edge, chains) = fetch_plan(self.tree_size, nodes, &|level, index| {
            tiles.contains_key(&(level, index))
        });
        if edge.is_empty() && chains.is_empty() {
            return Ok(());
        }
        let fetcher = &self.log.fetcher;
        let fetched: Vec<Result<Fetched>> = futures::stream::iter(edge.iter().chain(&chains))
            .map(|tile| fetch_tile(fetcher, *tile, use_cache))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut by_key = HashMap::new();
        let mut order = Vec::new();
        for result in fetched {
            let fetched = result?;
            if fetched.cached {
                self.stats.tiles_cached += 1;
            } else {
                self.stats.tiles_fetched += 1;
            }
            let key = (fetched.tile.level().unwrap_or(0), fetched.tile.index);
            order.push(key);
            by_key.insert(key, fetched);
        }

        if !edge.is_empty() {
            let mut set = TileSet::new(TILE_HEIGHT, self.tree_size);
            for tile in &edge {
                if let Some(fetched) = by_key.get(&(tile.level().unwrap_or(0), tile.index)) {
                    set.insert(tile, fetched.hashes.clone());
                }
            }
            let computed = tree_root(self.tree_size, &set).map_err(|source| Error::Malformed {
                location: "edge tiles".to_owned(),
                source,
            })?;
            if computed != self.root {
                let names: Vec<String> = edge
                    .iter()
                    .map(|tile| {
                        by_key
                            .get(&(tile.level().unwrap_or(0), tile.index))
                            .map(|fetched| fetcher.location(&fetched.path))
                            .unwrap_or_else(|| tile.path())
                    })
                    .collect();
                return Err(Error::RootMismatch {
                    tiles: names.join(", "),
                    tree_size: self.tree_size,
                    computed: computed.to_hex(),
                    expected: self.root.to_hex(),
                });
            }
            for tile in &edge {
                let key = (tile.level().unwrap_or(0), tile.index);
                if let Some(fetched) = by_key.get(&key) {
                    self.tiles.insert(key, fetched.hashes.clone());
                }
            }
        }

        for tile in &chains {
            let key = (tile.level().unwrap_or(0), tile.index);
            let Some(fetched) = by_key.get(&key) else {
                continue;
            };
            let parent = parent_tile(tile, self.tree_size);
            let parent_hashes = parent.and_then(|parent| {
                self.tiles
                    .get(&(parent.level().unwrap_or(0), parent.index))
                    .map(|hashes| (parent, hashes))
            });
            let computed = perfect_root(&fetched.hashes);
            let expected = parent_hashes.and_then(|(parent, hashes)| {
                let node = Node {
                    level: (key.0 + 1) * TILE_HEIGHT,
                    index: tile.index,
                };
                node_hash_from_tile(&parent, hashes, node).ok()
            });
            if tile.is_partial() || expected != Some(computed) {
                return Err(Error::TileParent {
                    location: fetcher.location(&fetched.path),
                    parent: parent.map(|p| p.path()).unwrap_or_else(|| "(none)".into()),
                    computed: computed.to_hex(),
                    expected: expected
                        .map(|h| h.to_hex())
                        .unwrap_or_else(|| "(none)".into()),
                });
            }
            self.tiles.insert(key, fetched.hashes.clone());
        }

        // Only now, authenticated, may full tiles enter the cache.
        for key in order {
            if let Some(fetched) = by_key.get(&key) {
                if let (Some(raw), false) = (&fetched.raw, fetched.tile.is_partial()) {
                    fetcher.store(&fetched.path, raw).await;
                }
            }
        }
        Ok(())
    }
}
