//! Rotation of shards on a clock the test sets (docs/shards.md): a shard
//! refuses entries before its window and after it, freezes when its window
//! ends (entries still in its pool are published and answered first), and
//! a frozen shard costs one storage read to open and holds no log.
//!
//! The freeze is walked under a crash at each of its storage operations,
//! before the operation and after it reached the store: every storage
//! operation of the shard from the instant its window ends fails from the
//! k-th on (the process is gone), then a restart over what the store kept
//! finishes the freeze. After each, the shard is checked from its store
//! against a naive model: `final-checkpoint` is the published checkpoint,
//! signed, whose root is the RFC 6962 hash of the entries in the bundles;
//! every entry acknowledged before the crash is in it at its index; and
//! the shard stays frozen at that size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use sha2::{Digest, Sha256};
use stele_sequencer::LogConfig;
use stele_sequencer::api::{ApiConfig, Handler as _};
use stele_sequencer::config::Window;
use stele_sequencer::history::Clock;
use stele_sequencer::metrics::Metrics;
use stele_sequencer::published::{CHECKPOINT_KEY, FINAL_CHECKPOINT_KEY, read_entries};
use stele_sequencer::shard::{ShardSpec, Shards, Status};
use stele_sequencer::sigstore::SigstoreConfig;
use stele_sequencer::sigstore::index::MARKER_KEY;
use stele_sequencer::storage::memory::{Fault, FaultError, MemoryStorage, Op};
use stele_sequencer::storage::{Condition, Key, PutOptions, Storage};
use stele_tiles::checkpoint::open_checkpoint;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier};

/// The instant shard `a`'s window ends and shard `b`'s begins.
const T: u64 = 1_800_000_000;

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new(seconds: u64) -> TestClock {
        TestClock(Arc::new(AtomicU64::new(seconds)))
    }
    fn set(&self, seconds: u64) {
        self.0.store(seconds, Ordering::SeqCst);
    }
    fn clock(&self) -> Clock {
        let seconds = self.0.clone();
        Arc::new(move || at(seconds.load(Ordering::SeqCst)))
    }
}

fn origin(name: &str) -> String {
    format!("test.example/{name}")
}

fn verifier(name: &str) -> Ed25519Verifier {
    signer(name).verifier()
}

fn signer(name: &str) -> Ed25519Signer {
    let seed = if name == "a" { [1u8; 32] } else { [2u8; 32] };
    Ed25519Signer::from_seed(&origin(name), &seed).expect("key")
}

fn api_config() -> ApiConfig {
    ApiConfig {
        max_entry_size: 65535,
        opaque: true,
        serve_reads: true,
        max_connections: 64,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(10),
        max_body_bytes: 16 << 20,
    }
}

fn spec(name: &str, window: Window, store: &MemoryStorage) -> ShardSpec {
    ShardSpec {
        name: Some(name.to_owned()),
        window,
        storage: Arc::new(store.clone()),
        signer: Arc::new(signer(name)),
        verifier: Arc::new(verifier(name)),
        log: LogConfig {
            origin: origin(name),
            batch_interval: Duration::from_millis(300),
            ..LogConfig::default()
        },
        api: api_config(),
        sigstore: None,
        history_interval: Duration::ZERO,
        vkey: None,
        mldsa_vkey: None,
        metrics: Metrics::for_shard(name),
    }
}

/// Shard `a` takes entries until T, shard `b` from T.
async fn open(a: &MemoryStorage, b: &MemoryStorage, clock: &TestClock) -> Arc<Shards> {
    let specs = vec![
        spec(
            "a",
            Window {
                from: None,
                until: Some(at(T)),
            },
            a,
        ),
        spec(
            "b",
            Window {
                from: Some(at(T)),
                until: None,
            },
            b,
        ),
    ];
    Shards::open(specs, false, Metrics::new(), api_config(), clock.clock())
        .await
        .expect("the shards open")
}

/// `POST /<shard>/add`: the status and the body.
async fn add(shards: &Shards, shard: &str, entry: &[u8]) -> (StatusCode, String) {
    let request = Request::post(format!("/{shard}/add"))
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::copy_from_slice(entry)))
        .expect("request");
    let response = shards.handle(request).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The index a c2sp.org/tlog-proof receipt names.
fn receipt_index(receipt: &str) -> u64 {
    receipt
        .lines()
        .find_map(|line| line.strip_prefix("index "))
        .and_then(|index| index.parse().ok())
        .expect("a receipt names its index")
}

/// RFC 6962's Merkle tree hash, computed the naive way.
fn mth(entries: &[Vec<u8>]) -> [u8; 32] {
    match entries.len() {
        0 => Sha256::digest(b"").into(),
        1 => Sha256::new()
            .chain_update([0u8])
            .chain_update(&entries[0])
            .finalize()
            .into(),
        n => {
            // The largest power of two below n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            Sha256::new()
                .chain_update([1u8])
                .chain_update(mth(&entries[..k]))
                .chain_update(mth(&entries[k..]))
                .finalize()
                .into()
        }
    }
}

/// Checks a frozen shard `a` from its store: the final checkpoint, the
/// tree it commits to, and the acknowledged entries. Returns its size.
async fn check_frozen(store: &MemoryStorage, acked: &[(u64, Vec<u8>)]) -> u64 {
    let get = |key: &str| {
        let key = Key::new(key).expect("key");
        let store = store.clone();
        async move { store.get(&key).await.expect("read").map(|o| o.bytes) }
    };
    let final_checkpoint = get(FINAL_CHECKPOINT_KEY).await.expect("final-checkpoint");
    let checkpoint = get(CHECKPOINT_KEY).await.expect("checkpoint");
    assert_eq!(
        final_checkpoint, checkpoint,
        "final-checkpoint is the published checkpoint"
    );
    let (opened, _) =
        open_checkpoint(&final_checkpoint, &origin("a"), &verifier("a")).expect("signed by a");
    let entries = read_entries(store, 0, opened.size).await.expect("entries");
    assert_eq!(
        opened.root.as_bytes(),
        &mth(&entries),
        "root of the entries"
    );
    for (index, entry) in acked {
        assert_eq!(
            entries.get(*index as usize),
            Some(entry),
            "acknowledged entry {index} is in the frozen tree"
        );
    }
    opened.size
}

#[tokio::test]
async fn windows_refuse_and_name_the_accepting_shard() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    assert_eq!(
        shards.statuses(),
        vec![("a".into(), Status::Active), ("b".into(), Status::Pending)]
    );
    let (status, body) = add(&shards, "b", b"too early").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("shard \"b\" takes entries from") && body.contains("/a/"),
        "{body}"
    );
    let (status, body) = add(&shards, "a", b"in time").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(receipt_index(&body), 0);
    // The pending shard's log is open: its empty checkpoint is public.
    assert!(b.contains(&Key::new(CHECKPOINT_KEY).expect("key")));

    clock.set(T);
    // Refused from the instant itself, before any tick.
    let (status, body) = add(&shards, "a", b"too late").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(
        body.contains("shard \"a\" stopped taking entries") && body.contains("/b/"),
        "{body}"
    );
    shards.tick().await.expect("tick");
    assert_eq!(
        shards.statuses(),
        vec![
            ("a".into(), Status::Frozen { size: 1 }),
            ("b".into(), Status::Active)
        ]
    );
    assert!(
        shards.log(Some("a")).is_none(),
        "a frozen shard holds no log"
    );
    let (status, body) = add(&shards, "a", b"too late").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("frozen at tree size 1"), "{body}");
    let (status, body) = add(&shards, "b", b"now b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Reads of the frozen shard come from its store.
    let request = Request::get("/a/final-checkpoint")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = shards.handle(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(check_frozen(&a, &[(0, b"in time".to_vec())]).await, 1);
    shards.shutdown(true).await.expect("stops");
}

/// How a crash meets the k-th storage operation of the freeze.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The operation never happens.
    Before,
    /// The operation reaches the store; its answer is lost.
    After,
}

/// One freeze, with the shard's storage dying at its k-th operation from
/// the window's end (`None`: no crash). Returns how many operations the
/// freeze made (without a crash) and the frozen size after the restart.
async fn freeze_with_crash(crash: Option<(u64, Crash)>) -> (u64, u64) {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    let mut acked = Vec::new();
    for n in 0..3u8 {
        let entry = vec![b'a', n];
        let (status, body) = add(&shards, "a", &entry).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        acked.push((receipt_index(&body), entry));
    }
    // Two more wait in the pool (the batch interval is 300 ms) when the
    // window ends.
    let pending: Vec<_> = (3..5u8)
        .map(|n| {
            let shards = shards.clone();
            tokio::spawn(async move {
                let entry = vec![b'a', n];
                let (status, body) = add(&shards, "a", &entry).await;
                (status, body, entry)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let armed = Arc::new(AtomicBool::new(true));
    let count = Arc::new(AtomicU64::new(0));
    {
        let (armed, count) = (armed.clone(), count.clone());
        a.set_hook(move |info| {
            if !armed.load(Ordering::SeqCst) {
                return None;
            }
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (k, how) = crash?;
            if n < k {
                return None;
            }
            let writes = matches!(info.op, Op::Put | Op::Delete);
            Some(match how {
                Crash::After if n == k && writes => Fault::FailAfterWrite(FaultError::Transient),
                _ => Fault::Fail(FaultError::Transient),
            })
        });
    }
    clock.set(T);
    let ticked = tokio::time::timeout(Duration::from_secs(2), shards.tick()).await;
    for task in pending {
        if let Ok(Ok((status, body, entry))) =
            tokio::time::timeout(Duration::from_millis(200), task).await
        {
            if status == StatusCode::OK {
                acked.push((receipt_index(&body), entry));
            }
        }
    }
    let made = count.load(Ordering::SeqCst);
    if crash.is_none() {
        ticked
            .expect("the freeze ends")
            .expect("the freeze succeeds");
        assert_eq!(
            acked.len(),
            5,
            "the entries in the pool were published and answered"
        );
    }
    // The process is gone: the old handles keep failing; a new process
    // opens the store as it was left.
    drop(shards);
    let (a2, b2) = (a.restart(), b.restart());
    clock.set(T + 1);
    let shards = open(&a2, &b2, &clock).await;
    shards
        .tick()
        .await
        .expect("the restart finishes the freeze");
    let size = check_frozen(&a2, &acked).await;
    assert!(size >= acked.len() as u64 && size <= 5, "size {size}");
    assert_eq!(shards.statuses()[0].1, Status::Frozen { size });
    let (status, body) = add(&shards, "a", b"after").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    shards.shutdown(true).await.expect("stops");

    // A frozen shard costs one read to open, and nothing after.
    let a3 = a2.restart();
    let reads = Arc::new(AtomicU64::new(0));
    {
        let reads = reads.clone();
        a3.set_hook(move |info| {
            assert_eq!(info.op, Op::Get, "a frozen shard is only read");
            assert_eq!(info.key, FINAL_CHECKPOINT_KEY);
            reads.fetch_add(1, Ordering::SeqCst);
            None
        });
    }
    let shards = open(&a3, &b2.restart(), &clock).await;
    shards.tick().await.expect("tick");
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    assert_eq!(shards.statuses()[0].1, Status::Frozen { size });
    shards.shutdown(true).await.expect("stops");
    (made, size)
}

#[tokio::test]
async fn a_crash_at_each_step_of_freezing_is_finished_by_the_restart() {
    let (operations, size) = freeze_with_crash(None).await;
    assert_eq!(size, 5);
    assert!(
        operations >= 4,
        "the freeze wrote tiles, checkpoint, final-checkpoint"
    );
    for k in 0..operations {
        for how in [Crash::Before, Crash::After] {
            freeze_with_crash(Some((k, how))).await;
        }
    }
}

/// Shard `a` (until T) and `b` (from T), `a` with its own options.
async fn open_with(
    a: ShardSpec,
    b: &MemoryStorage,
    clock: &TestClock,
) -> Result<Arc<Shards>, stele_sequencer::Error> {
    let b = spec(
        "b",
        Window {
            from: Some(at(T)),
            until: None,
        },
        b,
    );
    Shards::open(
        vec![a, b],
        false,
        Metrics::new(),
        api_config(),
        clock.clock(),
    )
    .await
}

fn spec_a(store: &MemoryStorage) -> ShardSpec {
    spec(
        "a",
        Window {
            from: None,
            until: Some(at(T)),
        },
        store,
    )
}

/// One request to the shards: status, headers and body.
async fn send(shards: &Shards, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, String) {
    let response = shards.handle(request).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn post_add(shard: &str, entry: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(format!("/{shard}/add"))
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::from_static(entry)))
        .expect("request")
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// A freeze that cannot finish (the shard's storage fails from the
/// window's end on, so its sequencer retries) does not keep the process
/// from stopping on a signal: the stop reaches the draining sequencer,
/// which gives up as a shutdown does, and the next start, with storage
/// back, finishes the freeze.
#[tokio::test]
async fn a_signal_stops_a_freeze_that_cannot_finish() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    let (status, body) = add(&shards, "a", b"before").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(receipt_index(&body), 0);
    // One entry waits in the pool when the window ends.
    let pending = {
        let shards = shards.clone();
        tokio::spawn(async move { add(&shards, "a", b"in the pool").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.set_hook(|_| Some(Fault::Fail(FaultError::Transient)));
    clock.set(T);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let shards = shards.clone();
        tokio::spawn(async move {
            shards
                .run(async move {
                    let _ = stop_rx.await;
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(shards.statuses()[0].1, Status::Freezing);
    stop_tx.send(()).expect("the process is running");
    let stopped = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the process stops on a signal while a freeze cannot finish")
        .expect("the task ends");
    stopped.expect("a clean stop: the next start finishes the freeze");
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the waiting submitter is answered")
        .expect("the task ends");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        !a.contains(&Key::new(FINAL_CHECKPOINT_KEY).expect("key")),
        "no final checkpoint yet"
    );

    drop(shards);
    let (a2, b2) = (a.restart(), b.restart());
    clock.set(T + 5);
    let shards = open(&a2, &b2, &clock).await;
    shards
        .tick()
        .await
        .expect("the restart finishes the freeze");
    let size = check_frozen(&a2, &[(0, b"before".to_vec())]).await;
    assert_eq!(shards.statuses()[0].1, Status::Frozen { size });
    shards.shutdown(true).await.expect("stops");
}

/// While a shard freezes, the process is healthy: its `/healthz` says
/// `freezing` for the shard (and 200) through every step, including the
/// indexer's last pass after the sequencer has drained; an orchestrator
/// must not restart it then.
#[tokio::test]
async fn health_says_freezing_through_every_step_of_a_freeze() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let mut with_index = spec_a(&a);
    with_index.sigstore = Some(SigstoreConfig {
        log_id: vec![7; 32],
    });
    let shards = open_with(with_index, &b, &clock).await.expect("opens");
    let (status, body) = add(&shards, "a", b"indexed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The indexer's last pass, once the sequencer has drained, writes its
    // marker slowly.
    a.set_hook(|info| {
        (info.op == Op::Put && info.key == MARKER_KEY)
            .then_some(Fault::Delay(Duration::from_millis(800)))
    });
    clock.set(T);
    let ticking = {
        let shards = shards.clone();
        tokio::spawn(async move { shards.tick().await })
    };
    let mut answers = Vec::new();
    while !ticking.is_finished() {
        answers.push(shards.health_probe().expect("a probe answer"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ticking.await.expect("the task ends").expect("the freeze");
    assert!(answers.len() > 20, "the last pass took its time");
    for (status, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "{text}");
        assert!(text.starts_with("a: freezing\n"), "{text}");
    }
    let (status, text) = shards.health_probe().expect("a probe answer");
    assert_eq!(status, StatusCode::OK);
    assert!(text.starts_with("a: frozen at tree size 1\n"), "{text}");
    shards.shutdown(true).await.expect("stops");
}

/// A submission refused for its window is answered before its body is
/// read, so the connection is closed (`Connection: close`): a keep-alive
/// client would otherwise write its next request on a connection the
/// server drops. A shard's metrics are in the process's `/metrics` only,
/// whatever its phase.
#[tokio::test]
async fn window_refusals_close_the_connection_and_metrics_are_the_process_s() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    let closes = |headers: &HeaderMap| {
        headers
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value == "close")
    };
    // A shard's own `/healthz` is its line of the process's.
    let (status, _, body) = send(&shards, get("/b/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("pending until "), "{body}");
    let (status, _, body) = send(&shards, get("/a/healthz")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    let (status, headers, body) = send(&shards, post_add("b", b"early")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(closes(&headers), "{headers:?}");
    let (status, headers, body) = send(&shards, post_add("a", b"in time")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!closes(&headers), "an accepted entry keeps the connection");
    clock.set(T);
    let (status, headers, body) = send(&shards, post_add("a", b"late")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(closes(&headers), "{headers:?}");
    shards.tick().await.expect("freezes");
    let (status, headers, body) = send(&shards, post_add("a", b"later")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(closes(&headers), "{headers:?}");

    for shard in ["a", "b"] {
        let (status, _, body) = send(&shards, get(&format!("/{shard}/metrics"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "/{shard}/metrics: {body}");
        assert!(body.contains("/metrics"), "{body}");
    }
    let (status, _, metrics) = send(&shards, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(r#"stele_tree_size{shard="a"} 1"#),
        "{metrics}"
    );
    shards.shutdown(true).await.expect("stops");
}

/// A frozen shard whose `final-checkpoint` does not verify stops the start,
/// and the error names the shard and the file.
#[tokio::test]
async fn a_tampered_final_checkpoint_stops_the_start_naming_the_shard() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    let (status, body) = add(&shards, "a", b"entry").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    clock.set(T);
    shards.tick().await.expect("freezes");
    shards.shutdown(true).await.expect("stops");
    drop(shards);

    let key = Key::new(FINAL_CHECKPOINT_KEY).expect("key");
    let original = a
        .get(&key)
        .await
        .expect("read")
        .expect("final-checkpoint")
        .bytes;
    let text = String::from_utf8(original.to_vec()).expect("text");
    let tampered = text.replacen("\n1\n", "\n2\n", 1);
    assert_ne!(tampered, text);
    a.put(
        &key,
        Bytes::from(tampered),
        PutOptions::new(Condition::None, "text/plain", "no-store"),
    )
    .await
    .expect("tamper");
    let err = open_with(spec_a(&a.restart()), &b.restart(), &clock)
        .await
        .expect_err("a tampered final checkpoint stops the start");
    let message = err.to_string();
    assert!(
        message.contains("shard \"a\"") && message.contains("final-checkpoint"),
        "{message}"
    );
}

/// While a freeze cannot finish, the process still hears of another
/// shard's sequencer stopping on its own (here its store fails for good),
/// and stops with that error rather than serve a shard that takes no
/// entries under a healthy `/healthz`.
#[tokio::test]
async fn a_sequencer_that_stops_during_another_shard_s_freeze_stops_the_process() {
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let clock = TestClock::new(T - 10);
    let shards = open(&a, &b, &clock).await;
    let pending = {
        let shards = shards.clone();
        tokio::spawn(async move { add(&shards, "a", b"in the pool").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.set_hook(|_| Some(Fault::Fail(FaultError::Transient)));
    clock.set(T);
    let running = {
        let shards = shards.clone();
        tokio::spawn(async move { shards.run(std::future::pending()).await })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(shards.statuses()[0].1, Status::Freezing);
    // Shard b's store fails for good under its next batch.
    b.set_hook(|_| Some(Fault::Fail(FaultError::Fatal)));
    let refused = {
        let shards = shards.clone();
        tokio::spawn(async move { add(&shards, "b", b"to a broken store").await })
    };
    let stopped = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the process stops when a sequencer stops, even during a freeze")
        .expect("the task ends");
    assert!(stopped.is_err(), "stops with the sequencer's error");
    for task in [pending, refused] {
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("every submitter is answered")
            .expect("the task ends");
        assert_ne!(status, StatusCode::OK, "{body}");
    }
}
