//! The real `stele serve` under load, killed with SIGKILL at random moments
//! and restarted on the same data, many times, on the filesystem backend and
//! on S3 (SeaweedFS). Each kill comes once the running process has
//! acknowledged a random number of entries (so it lands under load, with
//! submissions in flight), never after a fixed time: the test measures no
//! speed. Nothing acknowledged may be lost:
//!
//! - after each restart, the log's public checkpoint covers every entry
//!   acknowledged so far, and acknowledged entries submitted again get their
//!   original index (deduplication survives the crash);
//! - at the end, the whole log is read back over HTTP (checkpoint, every
//!   bundle, every tile) and recomputed: every acknowledged entry is at its
//!   acknowledged index, every receipt verifies offline, no entry appears
//!   twice (submitters resend what was in flight at a kill), and every
//!   checkpoint seen on the way, polled or in a receipt, is a prefix of the
//!   final log, whose public checkpoint never went back; a background poller
//!   read the public checkpoint throughout, saw every incarnation's
//!   checkpoints, and never failed while the sequencer was up;
//! - a final SIGTERM drains and exits 0.
//!
//! Batches are small beside the load (16 entries, 64 submitters), so the
//! commit pipeline is full when a kill lands: one batch being published
//! while the next is staged or committed. The sequencer's
//! `stele_pipelined_batches_total`, read before each kill, shows it was.
//!
//! The kill moments come from a seeded RNG; the seed is printed, and
//! `STELE_E2E_SEED` replays it.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, CheckpointPoller, ServeOptions, Stele, assert_never_rolled_back, log_key};

/// Longest wait for any one event (the next acknowledgement, a checkpoint
/// the poller should see); far above what a slow machine needs.
const DEADLINE: Duration = Duration::from_secs(120);
use stele_e2e::audit::{PublicLog, audit};
use stele_e2e::client::{Client, Submission};
use tokio::time::Instant;

/// Submissions in flight at once.
const WORKERS: usize = 64;
/// SIGKILLs per test.
const KILLS: usize = 9;
/// Before each kill, the running process acknowledges a random number of
/// entries in `1..=ACKS_BEFORE_KILL`; after the last restart, this many.
const ACKS_BEFORE_KILL: usize = 400;
/// Most new entries per batch: a quarter of the submitters, so that batches
/// queue up behind one another and the pipeline is full.
const MAX_BATCH: usize = 16;
/// Entries submitted again after each restart, to check deduplication.
const RESUBMITTED_PER_RESTART: usize = 8;
const ENTRY_SIZE: usize = 256;

/// An acknowledged submission.
#[derive(Debug, Clone)]
struct Acked {
    index: u64,
    entry: Bytes,
    receipt: Bytes,
}

/// What the workers share with the test.
#[derive(Debug, Default)]
struct Load {
    /// URL of the running sequencer and its incarnation; `None` while it is
    /// down (set before the kill, so that workers and the poller know).
    url: RwLock<Option<(String, u64)>>,
    /// Submissions sent and not yet answered.
    in_flight: AtomicU64,
    acked: Mutex<Vec<Acked>>,
    acked_count: AtomicU64,
    /// Transport errors: connections refused or cut by a kill.
    errors: AtomicU64,
    busy: AtomicU64,
    /// Answers other than 200 and 503; a correct log gives none here.
    refused: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn url(&self) -> Option<String> {
        self.target().map(|(url, _)| url)
    }

    fn target(&self) -> Option<(String, u64)> {
        self.url.read().expect("url lock").clone()
    }

    fn set_url(&self, url: Option<(String, u64)>) {
        *self.url.write().expect("url lock") = url;
    }

    fn acked(&self) -> usize {
        self.acked_count.load(Ordering::Relaxed) as usize
    }

    /// Waits until at least `count` entries are acknowledged in all; panics
    /// if the sequencer acknowledges nothing new for [`DEADLINE`].
    async fn wait_for_acks(&self, count: usize, stele: &mut Stele, what: &str) {
        let mut last = self.acked();
        let mut progress = Instant::now();
        while self.acked() < count {
            if let Some(status) = stele.try_exit() {
                panic!(
                    "{what}: stele exited ({status}) under load:\n{}",
                    stele.stderr_tail(20)
                );
            }
            if self.acked() > last {
                last = self.acked();
                progress = Instant::now();
            }
            assert!(
                progress.elapsed() < DEADLINE,
                "{what}: no acknowledgement for {DEADLINE:?} ({} so far, {} errors, {} 503s); \
                 stderr:\n{}",
                self.acked(),
                self.errors.load(Ordering::Relaxed),
                self.busy.load(Ordering::Relaxed),
                stele.stderr_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Submits random entries one after the other, resending an entry until it
/// is acknowledged: an entry in flight at a kill may already be logged, and
/// the restarted sequencer must then answer its original index.
async fn worker(worker: u64, seed: u64, load: Arc<Load>, client: Client) {
    let mut rng = fastrand::Rng::with_seed(seed ^ worker.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    while !load.stop.load(Ordering::Relaxed) {
        let mut entry = vec![0u8; ENTRY_SIZE];
        rng.fill(&mut entry);
        let entry = Bytes::from(entry);
        loop {
            if load.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(url) = load.url() else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            load.in_flight.fetch_add(1, Ordering::Relaxed);
            let answer = client.submit(&url, entry.clone()).await;
            load.in_flight.fetch_sub(1, Ordering::Relaxed);
            match answer {
                Ok(Submission::Accepted { index, receipt, .. }) => {
                    load.acked.lock().expect("acked lock").push(Acked {
                        index,
                        entry,
                        receipt,
                    });
                    load.acked_count.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Submission::Busy { retry_after, .. }) => {
                    load.busy.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                }
                Ok(Submission::Rejected { status, message }) => {
                    load.refused
                        .lock()
                        .expect("refused lock")
                        .push(format!("{status}: {message}"));
                    break;
                }
                Err(_) => {
                    load.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

async fn kill9_under_load(test: &str, backend: Backend) {
    let seed = common::seed(test);
    let mut rng = fastrand::Rng::with_seed(seed);
    let folder = tempfile::tempdir().expect("temp folder");
    let options = ServeOptions {
        data: folder.path().join("data"),
        backend: backend.clone(),
        max_batch: MAX_BATCH,
        batch_interval: "10ms",
        key: None,
        origin: Some(format!("e2e.example/{test}")),
        history_interval: None,
    };
    std::fs::create_dir_all(&options.data).expect("data folder");
    let client = Client::new(WORKERS, Duration::from_secs(30));
    let started = Instant::now();

    let mut stele = Stele::start(&options, "run-0");
    let key = log_key(&options.data);
    let load = Arc::new(Load::default());
    load.set_url(Some((stele.url.clone(), 0)));
    let poller = CheckpointPoller::start(
        client.clone(),
        key.clone(),
        {
            let load = load.clone();
            let backend = backend.clone();
            move || match &backend {
                // The sequencer serves the log: it goes away at a kill.
                Backend::Filesystem => load.target(),
                // The bucket serves it, and stays.
                Backend::S3 { .. } => backend.public_base(None).map(|base| (base, 0)),
            }
        },
        Duration::from_millis(20),
    );
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|id| tokio::spawn(worker(id, seed, load.clone(), client.clone())))
        .collect();

    let mut acked_at_kills = Vec::new();
    let mut in_flight_at_kills = Vec::new();
    let mut pipelined_at_kills = Vec::new();
    for kill in 1..=KILLS {
        // Under load: the running process has acknowledged a random number
        // of entries, and the workers keep submitting.
        let wanted = load.acked() + rng.usize(1..=ACKS_BEFORE_KILL);
        load.wait_for_acks(wanted, &mut stele, &format!("before kill {kill}"))
            .await;
        pipelined_at_kills.push(pipelined_batches(&client, &stele.url).await);
        load.set_url(None);
        in_flight_at_kills.push(load.in_flight.load(Ordering::Relaxed));
        let status = stele.kill9();
        assert!(!status.success(), "a SIGKILLed stele exited with {status}");
        let acked_so_far: Vec<Acked> = load.acked.lock().expect("acked lock").clone();
        acked_at_kills.push(acked_so_far.len());

        stele = tokio::task::block_in_place(|| Stele::start(&options, &format!("run-{kill}")));
        // Recovery happens before the sequencer listens: by now the public
        // checkpoint covers everything acknowledged before the kill.
        let public = PublicLog::new(
            client.clone(),
            &backend.public_base(Some(&stele.url)).expect("public base"),
        );
        let checkpoint = public
            .checkpoint_bytes()
            .await
            .expect("read the checkpoint after a restart")
            .map(|bytes| key.open_checkpoint(&bytes).expect("checkpoint verifies"));
        let covered = checkpoint.map_or(0, |checkpoint| checkpoint.size);
        if let Some(highest) = acked_so_far.iter().map(|acked| acked.index).max() {
            assert!(
                highest < covered,
                "kill {kill}: index {highest} was acknowledged, but after the restart the \
                 checkpoint covers only {covered} entries"
            );
        }
        // Acknowledged entries submitted again keep their index.
        for _ in 0..RESUBMITTED_PER_RESTART.min(acked_so_far.len()) {
            let acked = &acked_so_far[rng.usize(..acked_so_far.len())];
            match client.submit(&stele.url, acked.entry.clone()).await {
                Ok(Submission::Accepted {
                    index, duplicate, ..
                }) => {
                    assert_eq!(
                        index, acked.index,
                        "kill {kill}: an entry acknowledged at {} was given {index} when \
                         submitted again after the restart",
                        acked.index
                    );
                    assert!(
                        duplicate,
                        "kill {kill}: a resubmission was not marked duplicate"
                    );
                }
                other => panic!(
                    "kill {kill}: resubmitting the entry acknowledged at {} got {other:?}",
                    acked.index
                ),
            }
        }
        load.set_url(Some((stele.url.clone(), kill as u64)));
        // The poller reads this incarnation's log too.
        poller.wait_for_size(covered, DEADLINE).await;
        if matches!(backend, Backend::Filesystem) {
            poller.wait_for_answer_from(kill as u64, DEADLINE).await;
        }
    }

    let wanted = load.acked() + ACKS_BEFORE_KILL;
    load.wait_for_acks(wanted, &mut stele, "after the last restart")
        .await;
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let load_time = started.elapsed();

    let acked = load.acked.lock().expect("acked lock").clone();
    let refused = load.refused.lock().expect("refused lock").clone();
    assert!(
        pipelined_at_kills.iter().sum::<u64>() > 0,
        "no batch was ever staged and committed while another was being published: \
         {pipelined_at_kills:?}"
    );
    assert!(
        refused.is_empty(),
        "valid submissions were refused: {refused:?}"
    );

    // The whole log, from the outside, over HTTP.
    let public = PublicLog::new(
        client.clone(),
        &backend.public_base(Some(&stele.url)).expect("public base"),
    );
    let audited = audit(&public, &key).await.expect("the final log audits");
    // The poller saw the final log too, and nothing went wrong on its side.
    poller
        .wait_for_size(audited.checkpoint.size, DEADLINE)
        .await;
    let polled = poller.finish().await;
    polled.assert_clean();
    let polled_sizes = polled.checkpoints.len();
    let polled = polled.checkpoints;
    let mut receipt_checkpoints = HashSet::new();
    for record in &acked {
        audited
            .check_entry(record.index, &record.entry)
            .unwrap_or_else(|err| panic!("{err}"));
        let receipt = key
            .verify_receipt(&record.entry, &record.receipt)
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(receipt.index, record.index, "receipt index vs X-Log-Index");
        receipt_checkpoints.insert(Bytes::from(receipt.checkpoint));
    }
    let repeats = audited.repeated_entries();
    assert!(
        repeats.is_empty(),
        "{} entries are in the log twice (first, second index): {:?}",
        repeats.len(),
        &repeats[..repeats.len().min(10)]
    );
    assert_never_rolled_back(&key, &polled);
    let mut history: Vec<Bytes> = polled.clone();
    history.extend(receipt_checkpoints.iter().cloned());
    let report = audited
        .check_history(&public, &key, &history, true)
        .await
        .expect("every checkpoint seen is a prefix of the final log");

    let status = stele
        .terminate(Duration::from_secs(30))
        .expect("stele exits after SIGTERM");
    assert!(
        status.success(),
        "SIGTERM: stele exited with {status}; stderr:\n{}",
        stele.stderr_tail(20)
    );
    eprintln!(
        "{test}: {KILLS} kills, {} acknowledged (so far at each kill: {acked_at_kills:?}; \
         in flight at each kill: {in_flight_at_kills:?}), \
         batches pipelined before each kill: {pipelined_at_kills:?}, \
         {} transport errors, {} 503s, final size {}, {} hash tiles and {} bundles compared, \
         {} earlier sizes and {} partial tiles checked, {} polled checkpoints, load {:.1} s, \
         total {:.1} s",
        acked.len(),
        load.errors.load(Ordering::Relaxed),
        load.busy.load(Ordering::Relaxed),
        audited.checkpoint.size,
        audited.hash_tiles_checked,
        audited.bundles_checked,
        report.sizes_checked,
        report.partial_tiles_checked,
        polled_sizes,
        load_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// `stele_pipelined_batches_total` of the running sequencer (0 if it cannot
/// be read: the assertion on the sum says so).
async fn pipelined_batches(client: &Client, url: &str) -> u64 {
    let Ok(fetched) = client.get(&format!("{url}/metrics")).await else {
        return 0;
    };
    String::from_utf8_lossy(&fetched.body)
        .lines()
        .find_map(|line| line.strip_prefix("stele_pipelined_batches_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_loses_nothing_on_the_filesystem() {
    kill9_under_load("kill9-fs", Backend::Filesystem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_loses_nothing_on_s3() {
    let Some(server) = tokio::task::spawn_blocking(common::seaweed::shared)
        .await
        .expect("start SeaweedFS")
    else {
        return;
    };
    kill9_under_load("kill9-s3", Backend::s3(server, "kill9")).await;
}
