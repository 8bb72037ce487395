//! Interoperability with an independent implementation of the same formats:
//! Go's `golang.org/x/mod/sumdb/tlog` (RFC 6962 trees, tiles, proofs) and
//! `golang.org/x/mod/sumdb/note` (signed notes, Ed25519 note keys).
//!
//! The Go side is `tests/gointerop/main.go`, built offline from Debian's
//! `golang-go` and `golang-golang-x-mod-dev` (`scripts/install-test-deps.sh`
//! installs them). Both directions are checked:
//!
//! - Go generates keys, signed notes, trees with every tile, inclusion and
//!   consistency proofs and signed checkpoints; stele-tiles must compute the
//!   same tiles byte for byte (under several batchings), the same roots and
//!   proofs, accept Go's proofs and signatures, and sign Go's texts with Go's
//!   keys into the very same bytes.
//! - stele-tiles generates the same kinds of data; Go must accept all of it,
//!   and must reject it, naming the item, when one bit is flipped.
//!
//! Go's `note_test.go` known answers are in `go_note_vectors.rs`; the JSON
//! schema and the Go build are in `gointerop/harness.rs`.
//!
//! Without Go the Go-driven tests fail, telling to run
//! `scripts/install-test-deps.sh`; `STELE_SKIP_GO_TESTS=1` skips them, outside
//! CI only (with `CI` set it fails them).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use stele_tiles::bundle;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, Note, NoteSigner, NoteVerifier, open};
use stele_tiles::proof::{
    TileSet, prove_consistency, prove_inclusion, tree_root, verify_consistency, verify_inclusion,
};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, level_size, new_tiles, tile_width};
use stele_tiles::{Hash, leaf_hash};

#[path = "gointerop/harness.rs"]
mod harness;

use harness::{
    CheckpointCase, ConsistencyCase, InclusionCase, InteropFile, NoteCase, NoteKey, TileData,
    TreeCase, c2sp_path_of, decode, encode, go_generate, go_path_of, go_program, go_verify, hash,
    hashes, hashes_to_base64, tile_bytes,
};

/// SplitMix64: a small deterministic generator for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound` for test data.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A deterministic "cryptographic" RNG for key generation in tests:
/// SHA-256 of a seed and a counter. Never use outside tests.
struct TestRng {
    seed: [u8; 32],
    counter: u64,
    buffer: Vec<u8>,
}

impl TestRng {
    fn new(label: &str) -> TestRng {
        TestRng {
            seed: Sha256::digest(label.as_bytes()).into(),
            counter: 0,
            buffer: Vec::new(),
        }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.buffer.is_empty() {
                let mut hasher = Sha256::new();
                hasher.update(self.seed);
                hasher.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buffer = hasher.finalize().to_vec();
            }
            *byte = self.buffer.remove(0);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

// ---- Go generates, stele-tiles checks -----------------------------------------

/// Ways to cut a tree's entries into batches: fixed sizes, and a mixed
/// sequence. Batches of one emit every width of every partial tile, which is
/// what Go's `tlog.NewTiles(8, 0, n)` lists.
fn batchings(size: u64) -> Vec<Vec<usize>> {
    let size = size as usize;
    let mut out = Vec::new();
    for batch in [1, 2, 255, 256, 257, 1000, size.max(1)] {
        if batch <= 2 && size > 5000 {
            continue; // covered by the mixed sequence, too slow one by one
        }
        let mut sizes = Vec::new();
        let mut left = size;
        while left > 0 {
            let take = batch.min(left);
            sizes.push(take);
            left -= take;
        }
        out.push(sizes);
    }
    let mut mixed = Vec::new();
    let (mut left, mut step) = (size, 0usize);
    let pattern = [1, 17, 300, 1, 4096, 255, 2, 65536];
    while left > 0 {
        let take = pattern[step % pattern.len()].min(left);
        mixed.push(take);
        left -= take;
        step += 1;
    }
    out.push(mixed);
    out
}

fn check_keys_and_notes(file: &InteropFile) -> (Vec<Ed25519Signer>, Vec<Ed25519Verifier>) {
    let mut signers = Vec::new();
    let mut verifiers = Vec::new();
    for key in &file.keys {
        let signer = Ed25519Signer::from_private_key_text(&key.skey)
            .unwrap_or_else(|error| panic!("Go's private key {:?}: {error}", key.name));
        let verifier = Ed25519Verifier::from_text(&key.vkey)
            .unwrap_or_else(|error| panic!("Go's verifier key {:?}: {error}", key.vkey));
        assert_eq!(signer.name(), key.name);
        assert_eq!(verifier.name(), key.name);
        assert_eq!(
            signer.to_private_key_text(),
            key.skey,
            "re-formatted private key"
        );
        assert_eq!(verifier.to_text(), key.vkey, "re-formatted verifier key");
        assert_eq!(
            signer.verifier(),
            verifier,
            "verifier derived from {:?}",
            key.name
        );
        signers.push(signer);
        verifiers.push(verifier);
    }
    for (number, case) in file.notes.iter().enumerate() {
        let trusted: Vec<&dyn NoteVerifier> = case
            .keys
            .iter()
            .map(|&k| &verifiers[k] as &dyn NoteVerifier)
            .collect();
        let (note, verified) = open(case.signed.as_bytes(), &trusted)
            .unwrap_or_else(|error| panic!("note {number} {:?}: {error}", case.text));
        assert_eq!(note.text, case.text, "note {number}");
        assert_eq!(
            verified,
            (0..case.keys.len()).collect::<Vec<_>>(),
            "note {number}"
        );
        // Ed25519 is deterministic: Go's keys in stele sign Go's bytes.
        let by: Vec<&dyn NoteSigner> = case
            .keys
            .iter()
            .map(|&k| &signers[k] as &dyn NoteSigner)
            .collect();
        let resigned = Note::sign(&case.text, &by)
            .unwrap_or_else(|error| panic!("note {number} {:?}: signing: {error}", case.text));
        assert_eq!(
            String::from_utf8(resigned.to_bytes()).expect("UTF-8"),
            case.signed,
            "note {number}: stele's signature bytes differ from Go's"
        );
    }
    (signers, verifiers)
}

fn check_go_tree(
    number: usize,
    tree: &TreeCase,
    signers: &[Ed25519Signer],
    verifiers: &[Ed25519Verifier],
) {
    let name = format!("Go tree {number} (size {})", tree.size);
    let entries: Vec<Vec<u8>> = tree.entries.iter().map(|e| decode(e)).collect();
    assert_eq!(entries.len() as u64, tree.size, "{name}");

    // Go's tiles, by (level, index, width); paths agree modulo the height.
    let mut go_tiles: BTreeMap<(u8, u64, u32), Vec<u8>> = BTreeMap::new();
    for tile in &tree.tiles {
        let coordinates = Tile::hashes(tile.level, tile.index, tile.width);
        assert_eq!(
            coordinates.path(),
            tile.path,
            "{name}: path of {coordinates:?}"
        );
        assert_eq!(c2sp_path_of(&tile.go_path), tile.path, "{name}");
        assert_eq!(go_path_of(&tile.path), tile.go_path, "{name}");
        assert_eq!(
            Tile::parse_path(&tile.path).as_ref(),
            Ok(&coordinates),
            "{name}: parsing {}",
            tile.path
        );
        go_tiles.insert((tile.level, tile.index, tile.width), decode(&tile.data));
    }
    // The tiles at their final width: what a c2sp log publishes.
    let final_tiles: BTreeMap<(u8, u64), (u32, &Vec<u8>)> = go_tiles
        .iter()
        .filter(|((level, index, width), _)| {
            *width == tile_width(TILE_HEIGHT, *level, *index, tree.size)
        })
        .map(|(&(level, index, width), data)| ((level, index), (width, data)))
        .collect();
    let mut expected_final: Vec<Tile> = final_tiles
        .iter()
        .map(|(&(level, index), &(width, _))| Tile::hashes(level, index, width))
        .collect();
    let mut stele_final = new_tiles(TILE_HEIGHT, 0, tree.size);
    expected_final.sort();
    stele_final.sort();
    assert_eq!(stele_final, expected_final, "{name}: new_tiles(8, 0, size)");

    // Go's root; for the empty tree Go's tlog says all zeros, RFC 6962 (and
    // stele) SHA-256 of nothing.
    let go_root = hash(&tree.root);
    let rfc_root = if tree.size == 0 {
        assert_eq!(go_root, Hash([0; 32]), "{name}: Go's empty tree hash");
        Hash::EMPTY
    } else {
        go_root
    };

    // Integrate the same entries under several batchings: every tile stele
    // emits matches Go's, and every final tile is emitted.
    for batching in batchings(tree.size) {
        let label = format!(
            "{name}, batches of {:?}…",
            &batching[..batching.len().min(4)]
        );
        let mut edge = RightEdge::empty(TILE_HEIGHT);
        let mut emitted: BTreeMap<(u8, u64, u32), Vec<u8>> = BTreeMap::new();
        let mut start = 0;
        for &count in &batching {
            let batch = &entries[start..start + count];
            let integration = edge.integrate(batch).expect("integrate");
            for (offset, leaf) in integration.leaf_hashes.iter().enumerate() {
                assert_eq!(*leaf, leaf_hash(&batch[offset]), "{label}");
            }
            for (tile, data) in integration.encoded_hash_tiles() {
                let level = tile.level().expect("a hash tile");
                emitted.insert((level, tile.index, tile.width), data);
            }
            if integration.new_size == tree.size {
                // Proofs straight from the batch's own tiles.
                for case in tree.inclusion.iter().filter(|c| c.tree_size == tree.size) {
                    if case.index >= integration.old_size {
                        let proof = integration
                            .inclusion_proof(case.index)
                            .expect("batch proof");
                        assert_eq!(
                            hashes_to_base64(&proof),
                            case.proof,
                            "{label}: inclusion of {}",
                            case.index
                        );
                    }
                }
            }
            start += count;
        }
        assert_eq!(edge.root(), rfc_root, "{label}: root");
        for (&(level, index, width), data) in &emitted {
            let go = go_tiles
                .get(&(level, index, width))
                .or_else(|| final_tiles.get(&(level, index)).map(|(_, data)| *data))
                .unwrap_or_else(|| {
                    panic!(
                        "{label}: stele emitted tile {level}/{index} width {width}, unknown to Go"
                    )
                });
            assert_eq!(
                data[..],
                go[..data.len()],
                "{label}: tile {}",
                Tile::hashes(level, index, width)
            );
        }
        for (&(level, index), &(width, data)) in &final_tiles {
            assert_eq!(
                emitted.get(&(level, index, width)),
                Some(data),
                "{label}: final tile {}",
                Tile::hashes(level, index, width)
            );
        }
        if batching.iter().all(|&count| count == 1) {
            // One by one, stele emits every width Go lists.
            for key in go_tiles.keys() {
                assert!(
                    emitted.contains_key(key),
                    "{label}: tile {key:?} not emitted"
                );
            }
        }
    }

    // A sequencer restarting from Go's tiles: rebuild the right edge at an
    // earlier size from the partial tiles of that size (prefixes of Go's
    // final tiles) and the partial bundle, check its root, and go on.
    let restarts: BTreeMap<u64, Hash> = tree
        .consistency
        .iter()
        .filter(|case| case.old_size < tree.size)
        .map(|case| (case.old_size, hash(&case.old_root)))
        .collect();
    for (i, (&size, old_root)) in restarts.iter().enumerate() {
        let label = format!("{name}: restart at size {size}");
        let mut partial_tiles = Vec::new();
        let mut level = 0u8;
        while level_size(TILE_HEIGHT, level, size) > 0 {
            let count = level_size(TILE_HEIGHT, level, size);
            let width = (count % u64::from(TILE_WIDTH)) as usize;
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let (_, data) = final_tiles[&(level, count >> TILE_HEIGHT)];
                let tile = Tile::hashes(level, count >> TILE_HEIGHT, width as u32);
                tile.decode_hashes(&data[..width * 32]).expect("Go's tile")
            };
            partial_tiles.push(hashes);
            level += 1;
        }
        let bundle_start = (size >> TILE_HEIGHT << TILE_HEIGHT) as usize;
        let partial_bundle = bundle::encode(&entries[bundle_start..size as usize]).expect("bundle");
        let mut edge = RightEdge::from_tiles(TILE_HEIGHT, size, partial_tiles, partial_bundle)
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        assert_eq!(edge.root(), *old_root, "{label}: root");
        if i < 2 {
            let integration = edge
                .integrate(&entries[size as usize..])
                .expect("integrate");
            assert_eq!(integration.root, rfc_root, "{label}: root after the rest");
            for (tile, data) in integration.encoded_hash_tiles() {
                let level = tile.level().expect("a hash tile");
                let (_, go) = final_tiles[&(level, tile.index)];
                assert_eq!(data[..], go[..data.len()], "{label}: tile {tile}");
            }
        }
    }

    // Proofs from Go's tiles, byte for byte, and Go's proofs verify.
    let mut tile_set = TileSet::new(TILE_HEIGHT, tree.size);
    for (&(level, index), &(width, data)) in &final_tiles {
        let tile = Tile::hashes(level, index, width);
        tile_set.insert(&tile, tile.decode_hashes(data).expect("Go's tile"));
    }
    for (i, case) in tree.inclusion.iter().enumerate() {
        let what = format!(
            "{name}: inclusion proof {i} (index {}, tree size {})",
            case.index, case.tree_size
        );
        let root = hash(&case.root);
        assert_eq!(
            tree_root(case.tree_size, &tile_set).expect("root"),
            root,
            "{what}: root"
        );
        let proof = prove_inclusion(case.index, case.tree_size, &tile_set).expect("proving");
        assert_eq!(hashes_to_base64(&proof), case.proof, "{what}");
        let leaf = leaf_hash(&entries[case.index as usize]);
        verify_inclusion(
            &leaf,
            case.index,
            case.tree_size,
            &hashes(&case.proof),
            &root,
        )
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    }
    for (i, case) in tree.consistency.iter().enumerate() {
        let what = format!(
            "{name}: consistency proof {i} ({} to {})",
            case.old_size, case.new_size
        );
        let proof = prove_consistency(case.old_size, case.new_size, &tile_set).expect("proving");
        assert_eq!(hashes_to_base64(&proof), case.proof, "{what}");
        verify_consistency(
            case.old_size,
            case.new_size,
            &hash(&case.old_root),
            &hash(&case.new_root),
            &hashes(&case.proof),
        )
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    }

    // The checkpoint Go signed opens in stele, and stele signs the same bytes.
    let case = tree
        .checkpoint
        .as_ref()
        .expect("Go writes a checkpoint per tree");
    let (checkpoint, _) =
        open_checkpoint(case.signed.as_bytes(), &case.origin, &verifiers[case.key])
            .unwrap_or_else(|error| panic!("{name}: checkpoint: {error}"));
    assert_eq!(checkpoint.size, tree.size, "{name}: checkpoint size");
    assert_eq!(checkpoint.root, rfc_root, "{name}: checkpoint root");
    assert_eq!(
        checkpoint.extensions, case.extensions,
        "{name}: checkpoint extensions"
    );
    let resigned = sign_checkpoint(&checkpoint, &signers[case.key]).expect("signing");
    assert_eq!(
        String::from_utf8(resigned.to_bytes()).expect("UTF-8"),
        case.signed,
        "{name}: stele's signed checkpoint differs from Go's"
    );
}

fn check_tile_paths_and_growth(file: &InteropFile) {
    for case in &file.tile_paths {
        let tile = Tile::hashes(case.level, case.index, case.width);
        assert_eq!(tile.path(), case.path, "path of {tile:?}");
        assert_eq!(
            go_path_of(&tile.path()),
            case.go_path,
            "Go path of {tile:?}"
        );
        assert_eq!(
            Tile::parse_path(&case.path),
            Ok(tile),
            "parsing {}",
            case.path
        );
    }
    for case in &file.growth {
        let what = format!("growth {} to {}", case.old_size, case.new_size);
        let go: BTreeSet<Tile> = case
            .go_paths
            .iter()
            .map(|path| {
                Tile::parse_path(&c2sp_path_of(path))
                    .unwrap_or_else(|e| panic!("{what}: {path}: {e}"))
            })
            .collect();
        let stele: BTreeSet<Tile> = new_tiles(TILE_HEIGHT, case.old_size, case.new_size)
            .into_iter()
            .collect();
        // Go also lists each narrower width of a partial tile, and the
        // partial tile of a level that did not change; stele lists only
        // what changed, at its final width.
        for tile in &stele {
            assert!(
                go.contains(tile),
                "{what}: stele publishes {tile}, Go does not"
            );
        }
        for tile in &go {
            let level = tile.level().expect("a hash tile");
            let final_width = tile_width(TILE_HEIGHT, level, tile.index, case.new_size);
            if tile.width == final_width && !stele.contains(tile) {
                assert_eq!(
                    tile_width(TILE_HEIGHT, level, tile.index, case.old_size),
                    final_width,
                    "{what}: Go publishes {tile}, which changed, and stele does not"
                );
            }
        }
    }
}

#[test]
fn go_generated_data_checks_in_stele() {
    let Some(program) = go_program() else {
        return;
    };
    for seed in [1, 2, 3] {
        let file = go_generate(program, seed);
        assert_eq!(file.generator, "go");
        let (signers, verifiers) = check_keys_and_notes(&file);
        for (number, tree) in file.trees.iter().enumerate() {
            check_go_tree(number, tree, &signers, &verifiers);
        }
        check_tile_paths_and_growth(&file);
        assert!(
            file.trees.iter().any(|tree| tree.size > 65536),
            "a tree with level-2 tiles"
        );
    }
}

// ---- stele-tiles generates, Go checks -----------------------------------------

fn stele_tree(
    rng: &mut SplitMix64,
    size: u64,
    signer: &Ed25519Signer,
    key: usize,
    extensions: Vec<String>,
) -> TreeCase {
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|_| {
            let length = if rng.below(100) == 0 {
                200 + rng.below(800)
            } else {
                rng.below(48)
            };
            (0..length).map(|_| rng.next() as u8).collect()
        })
        .collect();
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let mut tiles: BTreeMap<(u8, u64), (Tile, Vec<Hash>)> = BTreeMap::new();
    let mut bundles: BTreeMap<u64, (Tile, Vec<u8>)> = BTreeMap::new();
    let mut roots = vec![Hash::EMPTY];
    let mut start = 0usize;
    while start < entries.len() {
        let count = (1 + rng.below(700) as usize).min(entries.len() - start);
        let integration = edge
            .integrate(&entries[start..start + count])
            .expect("integrate");
        for (tile, hashes) in integration.hash_tiles {
            let level = tile.level().expect("a hash tile");
            tiles.insert((level, tile.index), (tile, hashes));
        }
        for (tile, data) in integration.bundles {
            bundles.insert(tile.index, (tile, data));
        }
        roots.push(integration.root);
        start += count;
    }
    let root = edge.root();

    let mut tile_set = TileSet::new(TILE_HEIGHT, size);
    for (tile, hashes) in tiles.values() {
        tile_set.insert(tile, hashes.clone());
    }
    let tile_data = |tile: &Tile, data: Vec<u8>| TileData {
        path: tile.path(),
        go_path: String::new(),
        level: tile.level().unwrap_or(0),
        index: tile.index,
        width: tile.width,
        data: encode(&data),
    };
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    if size > 0 {
        let mut pairs = vec![(0, size), (size - 1, size)];
        for _ in 0..10 {
            let index = rng.below(size);
            let tree_size = if rng.below(2) == 0 {
                size
            } else {
                index + 1 + rng.below(size - index)
            };
            pairs.push((index, tree_size));
        }
        for (index, tree_size) in pairs {
            let proof = prove_inclusion(index, tree_size, &tile_set).expect("proving inclusion");
            inclusion.push(InclusionCase {
                index,
                tree_size,
                root: tree_root(tree_size, &tile_set).expect("root").to_base64(),
                proof: hashes_to_base64(&proof),
            });
        }
        let mut pairs = vec![(1, size), (size, size)];
        for _ in 0..10 {
            let new_size = if rng.below(2) == 0 {
                size
            } else {
                1 + rng.below(size)
            };
            pairs.push((1 + rng.below(new_size), new_size));
        }
        for (old_size, new_size) in pairs {
            let proof =
                prove_consistency(old_size, new_size, &tile_set).expect("proving consistency");
            consistency.push(ConsistencyCase {
                old_size,
                new_size,
                old_root: tree_root(old_size, &tile_set).expect("root").to_base64(),
                new_root: tree_root(new_size, &tile_set).expect("root").to_base64(),
                proof: hashes_to_base64(&proof),
            });
        }
    }

    let checkpoint = Checkpoint {
        origin: "stele.example/log".into(),
        size,
        root,
        extensions: extensions.clone(),
    };
    let signed = sign_checkpoint(&checkpoint, signer).expect("signing the checkpoint");
    TreeCase {
        size,
        entries: entries.iter().map(|e| encode(e)).collect(),
        root: root.to_base64(),
        tiles: tiles
            .values()
            .map(|(tile, hashes)| tile_data(tile, tile_bytes(hashes)))
            .collect(),
        bundles: bundles
            .values()
            .map(|(tile, data)| tile_data(tile, data.clone()))
            .collect(),
        inclusion,
        consistency,
        checkpoint: Some(CheckpointCase {
            origin: checkpoint.origin,
            size,
            root: root.to_base64(),
            extensions,
            key,
            signed: String::from_utf8(signed.to_bytes()).expect("UTF-8"),
        }),
    }
}

fn stele_file() -> InteropFile {
    let mut key_rng = TestRng::new("stele go_interop keys");
    let names = ["stele.example/log", "witness.example/w2"];
    let signers: Vec<Ed25519Signer> = names
        .iter()
        .map(|name| Ed25519Signer::generate(name, &mut key_rng).expect("generating a key"))
        .collect();
    // A key from a fixed seed, too.
    let fixed = Ed25519Signer::from_seed("fixed.example/k", &[7; 32]).expect("key from seed");
    let signers: Vec<Ed25519Signer> = signers.into_iter().chain([fixed]).collect();
    let keys = signers
        .iter()
        .map(|signer| NoteKey {
            name: signer.name().to_owned(),
            skey: signer.to_private_key_text(),
            vkey: signer.verifier().to_text(),
        })
        .collect();

    let texts: [(&str, &[usize]); 6] = [
        ("hello\n", &[0]),
        (
            "several lines\nwith non-ASCII: café — ☃\nand a third\n",
            &[1],
        ),
        ("two signers\n", &[0, 1]),
        ("three signers, out of order\n", &[2, 0, 1]),
        ("first paragraph\n\nsecond paragraph\n", &[2]),
        (
            "stele.example/log\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            &[0],
        ),
    ];
    let notes = texts
        .iter()
        .map(|(text, keys)| {
            let by: Vec<&dyn NoteSigner> = keys
                .iter()
                .map(|&k| &signers[k] as &dyn NoteSigner)
                .collect();
            let note = Note::sign(text, &by).expect("signing a note");
            NoteCase {
                text: (*text).to_owned(),
                keys: keys.to_vec(),
                signed: String::from_utf8(note.to_bytes()).expect("UTF-8"),
            }
        })
        .collect();

    let mut rng = SplitMix64(0x5EED);
    let sizes = [0, 1, 2, 3, 255, 256, 257, 1000, 65536 + 300];
    let trees = sizes
        .iter()
        .enumerate()
        .map(|(number, &size)| {
            let extensions = if number % 3 == 2 {
                vec!["extension one".to_owned(), "ext — ünïcödé".to_owned()]
            } else {
                Vec::new()
            };
            stele_tree(&mut rng, size, &signers[number % 2], number % 2, extensions)
        })
        .collect();
    InteropFile {
        generator: "rust".into(),
        seed: 0x5EED,
        keys,
        notes,
        trees,
        tile_paths: Vec::new(),
        growth: Vec::new(),
    }
}

/// Flips one bit of a base64 value.
fn flip_bit(text: &mut String) {
    let mut bytes = decode(text);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    *text = encode(&bytes);
}

/// Flips one bit in the base64 signature of a signed note's last line.
fn flip_signature_bit(signed: &mut String) {
    let body = signed
        .strip_suffix('\n')
        .expect("a signed note ends in a newline");
    let (head, signature) = body.rsplit_once(' ').expect("a signature line");
    let mut signature = signature.to_owned();
    flip_bit(&mut signature);
    *signed = format!("{head} {signature}\n");
}

#[test]
fn stele_generated_data_checks_in_go() {
    let Some(program) = go_program() else {
        return;
    };
    let file = stele_file();
    let (ok, stderr) = go_verify(program, &file, "stele.json");
    assert!(ok, "Go rejects stele's data:\n{stderr}");

    // One bit flipped in one item at a time: Go must fail, naming it.
    let tree_number = 6; // size 257: two levels, partial tiles
    let tree = &file.trees[tree_number];
    let tree_name = format!("tree {tree_number} (size {})", tree.size);
    let inclusion = &tree.inclusion[3];
    let consistency = &tree.consistency[0];
    let tile = &tree.tiles[0];
    type Mutation = Box<dyn Fn(&mut InteropFile)>;
    let cases: Vec<(&str, Mutation, String)> = vec![
        (
            "inclusion proof",
            Box::new(move |f: &mut InteropFile| {
                flip_bit(&mut f.trees[tree_number].inclusion[3].proof[0])
            }),
            format!(
                "{tree_name}: inclusion proof 3 (index {}, tree size {}): tlog.CheckRecord",
                inclusion.index, inclusion.tree_size
            ),
        ),
        (
            "consistency proof",
            Box::new(move |f: &mut InteropFile| {
                let proof = &mut f.trees[tree_number].consistency[0].proof;
                let last = proof.len() - 1;
                flip_bit(&mut proof[last]);
            }),
            format!(
                "{tree_name}: consistency proof 0 ({} to {}): tlog.CheckTree",
                consistency.old_size, consistency.new_size
            ),
        ),
        (
            "tile",
            Box::new(move |f: &mut InteropFile| flip_bit(&mut f.trees[tree_number].tiles[0].data)),
            format!("{tree_name}: tile {}: bytes differ", tile.path),
        ),
        (
            "bundle",
            Box::new(move |f: &mut InteropFile| {
                flip_bit(&mut f.trees[tree_number].bundles[0].data)
            }),
            format!("{tree_name}: bundle {}", tree.bundles[0].path),
        ),
        (
            "note signature",
            Box::new(|f: &mut InteropFile| flip_signature_bit(&mut f.notes[2].signed)),
            "note 2: note.Open".to_owned(),
        ),
        (
            "checkpoint signature",
            Box::new(move |f: &mut InteropFile| {
                let checkpoint = f.trees[tree_number]
                    .checkpoint
                    .as_mut()
                    .expect("a checkpoint");
                flip_signature_bit(&mut checkpoint.signed);
            }),
            format!("{tree_name}: checkpoint: note.Open"),
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut broken = file.clone();
        mutate(&mut broken);
        let (ok, stderr) = go_verify(
            program,
            &broken,
            &format!("stele-broken-{}.json", what.replace(' ', "-")),
        );
        assert!(
            !ok,
            "Go accepts stele's data with a flipped bit in a {what}"
        );
        assert!(
            stderr.contains(&expected),
            "Go's verify with a flipped bit in a {what} does not say {expected:?}:\n{stderr}"
        );
        for line in stderr.lines().filter(|line| line.starts_with("FAIL:")) {
            let item = expected.split(": ").take(2).collect::<Vec<_>>().join(": ");
            assert!(
                line.contains(&item) || what == "tile" && line.contains(&tree_name),
                "flipping a bit in a {what} also failed another item: {line}"
            );
        }
    }
}
