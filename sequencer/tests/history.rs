//! The checkpoint history (sequencer/src/history.rs) against a naive model:
//! entries logged hour by hour on a clock the test sets, across a change of
//! year, with storage faults at each write of a step.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use stele_rekor::history::{Buckets, Snapshot, parse_year, snapshot_path, year_path};
use stele_sequencer::history::{Recorder, Step};
use stele_sequencer::storage::memory::{Fault, FaultError, FaultRule, MemoryStorage, Op};
use stele_sequencer::storage::{Key, Storage};
use stele_sequencer::{Log, LogConfig};
use stele_tiles::checkpoint::open_checkpoint;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use tokio::task::JoinHandle;

const ORIGIN: &str = "test.example/history";

struct Running {
    log: Log,
    task: JoinHandle<Result<(), stele_sequencer::Error>>,
    verifier: Arc<Ed25519Verifier>,
    now: Arc<AtomicU64>,
    recorder: Recorder,
    submitted: Vec<Vec<u8>>,
}

fn at(text: &str) -> u64 {
    humantime::parse_rfc3339(text)
        .expect("valid")
        .duration_since(UNIX_EPOCH)
        .expect("valid")
        .as_secs()
}

async fn open(store: &MemoryStorage, start: u64) -> Running {
    let signer = Arc::new(Ed25519Signer::from_seed(ORIGIN, &[7u8; 32]).expect("key"));
    let verifier = Arc::new(signer.verifier());
    let (log, sequencer) = Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        verifier.clone() as Arc<dyn NoteVerifier>,
        LogConfig {
            origin: ORIGIN.into(),
            batch_interval: Duration::from_millis(1),
            ..LogConfig::default()
        },
        Default::default(),
    )
    .await
    .expect("open");
    let now = Arc::new(AtomicU64::new(start));
    let clock = {
        let now = now.clone();
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst)))
            as stele_sequencer::history::Clock
    };
    let recorder = Recorder::with_clock(log.clone(), Duration::from_secs(3600), clock);
    Running {
        log,
        task: tokio::spawn(sequencer.run()),
        verifier,
        now,
        recorder,
        submitted: Vec::new(),
    }
}

impl Running {
    async fn log_entries(&mut self, count: usize) {
        for _ in 0..count {
            let entry = format!("history entry {}", self.submitted.len()).into_bytes();
            self.log.submit(entry.clone()).await.expect("submit");
            self.submitted.push(entry);
        }
    }

    async fn stop(self) {
        self.log.shutdown();
        self.task.await.expect("join").expect("sequencer");
    }
}

/// RFC 6962's Merkle tree hash, written out naively.
fn mth(entries: &[Vec<u8>]) -> [u8; 32] {
    match entries.len() {
        0 => Sha256::digest(b"").into(),
        1 => Sha256::new()
            .chain_update([0u8])
            .chain_update(&entries[0])
            .finalize()
            .into(),
        n => {
            let k = n.next_power_of_two() / 2;
            Sha256::new()
                .chain_update([1u8])
                .chain_update(mth(&entries[..k]))
                .chain_update(mth(&entries[k..]))
                .finalize()
                .into()
        }
    }
}

async fn get(store: &MemoryStorage, path: &str) -> Option<Vec<u8>> {
    store
        .get(&Key::new(path).expect("valid"))
        .await
        .expect("valid")
        .map(|object| object.bytes.to_vec())
}

async fn year(store: &MemoryStorage, year: u32) -> Vec<Snapshot> {
    match get(store, &year_path(year)).await {
        Some(bytes) => parse_year(year, &bytes).expect("a well-formed list"),
        None => Vec::new(),
    }
}

async fn stats(store: &MemoryStorage, path: &str) -> Buckets {
    serde_json::from_slice(&get(store, path).await.expect(path)).expect("statistics")
}

/// Every listed snapshot is the log's signed checkpoint of the first
/// `tree_size` entries (its root recomputed naively).
async fn check_snapshots(running: &Running, store: &MemoryStorage, listed: &[Snapshot]) {
    for snapshot in listed {
        let bytes = get(store, &snapshot_path(snapshot.tree_size))
            .await
            .expect("the snapshot of every listed size");
        let (checkpoint, _) =
            open_checkpoint(&bytes, ORIGIN, running.verifier.as_ref()).expect("signed");
        assert_eq!(checkpoint.size, snapshot.tree_size);
        assert_eq!(
            checkpoint.root.as_bytes(),
            &mth(&running.submitted[..snapshot.tree_size as usize])
        );
    }
}

#[tokio::test]
async fn hour_by_hour_across_a_new_year() {
    let store = MemoryStorage::new();
    let start = at("2026-12-31T19:00:17Z");
    let mut running = open(&store, start).await;
    // Entries logged before each hourly step; 0 is an idle hour.
    let per_hour = [3, 0, 5, 1, 0, 0, 7, 2];
    // The first step lists the empty tree: the history's baseline.
    assert_eq!(
        running.recorder.step().await.expect("step"),
        Step::Listed(0)
    );
    let mut model = vec![Snapshot {
        time: start,
        tree_size: 0,
    }];
    for (hour, count) in per_hour.iter().enumerate() {
        running.log_entries(*count).await;
        let now = start + 3600 * (hour as u64 + 1);
        running.now.store(now, Ordering::SeqCst);
        let size = running.submitted.len() as u64;
        let step = running.recorder.step().await.expect("step");
        if model.last().map_or(0, |last| last.tree_size) < size {
            assert_eq!(step, Step::Listed(size));
            model.push(Snapshot {
                time: now,
                tree_size: size,
            });
        } else {
            assert_eq!(step, Step::Unchanged);
        }
        // Each step rewrites the statistics; they always name the last
        // snapshot's size and the entries of each hour.
        let hourly = stats(&store, "stats/v1/hourly.json").await;
        assert_eq!(hourly.tree_size, model.last().map_or(0, |s| s.tree_size));
        let counted: u64 = hourly.buckets.iter().map(|bucket| bucket.entries).sum();
        assert_eq!(counted, hourly.tree_size);
    }
    let (old, new): (Vec<Snapshot>, Vec<Snapshot>) = model
        .iter()
        .partition(|snapshot| snapshot.time < at("2027-01-01T00:00:00Z"));
    assert_eq!(year(&store, 2026).await, old);
    assert_eq!(year(&store, 2027).await, new);
    assert!(!old.is_empty() && !new.is_empty());
    check_snapshots(&running, &store, &model).await;

    // The hourly buckets are exactly the entries logged before each step,
    // each step falling in the hour after the one they were logged in.
    let hourly = stats(&store, "stats/v1/hourly.json").await;
    assert_eq!(hourly.buckets.len(), 168);
    let last_hours: Vec<u64> = hourly.buckets[168 - per_hour.len()..]
        .iter()
        .map(|bucket| bucket.entries)
        .collect();
    assert_eq!(last_hours, per_hour.map(|n| n as u64));
    assert_eq!(
        hourly.buckets.last().expect("valid").start,
        "2027-01-01T03:00:00Z"
    );
    // By day: what was logged up to 2026-12-31T23:59:59, and after.
    let daily = stats(&store, "stats/v1/daily.json").await;
    let days: Vec<(&str, u64)> = daily.buckets[364..]
        .iter()
        .map(|bucket| (bucket.start.as_str(), bucket.entries))
        .collect();
    let before_midnight: u64 = old.last().expect("valid").tree_size;
    assert_eq!(
        days,
        [
            ("2026-12-31T00:00:00Z", before_midnight),
            ("2027-01-01T00:00:00Z", 18 - before_midnight)
        ]
    );

    // A clock set back does not break the lists' order: it waits.
    running.log_entries(1).await;
    let last = model.last().expect("valid").time;
    running.now.store(last - 100, Ordering::SeqCst);
    assert_eq!(
        running.recorder.step().await.expect("step"),
        Step::Unchanged
    );
    assert_eq!(year(&store, 2027).await, new);
    running.now.store(last + 1, Ordering::SeqCst);
    assert_eq!(
        running.recorder.step().await.expect("step"),
        Step::Listed(19)
    );
    running.stop().await;
}

/// Each write of a step fails in turn (before and after the store applied
/// it); the next step repairs what the failed one left, with no line
/// missing, doubled or out of order.
#[tokio::test]
async fn a_failed_write_is_repaired_by_the_next_step() {
    for path in [
        "history/checkpoint/",
        "history/2026",
        "stats/v1/hourly.json",
    ] {
        for fault in [
            Fault::Fail(FaultError::Transient),
            Fault::FailAfterWrite(FaultError::Transient),
        ] {
            let store = MemoryStorage::new();
            let start = at("2026-06-01T10:00:00Z");
            let mut running = open(&store, start).await;
            running.log_entries(4).await;
            store.inject(
                FaultRule::new(fault.clone())
                    .op(Op::Put)
                    .key_prefix(path)
                    .times(1),
            );
            assert!(
                running.recorder.step().await.is_err(),
                "{path} {fault:?}: the fault surfaces"
            );
            running.log_entries(2).await;
            running.now.store(start + 60, Ordering::SeqCst);
            let step = running.recorder.step().await.expect("step");
            let listed = year(&store, 2026).await;
            // The list holds the first step's line if the list's write
            // reached the store (the statistics come after it), then the
            // second step's.
            let first_listed = path == "stats/v1/hourly.json"
                || (path == "history/2026" && matches!(fault, Fault::FailAfterWrite(_)));
            let mut want = Vec::new();
            if first_listed {
                want.push(Snapshot {
                    time: start,
                    tree_size: 4,
                });
            }
            want.push(Snapshot {
                time: start + 60,
                tree_size: 6,
            });
            assert_eq!(listed, want, "{path} {fault:?}");
            assert_eq!(step, Step::Listed(6));
            check_snapshots(&running, &store, &listed).await;
            let hourly = stats(&store, "stats/v1/hourly.json").await;
            assert_eq!(hourly.tree_size, 6, "{path} {fault:?}");
            running.stop().await;
        }
    }
}

/// On the first day of a year, the daily window (366 days) starts on the
/// first day of the year before, so its first bucket counts from the last
/// snapshot two years back: that snapshot must be read, or the whole tree
/// is counted as growth inside the window.
#[tokio::test]
async fn the_daily_window_counts_from_two_years_back() {
    let store = MemoryStorage::new();
    let mut running = open(&store, at("2024-12-31T12:00:00Z")).await;
    let mut model: Vec<Snapshot> = Vec::new();
    for (time, count) in [
        ("2024-12-31T12:00:00Z", 3),
        ("2025-06-01T12:00:00Z", 2),
        ("2026-01-01T00:30:00Z", 1),
    ] {
        running.log_entries(count).await;
        running.now.store(at(time), Ordering::SeqCst);
        let size = running.submitted.len() as u64;
        assert_eq!(
            running.recorder.step().await.expect("step"),
            Step::Listed(size)
        );
        model.push(Snapshot {
            time: at(time),
            tree_size: size,
        });
    }
    let daily = stats(&store, "stats/v1/daily.json").await;
    assert_eq!(daily.tree_size, 6);
    assert_eq!(daily.buckets[0].start, "2025-01-01T00:00:00Z");
    // Naively: a day's entries are the growth of the snapshots taken that
    // day over the one before each.
    let mut want = Vec::new();
    for bucket in &daily.buckets {
        let start = at(&bucket.start);
        let mut entries = 0;
        let mut previous = 0;
        for snapshot in &model {
            if (start..start + 86_400).contains(&snapshot.time) {
                entries += snapshot.tree_size - previous;
            }
            previous = snapshot.tree_size;
        }
        want.push(entries);
    }
    let got: Vec<u64> = daily.buckets.iter().map(|bucket| bucket.entries).collect();
    assert_eq!(got, want);
    assert_eq!(got.iter().sum::<u64>(), 3);
    running.stop().await;
}
