//! Two `stele serve` processes on the same S3 bucket and prefix, with the
//! same key. The commit is a compare-and-swap on the lock object, so at
//! most one of them commits each lock version: the other finds the lock
//! moved at its next commit, stops without writing, and exits non-zero
//! saying another sequencer has taken over.
//!
//! Each round starts a newcomer beside the sequencer that holds the log and
//! drives the outcome, alternating (the seed picks which comes first):
//!
//! - the newcomer takes over: the incumbent is left idle (no submissions,
//!   none in flight) before the newcomer starts, then the newcomer takes
//!   the load and commits; the incumbent must lose;
//! - the incumbent keeps the log: the newcomer starts while the incumbent
//!   is under load, and the incumbent then commits an entry submitted after
//!   the newcomer started; the newcomer must lose.
//!
//! The loser is then given one entry while the winner is quiet: it must
//! refuse it, exit with the takeover message, and leave every object in
//! the bucket (but its private staging object) exactly as it was; the entry
//! is not in the final log.
//!
//! From the outside, at the end: every entry either process acknowledged
//! is in the final log at its acknowledged index (so no index was given to
//! two entries), every receipt verifies, and every checkpoint ever
//! published, polled from the bucket or inside a receipt, is a prefix of
//! the final log: the log never forked and never went back.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, CheckpointPoller, ServeOptions, Stele, assert_never_rolled_back, log_key};
use stele_e2e::audit::{PublicLog, audit};
use stele_e2e::client::{Client, Submission};
use stele_sequencer::storage::s3::{S3Config, S3Storage, StaticCredentials};
use stele_sequencer::storage::{KeyPrefix, Storage};
use tokio::time::Instant;

/// Longest wait for any one event.
const DEADLINE: Duration = Duration::from_secs(120);

const WORKERS: usize = 32;
/// Rounds, half of each kind.
const ROUNDS: usize = 4;
const TAKEOVER_MESSAGE: &str = "another sequencer has taken over";
/// A sequencer starting on a log that another one is extending may find,
/// while it recovers, that the live one committed since it read the lock
/// object; it then refuses to start with the takeover message, which is the
/// right answer (it must not write). Such a start is retried and counted.
/// Any other failure to start, such as calling the store corrupt, fails the
/// test.
const KNOWN_STARTUP_RACE: Option<&str> = Some(TAKEOVER_MESSAGE);
/// Attempts at restarting a loser while the other sequencer runs.
const START_ATTEMPTS: usize = 10;

#[derive(Debug, Clone)]
struct Acked {
    index: u64,
    entry: Bytes,
    receipt: Bytes,
    /// Which process acknowledged it (0 or 1) and in which incarnation.
    by: (usize, usize),
}

#[derive(Debug, Default)]
struct Load {
    /// URLs of the two processes; `None` while one is down. Each with its
    /// incarnation number.
    urls: RwLock<[Option<(String, usize)>; 2]>,
    /// Processes the workers leave alone.
    hidden: [AtomicBool; 2],
    /// Submissions in flight to each process. A worker counts itself here
    /// before it looks at `hidden`, so once a process is hidden and its
    /// count is 0, nothing reaches it.
    in_flight: [AtomicU64; 2],
    acked: Mutex<Vec<Acked>>,
    stop: AtomicBool,
}

impl Load {
    fn hide(&self, process: usize, hidden: bool) {
        self.hidden[process].store(hidden, Ordering::SeqCst);
    }

    /// Hides `process` and waits until no submission to it is in flight.
    async fn quiesce(&self, process: usize) {
        self.hide(process, true);
        let deadline = Instant::now() + DEADLINE;
        while self.in_flight[process].load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "submissions to process {process} still in flight after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn acked_by(&self, by: (usize, usize)) -> usize {
        let acked = self.acked.lock().expect("acked lock");
        acked.iter().filter(|record| record.by == by).count()
    }

    /// Waits until `by` has acknowledged at least `count` entries; panics
    /// after [`DEADLINE`] or if the process exits.
    async fn wait_for_acks(&self, by: (usize, usize), count: usize, process: &mut Stele) {
        let deadline = Instant::now() + DEADLINE;
        while self.acked_by(by) < count {
            if let Some(status) = process.try_exit() {
                panic!(
                    "process {by:?} exited ({status}) while it should hold the log:\n{}",
                    process.stderr_tail(20)
                );
            }
            assert!(
                Instant::now() < deadline,
                "process {by:?} acknowledged {} entries in {DEADLINE:?}, {count} wanted",
                self.acked_by(by)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Submits each entry to either live process at random until one of them
/// acknowledges it.
async fn worker(worker: u64, seed: u64, load: Arc<Load>, client: Client) {
    let mut rng = fastrand::Rng::with_seed(seed ^ worker.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    while !load.stop.load(Ordering::Relaxed) {
        let mut entry = vec![0u8; 256];
        rng.fill(&mut entry);
        let entry = Bytes::from(entry);
        while !load.stop.load(Ordering::Relaxed) {
            let live: Vec<(usize, String, usize)> = load
                .urls
                .read()
                .expect("urls lock")
                .iter()
                .enumerate()
                .filter(|(process, _)| !load.hidden[*process].load(Ordering::SeqCst))
                .filter_map(|(process, url)| {
                    url.as_ref()
                        .map(|(url, incarnation)| (process, url.clone(), *incarnation))
                })
                .collect();
            if live.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            let (process, url, incarnation) = &live[rng.usize(..live.len())];
            load.in_flight[*process].fetch_add(1, Ordering::SeqCst);
            if load.hidden[*process].load(Ordering::SeqCst) {
                load.in_flight[*process].fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let answer = client.submit(url, entry.clone()).await;
            load.in_flight[*process].fetch_sub(1, Ordering::SeqCst);
            match answer {
                Ok(Submission::Accepted { index, receipt, .. }) => {
                    load.acked.lock().expect("acked lock").push(Acked {
                        index,
                        entry: entry.clone(),
                        receipt,
                        by: (*process, *incarnation),
                    });
                    break;
                }
                Ok(Submission::Rejected { status, message }) => {
                    panic!("a valid entry was refused: {status}: {message}")
                }
                // 503 from a process that lost the log, or a connection
                // it closed while exiting: try again, maybe elsewhere.
                Ok(Submission::Busy { .. }) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

/// Every object under the log's prefix but the private ones that a quiet
/// sequencer may still write or that a loser writes before its commit
/// fails (staging objects, the digest index's progress marker, the
/// deduplication index: a flush the loser started before it lost the log
/// may still finish; its runs are a function of the log, its manifest
/// write is conditional, and the winner takes whatever it finds), with its
/// bytes.
async fn bucket_objects(store: &S3Storage) -> BTreeMap<String, Bytes> {
    let keys = store
        .list(&KeyPrefix::new("").expect("the empty prefix"))
        .await
        .expect("list the bucket");
    let mut objects = BTreeMap::new();
    for key in keys {
        let path = key.as_str();
        // Private working state, and the statistics and history derived
        // from the published log: either process may bring those up to
        // date from what is published (the summary only ever moves
        // forward, written conditionally), which changes no entry of it.
        if path.starts_with(".stele/staging/")
            || path.starts_with(".stele/dedup/")
            || path == ".stele/index-size"
            || path.starts_with("stats/")
            || path.starts_with("history/")
        {
            continue;
        }
        let object = store
            .get(&key)
            .await
            .expect("read the bucket")
            .expect("a listed object exists");
        objects.insert(path.to_owned(), object.bytes);
    }
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sequencers_on_one_bucket_never_fork() {
    let Some(server) = tokio::task::spawn_blocking(common::seaweed::shared)
        .await
        .expect("start SeaweedFS")
    else {
        return;
    };
    let seed = common::seed("takeover");
    let started = Instant::now();
    let backend = Backend::s3(server, "takeover");
    let Backend::S3 { prefix, .. } = &backend else {
        unreachable!("an S3 backend")
    };
    let store = S3Storage::connect(S3Config {
        endpoint_url: Some(server.endpoint.clone()),
        force_path_style: true,
        key_prefix: format!("{prefix}/"),
        credentials: Some(StaticCredentials {
            access_key_id: common::seaweed::ACCESS_KEY_ID.into(),
            secret_access_key: server.secret_access_key.clone(),
        }),
        ..S3Config::new(common::seaweed::BUCKET)
    })
    .await;
    let folder = tempfile::tempdir().expect("temp folder");
    // One key for both processes, as an operator would deploy a standby.
    let key_folder = folder.path().join("key");
    let keygen = std::process::Command::new(common::stele_binary())
        .args(["keygen", "--origin", "e2e.example/takeover", "--out"])
        .arg(&key_folder)
        .output()
        .expect("run stele keygen");
    assert!(keygen.status.success(), "stele keygen: {keygen:?}");
    let key = log_key(&key_folder);
    let options: [ServeOptions; 2] = ["a", "b"].map(|name| {
        let data = folder.path().join(name);
        std::fs::create_dir_all(&data).expect("data folder");
        ServeOptions {
            data,
            backend: backend.clone(),
            max_batch: 256,
            batch_interval: "10ms",
            key: Some(key_folder.join("log.key")),
            origin: None,
            history_interval: None,
        }
    });
    let client = Client::new(WORKERS, Duration::from_secs(30));
    let public_base = backend.public_base(None).expect("bucket URL");
    let public = PublicLog::new(client.clone(), &public_base);

    // A creates the log and holds it.
    let mut processes: [Option<Stele>; 2] = [Some(Stele::start(&options[0], "a-0")), None];
    let mut incarnations = [0usize, 0];
    let load = Arc::new(Load::default());
    load.urls.write().expect("urls lock")[0] =
        Some((processes[0].as_ref().expect("a").url.clone(), 0));
    let poller = CheckpointPoller::start(
        client.clone(),
        key.clone(),
        move || Some((public_base.clone(), 0)),
        Duration::from_millis(20),
    );
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|id| tokio::spawn(worker(id, seed, load.clone(), client.clone())))
        .collect();
    load.wait_for_acks((0, 0), 20, processes[0].as_mut().expect("a"))
        .await;

    let mut rounds: Vec<&str> = Vec::new();
    let mut startup_races = 0;
    let mut refused_probes: Vec<Bytes> = Vec::new();
    let first_kind = fastrand::Rng::with_seed(seed).usize(0..2);
    let mut incumbent = 0;
    for round in 0..ROUNDS {
        let newcomer = 1 - incumbent;
        let newcomer_wins = (round + first_kind) % 2 == 0;
        if round > 0 {
            incarnations[newcomer] += 1;
        }
        let name = format!("{}-{}", ["a", "b"][newcomer], incarnations[newcomer]);
        let by_newcomer = (newcomer, incarnations[newcomer]);
        let by_incumbent = (incumbent, incarnations[incumbent]);
        // The newcomer starts hidden from the workers.
        load.hide(newcomer, true);
        if newcomer_wins {
            // The incumbent idles from before the newcomer reads the lock.
            load.quiesce(incumbent).await;
        }
        let newcomer_process = tokio::task::block_in_place(|| {
            start_beside_a_live_sequencer(&options[newcomer], &name, &mut startup_races)
        });
        load.urls.write().expect("urls lock")[newcomer] =
            Some((newcomer_process.url.clone(), incarnations[newcomer]));
        processes[newcomer] = Some(newcomer_process);

        let (winner, loser) = if newcomer_wins {
            // The load goes to the newcomer, which commits first.
            load.hide(newcomer, false);
            let process = processes[newcomer].as_mut().expect("the newcomer");
            load.wait_for_acks(by_newcomer, 1, process).await;
            (newcomer, incumbent)
        } else {
            // The incumbent commits an entry submitted after the newcomer
            // read the lock.
            let url = &processes[incumbent].as_ref().expect("the incumbent").url;
            let entry = Bytes::from(format!("round {round}: the incumbent commits").into_bytes());
            match client.submit(url, entry.clone()).await {
                Ok(Submission::Accepted { index, receipt, .. }) => {
                    load.acked.lock().expect("acked lock").push(Acked {
                        index,
                        entry,
                        receipt,
                        by: by_incumbent,
                    });
                }
                other => panic!("round {round}: the incumbent did not take an entry: {other:?}"),
            }
            (incumbent, newcomer)
        };

        // The winner goes quiet; the loser is given one entry.
        load.quiesce(winner).await;
        load.quiesce(loser).await;
        let before = bucket_objects(&store).await;
        let probe = Bytes::from(format!("round {round}: given to the loser").into_bytes());
        let loser_url = processes[loser].as_ref().expect("the loser").url.clone();
        let answer = client.submit(&loser_url, probe.clone()).await;
        assert!(
            !matches!(answer, Ok(Submission::Accepted { .. })),
            "round {round}: the sequencer that lost the log acknowledged an entry: {answer:?}"
        );
        let mut lost = processes[loser].take().expect("the loser");
        let status = lost
            .wait_exit(DEADLINE)
            .unwrap_or_else(|| panic!("round {round}: the loser did not exit"));
        load.urls.write().expect("urls lock")[loser] = None;
        assert!(
            !status.success(),
            "round {round}: the sequencer that lost the log exited with {status}"
        );
        assert!(
            lost.stderr().contains(TAKEOVER_MESSAGE),
            "round {round}: the losing sequencer's stderr does not say {TAKEOVER_MESSAGE:?}:\n{}",
            lost.stderr_tail(20)
        );
        let after = bucket_objects(&store).await;
        assert!(
            before == after,
            "round {round}: the bucket changed while only the loser ran: {:?}",
            before
                .keys()
                .chain(after.keys())
                .filter(|path| before.get(*path) != after.get(*path))
                .collect::<BTreeSet<_>>()
        );
        refused_probes.push(probe);
        rounds.push(if newcomer_wins {
            "newcomer took over"
        } else {
            "incumbent kept the log"
        });

        // The winner takes the load again and goes on acknowledging.
        let by_winner = (winner, incarnations[winner]);
        let acked = load.acked_by(by_winner);
        load.hide(winner, false);
        let process = processes[winner].as_mut().expect("the winner");
        load.wait_for_acks(by_winner, acked + 50, process).await;
        incumbent = winner;
    }
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    let acked = load.acked.lock().expect("acked lock").clone();
    let audited = audit(&public, &key).await.expect("the final log audits");
    poller
        .wait_for_size(audited.checkpoint.size, DEADLINE)
        .await;
    let polled = poller.finish().await;
    polled.assert_clean();
    let polled_count = polled.checkpoints.len();
    let polled = polled.checkpoints;
    let mut receipt_checkpoints = HashSet::new();
    let mut acked_by = [0usize; 2];
    for record in &acked {
        audited
            .check_entry(record.index, &record.entry)
            .unwrap_or_else(|err| panic!("acknowledged by {:?}: {err}", record.by));
        let receipt = key
            .verify_receipt(&record.entry, &record.receipt)
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(receipt.index, record.index);
        receipt_checkpoints.insert(Bytes::from(receipt.checkpoint));
        acked_by[record.by.0] += 1;
    }
    for probe in &refused_probes {
        assert!(
            !audited.entries.contains(probe),
            "an entry only a losing sequencer was given is in the log"
        );
    }
    let repeats = audited.repeated_entries();
    assert!(repeats.is_empty(), "entries logged twice: {repeats:?}");
    assert_never_rolled_back(&key, &polled);
    let mut history = polled.clone();
    history.extend(receipt_checkpoints);
    let report = audited
        .check_history(&public, &key, &history, true)
        .await
        .expect("every checkpoint ever seen is a prefix of the final log");

    for (slot, process) in processes.iter_mut().enumerate() {
        if let Some(process) = process {
            let status = process
                .terminate(Duration::from_secs(30))
                .expect("the survivor exits after SIGTERM");
            assert!(
                status.success(),
                "SIGTERM: process {slot} exited with {status}:\n{}",
                process.stderr_tail(20)
            );
        }
    }
    if startup_races > 0 {
        eprintln!(
            "takeover: {startup_races} restarts refused to start because the live sequencer \
             committed meanwhile (see KNOWN_STARTUP_RACE)"
        );
    }
    eprintln!(
        "takeover: rounds {rounds:?}; {} acknowledged ({} by a, {} by b); final size \
         {}; {} polled checkpoints; {} earlier sizes, {} partial tiles checked; {:.1} s",
        acked.len(),
        acked_by[0],
        acked_by[1],
        audited.checkpoint.size,
        polled_count,
        report.sizes_checked,
        report.partial_tiles_checked,
        started.elapsed().as_secs_f64()
    );
}

/// Starts a sequencer on a log another one is extending. It must either
/// start (and later lose or win the lock) or, while [`KNOWN_STARTUP_RACE`]
/// is set, fail with that message, which is retried.
fn start_beside_a_live_sequencer(options: &ServeOptions, name: &str, races: &mut usize) -> Stele {
    for attempt in 0..START_ATTEMPTS {
        match Stele::try_start(options, &format!("{name}-attempt-{attempt}")) {
            Ok(stele) => return stele,
            Err(failed) => match KNOWN_STARTUP_RACE {
                Some(race) if failed.stderr.contains(race) => *races += 1,
                _ => panic!(
                    "{name}: stele serve exited with {} before listening; its stderr:\n{}",
                    failed.status, failed.stderr_tail
                ),
            },
        }
    }
    panic!("{name}: did not start beside the live sequencer in {START_ATTEMPTS} attempts")
}
