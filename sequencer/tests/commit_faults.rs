//! The commit protocol under every single fault, and recovery under every
//! second one. The memory backend fails each storage operation of a run of
//! batches in turn, as an error the sequencer survives and as a crash (the
//! process gone, all in-memory state dropped). After a crash, the restart's
//! own recovery (finishing publication from the staging object, cleaning
//! up, rebuilding the right edge and the deduplication index) has each of
//! its storage operations failed in turn too, as an error, a crash before
//! and a crash after, before a clean restart. Then the whole log is checked
//! from the store:
//!
//! - it is complete: every tile and bundle matches a log recomputed from the
//!   published entries, and the tiles hash to the checkpoint's root;
//! - it is consistent with every checkpoint ever published and with the
//!   checkpoint of every receipt given;
//! - every acknowledged entry is in it at its acknowledged index, and its
//!   receipt verifies offline (with the witness's cosignature where the log
//!   has a witness);
//! - no public path was ever written with two contents (the digest index
//!   objects, which grow by design, only ever grow, and name no entry
//!   beyond the checkpoint published before them);
//! - a partial tile is only ever deleted once its full tile is there.
//!
//! - no entry is in the log twice, and the public checkpoint never went
//!   back.
//!
//! The faulted process runs its batches through the commit pipeline two
//! deep: its public writes (tiles, bundles, checkpoint) are slowed a little,
//! so that while batch N is being published, batch N+1 is staged and
//! committed. The faults thus land on N+1's staging and commit while N is
//! unpublished, and on N's publication while N+1 is already committed (a
//! crash there leaves recovery only N+1's staging object, which must carry
//! N's tiles); each walk counts both kinds of fault and must meet some.
//!
//! The walk runs twice: over a plain log (opaque entries, partial tiles
//! kept, no witness), and over a log with every optional step on: partial
//! tiles deleted, a witness whose cosignature each checkpoint needs, and
//! Sigstore hashedrekord entries whose digest index is kept by the indexer.
//! The faulted batches cross a tile boundary, so that the full tile, the
//! deletion of its partials, the witness and the index all meet faults.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use stele_rekor::entry::canonical_entry;
use stele_rekor::request::{HashedRekordRequest, VerifierMaterial};
use stele_rekor::verify::KeyDetails;
use stele_sequencer::sigstore::index::{self, Indexer, MARKER_KEY};
use stele_sequencer::staging::Staged;
use stele_sequencer::storage::Key;
use stele_sequencer::storage::memory::{Fault, FaultError, MemoryStorage, Op, OpInfo};
use stele_sequencer::witness::Witnesses;
use stele_sequencer::{Accepted, Log, LogConfig, SubmitError};
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, CosignatureVerifier, WitnessPolicy};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use stele_tiles::proof::{TileSet, prove_consistency, verify_consistency, verify_inclusion};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, new_tiles};
use stele_tiles::{Hash, bundle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const ORIGIN: &str = "test.example/faults";
/// Entries logged before the faults start: the faulted batches then cross
/// the first tile boundary (256).
const HISTORY: usize = 250;
/// New entries submitted while the fault is armed.
const FAULTED: usize = 12;

fn keys() -> (Arc<Ed25519Signer>, Arc<Ed25519Verifier>) {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[7u8; 32]).expect("key");
    let verifier = signer.verifier();
    (Arc::new(signer), Arc::new(verifier))
}

/// Which optional steps of publication the log runs.
#[derive(Clone, Copy, Debug)]
struct Setup {
    delete_partials: bool,
    witness: bool,
    sigstore: bool,
}

const PLAIN: Setup = Setup {
    delete_partials: false,
    witness: false,
    sigstore: false,
};

const FULL: Setup = Setup {
    delete_partials: true,
    witness: true,
    sigstore: true,
};

/// Entry `i`: opaque text, or in the Sigstore setup every other one a
/// canonical hashedrekord entry; nine artifacts share the digests, so index
/// objects hold several indices and grow across batches.
fn entry(setup: Setup, i: usize) -> Vec<u8> {
    if setup.sigstore && i % 2 == 0 {
        let request = HashedRekordRequest {
            digest: Sha256::digest(format!("artifact {}", i % 9)).to_vec(),
            signature: format!("signature {i}").into_bytes(),
            verifier: VerifierMaterial::PublicKey(b"a test key".to_vec()),
            key_details: KeyDetails::EcdsaP256Sha256,
        };
        return canonical_entry(&request).expect("canonical entry");
    }
    format!("entry number {i:05}").into_bytes()
}

// ---------------------------------------------------------------------------
// A witness: a c2sp.org/tlog-witness server on loopback that checks the log
// signature and the consistency proof from the size it holds. It outlives
// sequencer crashes, as a real witness would.

const WITNESS_NAME: &str = "witness.test/faults";

struct WitnessState {
    signer: CosignatureSigner,
    held: Mutex<(u64, Hash)>,
}

struct TestWitness {
    state: Arc<WitnessState>,
    address: SocketAddr,
}

fn witness_signer() -> CosignatureSigner {
    CosignatureSigner::from_seed(WITNESS_NAME, &[9; 32]).expect("witness key")
}

fn witness_policy() -> WitnessPolicy {
    WitnessPolicy::new(vec![witness_signer().verifier()], 1).expect("policy")
}

async fn witness_answer(state: &WitnessState, request: hyper::Request<Incoming>) -> (u16, String) {
    let Ok(body) = request.into_body().collect().await else {
        return (400, "no body".into());
    };
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    let Some((head, note)) = text.split_once("\n\n") else {
        return (400, "no blank line".into());
    };
    let mut lines = head.lines();
    let Some(old) = lines
        .next()
        .and_then(|line| line.strip_prefix("old "))
        .and_then(|size| size.parse::<u64>().ok())
    else {
        return (400, "no old line".into());
    };
    let Ok(proof) = lines.map(Hash::from_base64).collect::<Result<Vec<_>, _>>() else {
        return (400, "bad proof line".into());
    };
    let (_, log_key) = keys();
    let Ok((checkpoint, _)) = open_checkpoint(note.as_bytes(), ORIGIN, log_key.as_ref()) else {
        return (403, "bad log signature".into());
    };
    let mut held = state.held.lock().expect("lock");
    if old != held.0 {
        return (409, format!("{}\n", held.0));
    }
    if checkpoint.size < held.0
        || verify_consistency(old, checkpoint.size, &held.1, &checkpoint.root, &proof).is_err()
    {
        return (422, "inconsistent".into());
    }
    *held = (checkpoint.size, checkpoint.root);
    let signature = state
        .signer
        .cosign(&checkpoint.to_text(), 1_700_000_000)
        .expect("cosign");
    (200, format!("{signature}\n"))
}

impl TestWitness {
    /// A witness that holds `held` (what the log's witness held at a crash).
    async fn start(held: (u64, Hash)) -> TestWitness {
        let state = Arc::new(WitnessState {
            signer: witness_signer(),
            held: Mutex::new(held),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let served = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move {
                            let (status, body) = witness_answer(&state, request).await;
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(hyper::body::Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestWitness { state, address }
    }

    fn held(&self) -> (u64, Hash) {
        *self.state.held.lock().expect("lock")
    }

    fn setting(&self) -> (String, CosignatureVerifier) {
        (
            format!("http://{}", self.address),
            witness_signer().verifier(),
        )
    }
}

// ---------------------------------------------------------------------------
// A sequencer process: the log, its sequencing task and, with Sigstore
// entries, the digest indexer beside it.

struct Process {
    log: Log,
    task: JoinHandle<Result<(), stele_sequencer::Error>>,
    indexer: Option<(JoinHandle<()>, Arc<Notify>)>,
}

fn config(setup: Setup, witness: Option<&TestWitness>, max_batch: usize) -> LogConfig {
    LogConfig {
        origin: ORIGIN.into(),
        max_batch,
        batch_interval: Duration::from_millis(2),
        pool_size: 1000,
        delete_partials: setup.delete_partials,
        witnesses: witness.map(|witness| {
            Arc::new(
                Witnesses::new(vec![witness.setting()], 1, Duration::from_secs(5))
                    .expect("witnesses"),
            )
        }),
        ..LogConfig::default()
    }
}

/// Opens the log (the recovery) without starting anything.
async fn open(
    store: &MemoryStorage,
    setup: Setup,
    witness: Option<&TestWitness>,
    max_batch: usize,
) -> Result<(Log, stele_sequencer::Sequencer), stele_sequencer::Error> {
    let (signer, verifier) = keys();
    Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        verifier as Arc<dyn NoteVerifier>,
        config(setup, witness, max_batch),
        Default::default(),
    )
    .await
}

fn run(setup: Setup, (log, sequencer): (Log, stele_sequencer::Sequencer)) -> Process {
    let indexer = setup.sigstore.then(|| {
        let stop = Arc::new(Notify::new());
        let waited = stop.clone();
        let task = tokio::spawn(
            Indexer::new(log.clone(), Duration::from_millis(2))
                .run(async move { waited.notified().await }),
        );
        (task, stop)
    });
    Process {
        log,
        task: tokio::spawn(sequencer.run()),
        indexer,
    }
}

impl Process {
    /// The process dies: its tasks and every in-memory structure go.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Some((indexer, _)) = self.indexer {
            indexer.abort();
            let _ = indexer.await;
        }
    }

    /// A clean stop: the indexer first (its last pass indexes what is
    /// published and moves the marker), then the log.
    async fn finish(self, store: &MemoryStorage) {
        let limit = Duration::from_secs(20);
        if let Some((indexer, stop)) = self.indexer {
            let published = self.log.published().checkpoint.size;
            stop.notify_one();
            tokio::time::timeout(limit, indexer)
                .await
                .expect("the indexer stops")
                .expect("indexer task");
            // The last pass may have met the faulted store: another indexer
            // takes over from the marker, as the next start would.
            let started = Instant::now();
            while index::read_marker(store).await.unwrap_or(0) < published {
                assert!(
                    started.elapsed() < limit,
                    "the digest index never caught up"
                );
                let stop = Arc::new(Notify::new());
                stop.notify_one();
                Indexer::new(self.log.clone(), Duration::from_millis(2))
                    .run(async move { stop.notified().await })
                    .await;
            }
        }
        self.log.shutdown();
        let outcome = tokio::time::timeout(limit, self.task)
            .await
            .expect("shutdown")
            .expect("task");
        assert!(outcome.is_ok(), "sequencer ended with {outcome:?}");
    }
}

/// Submits entries concurrently; returns what each got, in order.
async fn submit_all(
    log: &Log,
    entries: &[Vec<u8>],
    limit: Duration,
) -> Vec<Option<Result<Accepted, SubmitError>>> {
    let tasks: Vec<_> = entries
        .iter()
        .cloned()
        .map(|entry| {
            let log = log.clone();
            tokio::spawn(async move { tokio::time::timeout(limit, log.submit(entry)).await.ok() })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("submit task"));
    }
    results
}

#[derive(Clone, Default)]
struct Acked {
    /// Entry bytes to acknowledged index.
    indices: BTreeMap<Vec<u8>, u64>,
    /// Receipts not yet checked against a final log.
    receipts: Vec<(Vec<u8>, Receipt)>,
}

impl Acked {
    fn record(&mut self, entries: &[Vec<u8>], results: Vec<Option<Result<Accepted, SubmitError>>>) {
        for (entry, result) in entries.iter().zip(results) {
            if let Some(Ok(accepted)) = result {
                if let Some(previous) = self.indices.insert(entry.clone(), accepted.index) {
                    assert_eq!(previous, accepted.index, "an entry got two indices");
                }
                self.receipts.push((entry.clone(), accepted.receipt()));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The checks.

/// Every delete of a partial tile must find its full tile already there;
/// a hook records the ones that do not.
#[derive(Clone, Default)]
struct EarlyDeletes(Arc<Mutex<Vec<String>>>);

impl EarlyDeletes {
    fn check(&self, store: &MemoryStorage, info: &OpInfo) {
        if info.op != Op::Delete {
            return;
        }
        if let Some((full, _)) = info.key.split_once(".p/") {
            if !store.contains(&Key::new(full).expect("key")) {
                self.0.lock().expect("lock").push(info.key.clone());
            }
        }
    }

    /// `store` with no fault, only this check.
    fn watch(&self, store: &MemoryStorage) -> MemoryStorage {
        let watched = store.restart();
        let early = self.clone();
        let observer = watched.clone();
        watched.set_hook(move |info| {
            early.check(&observer, info);
            None
        });
        watched
    }

    fn assert_none(&self) {
        let early = self.0.lock().expect("lock");
        assert!(
            early.is_empty(),
            "partial tiles deleted before their full tile: {early:?}"
        );
    }
}

/// Signed checkpoints already opened, by their bytes (a signature check in
/// a debug build is slow, and the same notes come back in every run).
#[derive(Default)]
struct Opened(Mutex<HashMap<(Vec<u8>, bool), Checkpoint>>);

impl Opened {
    fn open(&self, note: &[u8], policy: Option<&WitnessPolicy>) -> Checkpoint {
        let cached = (note.to_vec(), policy.is_some());
        if let Some(checkpoint) = self.0.lock().expect("lock").get(&cached) {
            return checkpoint.clone();
        }
        let (_, verifier) = keys();
        let (checkpoint, opened) =
            open_checkpoint(note, ORIGIN, verifier.as_ref()).expect("checkpoint verifies");
        if let Some(policy) = policy {
            policy
                .check(&opened)
                .expect("a published checkpoint carries the witness's cosignature");
        }
        self.0
            .lock()
            .expect("lock")
            .insert(cached, checkpoint.clone());
        checkpoint
    }
}

/// The whole log, checked from the store alone.
fn check_log(store: &MemoryStorage, setup: Setup, acked: &Acked, opened: &Opened) {
    let objects = store.snapshot();
    let get = |path: &str| objects.get(&Key::new(path).expect("key")).cloned();
    let policy = setup.witness.then(witness_policy);
    let checkpoint = opened.open(
        &get("checkpoint").expect("a public checkpoint"),
        policy.as_ref(),
    );
    let committed = opened.open(&get(".stele/lock").expect("a lock object"), None);
    assert_eq!(
        committed, checkpoint,
        "after recovery the public checkpoint is the committed one"
    );

    // Recompute the log from the published bundles.
    let size = checkpoint.size;
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let width = u64::from(TILE_WIDTH);
    for index in 0..size.div_ceil(width) {
        let tile = Tile::entries(index, (size - index * width).min(width) as u32);
        let data = get(&tile.path()).unwrap_or_else(|| panic!("{tile} missing"));
        for entry in bundle::decode(&data, Some(tile.width as usize)).expect("bundle") {
            entries.push(entry.to_vec());
        }
    }
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let integration = edge.integrate(&entries).expect("integrate");
    assert_eq!(
        integration.root, checkpoint.root,
        "bundles hash to the checkpoint root"
    );
    let mut tiles = TileSet::new(TILE_HEIGHT, size);
    for tile in new_tiles(TILE_HEIGHT, 0, size) {
        let data = get(&tile.path()).unwrap_or_else(|| panic!("{tile} missing"));
        let recomputed = integration
            .hash_tiles
            .iter()
            .find(|(t, _)| *t == tile)
            .map(|(_, hashes)| stele_tiles::tile::encode_hashes(hashes))
            .expect("recomputed tile");
        assert_eq!(
            data.as_ref(),
            recomputed.as_slice(),
            "{tile} differs from the recomputed log"
        );
        tiles.insert(&tile, tile.decode_hashes(&data).expect("tile"));
    }
    let consistent = |old: &Checkpoint, what: &str| {
        assert!(
            old.size <= size,
            "{what} of size {} is ahead of the log",
            old.size
        );
        let proof = prove_consistency(old.size, size, &tiles).expect("consistency proof");
        verify_consistency(old.size, size, &old.root, &checkpoint.root, &proof)
            .unwrap_or_else(|err| panic!("{what} of size {} inconsistent: {err}", old.size));
    };

    // Consistent with every checkpoint ever published; the digest index
    // only ever names entries of the checkpoint published before it, and
    // its objects only grow.
    let mut published_size = 0;
    let mut index_objects: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
    for record in store.journal() {
        if record.key.as_str() == "checkpoint" {
            let old = opened.open(&record.bytes, policy.as_ref());
            consistent(&old, "a published checkpoint");
            assert!(
                old.size >= published_size,
                "the public checkpoint went back from {published_size} to {}",
                old.size
            );
            published_size = old.size;
        } else if record
            .key
            .as_str()
            .starts_with(stele_rekor::index::INDEX_PREFIX)
        {
            let indices = stele_rekor::index::parse(&record.bytes).expect("an index object parses");
            assert!(
                indices.iter().all(|&i| i < published_size),
                "{} names an entry beyond the published tree of {published_size}: {indices:?}",
                record.key
            );
            let previous = index_objects.insert(record.key.clone(), indices.clone());
            if let Some(previous) = previous {
                assert!(
                    previous.iter().all(|i| indices.contains(i)),
                    "{} lost indices: {previous:?} then {indices:?}",
                    record.key
                );
            }
        }
    }

    // No entry twice (every entry the tests submit is distinct).
    let mut first_at: HashMap<&[u8], usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if let Some(first) = first_at.insert(entry, index) {
            panic!(
                "{} is in the log twice, at {first} and {index}",
                String::from_utf8_lossy(entry)
            );
        }
    }

    // Every acknowledged entry at its acknowledged index; every receipt
    // verifies, and its checkpoint is a prefix of the final log.
    for (entry, index) in &acked.indices {
        assert_eq!(
            entries.get(*index as usize),
            Some(entry),
            "acknowledged entry missing from its index {index}"
        );
    }
    for (entry, receipt) in &acked.receipts {
        let tree = opened.open(&receipt.checkpoint, policy.as_ref());
        verify_inclusion(
            &stele_tiles::leaf_hash(entry),
            receipt.index,
            tree.size,
            &receipt.proof,
            &tree.root,
        )
        .expect("a receipt's inclusion proof verifies");
        assert_eq!(acked.indices.get(entry), Some(&receipt.index));
        consistent(&tree, "a receipt's checkpoint");
    }

    // Same path, same bytes.
    for key in store.keys_with_several_contents() {
        assert!(
            key.as_str() == "checkpoint"
                || key.as_str().starts_with(".stele/")
                || key.as_str().starts_with(stele_rekor::index::INDEX_PREFIX)
                || key.as_str() == index::stats::SUMMARY_KEY,
            "public path {key} was written with two contents"
        );
    }

    // The digest index covers the log exactly.
    if setup.sigstore {
        let marker = get(MARKER_KEY).expect("an index marker");
        assert_eq!(marker.as_ref(), format!("{size}\n").as_bytes());
        // Every family: digests, signer keys (these entries name no
        // namespace).
        let expected: BTreeMap<String, Vec<u8>> = stele_rekor::index::collect_all(0, &entries)
            .0
            .into_iter()
            .map(|(path, indices)| (path, stele_rekor::index::render(&indices)))
            .collect();
        assert!(
            expected
                .keys()
                .any(|path| path.starts_with(stele_rekor::index::KEY_PREFIX))
        );
        let found: BTreeMap<String, Vec<u8>> = objects
            .iter()
            .filter(|(key, _)| key.as_str().starts_with(stele_rekor::index::INDEX_PREFIX))
            .map(|(key, bytes)| (key.as_str().to_owned(), bytes.to_vec()))
            .collect();
        assert!(!expected.is_empty(), "no Sigstore entry in the log");
        assert_eq!(found, expected, "the digest index differs from the log");
        // The statistics too, however often the indexer was interrupted.
        let summary = index::stats::Summary::parse(
            &get(index::stats::SUMMARY_KEY).expect("a statistics summary"),
        )
        .expect("the summary parses");
        assert_eq!(summary.tree_size, size);
        let hashedrekord = entries
            .iter()
            .filter(|entry| stele_rekor::entry::artifact_digest(entry).is_some())
            .count() as u64;
        assert_eq!(summary.kinds.hashedrekord, hashedrekord);
        assert_eq!(summary.kinds.other, size - hashedrekord);
    }
}

// ---------------------------------------------------------------------------
// The walk.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// The operation fails once; the sequencer recovers in-process.
    Error,
    /// The process dies at the operation, before it reaches storage.
    CrashBefore,
    /// The process dies at the operation, after it reached storage.
    CrashAfter,
}

const MODES: [Mode; 3] = [Mode::Error, Mode::CrashBefore, Mode::CrashAfter];

/// How much the faulted process's public writes are slowed: a latency of
/// the store, long beside the in-memory staging and commit of the next
/// batch. Nothing waits for it and nothing is timed.
const PUBLIC_WRITE_DELAY: Duration = Duration::from_millis(2);

/// Whether an armed fault fired, and a signal when it does.
#[derive(Default)]
struct Fired {
    flag: AtomicBool,
    signal: Notify,
    /// The pipeline's state when it fired.
    overlap: Mutex<Option<Overlap>>,
}

/// What the store shows of the commit pipeline at an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Overlap {
    /// Nothing of two batches at once.
    None,
    /// Batch N+1 is being staged or committed while batch N is committed
    /// but not published.
    NextCommitting,
    /// Batch N+1 is being committed while some of batch N's tiles are not
    /// yet public: a crash after this commit leaves them to N+1's staging
    /// object.
    NextCommittingBeforeTiles,
    /// Batch N is being published while batch N+1 is already committed.
    PreviousPublishing,
}

/// Size line of a signed checkpoint.
fn note_size(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes)
        .ok()?
        .lines()
        .nth(1)?
        .parse()
        .ok()
}

impl Overlap {
    /// Reads the lock, the public checkpoint and the staging objects.
    fn at(store: &MemoryStorage, info: &OpInfo) -> Overlap {
        let objects = store.snapshot();
        let size = |key: &str| {
            objects
                .get(&Key::new(key).expect("key"))
                .and_then(|bytes| note_size(bytes))
        };
        let (Some(locked), Some(public)) = (size(".stele/lock"), size("checkpoint")) else {
            return Overlap::None;
        };
        // Staging objects of committed, unpublished batches (a batch's is
        // deleted once it is published).
        let unpublished = objects
            .keys()
            .filter_map(|key| {
                let name = key.as_str().strip_prefix(".stele/staging/")?;
                name.split_once('-')?.0.parse::<u64>().ok()
            })
            .filter(|size| *size > public && *size <= locked)
            .count();
        let key = info.key.as_str();
        // The tiles of the batch in the lock, from its staging object.
        let tiles_missing = || {
            objects
                .iter()
                .find(|(key, _)| {
                    key.as_str()
                        .strip_prefix(".stele/staging/")
                        .and_then(|name| name.split_once('-'))
                        .and_then(|(size, _)| size.parse::<u64>().ok())
                        == Some(locked)
                })
                .and_then(|(_, bytes)| Staged::decode(bytes).ok())
                .is_some_and(|staged| {
                    staged
                        .objects
                        .iter()
                        .any(|(path, _)| !objects.contains_key(&Key::new(path).expect("key")))
                })
        };
        if info.op == Op::Put && key == ".stele/lock" && locked > public && tiles_missing() {
            Overlap::NextCommittingBeforeTiles
        } else if info.op == Op::Put
            && (key.starts_with(".stele/staging/") || key == ".stele/lock")
            && locked > public
        {
            Overlap::NextCommitting
        } else if (key.starts_with("tile/") || key == "checkpoint") && unpublished >= 2 {
            Overlap::PreviousPublishing
        } else {
            Overlap::None
        }
    }
}

impl Fired {
    fn load(&self, ordering: Ordering) -> bool {
        self.flag.load(ordering)
    }
}

/// Arms `mode` at the operation `at` (an operation count) of `store`, with
/// the early-delete check on every operation. Until the fault, public
/// writes are slowed by [`PUBLIC_WRITE_DELAY`], so that a batch is staged
/// and committed while the one before it is being published.
fn arm(store: &MemoryStorage, at: u64, mode: Mode, early: &EarlyDeletes) -> Arc<Fired> {
    arm_when(store, Trigger::At(at), mode, early, PUBLIC_WRITE_DELAY)
}

/// Where a fault fires: at an operation count, or at the first operation
/// that finds the pipeline in a given state.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    At(u64),
    Point(PipelinePoint),
}

/// The steps where two batches are in the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PipelinePoint {
    /// Batch N+1's staging object is written while N is unpublished.
    NextStaged,
    /// Batch N+1's commit (the lock) while some of N's tiles are not public.
    NextCommitted,
    /// Batch N's checkpoint is published while N+1 is already committed.
    PreviousCheckpoint,
}

impl PipelinePoint {
    const ALL: [PipelinePoint; 3] = [
        PipelinePoint::NextStaged,
        PipelinePoint::NextCommitted,
        PipelinePoint::PreviousCheckpoint,
    ];

    fn reached(self, store: &MemoryStorage, info: &OpInfo) -> bool {
        let overlap = Overlap::at(store, info);
        match self {
            PipelinePoint::NextStaged => {
                overlap == Overlap::NextCommitting && info.key.starts_with(".stele/staging/")
            }
            PipelinePoint::NextCommitted => overlap == Overlap::NextCommittingBeforeTiles,
            PipelinePoint::PreviousCheckpoint => {
                overlap == Overlap::PreviousPublishing && info.key == "checkpoint"
            }
        }
    }
}

/// [`arm`] with any trigger, public writes slowed by `delay` until then.
fn arm_when(
    store: &MemoryStorage,
    trigger: Trigger,
    mode: Mode,
    early: &EarlyDeletes,
    delay: Duration,
) -> Arc<Fired> {
    let fired = Arc::new(Fired::default());
    let flag = fired.clone();
    let early = early.clone();
    let observer = store.clone();
    store.set_hook(move |info| {
        early.check(&observer, info);
        let reached = match trigger {
            Trigger::At(at) => info.sequence >= at,
            Trigger::Point(point) => {
                flag.flag.load(Ordering::SeqCst) || point.reached(&observer, info)
            }
        };
        if !reached {
            let public = info.key.starts_with("tile/") || info.key == "checkpoint";
            return (public && info.op == Op::Put).then_some(Fault::Delay(delay));
        }
        let first = !flag.flag.swap(true, Ordering::SeqCst);
        if first {
            *flag.overlap.lock().expect("lock") = Some(Overlap::at(&observer, info));
            flag.signal.notify_one();
        }
        match mode {
            Mode::Error => first.then_some(Fault::Fail(FaultError::Transient)),
            Mode::CrashBefore => Some(Fault::Fail(FaultError::Transient)),
            Mode::CrashAfter => Some(if first && info.op == Op::Put {
                Fault::FailAfterWrite(FaultError::Transient)
            } else if first && info.op == Op::Delete {
                // The delete happens, its answer is lost, the process dies.
                Fault::FailAfterWrite(FaultError::Transient)
            } else {
                Fault::Fail(FaultError::Transient)
            }),
        }
    });
    fired
}

/// What one walk shares between its runs: the log before the faults.
struct Base {
    setup: Setup,
    store: MemoryStorage,
    acked: Acked,
    witness_held: (u64, Hash),
    opened: Opened,
    early: EarlyDeletes,
}

impl Base {
    async fn new(setup: Setup) -> Base {
        let store = MemoryStorage::new();
        let witness = if setup.witness {
            Some(TestWitness::start((0, Hash::EMPTY)).await)
        } else {
            None
        };
        let process = run(
            setup,
            open(&store, setup, witness.as_ref(), 64)
                .await
                .expect("open"),
        );
        let history: Vec<Vec<u8>> = (0..HISTORY).map(|i| entry(setup, i)).collect();
        let results = submit_all(&process.log, &history, Duration::from_secs(30)).await;
        assert!(
            results.iter().all(|r| matches!(r, Some(Ok(_)))),
            "clean run failed"
        );
        let mut acked = Acked::default();
        acked.record(&history, results);
        process.finish(&store).await;
        let opened = Opened::default();
        check_log(&store, setup, &acked, &opened);
        // Their receipts are checked now; their indices every time.
        acked.receipts.clear();
        Base {
            setup,
            store,
            acked,
            witness_held: witness.map_or((0, Hash::EMPTY), |witness| witness.held()),
            opened,
            early: EarlyDeletes::default(),
        }
    }

    async fn witness(&self, held: (u64, Hash)) -> Option<TestWitness> {
        if self.setup.witness {
            Some(TestWitness::start(held).await)
        } else {
            None
        }
    }

    /// A process on a store that has no fault: it must open at once.
    async fn start_clean(&self, store: &MemoryStorage, witness: Option<&TestWitness>) -> Process {
        let opened = open(store, self.setup, witness, 5)
            .await
            .unwrap_or_else(|err| panic!("a clean restart failed: {err}"));
        run(self.setup, opened)
    }

    /// Everything submitted again plus new entries, all logged (a submitter
    /// answered "unavailable" retries, as a client would); then a clean stop
    /// and the checks.
    async fn finish(
        &self,
        store: &MemoryStorage,
        process: Process,
        mut acked: Acked,
        what: &str,
    ) -> usize {
        let limit = Duration::from_secs(20);
        let third: Vec<Vec<u8>> = (0..HISTORY)
            .step_by(41)
            .chain(HISTORY..HISTORY + FAULTED + 3)
            .map(|i| entry(self.setup, i))
            .collect();
        let mut results = submit_all(&process.log, &third, limit).await;
        // Answers that tell a client to come back: it does, until the log
        // has recovered (or the deadline passes and the check below fails).
        let retry = |result: &Option<Result<Accepted, SubmitError>>| {
            matches!(
                result,
                Some(Err(SubmitError::Unavailable(_)
                    | SubmitError::Degraded { .. }
                    | SubmitError::PoolFull { .. }))
            )
        };
        let deadline = Instant::now() + limit;
        while results.iter().any(retry) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let again: Vec<usize> = (0..third.len()).filter(|&i| retry(&results[i])).collect();
            let entries: Vec<Vec<u8>> = again.iter().map(|&i| third[i].clone()).collect();
            let answers = submit_all(&process.log, &entries, limit).await;
            for (i, answer) in again.into_iter().zip(answers) {
                results[i] = answer;
            }
        }
        for (entry, result) in third.iter().zip(&results) {
            match result {
                Some(Ok(_)) => {}
                other => panic!(
                    "{what}: {} not logged after recovery: {other:?}",
                    String::from_utf8_lossy(entry)
                ),
            }
        }
        acked.record(&third, results);
        process.finish(store).await;
        check_log(&store.restart(), self.setup, &acked, &self.opened);
        1
    }

    /// One first fault; after a crash, every second fault in the restart's
    /// recovery. Returns whether the first fault fired, the runs made, and
    /// the pipeline's state at the fault.
    async fn scenario(&self, fault_at: u64, mode: Mode) -> (bool, usize, Option<Overlap>) {
        self.scenario_when(Trigger::At(fault_at), mode, PUBLIC_WRITE_DELAY)
            .await
    }

    /// [`Base::scenario`] with any trigger.
    async fn scenario_when(
        &self,
        trigger: Trigger,
        mode: Mode,
        delay: Duration,
    ) -> (bool, usize, Option<Overlap>) {
        let store = self.early.watch(&self.store.fork());
        let witness = self.witness(self.witness_held).await;
        let mut acked = self.acked.clone();
        let what = format!("{mode:?} at {trigger:?}");
        let process = self.start_clean(&store, witness.as_ref()).await;

        let trigger = match trigger {
            Trigger::At(fault_at) => Trigger::At(store.operation_count() + fault_at),
            point => point,
        };
        let fired = arm_when(&store, trigger, mode, &self.early, delay);
        // More batches, crossing the tile boundary, with duplicates of old
        // and new entries mixed in.
        let faulted: Vec<Vec<u8>> = (HISTORY..HISTORY + FAULTED)
            .chain([3, HISTORY + 2])
            .map(|i| entry(self.setup, i))
            .collect();
        let log = process.log.clone();
        let submitted = submit_all(&log, &faulted, Duration::from_secs(20));
        let overlap = || *fired.overlap.lock().expect("lock");
        if mode == Mode::Error {
            acked.record(&faulted, submitted.await);
            let runs = self.finish(&store, process, acked, &what).await;
            return (fired.load(Ordering::SeqCst), runs, overlap());
        }
        // The process dies at the faulted operation: nothing it would do
        // after it reaches storage, so it can be stopped at once. The
        // submitters left waiting then get an error.
        tokio::pin!(submitted);
        let results = tokio::select! {
            results = &mut submitted => Some(results),
            () = fired.signal.notified() => None,
        };
        process.crash().await;
        let results = match results {
            Some(results) => results,
            None => submitted.await,
        };
        acked.record(&faulted, results);
        let fired = fired.load(Ordering::SeqCst);
        let crashed_witness = witness.as_ref().map_or((0, Hash::EMPTY), TestWitness::held);
        let mut runs = 0;
        if fired {
            // Walk a second fault through the restart's recovery, until it
            // finishes without reaching it.
            for second in 0.. {
                let mut reached = false;
                for second_mode in MODES {
                    let (fired, made) = self
                        .nested(&store, crashed_witness, second, second_mode, &acked, &what)
                        .await;
                    reached |= fired;
                    runs += made;
                }
                if !reached {
                    break;
                }
                assert!(second < 500, "{what}: runaway recovery");
            }
        }
        let restarted = self.early.watch(&store);
        let process = self.start_clean(&restarted, witness.as_ref()).await;
        runs += self.finish(&restarted, process, acked, &what).await;
        (fired, runs, overlap())
    }

    /// The restart after a crash meets `mode` at its `second`-th storage
    /// operation; then a clean restart finishes.
    async fn nested(
        &self,
        crashed: &MemoryStorage,
        witness_held: (u64, Hash),
        second: u64,
        mode: Mode,
        acked: &Acked,
        first: &str,
    ) -> (bool, usize) {
        let what = format!("{first}, then {mode:?} at recovery operation {second}");
        let store = crashed.fork();
        let witness = self.witness(witness_held).await;
        let fired = arm(&store, store.operation_count() + second, mode, &self.early);
        match open(&store, self.setup, witness.as_ref(), 5).await {
            // A fault that recovery survived: after an error the process
            // goes on; after a crash it is gone all the same.
            // Recovery ended before the fault's operation: the walk is over.
            Ok(_) if !fired.load(Ordering::SeqCst) => return (false, 0),
            Ok(opened) if mode == Mode::Error => {
                let process = run(self.setup, opened);
                let made = self.finish(&store, process, acked.clone(), &what).await;
                return (true, made);
            }
            Ok(opened) => drop(opened),
            Err(err) => assert!(
                !err.is_fatal(),
                "{what}: an injected transient fault stopped recovery for good: {err}"
            ),
        }
        assert!(
            fired.load(Ordering::SeqCst),
            "{what}: recovery failed without its fault"
        );
        let restarted = self.early.watch(&store);
        let process = self.start_clean(&restarted, witness.as_ref()).await;
        let made = self.finish(&restarted, process, acked.clone(), &what).await;
        (true, made)
    }
}

async fn every_fault(setup: Setup, mode: Mode) {
    let started = Instant::now();
    let base = Base::new(setup).await;
    let mut fault_at = 0;
    let mut runs = 0;
    let mut overlaps: HashMap<Overlap, usize> = HashMap::new();
    // Walk the fault through every operation until a run finishes without
    // reaching it.
    loop {
        let (fired, made, overlap) = base.scenario(fault_at, mode).await;
        runs += made;
        if !fired {
            break;
        }
        *overlaps
            .entry(overlap.unwrap_or(Overlap::None))
            .or_default() += 1;
        fault_at += 1;
        assert!(fault_at < 1000, "runaway");
    }
    eprintln!(
        "{setup:?}, {mode:?}: {fault_at} first faults ({overlaps:?}), {runs} recoveries \
         checked in {:.1?}",
        started.elapsed()
    );
    // The pipeline was full at some of the faults (each of its points is
    // met for certain by `every_pipelined_point`).
    let pipelined: usize = overlaps
        .iter()
        .filter(|(overlap, _)| **overlap != Overlap::None)
        .map(|(_, count)| count)
        .sum();
    assert!(
        pipelined > 0,
        "{setup:?}, {mode:?}: no fault met two batches in the pipeline: {overlaps:?}"
    );
    base.early.assert_none();
    // Three batches or more, each with its staging, commit, tiles and
    // checkpoint.
    assert!(fault_at > 15, "only {fault_at} operations were exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_fails_once() {
    every_fault(PLAIN, Mode::Error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_every_operation_and_every_recovery_operation() {
    every_fault(PLAIN, Mode::CrashBefore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_every_write_and_every_recovery_operation() {
    every_fault(PLAIN, Mode::CrashAfter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_witness_index_and_deletes_every_operation_fails_once() {
    every_fault(FULL, Mode::Error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_witness_index_and_deletes_crash_before_every_operation() {
    every_fault(FULL, Mode::CrashBefore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_witness_index_and_deletes_crash_after_every_write() {
    every_fault(FULL, Mode::CrashAfter).await;
}

/// Each step where two batches are in the pipeline, met by the state of the
/// store (not an operation count), in each mode; after a crash, every
/// second fault in the restart's recovery too. Public writes are slowed
/// more than in the walk, so that every point is certainly met.
async fn every_pipelined_point(setup: Setup) {
    let started = Instant::now();
    let base = Base::new(setup).await;
    let mut runs = 0;
    for point in PipelinePoint::ALL {
        for mode in MODES {
            let (fired, made, overlap) = base
                .scenario_when(Trigger::Point(point), mode, Duration::from_millis(20))
                .await;
            assert!(fired, "{setup:?}: {point:?} was never met ({mode:?})");
            assert_ne!(overlap, Some(Overlap::None), "{point:?}, {mode:?}");
            runs += made;
        }
    }
    eprintln!(
        "{setup:?}: every pipelined point in every mode, {runs} recoveries checked in {:.1?}",
        started.elapsed()
    );
    base.early.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipelined_point_fails_and_crashes() {
    every_pipelined_point(PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_witness_index_and_deletes_every_pipelined_point() {
    every_pipelined_point(FULL).await;
}

/// A plain log's process on `store`, without the indexer.
async fn start(
    store: &MemoryStorage,
) -> Result<(Log, JoinHandle<Result<(), stele_sequencer::Error>>), stele_sequencer::Error> {
    let (log, sequencer) = open(store, PLAIN, None, 5).await?;
    Ok((log, tokio::spawn(sequencer.run())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sequencer_cannot_fork_the_log() {
    let store = MemoryStorage::new();
    let (first, first_task) = start(&store).await.expect("first");
    let results = submit_all(
        &first,
        &(0..10).map(|i| entry(PLAIN, i)).collect::<Vec<_>>(),
        Duration::from_secs(5),
    )
    .await;
    assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))));

    // A second sequencer opens the same store, then the first commits more.
    let (second, second_task) = start(&store.restart()).await.expect("second opens");
    let more: Vec<Vec<u8>> = (10..20).map(|i| entry(PLAIN, i)).collect();
    let results = submit_all(&first, &more, Duration::from_secs(5)).await;
    assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))));

    // The second's commit must fail: it stops with TakenOver and answers
    // nothing as accepted.
    let results = submit_all(&second, &[b"fork attempt".to_vec()], Duration::from_secs(5)).await;
    assert!(
        !matches!(results[0], Some(Ok(_))),
        "the stale sequencer acknowledged an entry: {:?}",
        results[0]
    );
    let outcome = tokio::time::timeout(Duration::from_secs(5), second_task)
        .await
        .expect("second stops")
        .expect("task");
    assert!(
        matches!(outcome, Err(stele_sequencer::Error::TakenOver { .. })),
        "{outcome:?}"
    );
    first.shutdown();
    first_task.await.expect("task").expect("first ends cleanly");

    let mut acked = Acked::default();
    let all: Vec<Vec<u8>> = (0..20).map(|i| entry(PLAIN, i)).collect();
    let (log, task) = start(&store.restart()).await.expect("reopen");
    let results = submit_all(&log, &all, Duration::from_secs(5)).await;
    acked.record(&all, results);
    log.shutdown();
    task.await.expect("task").expect("clean");
    check_log(&store, PLAIN, &acked, &Opened::default());
    let (_, verifier) = keys();
    let (checkpoint, _): (Checkpoint, _) = open_checkpoint(
        &store.snapshot()[&Key::new("checkpoint").expect("key")],
        ORIGIN,
        verifier.as_ref(),
    )
    .expect("checkpoint");
    assert_eq!(checkpoint.size, 20, "the fork attempt is not in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_partials_are_deleted_only_after_their_full_tile() {
    let store = MemoryStorage::new();
    // Every delete of a partial tile must find its full tile already there.
    let observer = store.clone();
    let early = Arc::new(std::sync::Mutex::new(Vec::new()));
    let violations = early.clone();
    let deletes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = deletes.clone();
    store.set_hook(move |info| {
        if info.op == Op::Delete {
            if let Some((full, _)) = info.key.split_once(".p/") {
                counted.fetch_add(1, Ordering::SeqCst);
                let present = observer
                    .snapshot()
                    .contains_key(&Key::new(full).expect("key"));
                if !present {
                    violations.lock().expect("lock").push(info.key.clone());
                }
            }
        }
        None
    });
    let setup = Setup {
        delete_partials: true,
        ..PLAIN
    };
    let (log, sequencer) = open(&store, setup, None, 40).await.expect("open");
    let task = tokio::spawn(sequencer.run());
    let mut acked = Acked::default();
    let entries: Vec<Vec<u8>> = (0..700).map(|i| entry(PLAIN, i)).collect();
    for chunk in entries.chunks(50) {
        let results = submit_all(&log, chunk, Duration::from_secs(10)).await;
        acked.record(chunk, results);
    }
    // Duplicates are proven from storage, through the full tiles now that
    // their partial versions are gone.
    let again: Vec<Vec<u8>> = (0..700).step_by(97).map(|i| entry(PLAIN, i)).collect();
    let results = submit_all(&log, &again, Duration::from_secs(10)).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Some(Ok(a)) if a.duplicate))
    );
    acked.record(&again, results);
    log.shutdown();
    task.await.expect("task").expect("clean");

    assert!(early.lock().expect("lock").is_empty(), "{:?}", early.lock());
    assert!(
        deletes.load(Ordering::SeqCst) > 0,
        "no partial tile was ever deleted"
    );
    // No partial tile is left beside a full one.
    let objects = store.snapshot();
    for key in objects.keys() {
        if let Some((full, _)) = key.as_str().split_once(".p/") {
            assert!(
                !objects.contains_key(&Key::new(full).expect("key")),
                "{key} is stale"
            );
        }
    }
    check_log(&store.restart(), PLAIN, &acked, &Opened::default());
}
