//! Every tree size up to a bound, with tiny tile heights so that many tile
//! levels appear, checked against a naive recursive RFC 6962 / RFC 9162 model
//! written here from the RFC's definitions: roots, every inclusion proof,
//! every consistency proof, and every tile and bundle that integration emits,
//! under several ways of cutting the same entries into batches.

use std::collections::BTreeMap;

use stele_tiles::bundle;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::hash::{Hash, leaf_hash, node_hash};
use stele_tiles::integrate::RightEdge;
use stele_tiles::proof::{
    TileSet, consistency_plan, inclusion_plan, prove_consistency, prove_inclusion, tiles_for_nodes,
    tree_root, verify_consistency, verify_inclusion,
};
use stele_tiles::tile::{Tile, TileKind, new_tiles};

// ---- the naive model: RFC 9162 §2.1, literally -----------------------------

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::EMPTY,
        1 => leaves[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole { vec![] } else { vec![mth(leaves)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], whole);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == leaves.len() {
        return vec![];
    }
    subproof(m, leaves, true)
}

/// The expected content of a hash tile, straight from the definition: hash
/// `i` of level-L tile N is the MTH of leaves `[i·2^(hL), (i+1)·2^(hL))`.
fn naive_tile(height: u8, tile: &Tile, leaves: &[Hash]) -> Vec<Hash> {
    let TileKind::Hashes { level } = tile.kind else {
        panic!("not a hash tile")
    };
    let span = 1usize << (usize::from(height) * usize::from(level));
    let first = (tile.index as usize) << height;
    (first..first + tile.width as usize)
        .map(|i| mth(&leaves[i * span..(i + 1) * span]))
        .collect()
}

fn entry(i: usize) -> Vec<u8> {
    // Varying lengths, including empty entries.
    format!("entry {i:08} of the test").into_bytes()[..(i % 11)].to_vec()
}

/// A deterministic stream of batch sizes.
fn batch_sizes(pattern: usize, total: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ pattern as u64;
    let mut left = total;
    while left > 0 {
        let size = match pattern {
            0 => 1,
            1 => 1 + sizes.len() % 7,
            2 => left,
            _ => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                1 + (state % 40) as usize
            }
        };
        let size = size.min(left);
        sizes.push(size);
        left -= size;
    }
    sizes
}

/// A published store: latest bytes per tile position, and a check that
/// every (path, width) is only ever written with one content.
#[derive(Default)]
struct Store {
    latest: BTreeMap<(TileKind, u64), (u32, Vec<u8>)>,
    written: BTreeMap<Tile, Vec<u8>>,
}

impl Store {
    fn put(&mut self, tile: Tile, data: Vec<u8>) {
        if let Some(previous) = self.written.get(&tile) {
            assert_eq!(previous, &data, "{tile} written with two contents");
        }
        self.written.insert(tile, data.clone());
        let slot = self.latest.entry((tile.kind, tile.index)).or_default();
        assert!(tile.width >= slot.0, "{tile} shrank");
        *slot = (tile.width, data);
    }

    fn tile_set(&self, height: u8, tree_size: u64) -> TileSet {
        let mut set = TileSet::new(height, tree_size);
        for ((kind, index), (width, data)) in &self.latest {
            if let TileKind::Hashes { .. } = kind {
                let tile = Tile {
                    height,
                    kind: *kind,
                    index: *index,
                    width: *width,
                };
                set.insert(&tile, tile.decode_hashes(data).expect("tile length"));
            }
        }
        set
    }

    /// Rebuilds a right edge from the store, as a restarting sequencer does.
    fn right_edge(&self, height: u8, tree_size: u64) -> RightEdge {
        let mut partial_tiles = Vec::new();
        let mut partial_bundle = Vec::new();
        for tile in RightEdge::tiles_needed(height, tree_size) {
            let (width, data) = &self.latest[&(tile.kind, tile.index)];
            assert_eq!(
                *width, tile.width,
                "{tile} has the wrong width in the store"
            );
            match tile.kind {
                TileKind::Hashes { level } => {
                    let level = usize::from(level);
                    partial_tiles.resize(partial_tiles.len().max(level + 1), Vec::new());
                    partial_tiles[level] = tile.decode_hashes(data).expect("length");
                }
                TileKind::Entries => partial_bundle = data.clone(),
            }
        }
        RightEdge::from_tiles(height, tree_size, partial_tiles, partial_bundle)
            .expect("right edge from published tiles")
    }
}

fn check_height(height: u8, max_size: usize, proofs_every: usize) {
    let entries: Vec<Vec<u8>> = (0..max_size).map(entry).collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut reference: Option<BTreeMap<Tile, Vec<u8>>> = None;

    for pattern in 0..5 {
        let mut edge = RightEdge::empty(height);
        let mut store = Store::default();
        let mut size = 0usize;
        for batch in batch_sizes(pattern, max_size) {
            let integration = edge
                .integrate(&entries[size..size + batch])
                .expect("integrate");
            let old_size = size;
            size += batch;
            assert_eq!(integration.root, mth(&leaves[..size]), "root at {size}");
            assert_eq!(integration.leaf_hashes, leaves[old_size..size]);

            // Exactly the tiles that changed, each with the model's hashes.
            let mut emitted: Vec<Tile> = integration
                .hash_tiles
                .iter()
                .map(|(tile, _)| *tile)
                .collect();
            emitted.sort();
            let mut expected = new_tiles(height, old_size as u64, size as u64);
            expected.sort();
            assert_eq!(emitted, expected, "tiles emitted from {old_size} to {size}");
            for (tile, hashes) in &integration.hash_tiles {
                assert_eq!(hashes, &naive_tile(height, tile, &leaves), "{tile}");
            }
            // Bundles: the level-0 tiles' positions, holding the entries.
            let mut bundle_tiles: Vec<Tile> =
                integration.bundles.iter().map(|(tile, _)| *tile).collect();
            bundle_tiles.sort();
            let expected_bundles: Vec<Tile> = expected
                .iter()
                .filter(|t| t.kind == TileKind::Hashes { level: 0 })
                .map(|t| Tile {
                    kind: TileKind::Entries,
                    ..*t
                })
                .collect();
            assert_eq!(bundle_tiles, expected_bundles);
            for (tile, data) in &integration.bundles {
                let first = (tile.index as usize) << height;
                let decoded = bundle::decode(data, Some(tile.width as usize)).expect("bundle");
                let want: Vec<&[u8]> = entries[first..first + tile.width as usize]
                    .iter()
                    .map(Vec::as_slice)
                    .collect();
                assert_eq!(decoded, want, "{tile}");
            }
            // What is published: the hash tiles (decoding to the model's
            // hashes), then the bundles, nothing else.
            let objects: Vec<(Tile, Vec<u8>)> = integration.objects().collect();
            assert_eq!(
                objects.len(),
                integration.hash_tiles.len() + integration.bundles.len()
            );
            let (hash_objects, bundle_objects) = objects.split_at(integration.hash_tiles.len());
            for (tile, data) in hash_objects {
                let decoded = tile.decode_hashes(data).expect("hash tile");
                assert_eq!(decoded, naive_tile(height, tile, &leaves), "{tile}");
            }
            assert_eq!(bundle_objects, integration.bundles.as_slice());
            for (tile, data) in objects {
                store.put(tile, data);
            }
            // The checkpoint body names the model's root at the new size.
            let checkpoint = integration.checkpoint("example.com/log");
            assert_eq!(
                (checkpoint.size, checkpoint.root),
                (size as u64, mth(&leaves[..size]))
            );
            assert_eq!(
                Checkpoint::parse(&checkpoint.to_text()).expect("parse"),
                checkpoint
            );

            // Proofs for the batch's own entries, from the batch alone.
            for index in old_size..size {
                assert_eq!(
                    integration
                        .inclusion_proof(index as u64)
                        .expect("batch proof"),
                    path(index, &leaves[..size]),
                    "batch proof {index} in {size}"
                );
            }
            // A restart rebuilds the same right edge from published tiles.
            assert_eq!(
                store.right_edge(height, size as u64),
                edge,
                "edge at {size}"
            );
        }
        assert_eq!(size, max_size);

        // Same tiles whatever the batch boundaries (final contents).
        let finals: BTreeMap<Tile, Vec<u8>> = store
            .latest
            .iter()
            .map(|((kind, index), (width, data))| {
                (
                    Tile {
                        height,
                        kind: *kind,
                        index: *index,
                        width: *width,
                    },
                    data.clone(),
                )
            })
            .collect();
        match &reference {
            None => reference = Some(finals),
            Some(reference) => assert_eq!(reference, &finals, "pattern {pattern}"),
        }

        if pattern != 3 {
            continue;
        }
        // Proofs from the published tiles, at every size and every pair of
        // sizes, planned, fetched and combined, against the model.
        let tiles = store.tile_set(height, max_size as u64);
        for tree_size in (0..=max_size).step_by(proofs_every.max(1)) {
            let set = {
                // A reader that only sees the tiles of `tree_size`, at their
                // widths for that size.
                let mut set = TileSet::new(height, tree_size as u64);
                for (kind, index) in store.latest.keys() {
                    if let TileKind::Hashes { level } = kind {
                        if let Some(hashes) = tiles.get(*level, *index) {
                            let width = stele_tiles::tile::tile_width(
                                height,
                                *level,
                                *index,
                                tree_size as u64,
                            ) as usize;
                            if width > 0 {
                                let tile = Tile {
                                    height,
                                    kind: *kind,
                                    index: *index,
                                    width: width as u32,
                                };
                                set.insert(&tile, hashes[..width].to_vec());
                            }
                        }
                    }
                }
                set
            };
            let root = mth(&leaves[..tree_size]);
            assert_eq!(
                tree_root(tree_size as u64, &set),
                Ok(root),
                "root {tree_size}"
            );
            for index in 0..tree_size {
                let plan = inclusion_plan(index as u64, tree_size as u64).expect("plan");
                for tile in tiles_for_nodes(height, tree_size as u64, &plan.nodes) {
                    assert!(tile.width > 0, "plan names a tile beyond the tree");
                }
                let proof = prove_inclusion(index as u64, tree_size as u64, &set).expect("proof");
                assert_eq!(
                    proof,
                    path(index, &leaves[..tree_size]),
                    "PATH({index}, {tree_size})"
                );
                verify_inclusion(
                    &leaves[index],
                    index as u64,
                    tree_size as u64,
                    &proof,
                    &root,
                )
                .expect("inclusion verifies");
            }
            for old_size in 0..=tree_size {
                let proof =
                    prove_consistency(old_size as u64, tree_size as u64, &set).expect("proof");
                assert_eq!(
                    proof,
                    consistency(old_size, &leaves[..tree_size]),
                    "PROOF({old_size}, {tree_size})"
                );
                assert_eq!(
                    consistency_plan(old_size as u64, tree_size as u64)
                        .expect("plan")
                        .proof_len(),
                    proof.len()
                );
                let old_root = mth(&leaves[..old_size]);
                verify_consistency(old_size as u64, tree_size as u64, &old_root, &root, &proof)
                    .expect("consistency verifies");
            }
        }
    }
}

#[test]
fn exhaustive_height_1() {
    check_height(1, 70, 1);
}

#[test]
fn exhaustive_height_2() {
    check_height(2, 150, 1);
}

#[test]
fn exhaustive_height_3() {
    check_height(3, 300, 7);
}

#[test]
fn exhaustive_height_8() {
    // The published height: a few full tiles, a second level, partials.
    check_height(8, 600, 97);
}

#[test]
fn every_tampered_proof_is_rejected() {
    let leaves: Vec<Hash> = (0..37).map(|i| leaf_hash(&entry(i))).collect();
    for tree_size in 1..leaves.len() {
        let root = mth(&leaves[..tree_size]);
        for index in 0..tree_size {
            let proof = path(index, &leaves[..tree_size]);
            for position in 0..proof.len() {
                let mut bad = proof.clone();
                bad[position].0[position % 32] ^= 1;
                assert!(
                    verify_inclusion(&leaves[index], index as u64, tree_size as u64, &bad, &root)
                        .is_err()
                );
            }
            // Wrong index with the right proof, when the proof's shape allows.
            if tree_size > 1 {
                let other = (index + 1) % tree_size;
                assert!(
                    verify_inclusion(
                        &leaves[index],
                        other as u64,
                        tree_size as u64,
                        &proof,
                        &root
                    )
                    .is_err()
                );
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(
                verify_inclusion(
                    &leaves[index],
                    index as u64,
                    tree_size as u64,
                    &longer,
                    &root
                )
                .is_err()
            );
        }
        for old_size in 1..tree_size {
            let old_root = mth(&leaves[..old_size]);
            let proof = consistency(old_size, &leaves[..tree_size]);
            for position in 0..proof.len() {
                let mut bad = proof.clone();
                bad[position].0[0] ^= 0x80;
                assert!(
                    verify_consistency(old_size as u64, tree_size as u64, &old_root, &root, &bad)
                        .is_err(),
                    "tampered consistency {old_size}->{tree_size} at {position}"
                );
            }
            let mut wrong_old = old_root;
            wrong_old.0[31] ^= 1;
            assert!(
                verify_consistency(old_size as u64, tree_size as u64, &wrong_old, &root, &proof)
                    .is_err()
            );
        }
    }
}
