//! The commit protocol under every single fault: the memory backend fails
//! each storage operation of a run of batches in turn, as an error the
//! sequencer survives and as a crash (the process gone, all in-memory state
//! dropped), and after recovery the whole log is checked from the store:
//!
//! - it is complete: every tile and bundle matches a log recomputed from the
//!   published entries, and the tiles hash to the checkpoint's root;
//! - it is consistent with every checkpoint ever published;
//! - every acknowledged entry is in it at its acknowledged index, and its
//!   receipt verifies offline;
//! - no public path was ever written with two contents.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stele_sequencer::storage::Key;
use stele_sequencer::storage::memory::{Fault, FaultError, MemoryStorage, Op};
use stele_sequencer::{Accepted, Log, LogConfig, SubmitError};
use stele_tiles::bundle;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use stele_tiles::proof::{TileSet, prove_consistency, verify_consistency};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::{TILE_HEIGHT, Tile, new_tiles};
use tokio::task::JoinHandle;

const ORIGIN: &str = "test.example/faults";

fn keys() -> (Arc<Ed25519Signer>, Arc<Ed25519Verifier>) {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[7u8; 32]).expect("key");
    let verifier = signer.verifier();
    (Arc::new(signer), Arc::new(verifier))
}

fn config() -> LogConfig {
    LogConfig {
        origin: ORIGIN.into(),
        max_batch: 5,
        batch_interval: Duration::from_millis(2),
        pool_size: 1000,
        delete_partials: false,
        witnesses: None,
        ..LogConfig::default()
    }
}

fn entry(i: usize) -> Vec<u8> {
    // Enough entries per run to fill a level-0 tile now and then.
    format!("entry number {i:05}").into_bytes()
}

async fn start(
    store: &MemoryStorage,
) -> Result<(Log, JoinHandle<Result<(), stele_sequencer::Error>>), stele_sequencer::Error> {
    let (signer, verifier) = keys();
    let (log, sequencer) = Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        verifier as Arc<dyn NoteVerifier>,
        config(),
        Default::default(),
    )
    .await?;
    Ok((log, tokio::spawn(sequencer.run())))
}

/// Opens the log on a store that may still fail now and then (recovery
/// itself faces the fault), retrying like a supervisor restarting a process.
async fn start_retrying(
    store: &MemoryStorage,
) -> (Log, JoinHandle<Result<(), stele_sequencer::Error>>) {
    for _ in 0..50 {
        match start(store).await {
            Ok(started) => return started,
            Err(err) => {
                assert!(
                    !err.is_fatal() || matches!(err, stele_sequencer::Error::Storage(_)),
                    "{err}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    panic!("the log never opened");
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

#[derive(Default)]
struct Acked {
    /// Entry bytes to acknowledged index.
    indices: BTreeMap<Vec<u8>, u64>,
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

/// The whole log, checked from the store alone.
fn check_log(store: &MemoryStorage, acked: &Acked) {
    let (_, verifier) = keys();
    let objects = store.snapshot();
    let get = |path: &str| objects.get(&Key::new(path).expect("key")).cloned();
    let note = get("checkpoint").expect("a public checkpoint");
    let (checkpoint, _) =
        open_checkpoint(&note, ORIGIN, verifier.as_ref()).expect("checkpoint verifies");
    let lock = get(".stele/lock").expect("a lock object");
    let (committed, _) = open_checkpoint(&lock, ORIGIN, verifier.as_ref()).expect("lock verifies");
    assert_eq!(
        committed, checkpoint,
        "after recovery the public checkpoint is the committed one"
    );

    // Recompute the log from the published bundles.
    let size = checkpoint.size;
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let width = 1u64 << TILE_HEIGHT;
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

    // Consistent with every checkpoint ever published.
    for record in store.journal() {
        if record.key.as_str() != "checkpoint" {
            continue;
        }
        let (old, _) =
            open_checkpoint(&record.bytes, ORIGIN, verifier.as_ref()).expect("old checkpoint");
        assert!(
            old.size <= size,
            "a published checkpoint is ahead of the log"
        );
        let proof = prove_consistency(old.size, size, &tiles).expect("consistency proof");
        verify_consistency(old.size, size, &old.root, &checkpoint.root, &proof)
            .unwrap_or_else(|err| panic!("checkpoint {} inconsistent: {err}", old.size));
    }

    // Every acknowledged entry at its acknowledged index.
    for (entry, index) in &acked.indices {
        assert_eq!(
            entries.get(*index as usize),
            Some(entry),
            "acknowledged entry missing from its index {index}"
        );
    }
    let policy = WitnessPolicy::new(vec![], 0).expect("empty policy");
    for (entry, receipt) in &acked.receipts {
        receipt
            .verify(entry, ORIGIN, verifier.as_ref(), &policy)
            .expect("receipt verifies offline");
    }

    // Same path, same bytes.
    for key in store.keys_with_several_contents() {
        assert!(
            key.as_str() == "checkpoint" || key.as_str().starts_with(".stele/"),
            "public path {key} was written with two contents"
        );
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The operation fails once; the sequencer recovers in-process.
    Error,
    /// The process dies at the operation, before it reaches storage.
    CrashBefore,
    /// The process dies at the operation, after it reached storage.
    CrashAfter,
}

async fn scenario(fault_at: u64, mode: Mode) -> bool {
    let store = MemoryStorage::new();
    let mut acked = Acked::default();
    let limit = Duration::from_secs(5);

    // A log with some history.
    let (log, task) = start(&store).await.expect("open");
    let first: Vec<Vec<u8>> = (0..23).map(entry).collect();
    let results = submit_all(&log, &first, limit).await;
    assert!(
        results.iter().all(|r| matches!(r, Some(Ok(_)))),
        "clean run failed"
    );
    acked.record(&first, results);

    // Arm the fault at the `fault_at`-th operation from now.
    let base = store.operation_count();
    let crashed = Arc::new(AtomicBool::new(false));
    let flag = crashed.clone();
    store.set_hook(move |info| {
        if info.sequence < base + fault_at {
            return None;
        }
        match mode {
            Mode::Error => {
                (info.sequence == base + fault_at).then_some(Fault::Fail(FaultError::Transient))
            }
            Mode::CrashBefore => {
                flag.store(true, Ordering::SeqCst);
                Some(Fault::Fail(FaultError::Transient))
            }
            Mode::CrashAfter => {
                let first = !flag.swap(true, Ordering::SeqCst);
                Some(if first && info.op == Op::Put {
                    Fault::FailAfterWrite(FaultError::Transient)
                } else {
                    Fault::Fail(FaultError::Transient)
                })
            }
        }
    });

    // More batches, with duplicates of old and new entries mixed in.
    let second: Vec<Vec<u8>> = (23..48).map(entry).chain([entry(3), entry(30)]).collect();
    let wait = match mode {
        Mode::Error => limit,
        Mode::CrashBefore | Mode::CrashAfter => Duration::from_millis(300),
    };
    let results = submit_all(&log, &second, wait).await;
    acked.record(&second, results);
    let fired = store.operation_count() > base + fault_at;

    let (log, task) = match mode {
        Mode::Error => (log, task),
        Mode::CrashBefore | Mode::CrashAfter => {
            // The process dies: its task and every in-memory structure go.
            task.abort();
            let _ = task.await;
            drop(log);
            let restarted = store.restart();
            start_retrying(&restarted).await
        }
    };

    // Everything submitted again, plus new entries: all succeed, and what
    // was acknowledged keeps its index.
    // A submitter answered "unavailable" retries, as a client would.
    let third: Vec<Vec<u8>> = (0..60).map(entry).collect();
    let mut results = submit_all(&log, &third, limit).await;
    for _ in 0..3 {
        for (entry, result) in third.iter().zip(results.iter_mut()) {
            if matches!(result, Some(Err(SubmitError::Unavailable(_)))) {
                *result = submit_all(&log, std::slice::from_ref(entry), limit)
                    .await
                    .remove(0);
            }
        }
    }
    for (entry, result) in third.iter().zip(&results) {
        match result {
            Some(Ok(_)) => {}
            other => panic!(
                "{mode:?} at {fault_at}: {} not logged after recovery: {other:?}",
                String::from_utf8_lossy(entry)
            ),
        }
    }
    acked.record(&third, results);
    log.shutdown();
    let outcome = tokio::time::timeout(limit, task)
        .await
        .expect("shutdown")
        .expect("task");
    assert!(outcome.is_ok(), "sequencer ended with {outcome:?}");
    check_log(&store.restart(), &acked);
    fired
}

async fn every_fault(mode: Mode) {
    let mut fault_at = 0;
    // Walk the fault through every operation until a run finishes without
    // reaching it.
    while scenario(fault_at, mode).await {
        fault_at += 1;
        assert!(fault_at < 500, "runaway");
    }
    assert!(fault_at > 20, "only {fault_at} operations were exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_fails_once() {
    every_fault(Mode::Error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_every_operation() {
    every_fault(Mode::CrashBefore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_every_write() {
    every_fault(Mode::CrashAfter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sequencer_cannot_fork_the_log() {
    let store = MemoryStorage::new();
    let (first, first_task) = start(&store).await.expect("first");
    let results = submit_all(
        &first,
        &(0..10).map(entry).collect::<Vec<_>>(),
        Duration::from_secs(5),
    )
    .await;
    assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))));

    // A second sequencer opens the same store, then the first commits more.
    let (second, second_task) = start(&store.restart()).await.expect("second opens");
    let more: Vec<Vec<u8>> = (10..20).map(entry).collect();
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
    let all: Vec<Vec<u8>> = (0..20).map(entry).collect();
    let (log, task) = start(&store.restart()).await.expect("reopen");
    let results = submit_all(&log, &all, Duration::from_secs(5)).await;
    acked.record(&all, results);
    log.shutdown();
    task.await.expect("task").expect("clean");
    check_log(&store, &acked);
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
    let (signer, verifier) = keys();
    let (log, sequencer) = Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        verifier as Arc<dyn NoteVerifier>,
        LogConfig {
            delete_partials: true,
            max_batch: 40,
            ..config()
        },
        Default::default(),
    )
    .await
    .expect("open");
    let task = tokio::spawn(sequencer.run());
    let mut acked = Acked::default();
    let entries: Vec<Vec<u8>> = (0..700).map(entry).collect();
    for chunk in entries.chunks(50) {
        let results = submit_all(&log, chunk, Duration::from_secs(10)).await;
        acked.record(chunk, results);
    }
    // Duplicates are proven from storage, through the full tiles now that
    // their partial versions are gone.
    let again: Vec<Vec<u8>> = (0..700).step_by(97).map(entry).collect();
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
    check_log(&store.restart(), &acked);
}
