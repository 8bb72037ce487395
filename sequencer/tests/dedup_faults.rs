//! The persistent deduplication index under every single fault of its own
//! writes. A log with a small flush size (256 leaves) takes ten flushes'
//! worth of entries, so the index writes runs, merges them (reading their
//! pages back), writes its manifest and deletes the runs merged away. Each
//! storage operation under `.stele/dedup/` is failed in turn:
//!
//! - as an error the process survives (the index retries at a later batch,
//!   the log goes on), and
//! - as a crash: from that operation on every storage call fails and the
//!   process (its tokio runtime, with the background flush) is dropped.
//!
//! Then a new process opens the log from the store and, checked against a
//! naive map of what each submitter was told:
//!
//! - every entry submitted again gets the index it was first given;
//! - entries never acknowledged are logged once, and nothing is in the log
//!   twice (every leaf hash of the published tree is distinct);
//! - after it flushes, an index opened afresh from storage finds every
//!   leaf at its index and no leaf that is not in the log.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stele_sequencer::dedup::{DEDUP_PREFIX, DedupConfig, DedupIndex};
use stele_sequencer::storage::Storage;
use stele_sequencer::storage::memory::{Fault, FaultError, MemoryStorage};
use stele_sequencer::tilecache::TileCache;
use stele_sequencer::{Log, LogConfig, Sequencer};
use stele_tiles::note::{Ed25519Signer, NoteSigner, NoteVerifier};

const ORIGIN: &str = "test.example/dedup-faults";
const FLUSH: u64 = 256;
const ENTRIES: u64 = FLUSH * 10 + 37;
const BATCH: u64 = 100;

fn entry(i: u64) -> Vec<u8> {
    format!("dedup fault entry {i}").into_bytes()
}

fn config() -> LogConfig {
    LogConfig {
        origin: ORIGIN.into(),
        max_batch: BATCH as usize,
        batch_interval: Duration::from_millis(1),
        dedup: DedupConfig {
            flush_entries: FLUSH,
            page_cache_bytes: 1 << 20,
        },
        ..LogConfig::default()
    }
}

async fn open(store: &MemoryStorage) -> Result<(Log, Sequencer), stele_sequencer::Error> {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[7u8; 32]).expect("key");
    let verifier = signer.verifier();
    Log::open(
        Arc::new(store.clone()),
        Arc::new(signer) as Arc<dyn NoteSigner>,
        Arc::new(verifier) as Arc<dyn NoteVerifier>,
        config(),
        Default::default(),
    )
    .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Submits `entries` in batches of [`BATCH`] at once; returns what each
/// acknowledged one was told, stopping at the first batch with a failure
/// if `stop_on_failure`.
async fn submit_all(
    log: &Log,
    entries: &[u64],
    stop_on_failure: bool,
) -> (HashMap<u64, u64>, bool) {
    let mut told = HashMap::new();
    let mut failed = false;
    for chunk in entries.chunks(BATCH as usize) {
        let answers = futures::future::join_all(chunk.iter().map(|&i| {
            let log = log.clone();
            async move { (i, log.submit(entry(i)).await) }
        }))
        .await;
        for (i, answer) in answers {
            match answer {
                Ok(accepted) => {
                    told.insert(i, accepted.index);
                }
                Err(_) => failed = true,
            }
        }
        if failed && stop_on_failure {
            break;
        }
    }
    (told, failed)
}

/// Storage operations of the index during a clean run of the workload.
fn index_operations() -> u64 {
    let store = MemoryStorage::new();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    store.set_hook(move |op| {
        if op.key.starts_with(DEDUP_PREFIX) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        None
    });
    let rt = runtime();
    rt.block_on(async {
        let (log, sequencer) = open(&store).await.expect("open");
        let task = tokio::spawn(sequencer.run());
        let all: Vec<u64> = (0..ENTRIES).collect();
        let (told, failed) = submit_all(&log, &all, false).await;
        assert!(!failed && told.len() as u64 == ENTRIES);
        log.shutdown();
        task.await.expect("join").expect("sequencer");
    });
    drop(rt);
    count.load(Ordering::Relaxed)
}

/// One walk: the `target`-th index operation fails (and, if `crash`, so
/// does everything after it, and the process is dropped).
fn walk(target: u64, crash: bool) -> bool {
    let store = MemoryStorage::new();
    let seen = Arc::new(AtomicU64::new(0));
    let fired = Arc::new(AtomicBool::new(false));
    {
        let (seen, fired) = (seen.clone(), fired.clone());
        store.set_hook(move |op| {
            if crash && fired.load(Ordering::Relaxed) {
                return Some(Fault::Fail(FaultError::Transient));
            }
            if op.key.starts_with(DEDUP_PREFIX) && seen.fetch_add(1, Ordering::Relaxed) == target {
                fired.store(true, Ordering::Relaxed);
                return Some(Fault::Fail(FaultError::Transient));
            }
            None
        });
    }
    let all: Vec<u64> = (0..ENTRIES).collect();
    // The first process.
    let rt = runtime();
    let told = rt.block_on(async {
        // A fault while opening ends the process before it took anything.
        let Ok((log, sequencer)) = open(&store).await else {
            return HashMap::new();
        };
        let task = tokio::spawn(sequencer.run());
        let (told, _) = submit_all(&log, &all, crash).await;
        if !crash {
            log.shutdown();
            let _ = task.await;
        }
        told
    });
    drop(rt);
    let hit = fired.load(Ordering::Relaxed);
    store.clear_faults();
    store.set_hook(|_| None);

    // The next process.
    let store = store.restart();
    let rt = runtime();
    rt.block_on(async {
        let (log, sequencer) = open(&store).await.expect("reopen");
        let task = tokio::spawn(sequencer.run());
        // Whatever was never acknowledged, then everything again.
        let missing: Vec<u64> = all
            .iter()
            .copied()
            .filter(|i| !told.contains_key(i))
            .collect();
        let (first, failed) = submit_all(&log, &missing, false).await;
        assert!(
            !failed,
            "target {target}: a submission failed after restart"
        );
        let (again, failed) = submit_all(&log, &all, false).await;
        assert!(
            !failed,
            "target {target}: a resubmission failed after restart"
        );
        for i in &all {
            let original = told.get(i).or(first.get(i)).expect("told");
            assert_eq!(
                again.get(i),
                Some(original),
                "target {target} crash {crash}: entry {i} changed index"
            );
        }
        let size = log.published().checkpoint.size;
        assert_eq!(
            size, ENTRIES,
            "target {target}: the log holds an entry twice"
        );
        log.shutdown();
        task.await.expect("join").expect("sequencer");

        // The published leaves are distinct, and an index opened afresh
        // (after one more flush) agrees with them.
        let storage: Arc<dyn Storage> = Arc::new(store.clone());
        let leaves = stele_sequencer::published::read_leaf_hashes(storage.as_ref(), size)
            .await
            .expect("leaves");
        assert_eq!(leaves.iter().collect::<HashSet<_>>().len() as u64, size);
        let index = DedupIndex::open(storage.clone(), TileCache::new(0), size, config().dedup)
            .await
            .expect("index");
        index.flush().await.expect("flush");
        let index = DedupIndex::open(storage, TileCache::new(0), size, config().dedup)
            .await
            .expect("index");
        assert!(index.indexed_size() >= size - FLUSH);
        for (position, leaf) in leaves.iter().enumerate() {
            assert_eq!(
                index.lookup(leaf).await.expect("lookup"),
                Some(position as u64)
            );
        }
        for i in ENTRIES..ENTRIES + 200 {
            let leaf = stele_tiles::leaf_hash(&entry(i));
            assert_eq!(index.lookup(&leaf).await.expect("lookup"), None);
        }
    });
    hit
}

#[test]
fn every_index_operation_failed_in_turn_then_resubmitted() {
    let operations = index_operations();
    assert!(
        operations > 30,
        "the workload should make the index write runs and merge them ({operations} ops)"
    );
    let mut hits = 0;
    for target in 0..operations {
        if walk(target, false) {
            hits += 1;
        }
    }
    // Flushes run in the background, so the operations do not repeat
    // exactly from walk to walk; most targets must still be met.
    assert!(hits * 2 > operations, "{hits} of {operations} faults fired");
}

#[test]
fn a_crash_at_every_index_operation_then_resubmitted() {
    let operations = index_operations();
    let mut hits = 0;
    for target in 0..operations {
        if walk(target, true) {
            hits += 1;
        }
    }
    assert!(
        hits * 2 > operations,
        "{hits} of {operations} crashes happened"
    );
}
