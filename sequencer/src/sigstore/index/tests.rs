//! The indexer against a naive model: random logs of hashedrekord entries,
//! release statements (some with a bad signature), and opaque entries,
//! published in random batches and indexed in random chunks while storage
//! faults interrupt it (as a crash would), then indexed again from the
//! marker. The model knows what each entry is from how it was made, not by
//! parsing it, and counts everything from scratch.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use stele_rekor::entry::canonical_entry;
use stele_rekor::index::Kind;
use stele_rekor::release::{KeyKind, MaintainerKey, Release};
use stele_rekor::request::{HashedRekordRequest, VerifierMaterial};
use stele_rekor::verify::KeyDetails;
use stele_tiles::checkpoint::sign_checkpoint;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::Ed25519Signer;
use stele_tiles::tile::TILE_HEIGHT;

use super::stats::{SUMMARY_KEY, Summary, TOP, TopNamespace, TopSigner};
use super::*;
use crate::storage::memory::{Fault, FaultError, FaultRule, MemoryStorage, Op};
use crate::storage::{CONTENT_TYPE_TEXT, Key};

/// An entry, and what the indexes should make of it.
#[derive(Debug, Clone)]
struct Made {
    bytes: Vec<u8>,
    kind: Kind,
    /// The index objects that should list it.
    paths: Vec<String>,
    signer: Option<String>,
    namespace: Option<String>,
}

/// Makes entries: signer keys and namespaces drawn with a skew, from pools
/// larger than the top lists, so that keys enter and leave them.
struct Maker {
    rng: fastrand::Rng,
    maintainers: Vec<MaintainerKey>,
}

const HASHEDREKORD_KEYS: usize = 260;
const NAMESPACES: usize = 220;

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Maker {
    fn new(seed: u64) -> Maker {
        let mut maintainers: Vec<MaintainerKey> = (0..6)
            .map(|_| MaintainerKey::generate(KeyKind::Ed25519).expect("key"))
            .collect();
        maintainers.push(MaintainerKey::generate(KeyKind::EcdsaP256).expect("key"));
        Maker {
            rng: fastrand::Rng::with_seed(seed),
            maintainers,
        }
    }

    /// A number below `pool`, small ones much more often.
    fn skewed(&mut self, pool: usize) -> usize {
        let bound = self.rng.usize(1..=pool);
        self.rng.usize(0..bound)
    }

    fn make(&mut self, index: usize) -> Made {
        match self.rng.u8(0..20) {
            0..=8 => self.hashedrekord(),
            9..=15 => self.release(true),
            16..=17 => self.release(false),
            18 => Made {
                // Claims to be a hashedrekord but is not a well-formed one.
                bytes: format!(r#"{{"kind":"hashedrekord","n":{index}}}"#).into_bytes(),
                kind: Kind::Other,
                paths: Vec::new(),
                signer: None,
                namespace: None,
            },
            _ => Made {
                bytes: format!("opaque entry {index}").into_bytes(),
                kind: Kind::Other,
                paths: Vec::new(),
                signer: None,
                namespace: None,
            },
        }
    }

    fn hashedrekord(&mut self) -> Made {
        // The log does not check signatures when reading entries back, so
        // the key bytes need not be a real key: the key ID is their hash.
        let raw_key = format!("public key {}", self.skewed(HASHEDREKORD_KEYS)).into_bytes();
        let digest = Sha256::digest(format!("artifact {}", self.rng.u8(0..30))).to_vec();
        let request = HashedRekordRequest {
            digest: digest.clone(),
            signature: vec![0x30, self.rng.u8(..)],
            verifier: VerifierMaterial::PublicKey(raw_key.clone()),
            key_details: KeyDetails::EcdsaP256Sha256,
        };
        let signer = hex_sha256(&raw_key);
        Made {
            bytes: canonical_entry(&request).expect("entry"),
            kind: Kind::Hashedrekord,
            paths: vec![
                format!("index/sha256/{}", hex::encode(&digest)),
                format!("index/key/{signer}"),
            ],
            signer: Some(signer),
            namespace: None,
        }
    }

    fn release(&mut self, valid: bool) -> Made {
        let namespace = format!(
            "ns{}/project-{}",
            self.rng.u8(0..3),
            self.skewed(NAMESPACES)
        );
        let signer = self.rng.usize(0..self.maintainers.len());
        let version = format!("1.{}", self.rng.u16(..));
        let mut release = Release::sign(
            &namespace,
            &version,
            "file.tar.gz",
            [self.rng.u8(..); 32],
            &self.maintainers[signer],
        )
        .expect("sign");
        if !valid {
            // Another maintainer's key under this one's signature: it
            // parses, and does not verify.
            let other = (signer + 1) % self.maintainers.len();
            release.key = self.maintainers[other].public_key_der();
            return Made {
                bytes: release.render(),
                kind: Kind::Other,
                paths: Vec::new(),
                signer: None,
                namespace: None,
            };
        }
        let signer = hex_sha256(&self.maintainers[signer].public_key_der());
        Made {
            bytes: release.render(),
            kind: Kind::Release,
            paths: vec![
                format!("index/key/{signer}"),
                format!("index/namespace/{}", namespace.replace('/', "~")),
            ],
            signer: Some(signer),
            namespace: Some(namespace),
        }
    }
}

/// Every index object of the first `size` entries, rendered.
fn model_objects(made: &[Made], size: u64) -> BTreeMap<String, Vec<u8>> {
    let mut objects: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (index, entry) in made.iter().take(size as usize).enumerate() {
        for path in &entry.paths {
            objects.entry(path.clone()).or_default().push(index as u64);
        }
    }
    objects
        .into_iter()
        .map(|(path, indices)| {
            let text: String = indices.iter().map(|index| format!("{index}\n")).collect();
            (path, text.into_bytes())
        })
        .collect()
}

/// The summary of the first `size` entries, counted from scratch.
fn model_summary(made: &[Made], size: u64) -> Summary {
    let mut summary = Summary {
        tree_size: size,
        ..Summary::default()
    };
    let mut signers: BTreeMap<String, u64> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, u64> = BTreeMap::new();
    for entry in made.iter().take(size as usize) {
        match entry.kind {
            Kind::Hashedrekord => summary.kinds.hashedrekord += 1,
            Kind::Release => summary.kinds.release += 1,
            Kind::Other => summary.kinds.other += 1,
        }
        if let Some(signer) = &entry.signer {
            *signers.entry(signer.clone()).or_default() += 1;
        }
        if let Some(namespace) = &entry.namespace {
            *namespaces.entry(namespace.clone()).or_default() += 1;
        }
    }
    let top = |counts: BTreeMap<String, u64>| {
        let mut all: Vec<(String, u64)> = counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(TOP);
        all
    };
    summary.top_signers = top(signers)
        .into_iter()
        .map(|(key_id, entries)| TopSigner { key_id, entries })
        .collect();
    summary.top_namespaces = top(namespaces)
        .into_iter()
        .map(|(namespace, entries)| TopNamespace { namespace, entries })
        .collect();
    summary
}

/// Publishes the next entries as the sequencer would: tiles and bundles,
/// then the checkpoint.
async fn publish(storage: &MemoryStorage, edge: &mut RightEdge, entries: &[Made]) {
    let bytes: Vec<&[u8]> = entries.iter().map(|made| made.bytes.as_slice()).collect();
    let integration = edge.integrate(&bytes).expect("integrate");
    for (tile, data) in integration.objects() {
        storage
            .put(
                &Key::new(tile.path()).expect("key"),
                Bytes::from(data),
                PutOptions::private(Condition::None),
            )
            .await
            .expect("put");
    }
    let signer = Ed25519Signer::from_seed("example.com/log", &[7; 32]).expect("signer");
    let note =
        sign_checkpoint(&integration.checkpoint("example.com/log"), &signer).expect("checkpoint");
    storage
        .put(
            &Key::new(crate::published::CHECKPOINT_KEY).expect("key"),
            Bytes::from(note.to_bytes()),
            PutOptions::new(Condition::None, CONTENT_TYPE_TEXT, "no-store"),
        )
        .await
        .expect("put");
}

/// The public index objects in storage.
fn stored_objects(storage: &MemoryStorage) -> BTreeMap<String, Vec<u8>> {
    storage
        .snapshot()
        .into_iter()
        .filter(|(key, _)| key.as_str().starts_with(INDEX_PREFIX))
        .map(|(key, bytes)| (key.as_str().to_owned(), bytes.to_vec()))
        .collect()
}

/// Every summary ever written names a tree size and is exact at it; the
/// statistics objects carry their content type and caching.
fn check_every_summary(storage: &MemoryStorage, made: &[Made]) -> usize {
    let mut seen = 0;
    for record in storage.journal() {
        if record.key.as_str() == SUMMARY_KEY {
            let summary = Summary::parse(&record.bytes).expect("a summary parses");
            assert_eq!(
                summary,
                model_summary(made, summary.tree_size),
                "the summary at {}",
                summary.tree_size
            );
            assert_eq!(record.content_type, "application/json");
            assert_eq!(record.cache_control, "public, max-age=60");
            seen += 1;
        }
    }
    seen
}

/// Random logs, indexed while faults interrupt the indexer at random
/// points (the objects of a chunk half written; the summary written and
/// the marker not, or neither), then indexed again from the marker in
/// chunks of another size: the objects are exactly the model's, every
/// summary ever written is exact at its tree size (no kind counted twice,
/// top lists exact though the state is only the summary), and a rebuild
/// agrees.
#[tokio::test]
async fn indexes_and_statistics_match_a_naive_count_across_crashes() {
    for seed in 0..5u64 {
        let mut maker = Maker::new(seed);
        let size = 1200 + 150 * seed as usize;
        let made: Vec<Made> = (0..size).map(|index| maker.make(index)).collect();
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        let storage = MemoryStorage::new();
        let mut edge = RightEdge::empty(TILE_HEIGHT);
        let mut published = 0usize;
        let mut interrupted = 0;
        while published < size {
            let batch = rng.usize(1..=300).min(size - published);
            publish(&storage, &mut edge, &made[published..published + batch]).await;
            published += batch;
            let fault = match rng.u8(0..4) {
                0 => None,
                1 => Some(Fault::Fail(FaultError::Transient)),
                _ => Some(Fault::FailAfterWrite(FaultError::Transient)),
            };
            if let Some(fault) = fault {
                // Half way through a chunk's objects, at its summary, or
                // at the marker after it.
                let (prefix, skip) = match rng.u8(0..3) {
                    0 => (INDEX_PREFIX, rng.u64(0..60)),
                    1 => (SUMMARY_KEY, rng.u64(0..3)),
                    _ => (MARKER_KEY, rng.u64(0..3)),
                };
                storage.inject(
                    FaultRule::new(fault)
                        .op(Op::Put)
                        .key_prefix(prefix)
                        .skip(skip)
                        .times(1),
                );
            }
            let marker = read_marker(&storage).await.expect("marker");
            let chunk = rng.u64(1..=400);
            if index_range_by(&storage, marker, published as u64, chunk)
                .await
                .is_err()
            {
                interrupted += 1;
            }
            storage.clear_faults();
            let marker = read_marker(&storage).await.expect("marker");
            assert!(marker <= published as u64);
            let objects = stored_objects(&storage);
            let truth = model_objects(&made, published as u64);
            for (path, bytes) in &objects {
                let listed = stele_rekor::index::parse(bytes).expect("an index object parses");
                let wanted = stele_rekor::index::parse(&truth[path]).expect("model");
                // Never an entry that is not the object's; every entry below
                // the marker is listed.
                assert!(listed.iter().all(|index| wanted.contains(index)), "{path}");
                assert!(
                    wanted
                        .iter()
                        .filter(|&&index| index < marker)
                        .all(|index| listed.contains(index)),
                    "{path} misses entries below the marker {marker}"
                );
            }
        }
        assert!(interrupted > 0, "seed {seed}: no fault hit the indexer");
        let marker = read_marker(&storage).await.expect("marker");
        index_range_by(&storage, marker, size as u64, rng.u64(1..=500))
            .await
            .expect("index");
        assert_eq!(read_marker(&storage).await.expect("marker"), size as u64);
        let expected = model_objects(&made, size as u64);
        assert_eq!(stored_objects(&storage), expected, "seed {seed}");
        let summary = read_summary(&storage)
            .await
            .expect("summary")
            .expect("a summary");
        assert_eq!(summary, model_summary(&made, size as u64), "seed {seed}");
        assert_eq!(
            summary.top_signers.len(),
            TOP,
            "the pool is larger than the list"
        );
        assert_eq!(summary.top_namespaces.len(), TOP);
        assert!(check_every_summary(&storage, &made) > 3);

        // A rebuild writes the same objects and summary.
        let report = rebuild(&storage).await.expect("rebuild");
        assert_eq!(report.tree_size, size as u64);
        assert_eq!(report.objects, expected.len());
        assert_eq!(report.removed, 0);
        assert_eq!(stored_objects(&storage), expected);
        assert_eq!(
            read_summary(&storage).await.expect("summary"),
            Some(model_summary(&made, size as u64))
        );
    }
}

/// A rebuild removes stale objects of each family and rewrites damaged
/// ones; a summary that is missing (a log indexed before statistics
/// existed) is recounted from the start by the next pass, and a damaged one
/// stops the indexer with an error naming it until a rebuild.
#[tokio::test]
async fn rebuild_and_a_missing_or_damaged_summary() {
    let mut maker = Maker::new(99);
    let made: Vec<Made> = (0..700).map(|index| maker.make(index)).collect();
    let storage = MemoryStorage::new();
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    publish(&storage, &mut edge, &made[..400]).await;
    index_range(&storage, 0, 400).await.expect("index");
    let expected = model_objects(&made, 400);
    let namespace = expected
        .keys()
        .find(|path| path.starts_with(NAMESPACE_PREFIX))
        .expect("a namespace object")
        .clone();
    let signer = expected
        .keys()
        .find(|path| path.starts_with(KEY_PREFIX))
        .expect("a key object")
        .clone();
    let put = |path: String, text: &'static str| {
        let storage = storage.clone();
        async move {
            storage
                .put(
                    &Key::new(path).expect("key"),
                    Bytes::from_static(text.as_bytes()),
                    PutOptions::new(Condition::None, CONTENT_TYPE_TEXT, CACHE_INDEX),
                )
                .await
                .expect("put");
        }
    };
    put(format!("{KEY_PREFIX}{}", "e".repeat(64)), "1\n").await;
    put(format!("{NAMESPACE_PREFIX}stale~name"), "2\n").await;
    put(format!("index/sha256/{}", "e".repeat(64)), "3\n").await;
    put(namespace.clone(), "not an index\n").await;
    put(signer.clone(), "399\n").await;
    let report = rebuild(&storage).await.expect("rebuild");
    assert_eq!(report.removed, 3);
    assert_eq!(stored_objects(&storage), expected);
    assert_eq!(
        report.keys,
        expected
            .keys()
            .filter(|p| p.starts_with(KEY_PREFIX))
            .count()
    );
    assert_eq!(
        report.namespaces,
        expected
            .keys()
            .filter(|p| p.starts_with(NAMESPACE_PREFIX))
            .count()
    );

    // No summary, the marker at 400: the next pass reads from 0 again.
    storage
        .delete(&Key::new(SUMMARY_KEY).expect("key"))
        .await
        .expect("delete");
    publish(&storage, &mut edge, &made[400..]).await;
    index_range(&storage, 400, 700).await.expect("index");
    assert_eq!(
        read_summary(&storage).await.expect("summary"),
        Some(model_summary(&made, 700))
    );
    assert_eq!(stored_objects(&storage), model_objects(&made, 700));

    // A damaged summary is an error, and changes nothing.
    put(SUMMARY_KEY.to_owned(), "{\"tree_size\": 3}").await;
    let before = storage.snapshot();
    let err = index_range(&storage, 700, 700)
        .await
        .expect_err("a damaged summary");
    assert!(err.to_string().contains(SUMMARY_KEY), "{err}");
    assert_eq!(storage.snapshot(), before);
    rebuild(&storage).await.expect("rebuild");
    assert_eq!(
        read_summary(&storage).await.expect("summary"),
        Some(model_summary(&made, 700))
    );
}

/// The summary's bytes are the documented JSON, and its reader refuses
/// what the writer cannot have written.
#[test]
fn summary_format_and_strictness() {
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let summary = Summary {
        tree_size: 6,
        kinds: stats::Kinds {
            hashedrekord: 3,
            release: 2,
            other: 1,
        },
        top_signers: vec![
            TopSigner {
                key_id: b.clone(),
                entries: 3,
            },
            TopSigner {
                key_id: a.clone(),
                entries: 2,
            },
        ],
        top_namespaces: vec![TopNamespace {
            namespace: "pypi/requests".to_owned(),
            entries: 2,
        }],
    };
    let text = format!(
        "{{\"tree_size\":6,\"kinds\":{{\"hashedrekord\":3,\"release\":2,\"other\":1}},\
         \"top_signers\":[{{\"key_id\":\"{b}\",\"entries\":3}},{{\"key_id\":\"{a}\",\"entries\":2}}],\
         \"top_namespaces\":[{{\"namespace\":\"pypi/requests\",\"entries\":2}}]}}\n"
    );
    assert_eq!(String::from_utf8(summary.render()).expect("UTF-8"), text);
    assert_eq!(Summary::parse(text.as_bytes()), Ok(summary.clone()));
    // Other JSON layouts of the same values are fine.
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let pretty = serde_json::to_vec_pretty(&value).expect("JSON");
    assert_eq!(Summary::parse(&pretty), Ok(summary));
    for (broken, why) in [
        (text.replace("\"other\":1", "\"other\":2"), "kinds add up"),
        (text.replace("\"entries\":3", "\"entries\":1"), "rank order"),
        (
            text.replace("\"entries\":3", "\"entries\":7"),
            "entries in a tree",
        ),
        (
            text.replace("\"entries\":2}]}", "\"entries\":0}]}"),
            "entries in a tree",
        ),
        (text.replace(&b, &"B".repeat(64)), "malformed"),
        (text.replace("pypi/requests", "pypi//requests"), "malformed"),
        (
            text.replace("\"tree_size\":6", "\"tree_size\":6,\"x\":1"),
            "unknown field",
        ),
        (
            text.replace(",\"top_namespaces\":[", ",\"top_nam\":["),
            "unknown field",
        ),
        ("[]".to_owned(), "expected struct"),
    ] {
        let err = Summary::parse(broken.as_bytes()).expect_err(&broken);
        assert!(err.contains(why), "{broken}: {err}");
    }
    // Ties by name, ascending.
    let tied = text.replace("\"entries\":3", "\"entries\":2");
    assert!(
        Summary::parse(tied.as_bytes())
            .expect_err("b before a")
            .contains("rank order")
    );
    let mut list: Vec<TopSigner> = (0..=TOP)
        .map(|i| TopSigner {
            key_id: format!("{i:064x}"),
            entries: 1,
        })
        .collect();
    list.sort_by(|x, y| x.key_id.cmp(&y.key_id));
    let long = Summary {
        tree_size: 200,
        kinds: stats::Kinds {
            other: 200,
            ..stats::Kinds::default()
        },
        top_signers: list,
        top_namespaces: Vec::new(),
    };
    assert!(
        Summary::parse(&long.render())
            .expect_err("too long")
            .contains("over 100")
    );
}

/// Which entries the indexes list: only release statements that verify,
/// and the one set of objects for an entry indexed twice.
#[test]
fn only_verified_releases_are_indexed() {
    let mut maker = Maker::new(5);
    let good = maker.release(true);
    let bad = maker.release(false);
    let (objects, kinds) =
        stele_rekor::index::collect_all(10, &[good.bytes.clone(), bad.bytes.clone()]);
    assert_eq!(kinds, vec![Kind::Release, Kind::Other]);
    let expected: BTreeMap<String, BTreeSet<u64>> = good
        .paths
        .iter()
        .map(|path| (path.clone(), BTreeSet::from([10])))
        .collect();
    assert_eq!(objects, expected);
}

/// Chunks end at the range's end or on a tile boundary, and always move on.
#[test]
fn chunks_end_on_tile_boundaries() {
    for (start, to, chunk, end) in [
        (0, 10, 4096, 10),
        (100, 5000, 4096, 4096),
        (100, 4196, 4096, 4196),
        (100, 4197, 4096, 4096),
        (255, 1000, 1, 256),
        (256, 1000, 1, 512),
        (300, 400, 1, 400),
        (0, 1000, 0, 256),
    ] {
        assert_eq!(chunk_end(start, to, chunk), end, "{start} {to} {chunk}");
    }
}
