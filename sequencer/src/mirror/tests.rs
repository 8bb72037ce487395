//! The mirror against logs written here with `stele_tiles`'s `RightEdge`
//! (a writer independent of the mirror's copy loop) into memory stores,
//! read through [`StoreSource`]: every pair of sizes around the tile
//! boundaries, then each kind of divergence, then a store that fails part
//! way through.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use stele_tiles::checkpoint::{open_checkpoint, sign_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, WitnessSigner};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{
    Ed25519Signer, MlDsa44Signer, Note, NoteVerifier as _, open, verifier_from_vkey,
};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, level_size, tile_width};

use super::*;
use crate::storage::memory::{Fault, FaultError, FaultRule, MemoryStorage, Op};
use crate::storage::{Condition, Key, PutOptions, Storage};

const ORIGIN: &str = "mirror.test/log";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, &[seed; 32]).expect("log key")
}

fn mirror_key() -> CosignatureSigner {
    CosignatureSigner::from_seed("mirror.test/m1", &[9; 32]).expect("mirror key")
}

fn entry(salt: &str, index: u64) -> Vec<u8> {
    format!("{salt} entry {index}").into_bytes()
}

/// A log written with `RightEdge`: every object of every batch (so old
/// partial tiles stay, as on a real log), and its signed checkpoint.
struct TestLog {
    store: MemoryStorage,
    edge: RightEdge,
    salt: String,
    key: Ed25519Signer,
    /// An ML-DSA-44 key signing beside `key`, if any.
    companion: Option<MlDsa44Signer>,
}

impl TestLog {
    fn new(salt: &str, seed: u8) -> TestLog {
        TestLog {
            store: MemoryStorage::new(),
            edge: RightEdge::empty(TILE_HEIGHT),
            salt: salt.to_owned(),
            key: signer(seed),
            companion: None,
        }
    }

    async fn grow(&mut self, size: u64) {
        while self.edge.size() < size {
            let start = self.edge.size();
            let end = size.min(start + 3000);
            let entries: Vec<Vec<u8>> = (start..end).map(|i| entry(&self.salt, i)).collect();
            let integration = self.edge.integrate(&entries).expect("integrate");
            for (tile, bytes) in integration.objects() {
                self.put(&tile.path(), bytes).await;
            }
        }
        let checkpoint = stele_tiles::checkpoint::Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: self.edge.root(),
            extensions: vec![],
        };
        let mut note = sign_checkpoint(&checkpoint, &self.key).expect("sign");
        if let Some(companion) = &self.companion {
            note.sign_with(companion).expect("ML-DSA-44 signature");
        }
        self.put("checkpoint", note.to_bytes()).await;
    }

    async fn put(&self, path: &str, bytes: Vec<u8>) {
        self.store
            .put(
                &Key::new(path).expect("key"),
                Bytes::from(bytes),
                PutOptions::new(Condition::None, "x", "x"),
            )
            .await
            .expect("put");
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        self.store
            .get(&Key::new(path).expect("key"))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{path} missing"))
            .bytes
            .to_vec()
    }
}

fn mirror_of(log: &MemoryStorage, store: &MemoryStorage, state: &std::path::Path) -> Mirror {
    Mirror {
        source: Arc::new(StoreSource::new(Arc::new(log.clone()), "memory:log")),
        layout: Layout::Tiles,
        origin: ORIGIN.to_owned(),
        log_key: Box::new(signer(1).verifier()),
        policy: None,
        store: Arc::new(store.clone()),
        key: MirrorKey::from(WitnessSigner::from(mirror_key())),
        state: state.to_path_buf(),
        in_flight: 4,
    }
}

/// Every object of the tree of `size` leaves, by path: the full tiles
/// and bundles, and the partial ones at the right edge.
fn tree_paths(size: u64) -> Vec<String> {
    let mut paths = Vec::new();
    let mut level = 0u8;
    while level_size(TILE_HEIGHT, level, size) > 0 {
        let count = level_size(TILE_HEIGHT, level, size).div_ceil(u64::from(TILE_WIDTH));
        for index in 0..count {
            let width = tile_width(TILE_HEIGHT, level, index, size);
            paths.push(Tile::hashes(level, index, width).path());
            if level == 0 {
                paths.push(Tile::entries(index, width).path());
            }
        }
        level += 1;
    }
    paths
}

fn snapshot(store: &MemoryStorage) -> BTreeMap<String, Bytes> {
    store
        .snapshot()
        .into_iter()
        .map(|(key, bytes)| (key.as_str().to_owned(), bytes))
        .collect()
}

/// The mirror holds every object of the log's tree at `size`, byte for
/// byte the log's, and a checkpoint that is the log's, cosigned.
async fn assert_mirrors(log: &TestLog, store: &MemoryStorage, size: u64) {
    let held = snapshot(store);
    for path in tree_paths(size) {
        let mirrored = held
            .get(&path)
            .unwrap_or_else(|| panic!("the mirror lacks {path} at size {size}"));
        assert_eq!(mirrored.to_vec(), log.get(&path).await, "{path}");
    }
    for path in held.keys() {
        if path != "checkpoint" {
            assert_eq!(held[path].to_vec(), log.get(path).await, "{path}");
        }
    }
    let checkpoint = held.get("checkpoint").expect("a mirror checkpoint");
    let log_note = Note::parse(&log.get("checkpoint").await).expect("log note");
    let (opened, note) =
        open_checkpoint(checkpoint, ORIGIN, &signer(1).verifier()).expect("the log's signature");
    assert_eq!(opened.size, size);
    assert_eq!(note.text, log_note.text);
    let cosigner = mirror_key().verifier();
    open(checkpoint, &[&cosigner]).expect("the mirror's cosignature");
    assert!(
        note.signatures
            .iter()
            .any(|s| s.is_from(cosigner.name(), cosigner.key_id()))
    );
}

#[test]
fn origin_hash_known_answer() {
    assert_eq!(
        origin_hash("example.com/log"),
        "4d3203c8f35cdf600e475f55fede6081a703d3d322f208865fca2ec4f0e030f8"
    );
    assert_eq!(
        origin_hash(SUMDB_ORIGIN),
        "46613be2987d5d316f5ad065e4aa2eee26ccdd3de17a3735cd0da18156a22bdd"
    );
}

#[test]
fn copies_between_every_interesting_pair_of_sizes() {
    let sizes = [
        0u64, 1, 2, 255, 256, 257, 511, 512, 1000, 65535, 65536, 65537, 66000,
    ];
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 1);
        let store = MemoryStorage::new();
        let mirror = mirror_of(&log.store, &store, state.path());
        let mut old = None;
        for &size in &sizes {
            log.grow(size).await;
            let outcome = mirror.round().await.expect("round");
            match (old, outcome) {
                (
                    None,
                    Outcome::Copied {
                        old_size: 0,
                        new_size,
                        objects,
                        ..
                    },
                ) => {
                    assert_eq!(new_size, size);
                    assert_eq!(objects, tree_paths(size).len() as u64);
                }
                (
                    Some(old),
                    Outcome::Copied {
                        old_size, new_size, ..
                    },
                ) => {
                    assert_eq!((old_size, new_size), (old, size));
                }
                (old, outcome) => panic!("from {old:?} to {size}: {outcome:?}"),
            }
            assert_mirrors(&log, &store, size).await;
            assert_eq!(
                mirror.round().await.expect("again"),
                Outcome::UpToDate { size }
            );
            assert!(!state.path().join("pending-checkpoint").exists());
            old = Some(size);
        }
        // Straight from 0 to a size of three levels, and from inside a tile.
        for (from, to) in [(0u64, 66000u64), (300, 65800), (65536, 66000)] {
            let store = MemoryStorage::new();
            let mut log = TestLog::new("b", 1);
            let mirror = mirror_of(&log.store, &store, state.path());
            log.grow(from).await;
            mirror.round().await.expect("first round");
            log.grow(to).await;
            mirror.round().await.expect("second round");
            assert_mirrors(&log, &store, to).await;
        }
    });
}

#[test]
fn a_log_with_its_partial_tiles_deleted_is_read_from_the_full_tiles() {
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 1);
        log.grow(700).await;
        let store = MemoryStorage::new();
        let mirror = mirror_of(&log.store, &store, state.path());
        mirror.round().await.expect("to 700");
        log.grow(1030).await;
        // The log's checkpoint stays at 1030, but its partial tiles of that
        // size are gone, as if a later batch had completed them.
        log.grow(1100).await;
        let checkpoint_1100 = log.get("checkpoint").await;
        let mut at_1030 = TestLog::new("a", 1);
        at_1030.grow(1030).await;
        log.put("checkpoint", at_1030.get("checkpoint").await).await;
        for path in ["tile/0/004.p/6", "tile/entries/004.p/6"] {
            log.store
                .delete(&Key::new(path).expect("key"))
                .await
                .expect("delete");
        }
        // 1030 = 4 full tiles + 6: the level-0 partial is read from a full
        // tile the log does not have yet, so the round waits for it.
        let err = mirror.round().await.expect_err("no tile/0/004 yet");
        assert!(matches!(err, MirrorError::Log(_)), "{err}");
        log.grow(1280).await;
        log.put("checkpoint", at_1030.get("checkpoint").await).await;
        for path in ["tile/0/004.p/6", "tile/entries/004.p/6"] {
            log.store
                .delete(&Key::new(path).expect("key"))
                .await
                .expect("delete");
        }
        let outcome = mirror.round().await.expect("from the full tiles");
        assert!(
            matches!(outcome, Outcome::Copied { new_size: 1030, .. }),
            "{outcome:?}"
        );
        assert_eq!(
            snapshot(&store)["tile/0/004.p/6"].to_vec(),
            at_1030.get("tile/0/004.p/6").await
        );
        drop(checkpoint_1100);
    });
}

/// Runs a round expected to diverge, and returns the evidence.
async fn diverges(mirror: &Mirror) -> Divergence {
    match mirror.round().await {
        Err(MirrorError::Divergence(divergence)) => *divergence,
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn a_fork_of_the_log_is_divergence_with_both_checkpoints() {
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 1);
        log.grow(1000).await;
        let store = MemoryStorage::new();
        let mirror = mirror_of(&log.store, &store, state.path());
        mirror.round().await.expect("to 1000");
        let before = snapshot(&store);

        // The same key signs a tree whose entry 5 differs.
        let mut fork = TestLog::new("a", 1);
        fork.grow(5).await;
        fork.salt = "forked".to_owned();
        fork.grow(6).await;
        fork.salt = "a".to_owned();
        fork.grow(1500).await;
        let mirror = mirror_of(&fork.store, &store, state.path());
        let divergence = diverges(&mirror).await;
        assert!(
            divergence.message.contains("not consistent"),
            "{}",
            divergence.message
        );
        assert_eq!(divergence.origin, ORIGIN);
        assert_eq!(
            divergence.log_checkpoint.as_deref().map(str::as_bytes),
            Some(fork.get("checkpoint").await.as_slice())
        );
        assert_eq!(
            divergence.mirror_checkpoint.as_deref().map(str::as_bytes),
            Some(before["checkpoint"].as_ref())
        );
        assert_eq!(snapshot(&store), before, "nothing was written");

        // A checkpoint of the same size with another root.
        let mut same = TestLog::new("other", 1);
        same.grow(1000).await;
        let mirror = mirror_of(&same.store, &store, state.path());
        let divergence = diverges(&mirror).await;
        assert!(
            divergence.message.contains("same size"),
            "{}",
            divergence.message
        );

        // A smaller tree that is not the mirror's prefix.
        let mut smaller = TestLog::new("other", 1);
        smaller.grow(600).await;
        let mirror = mirror_of(&smaller.store, &store, state.path());
        let divergence = diverges(&mirror).await;
        assert!(
            divergence.message.contains("not consistent"),
            "{}",
            divergence.message
        );
        // And one that is: the log lags behind.
        let mut lagging = TestLog::new("a", 1);
        lagging.grow(600).await;
        let mirror = mirror_of(&lagging.store, &store, state.path());
        assert_eq!(
            mirror.round().await.expect("behind"),
            Outcome::LogBehind {
                log_size: 600,
                mirror_size: 1000
            }
        );
        assert_eq!(snapshot(&store), before);
    });
}

#[test]
fn tampered_objects_of_the_log_are_divergence_before_they_are_copied() {
    // (path to damage, byte to flip, what the message says)
    let cases = [
        // A length prefix: the bundle does not split into its entries.
        ("tile/entries/002", 40usize, "does not hold the 256 entries"),
        // Entry 515, which the mirror already holds from size 520.
        (
            "tile/entries/002",
            45,
            "entry 515 in the log's tile/entries/002 is not the entry",
        ),
        // Entry 771, new: its leaf is not in the authenticated tile.
        (
            "tile/entries/003",
            45,
            "entry 771 in the log's tile/entries/003 hashes to",
        ),
        ("tile/0/003", 7, "but the tile above it holds"),
        ("tile/1/000.p/4", 33, "partial tiles at tree size 1028"),
        (
            "tile/entries/004.p/4",
            3,
            "entry 1024 in the log's tile/entries/004.p/4",
        ),
        ("checkpoint", 0, "does not verify"),
    ];
    runtime().block_on(async {
        for (path, offset, says) in cases {
            let state = tempfile::tempdir().expect("state");
            let mut log = TestLog::new("a", 1);
            log.grow(520).await;
            let store = MemoryStorage::new();
            mirror_of(&log.store, &store, state.path())
                .round()
                .await
                .expect("to 520");
            log.grow(1028).await;
            let mut bytes = log.get(path).await;
            if path == "checkpoint" {
                // The last byte of the signature's base64, before "\n".
                let at = bytes.len() - 3;
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            } else {
                bytes[offset] ^= 1;
            }
            log.put(path, bytes.clone()).await;
            let before = snapshot(&store);
            let mirror = mirror_of(&log.store, &store, state.path());
            let divergence = diverges(&mirror).await;
            assert!(
                divergence.message.contains(says)
                    && (divergence.object.as_deref() == Some(path)
                        || divergence.message.contains(path)),
                "{path}: {}",
                divergence.message
            );
            assert_eq!(
                snapshot(&store).get("checkpoint"),
                before.get("checkpoint"),
                "{path}: the mirror checkpoint did not move"
            );
            // Whatever was written is the clean log's.
            let mut clean = TestLog::new("a", 1);
            clean.grow(520).await;
            clean.grow(1028).await;
            for (key, value) in snapshot(&store) {
                if key != "checkpoint" {
                    assert_eq!(value.to_vec(), clean.get(&key).await, "{path}: {key}");
                }
            }
        }
    });
}

#[test]
fn a_stored_object_that_differs_is_divergence_and_run_records_it() {
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 1);
        log.grow(300).await;
        let store = MemoryStorage::new();
        let mirror = mirror_of(&log.store, &store, state.path());
        mirror.round().await.expect("to 300");
        log.grow(600).await;
        let path = "tile/entries/001";
        store
            .put(
                &Key::new(path).expect("key"),
                Bytes::from_static(b"\x00\x01x"),
                PutOptions::new(Condition::None, "x", "x"),
            )
            .await
            .expect("plant");
        let err = mirror.run(None).await.expect_err("diverges");
        let MirrorError::Divergence(divergence) = err else {
            panic!("{err}");
        };
        assert_eq!(divergence.object.as_deref(), Some(path));
        assert_eq!(
            divergence.found_sha256.as_deref(),
            Some(sha256_hex(b"\x00\x01x").as_str())
        );
        assert_eq!(
            divergence.expected_sha256.as_deref(),
            Some(sha256_hex(&log.get(path).await).as_str())
        );
        let recorded = recorded(state.path()).expect("a file").expect("evidence");
        assert_eq!(recorded, *divergence);
        assert!(recorded.pending_checkpoint.is_none());
        // It does not start again while the evidence is there.
        let again = mirror.run(None).await.expect_err("refused");
        assert!(matches!(again, MirrorError::Divergence(_)), "{again}");
        assert_eq!(
            store
                .get(&Key::new("checkpoint").expect("key"))
                .await
                .expect("get")
                .map(
                    |object| open_checkpoint(&object.bytes, ORIGIN, &signer(1).verifier())
                        .expect("v")
                        .0
                        .size
                ),
            Some(300)
        );
    });
}

#[test]
fn a_round_cut_short_by_the_store_is_finished_by_the_next() {
    runtime().block_on(async {
        for cut in [0u64, 1, 5, 11] {
            let state = tempfile::tempdir().expect("state");
            let mut log = TestLog::new("a", 1);
            log.grow(400).await;
            let store = MemoryStorage::new();
            let mirror = mirror_of(&log.store, &store, state.path());
            mirror.round().await.expect("to 400");
            log.grow(3000).await;
            store.inject(
                FaultRule::new(Fault::Fail(FaultError::Fatal))
                    .op(Op::Put)
                    .skip(cut)
                    .times(1),
            );
            let err = mirror.round().await.expect_err("cut short");
            assert!(matches!(err, MirrorError::Store(_)), "{err}");
            assert!(state.path().join("pending-checkpoint").exists());
            // The next round writes the same objects again, then the
            // checkpoint.
            let outcome = mirror.round().await.expect("finished");
            assert!(matches!(
                outcome,
                Outcome::Copied {
                    old_size: 400,
                    new_size: 3000,
                    ..
                }
            ));
            assert_mirrors(&log, &store, 3000).await;
            assert!(
                store
                    .keys_with_several_contents()
                    .iter()
                    .all(|key| key.as_str() == "checkpoint")
            );
        }
    });
}

#[test]
fn a_wrong_key_or_origin_is_a_usage_error_not_divergence() {
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 2);
        log.grow(10).await;
        let store = MemoryStorage::new();
        let err = mirror_of(&log.store, &store, state.path())
            .round()
            .await
            .expect_err("other key");
        assert!(matches!(err, MirrorError::Usage(_)), "{err}");
        assert!(
            err.to_string().contains("not signed by the given log key"),
            "{err}"
        );
        let mut mirror = mirror_of(&log.store, &store, state.path());
        mirror.log_key = Box::new(signer(2).verifier());
        mirror.origin = "another/origin".to_owned();
        let err = mirror.round().await.expect_err("other origin");
        assert!(err.to_string().contains("origin"), "{err}");
        assert!(snapshot(&store).is_empty());
    });
}

#[test]
fn ml_dsa_44_log_and_mirror_keys() {
    runtime().block_on(async {
        let state = tempfile::tempdir().expect("state");
        let mut log = TestLog::new("a", 1);
        let companion = MlDsa44Signer::from_seed(ORIGIN, &[5; 32])
            .expect("ML-DSA-44 log key")
            .with_clock(Arc::new(|| 1_700_000_000));
        let log_vkey = companion.verifier().to_text();
        log.companion = Some(companion);
        log.grow(300).await;
        let store = MemoryStorage::new();
        let mirror_signer = MlDsa44Signer::from_seed("mirror.test/pq", &[6; 32]).expect("key");
        let mirror = Mirror {
            // Only the log's ML-DSA-44 key is trusted.
            log_key: verifier_from_vkey(&log_vkey).expect("vkey"),
            key: MirrorKey::from(WitnessSigner::from(mirror_signer.clone())),
            ..mirror_of(&log.store, &store, state.path())
        };
        mirror.round().await.expect("to 300");
        log.grow(700).await;
        mirror.round().await.expect("to 700");
        let checkpoint = snapshot(&store)["checkpoint"].clone();
        let note = Note::parse(&checkpoint).expect("note");
        assert_eq!(
            note.signatures.len(),
            3,
            "Ed25519, ML-DSA-44 and the mirror's"
        );
        let ed25519 = signer(1).verifier();
        let log_mldsa = verifier_from_vkey(&log_vkey).expect("vkey");
        let mirror_mldsa = mirror_signer.verifier();
        for verifier in [
            &ed25519 as &dyn stele_tiles::note::NoteVerifier,
            log_mldsa.as_ref(),
            &mirror_mldsa,
        ] {
            open(&checkpoint, &[verifier])
                .unwrap_or_else(|err| panic!("{}: {err}", verifier.name()));
        }
        let (opened, _) = open_checkpoint(&checkpoint, ORIGIN, log_mldsa.as_ref()).expect("open");
        assert_eq!(opened.size, 700);
    });
}
