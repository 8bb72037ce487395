//! Two `stele serve` processes on the same S3 bucket and prefix, with the
//! same key, both taking submissions. The commit is a compare-and-swap on
//! the lock object, so at most one of them commits each lock version: the
//! other finds the lock moved, stops without writing, and exits non-zero
//! saying another sequencer has taken over. The loser is restarted on the
//! same bucket (it recovers and competes again) for several rounds.
//!
//! From the outside: every entry either process acknowledged is in the
//! final log at its acknowledged index (so no index was given to two
//! entries), every receipt verifies, and every checkpoint ever published,
//! polled from the bucket or inside a receipt, is a prefix of the final log:
//! the log never forked and never went back.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, CheckpointPoller, ServeOptions, Stele, assert_never_rolled_back, log_key};
use stele_e2e::audit::{PublicLog, audit};
use stele_e2e::client::{Client, Submission};
use tokio::time::Instant;

const WORKERS: usize = 32;
/// Takeovers to see.
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
    /// Processes the workers leave alone for a while.
    hidden: [AtomicBool; 2],
    acked: Mutex<Vec<Acked>>,
    stop: AtomicBool,
}

impl Load {
    fn hide(&self, process: usize, hidden: bool) {
        self.hidden[process].store(hidden, Ordering::Relaxed);
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
                .filter(|(process, _)| !load.hidden[*process].load(Ordering::Relaxed))
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
            match client.submit(url, entry.clone()).await {
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
        }
    });
    let client = Client::new(WORKERS, Duration::from_secs(30));
    let public_base = backend.public_base(None).expect("bucket URL");
    let public = PublicLog::new(client.clone(), &public_base);

    // A creates the log; B starts on it once it has entries.
    let mut processes: [Option<Stele>; 2] = [Some(Stele::start(&options[0], "a-0")), None];
    let first_url = processes[0].as_ref().expect("a").url.clone();
    for n in 0..20u32 {
        let entry = Bytes::from(format!("first entries of the log, number {n}").into_bytes());
        let answer = client.submit(&first_url, entry).await;
        assert!(
            matches!(answer, Ok(Submission::Accepted { .. })),
            "{answer:?}"
        );
    }
    processes[1] = Some(tokio::task::block_in_place(|| {
        start_beside_a_live_sequencer(&options[1], "b-0", &mut 0)
    }));
    let mut incarnations = [0usize, 0];

    let load = Arc::new(Load::default());
    {
        let mut urls = load.urls.write().expect("urls lock");
        for (slot, process) in urls.iter_mut().zip(&processes) {
            *slot = process.as_ref().map(|p| (p.url.clone(), 0));
        }
    }
    let poller = CheckpointPoller::start(
        client.clone(),
        move || Some(public_base.clone()),
        Duration::from_millis(20),
    );
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|id| tokio::spawn(worker(id, seed, load.clone(), client.clone())))
        .collect();

    let mut losers: Vec<(&str, bool)> = Vec::new();
    let mut startup_races = 0;
    // Rounds alternate between favouring the newcomer and not; the seed
    // picks which comes first.
    let first_favoured = fastrand::Rng::with_seed(seed).usize(0..2);
    let mut newcomer = 1;
    let mut newcomer_won = 0;
    for round in 0..ROUNDS {
        // Who commits first after the newcomer read the lock decides the
        // round. Favouring the newcomer means the incumbent is idle when the
        // newcomer starts and gets no entries for a while; otherwise the
        // newcomer starts while the incumbent is under load.
        let incumbent = 1 - newcomer;
        let favour_newcomer = (round + first_favoured) % 2 == 0;
        if round > 0 {
            if favour_newcomer {
                load.hide(incumbent, true);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            incarnations[newcomer] += 1;
            let name = format!("{}-{}", ["a", "b"][newcomer], incarnations[newcomer]);
            let restarted = tokio::task::block_in_place(|| {
                start_beside_a_live_sequencer(&options[newcomer], &name, &mut startup_races)
            });
            load.urls.write().expect("urls lock")[newcomer] =
                Some((restarted.url.clone(), incarnations[newcomer]));
            processes[newcomer] = Some(restarted);
        } else if favour_newcomer {
            load.hide(incumbent, true);
        }
        if favour_newcomer {
            tokio::time::sleep(Duration::from_millis(150)).await;
            load.hide(incumbent, false);
        }

        // Wait for one of the two to lose the log.
        let deadline = Instant::now() + Duration::from_secs(60);
        let loser = loop {
            let exited = processes
                .iter_mut()
                .enumerate()
                .find_map(|(slot, process)| {
                    let process = process.as_mut()?;
                    process.try_exit().map(|status| (slot, status))
                });
            if let Some(found) = exited {
                break found;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: two sequencers ran side by side for 60 s and neither stopped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (slot, status) = loser;
        load.urls.write().expect("urls lock")[slot] = None;
        let lost = processes[slot].take().expect("the loser");
        let stderr = lost.stderr();
        assert!(
            !status.success(),
            "round {round}: the sequencer that lost the log exited with {status}"
        );
        assert!(
            stderr.contains(TAKEOVER_MESSAGE),
            "round {round}: the losing sequencer's stderr does not say {TAKEOVER_MESSAGE:?}:\n{}",
            lost.stderr_tail(20)
        );
        losers.push((["a", "b"][slot], favour_newcomer));

        // The other one keeps the log and goes on acknowledging.
        let survivor = 1 - slot;
        let acked_before = load.acked.lock().expect("acked lock").len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while load.acked.lock().expect("acked lock").len() < acked_before + 200 {
            let process = processes[survivor].as_mut().expect("the survivor");
            if let Some(status) = process.try_exit() {
                panic!(
                    "round {round}: both sequencers stopped; the survivor exited with {status}:\n{}",
                    process.stderr_tail(20)
                );
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the surviving sequencer acknowledges nothing"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        newcomer_won += usize::from(slot == incumbent);
        // The loser comes back on the same bucket in the next round.
        newcomer = slot;
    }
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let polled = poller.finish().await;

    let acked = load.acked.lock().expect("acked lock").clone();
    let audited = audit(&public, &key).await.expect("the final log audits");
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
        "takeover: (loser, newcomer favoured) by round {losers:?} (the newcomer won {newcomer_won} of {ROUNDS}); {} acknowledged ({} by a, {} by b); final size \
         {}; {} polled checkpoints; {} earlier sizes, {} partial tiles checked; {:.1} s",
        acked.len(),
        acked_by[0],
        acked_by[1],
        audited.checkpoint.size,
        polled.len(),
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
