//! Duplicate submissions are answered with a proof built from published
//! tiles. Those tiles are kept in memory, so a storm of resubmissions
//! (clients retrying, or someone making the log read its bucket) costs
//! each tile one storage read, not one per submission; and a tile that
//! storage returned damaged is never served from memory: every proof is
//! checked against the published root before it is answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use stele_sequencer::storage::memory::{MemoryStorage, Op};
use stele_sequencer::storage::{Condition, Key, PutOptions, Storage};
use stele_sequencer::{Accepted, Log, LogConfig, SubmitError};
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use stele_tiles::proof::{inclusion_plan, tiles_for_nodes};
use stele_tiles::tile::{TILE_HEIGHT, Tile};
use tokio::task::JoinHandle;

const ORIGIN: &str = "test.example/duplicates";

fn keys() -> (Arc<Ed25519Signer>, Arc<Ed25519Verifier>) {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[9u8; 32]).expect("key");
    let verifier = signer.verifier();
    (Arc::new(signer), Arc::new(verifier))
}

fn entry(i: u64) -> Vec<u8> {
    format!("duplicate test entry {i}").into_bytes()
}

type Running = (Log, JoinHandle<Result<(), stele_sequencer::Error>>);

async fn open(store: &MemoryStorage, tile_cache_bytes: u64) -> Running {
    let (signer, verifier) = keys();
    let (log, sequencer) = Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        verifier as Arc<dyn NoteVerifier>,
        LogConfig {
            origin: ORIGIN.into(),
            max_batch: 256,
            batch_interval: Duration::from_millis(2),
            tile_cache_bytes,
            ..LogConfig::default()
        },
        Default::default(),
    )
    .await
    .expect("open");
    (log, tokio::spawn(sequencer.run()))
}

async fn stop((log, task): Running) {
    log.shutdown();
    task.await.expect("join").expect("sequencer");
}

/// A store holding a log of `size` entries, written by a log now stopped.
async fn store_with_log(size: u64) -> MemoryStorage {
    let store = MemoryStorage::new();
    let running = open(&store, 0).await;
    let submissions = (0..size).map(|i| {
        let log = running.0.clone();
        async move { log.submit(entry(i)).await.expect("submit") }
    });
    futures::future::join_all(submissions).await;
    stop(running).await;
    store.restart()
}

/// Counts the hash tile reads of `store` from now on.
fn count_tile_reads(store: &MemoryStorage) -> Arc<AtomicU64> {
    let reads = Arc::new(AtomicU64::new(0));
    let counter = reads.clone();
    store.set_hook(move |op| {
        if op.op == Op::Get && op.key.starts_with("tile/") && !op.key.starts_with("tile/entries/") {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        None
    });
    reads
}

/// Checks an answer offline: a duplicate, at `index`, whose receipt
/// verifies for `entry` against the log key.
fn check_answer(answer: &Accepted, entry: &[u8], index: u64) {
    assert_eq!(answer.index, index);
    assert!(answer.duplicate);
    let (_, verifier) = keys();
    let policy = WitnessPolicy::new(Vec::new(), 0).expect("policy");
    answer
        .receipt()
        .verify(entry, ORIGIN, verifier.as_ref(), &policy)
        .expect("the duplicate's receipt verifies");
}

/// Resubmits entry `index` `times` times at once; checks every answer.
async fn resubmit(log: &Log, index: u64, times: usize) {
    let answers = futures::future::join_all((0..times).map(|_| log.submit(entry(index)))).await;
    for answer in answers {
        check_answer(&answer.expect("duplicate answered"), &entry(index), index);
    }
}

/// The tiles a proof of `index` in a tree of `size` reads.
fn proof_tiles(index: u64, size: u64) -> u64 {
    let plan = inclusion_plan(index, size).expect("plan");
    tiles_for_nodes(TILE_HEIGHT, size, &plan.nodes).len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_duplicates_reads_each_tile_once() {
    const SIZE: u64 = 1000;
    const STORM: usize = 40;
    let store = store_with_log(SIZE).await;
    let tiles = proof_tiles(7, SIZE);
    assert!(tiles >= 2, "the proof spans tiles: {tiles}");

    // The model: without the cache each duplicate reads every tile of its
    // proof.
    let reads = count_tile_reads(&store);
    let uncached = open(&store, 0).await;
    reads.store(0, Ordering::Relaxed);
    resubmit(&uncached.0, 7, STORM).await;
    assert_eq!(reads.load(Ordering::Relaxed), STORM as u64 * tiles);
    stop(uncached).await;

    // With it, the storm reads each tile once, even all at once.
    let cached = open(&store, 1 << 20).await;
    reads.store(0, Ordering::Relaxed);
    resubmit(&cached.0, 7, STORM).await;
    assert_eq!(reads.load(Ordering::Relaxed), tiles);
    // Another entry of the same level-0 tile needs no read at all.
    resubmit(&cached.0, 100, STORM).await;
    assert_eq!(reads.load(Ordering::Relaxed), tiles);

    // After a new batch, the tiles it published are in memory already: a
    // duplicate proven against the new checkpoint reads only what the
    // batch did not touch (here, nothing: the proof of an entry of the
    // new edge is all in the batch's tiles).
    let log = &cached.0;
    let fresh = log.submit(entry(SIZE)).await.expect("new entry");
    assert_eq!(fresh.index, SIZE);
    assert!(!fresh.duplicate);
    reads.store(0, Ordering::Relaxed);
    resubmit(log, SIZE, STORM).await;
    assert_eq!(reads.load(Ordering::Relaxed), 0);
    stop(cached).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_tile_is_refused_and_not_kept() {
    const SIZE: u64 = 600;
    let store = store_with_log(SIZE).await;
    let running = open(&store, 1 << 20).await;
    let log = &running.0;

    // Storage now returns a damaged level-0 tile: right length, wrong
    // hashes. The proof it gives does not verify, so the duplicate is
    // refused as unavailable rather than answered with a bad proof.
    let key = Key::new(Tile::hashes(0, 0, 256).path()).expect("key");
    let good = store.get(&key).await.expect("get").expect("tile 0").bytes;
    let mut damaged = good.to_vec();
    // Leaf 6 is inside the sibling subtree (6, 7) of entry 5's proof.
    damaged[6 * 32] ^= 1;
    let put = |bytes: Vec<u8>| {
        let store = store.clone();
        let key = key.clone();
        async move {
            store
                .put(
                    &key,
                    Bytes::from(bytes),
                    PutOptions::private(Condition::None),
                )
                .await
                .expect("put")
        }
    };
    put(damaged).await;
    match log.submit(entry(5)).await {
        Err(SubmitError::Unavailable(message)) => {
            assert!(message.contains("does not verify"), "{message}")
        }
        other => panic!("a proof from a damaged tile was answered: {other:?}"),
    }

    // Repaired, the next duplicate is answered, and the ones after it are
    // answered from memory: the damaged copy was dropped, not kept to fail
    // every proof that reads it.
    put(good.to_vec()).await;
    let answer = log.submit(entry(5)).await.expect("answered");
    check_answer(&answer, &entry(5), 5);
    let reads = count_tile_reads(&store);
    resubmit(log, 5, 3).await;
    assert_eq!(reads.load(Ordering::Relaxed), 0);
    stop(running).await;
}
