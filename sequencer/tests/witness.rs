//! The sequencer with witnesses: each checkpoint is cosigned before it is
//! published, receipts carry the cosignatures, a witness that is down or
//! slow costs at most the timeout, and the K-of-N policy decides whether a
//! checkpoint may be published without it.
//!
//! The witnesses here are small c2sp.org/tlog-witness servers written for
//! the test on `stele-tiles`' cosigner and consistency checks; the verifier
//! crate's `stele-verify witness` is exercised against the real binaries in
//! the end-to-end suite.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stele_sequencer::storage::memory::MemoryStorage;
use stele_sequencer::witness::Witnesses;
use stele_sequencer::{Log, LogConfig, SubmitError};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, CosignatureVerifier, WitnessPolicy};
use stele_tiles::note::{Ed25519Signer, NoteSigner, NoteVerifier};
use stele_tiles::proof::verify_consistency;
use tokio::net::TcpListener;

const ORIGIN: &str = "test.example/witnessed";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Honest,
    /// Answers 500.
    Down,
    /// Never answers in any useful time.
    Slow,
}

struct WitnessState {
    signer: CosignatureSigner,
    log_key: stele_tiles::note::Ed25519Verifier,
    held: Mutex<(u64, Hash)>,
    behaviour: Mutex<Behaviour>,
    requests: Mutex<u64>,
}

/// A minimal witness: verifies the log signature and the consistency proof
/// from the size it holds, answers 409 with that size on a mismatch.
async fn handle(state: Arc<WitnessState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    *state.requests.lock().expect("lock") += 1;
    let behaviour = *state.behaviour.lock().expect("lock");
    if behaviour == Behaviour::Slow {
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    if behaviour == Behaviour::Down {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "down".into());
    }
    let body = request
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let (head, note) = text.split_once("\n\n").expect("blank line");
    let mut lines = head.lines();
    let old: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(|n| n.parse().ok())
        .expect("old line");
    let proof: Vec<Hash> = lines.map(|l| Hash::from_base64(l).expect("hash")).collect();
    let Ok((checkpoint, _)) = open_checkpoint(note.as_bytes(), ORIGIN, &state.log_key) else {
        return reply(StatusCode::FORBIDDEN, "bad signature".into());
    };
    let mut held = state.held.lock().expect("lock");
    if old != held.0 {
        return reply(StatusCode::CONFLICT, format!("{}\n", held.0));
    }
    if verify_consistency(old, checkpoint.size, &held.1, &checkpoint.root, &proof).is_err() {
        return reply(StatusCode::UNPROCESSABLE_ENTITY, "bad proof".into());
    }
    *held = (checkpoint.size, checkpoint.root);
    let signature = state
        .signer
        .cosign(&checkpoint.to_text(), 1_700_000_000)
        .expect("cosign");
    reply(StatusCode::OK, format!("{signature}\n"))
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

struct TestWitness {
    state: Arc<WitnessState>,
    address: SocketAddr,
}

impl TestWitness {
    async fn start(
        name: &str,
        seed: u8,
        log_key: stele_tiles::note::Ed25519Verifier,
    ) -> TestWitness {
        let state = Arc::new(WitnessState {
            signer: CosignatureSigner::from_seed(name, &[seed; 32]).expect("witness key"),
            log_key,
            held: Mutex::new((0, Hash::EMPTY)),
            behaviour: Mutex::new(Behaviour::Honest),
            requests: Mutex::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let served = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestWitness { state, address }
    }

    fn verifier(&self) -> CosignatureVerifier {
        self.state.signer.verifier()
    }

    fn setting(&self) -> (String, CosignatureVerifier) {
        (format!("http://{}", self.address), self.verifier())
    }

    fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("lock") = behaviour;
    }

    fn held_size(&self) -> u64 {
        self.state.held.lock().expect("lock").0
    }
}

fn log_keys() -> (Arc<Ed25519Signer>, stele_tiles::note::Ed25519Verifier) {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[3; 32]).expect("log key");
    let verifier = signer.verifier();
    (Arc::new(signer), verifier)
}

async fn open(
    store: &MemoryStorage,
    witnesses: Vec<(String, CosignatureVerifier)>,
    threshold: usize,
) -> Result<
    (
        Log,
        tokio::task::JoinHandle<Result<(), stele_sequencer::Error>>,
    ),
    stele_sequencer::Error,
> {
    let (signer, verifier) = log_keys();
    let config = LogConfig {
        origin: ORIGIN.into(),
        max_batch: 16,
        batch_interval: Duration::from_millis(5),
        pool_size: 1000,
        delete_partials: false,
        witnesses: Some(Arc::new(
            Witnesses::new(witnesses, threshold, Duration::from_millis(500)).expect("witnesses"),
        )),
        ..LogConfig::default()
    };
    let (log, sequencer) = Log::open(
        Arc::new(store.clone()),
        signer as Arc<dyn NoteSigner>,
        Arc::new(verifier) as Arc<dyn NoteVerifier>,
        config,
        Default::default(),
    )
    .await?;
    Ok((log, tokio::spawn(sequencer.run())))
}

async fn submit_many(
    log: &Log,
    range: std::ops::Range<u32>,
) -> Vec<Result<stele_sequencer::Accepted, SubmitError>> {
    let tasks: Vec<_> = range
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.submit(format!("witnessed entry {i}").into_bytes())
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_carry_the_cosignatures_the_policy_needs() {
    let (_, log_key) = log_keys();
    let first = TestWitness::start("witness.test/one", 1, log_key.clone()).await;
    let second = TestWitness::start("witness.test/two", 2, log_key.clone()).await;
    let store = MemoryStorage::new();
    let (log, task) = open(&store, vec![first.setting(), second.setting()], 2)
        .await
        .expect("open");
    let results = submit_many(&log, 0..40).await;
    let policy = WitnessPolicy::new(vec![first.verifier(), second.verifier()], 2).expect("policy");
    for (i, result) in results.into_iter().enumerate() {
        let accepted = result.expect("accepted");
        let entry = format!("witnessed entry {i}").into_bytes();
        let checkpoint: Checkpoint = accepted
            .receipt()
            .verify(&entry, ORIGIN, &log_key, &policy)
            .expect("receipt verifies under the 2-of-2 policy");
        assert!(checkpoint.size >= 1);
    }
    // Both witnesses followed the log to its published size.
    let size = log.published().checkpoint.size;
    assert_eq!(size, 40);
    assert_eq!(first.held_size(), 40);
    assert_eq!(second.held_size(), 40);
    log.shutdown();
    task.await.expect("task").expect("clean");

    // A new sequencer process knows nothing of the witnesses' sizes: it
    // learns them from their 409 answers and goes on.
    let (log, task) = open(&store.restart(), vec![first.setting(), second.setting()], 2)
        .await
        .expect("reopen");
    let results = submit_many(&log, 40..45).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(first.held_size(), 45);
    log.shutdown();
    task.await.expect("task").expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_or_slow_witness_costs_at_most_the_timeout() {
    let (_, log_key) = log_keys();
    let honest = TestWitness::start("witness.test/honest", 4, log_key.clone()).await;
    let down = TestWitness::start("witness.test/down", 5, log_key.clone()).await;
    let slow = TestWitness::start("witness.test/slow", 6, log_key.clone()).await;
    down.set(Behaviour::Down);
    slow.set(Behaviour::Slow);
    let store = MemoryStorage::new();
    let (log, task) = open(
        &store,
        vec![honest.setting(), down.setting(), slow.setting()],
        1,
    )
    .await
    .expect("open");
    // The slow witness never answers: had the log waited for it, these
    // submissions would never complete.
    let results = tokio::time::timeout(Duration::from_secs(60), submit_many(&log, 0..10))
        .await
        .expect("the log did not wait for the silent witness");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let policy = WitnessPolicy::new(vec![honest.verifier()], 1).expect("policy");
    let accepted = results.into_iter().next().expect("one").expect("accepted");
    accepted
        .receipt()
        .verify(b"witnessed entry 0", ORIGIN, &log_key, &policy)
        .expect("cosigned by the honest witness");
    let strict = WitnessPolicy::new(vec![honest.verifier(), down.verifier()], 2).expect("policy");
    assert!(
        accepted
            .receipt()
            .verify(b"witnessed entry 0", ORIGIN, &log_key, &strict)
            .is_err(),
        "the down witness cannot have cosigned"
    );
    log.shutdown();
    task.await.expect("task").expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_enough_witnesses_nothing_is_published_until_they_return() {
    let (_, log_key) = log_keys();
    let only = TestWitness::start("witness.test/only", 7, log_key.clone()).await;
    let store = MemoryStorage::new();
    let (log, task) = open(&store, vec![only.setting()], 1).await.expect("open");
    let results = submit_many(&log, 0..3).await;
    assert!(results.iter().all(Result::is_ok));

    only.set(Behaviour::Down);
    let results = submit_many(&log, 3..6).await;
    for result in &results {
        assert!(
            matches!(result, Err(SubmitError::Unavailable(_))),
            "published without the witness the policy needs: {result:?}"
        );
    }
    assert_eq!(log.published().checkpoint.size, 3, "nothing new is public");

    // The witness returns: the committed batch is published, and the
    // submitters' retries get the indices their entries were given.
    only.set(Behaviour::Honest);
    let mut published = false;
    for _ in 0..300 {
        if log.published().checkpoint.size == 6 {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(published, "the committed batch was never published");
    let retried = submit_many(&log, 3..6).await;
    for result in retried {
        let accepted = result.expect("accepted on retry");
        assert!(accepted.duplicate && (3..6).contains(&accepted.index));
    }
    assert_eq!(only.held_size(), 6);
    log.shutdown();
    task.await.expect("task").expect("clean");
}

/// One witness listed twice (the same key at one URL or two, or one key
/// under two names) would count twice towards the threshold while the
/// checkpoint carries one cosignature of it, which readers count once:
/// `stele serve` refuses such a list, in the configuration and in
/// `Witnesses::new`, naming the witness.
#[test]
fn one_witness_listed_twice_is_refused() {
    let witness = CosignatureSigner::from_seed("witness.test/twice", &[9; 32]).expect("key");
    let vkey = witness.verifier().to_text();
    let mldsa = stele_tiles::note::MlDsa44Signer::from_seed("witness.test/pq", &[8; 32])
        .expect("key")
        .verifier();
    let renamed = stele_tiles::note::MlDsa44Verifier::new("witness.test/pq2", mldsa.public_key())
        .expect("key");
    for (first, second) in [
        (
            format!("http://127.0.0.1:1={vkey}"),
            format!("http://127.0.0.1:1/={vkey}"),
        ),
        (
            format!("http://127.0.0.1:1={vkey}"),
            format!("https://elsewhere.test={vkey}"),
        ),
        (
            format!("http://127.0.0.1:1={}", mldsa.to_text()),
            format!("http://127.0.0.1:2={}", renamed.to_text()),
        ),
    ] {
        let settings = [first.clone(), second.clone()];
        let parsed = settings
            .iter()
            .map(|setting| stele_sequencer::witness::parse_witness_setting(setting))
            .collect::<Result<Vec<_>, _>>()
            .expect("each setting alone is fine");
        let err = Witnesses::new(parsed, 2, Duration::from_secs(1)).expect_err("refused");
        assert!(err.to_string().contains("twice"), "{err}");
        let toml = format!("witnesses = [{first:?}, {second:?}]\nwitness_threshold = 1\n");
        let err = stele_sequencer::config::Config::from_toml(&toml)
            .expect("parses")
            .validate()
            .expect_err("refused");
        assert!(err.to_string().contains("twice"), "{err}");
        let toml = format!(
            "[[shard]]\nname = \"a\"\norigin = \"test.example/a\"\nwitnesses = [{first:?}, {second:?}]\n"
        );
        let err = stele_sequencer::config::Config::from_toml(&toml)
            .expect("parses")
            .validate()
            .expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("configuration: shard \"a\": witness witness.test/"),
            "{err}"
        );
        assert!(err.to_string().contains("twice"), "{err}");
    }
    // Two witnesses of their own keys are fine.
    let other = CosignatureSigner::from_seed("witness.test/other", &[10; 32]).expect("key");
    let toml = format!(
        "witnesses = [\"http://127.0.0.1:1={vkey}\", \"http://127.0.0.1:1={}\"]\nwitness_threshold = 2\n",
        other.verifier().to_text()
    );
    stele_sequencer::config::Config::from_toml(&toml)
        .expect("parses")
        .validate()
        .expect("two witnesses");
}
