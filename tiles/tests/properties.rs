//! Property tests: every format round-trips through its parser, and
//! integration does not depend on how entries are cut into batches.
//!
//! The exhaustive tests (tests/exhaustive.rs) cover every small tree; these
//! cover the far corners of the value space (indices near 2^64, the largest
//! entries, every key name) and random batch cuts of larger trees.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use stele_tiles::bundle::{self, MAX_ENTRY_SIZE};
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, CosignatureVerifier, WitnessPolicy};
use stele_tiles::hash::{Hash, leaf_hash, node_hash};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{
    Ed25519Signer, Ed25519Verifier, Note, NoteSigner, NoteVerifier, open, validate_key_name,
};
use stele_tiles::proof::{TileSet, prove_consistency, verify_consistency, verify_inclusion};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::{MAX_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, TileKind, encode_hashes};

// ---- strategies ---------------------------------------------------------------

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

/// Key names: anything non-empty without white space, `+` or control
/// characters, Unicode included.
fn key_name() -> impl Strategy<Value = String> {
    "[^\\s+\\p{Cc}]{1,24}".prop_filter("valid key name", |name| validate_key_name(name).is_ok())
}

/// Lines of checkpoint text: non-empty, no control characters (spaces and
/// Unicode allowed).
fn line() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}"
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (line(), any::<u64>(), hash(), vec(line(), 0..4)).prop_map(
        |(origin, size, root, extensions)| Checkpoint {
            origin,
            size,
            root,
            extensions,
        },
    )
}

/// Entries of every size a bundle holds, mostly small, some at the limit.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..100),
        1 => (0..=MAX_ENTRY_SIZE).prop_map(|length| vec![(length % 251) as u8; length]),
        1 => Just(vec![0xa5; MAX_ENTRY_SIZE]),
    ]
}

// ---- formats ------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tile_paths_round_trip(level in 0..=MAX_LEVEL, index in any::<u64>(), width in 1..=TILE_WIDTH) {
        for tile in [Tile::hashes(level, index, width), Tile::entries(index, width)] {
            let path = tile.path();
            prop_assert_eq!(Tile::parse_path(&path), Ok(tile));
            prop_assert_eq!(path.ends_with(&format!(".p/{width}")), width < TILE_WIDTH);
        }
    }

    #[test]
    fn hash_tiles_round_trip(
        level in 0..=MAX_LEVEL,
        index in any::<u64>(),
        hashes in vec(hash(), 1..=TILE_WIDTH as usize),
    ) {
        let tile = Tile::hashes(level, index, hashes.len() as u32);
        let data = encode_hashes(&hashes);
        prop_assert_eq!(tile.decode_hashes(&data), Ok(hashes));
        // One byte short or long is an error.
        prop_assert!(tile.decode_hashes(&data[1..]).is_err());
        let mut long = data.clone();
        long.push(0);
        prop_assert!(tile.decode_hashes(&long).is_err());
    }
}

proptest! {
    // Bundles of 64 KiB entries are costly; fewer cases suffice.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bundles_round_trip(entries in vec(entry(), 0..12)) {
        let encoded = bundle::encode(&entries).expect("entries fit");
        let total: usize = entries.iter().map(|entry| entry.len() + 2).sum();
        prop_assert_eq!(encoded.len(), total);
        let decoded = bundle::decode(&encoded, Some(entries.len())).expect("decodes");
        prop_assert_eq!(&decoded, &entries);
        prop_assert!(bundle::decode(&encoded, Some(entries.len() + 1)).is_err());
        if !encoded.is_empty() {
            prop_assert!(bundle::decode(&encoded[..encoded.len() - 1], None).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn checkpoints_round_trip(checkpoint in checkpoint(), seed in any::<[u8; 32]>()) {
        let text = checkpoint.to_text();
        prop_assert_eq!(Checkpoint::parse(&text), Ok(checkpoint.clone()));
        prop_assert_eq!(checkpoint.validate(), Ok(()));
        let signer = Ed25519Signer::from_seed("example.com/log", &seed).expect("valid name");
        let note = sign_checkpoint(&checkpoint, &signer).expect("signs");
        let (opened, _) = open_checkpoint(&note.to_bytes(), &checkpoint.origin, &signer.verifier())
            .expect("opens");
        prop_assert_eq!(opened, checkpoint);
    }

    #[test]
    fn notes_with_several_signatures_round_trip(
        checkpoint in checkpoint(),
        keys in vec((key_name(), any::<[u8; 32]>()), 1..5),
        witness_seed in any::<[u8; 32]>(),
        timestamp in 0..=i64::MAX as u64,
    ) {
        let signers: Vec<Ed25519Signer> = keys
            .iter()
            .map(|(name, seed)| Ed25519Signer::from_seed(name, seed).expect("valid name"))
            .collect();
        let signer_refs: Vec<&dyn NoteSigner> = signers.iter().map(|s| s as &dyn NoteSigner).collect();
        let text = checkpoint.to_text();
        let mut note = Note::sign(&text, &signer_refs).expect("signs");
        let witness = CosignatureSigner::from_seed("witness.example/w", &witness_seed).expect("valid name");
        note.add_signature(witness.cosign(&text, timestamp).expect("cosigns")).expect("adds");

        let bytes = note.to_bytes();
        let parsed = Note::parse(&bytes).expect("parses");
        prop_assert_eq!(&parsed, &note);
        prop_assert_eq!(parsed.to_bytes(), bytes.clone());

        // Every signer's signature verifies; a key with the same name and ID
        // can sign only once (a repeat replaces the earlier line), so count
        // the distinct keys.
        let verifiers: Vec<Ed25519Verifier> = signers.iter().map(Ed25519Signer::verifier).collect();
        let mut distinct: Vec<&Ed25519Verifier> = Vec::new();
        for verifier in &verifiers {
            if !distinct.iter().any(|d| d.name() == verifier.name() && d.key_id() == verifier.key_id()) {
                distinct.push(verifier);
            }
        }
        let verifier_refs: Vec<&dyn NoteVerifier> = distinct.iter().map(|v| *v as &dyn NoteVerifier).collect();
        let (_, verified) = open(&bytes, &verifier_refs).expect("verifies");
        prop_assert_eq!(verified.len(), distinct.len());

        let policy = WitnessPolicy::new(vec![witness.verifier()], 1).expect("policy");
        prop_assert_eq!(
            policy.check(&parsed),
            Ok(vec![("witness.example/w".to_owned(), timestamp)])
        );
    }

    #[test]
    fn receipts_round_trip(
        extra in proptest::option::of(vec(any::<u8>(), 0..64)),
        index in any::<u64>(),
        proof in vec(hash(), 0..=64),
        checkpoint in checkpoint(),
    ) {
        let signer = Ed25519Signer::from_seed("example.com/log", &[3; 32]).expect("valid name");
        let note = sign_checkpoint(&checkpoint, &signer).expect("signs");
        let receipt = Receipt { extra, index, proof, checkpoint: note.to_bytes() };
        let bytes = receipt.to_bytes();
        prop_assert_eq!(Receipt::parse(&bytes), Ok(receipt.clone()));
        prop_assert_eq!(Receipt::parse(&bytes).map(|r| r.to_bytes()), Ok(bytes));
    }

    #[test]
    fn key_texts_round_trip(name in key_name(), seed in any::<[u8; 32]>()) {
        let signer = Ed25519Signer::from_seed(&name, &seed).expect("valid name");
        let private = signer.to_private_key_text();
        let reread = Ed25519Signer::from_private_key_text(&private).expect("reads");
        prop_assert_eq!(reread.to_private_key_text(), private);
        prop_assert_eq!(reread.verifier(), signer.verifier());
        let public = signer.verifier().to_text();
        prop_assert_eq!(Ed25519Verifier::from_text(&public), Ok(signer.verifier()));
        // Go reads the key ID in either case.
        let upper = public.replacen(
            &format!("+{:08x}+", signer.key_id()),
            &format!("+{:08X}+", signer.key_id()),
            1,
        );
        prop_assert_eq!(Ed25519Verifier::from_text(&upper), Ok(signer.verifier()));

        let witness = CosignatureSigner::from_seed(&name, &seed).expect("valid name");
        let private = witness.to_private_key_text();
        let reread = CosignatureSigner::from_private_key_text(&private).expect("reads");
        prop_assert_eq!(reread.verifier(), witness.verifier());
        prop_assert_eq!(CosignatureVerifier::from_text(&witness.verifier().to_text()), Ok(witness.verifier()));
        // The two kinds never accept each other's texts.
        prop_assert!(Ed25519Verifier::from_text(&witness.verifier().to_text()).is_err());
        prop_assert!(CosignatureVerifier::from_text(&public).is_err());
        prop_assert!(CosignatureSigner::from_private_key_text(&signer.to_private_key_text()).is_err());
    }
}

// ---- integration ------------------------------------------------------------

/// RFC 9162 §2.1.1 `MTH`, literally: the independent model.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::EMPTY,
        1 => leaves[0],
        n => {
            let split = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..split]), &mth(&leaves[split..]))
        }
    }
}

/// The latest content of every hash tile and bundle position, checking on
/// the way that a position only ever grows (an earlier partial tile is a
/// prefix of a later one).
#[derive(Default, Debug, PartialEq)]
struct Published {
    hash_tiles: BTreeMap<(u8, u64), Vec<Hash>>,
    bundles: BTreeMap<u64, Vec<u8>>,
}

impl Published {
    fn add(&mut self, tile: Tile, hashes: &[Hash]) {
        let TileKind::Hashes { level } = tile.kind else {
            panic!("{tile} is not a hash tile");
        };
        assert_eq!(hashes.len(), tile.width as usize, "{tile}");
        let slot = self.hash_tiles.entry((level, tile.index)).or_default();
        assert!(hashes.starts_with(slot), "{tile} rewrites published hashes");
        *slot = hashes.to_vec();
    }

    fn add_bundle(&mut self, tile: Tile, data: &[u8]) {
        assert_eq!(tile.kind, TileKind::Entries);
        let slot = self.bundles.entry(tile.index).or_default();
        assert!(data.starts_with(slot), "{tile} rewrites published entries");
        *slot = data.to_vec();
    }
}

/// Cut points (as fractions of the entry count) into sorted batch bounds.
fn batches(count: usize, cuts: &[u16]) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|&cut| count * usize::from(cut) / usize::from(u16::MAX))
        .collect();
    bounds.push(0);
    bounds.push(count);
    bounds.sort_unstable();
    bounds.windows(2).map(|pair| (pair[0], pair[1])).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_cuts_do_not_change_the_tree(
        height in prop_oneof![Just(1u8), Just(2), Just(3), Just(TILE_HEIGHT)],
        entries in vec(vec(any::<u8>(), 0..48), 0..1200),
        cuts in vec(any::<u16>(), 0..12),
    ) {
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();

        let mut whole = RightEdge::empty(height);
        let one = whole.integrate(&entries).expect("integrates");
        let mut in_one = Published::default();
        for (tile, hashes) in &one.hash_tiles {
            in_one.add(*tile, hashes);
        }
        for (tile, data) in &one.bundles {
            in_one.add_bundle(*tile, data);
        }
        prop_assert_eq!(one.root, mth(&leaves));
        prop_assert_eq!(&one.leaf_hashes, &leaves);

        let mut edge = RightEdge::empty(height);
        let mut in_batches = Published::default();
        let mut roots = Vec::new();
        for (start, end) in batches(entries.len(), &cuts) {
            let integration = edge.integrate(&entries[start..end]).expect("integrates");
            prop_assert_eq!(integration.old_size, start as u64);
            prop_assert_eq!(integration.new_size, end as u64);
            prop_assert_eq!(integration.root, mth(&leaves[..end]));
            for (tile, hashes) in &integration.hash_tiles {
                in_batches.add(*tile, hashes);
            }
            for (tile, data) in &integration.bundles {
                in_batches.add_bundle(*tile, data);
            }
            // Every entry of the batch is provable from what the batch holds.
            for (index, leaf) in leaves.iter().enumerate().take(end).skip(start) {
                let index = index as u64;
                let proof = integration.inclusion_proof(index).expect("provable");
                prop_assert_eq!(
                    verify_inclusion(leaf, index, end as u64, &proof, &integration.root),
                    Ok(())
                );
            }
            prop_assert!(integration.inclusion_proof(end as u64).is_err());
            roots.push((end as u64, integration.root));
        }
        prop_assert_eq!(edge.root(), one.root);
        prop_assert_eq!(&edge, &whole);
        prop_assert_eq!(&in_batches, &in_one);

        // Every batch's tree is consistent with the final one, proven from
        // the final tiles alone.
        let size = entries.len() as u64;
        let mut tiles = TileSet::new(height, size);
        for (&(level, index), hashes) in &in_batches.hash_tiles {
            let tile = Tile { height, kind: TileKind::Hashes { level }, index, width: hashes.len() as u32 };
            tiles.insert(&tile, hashes.clone());
        }
        for (old_size, old_root) in roots {
            let proof = prove_consistency(old_size, size, &tiles).expect("provable");
            prop_assert_eq!(verify_consistency(old_size, size, &old_root, &one.root, &proof), Ok(()));
        }
    }
}
