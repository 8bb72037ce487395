//! The S3 backend when the store misbehaves, against a real SeaweedFS behind
//! the fault-injecting proxy of `stele-testkit`:
//!
//! - throttling and server errors (`409`, `429`, `5xx`, `SlowDown`) are
//!   retried, and what is not retryable is not;
//! - a log sequenced through a store that keeps failing so is complete;
//! - a reply lost after the commit's `If-Match` write reached the store (the
//!   commit point on S3): the sequencer finds out whether its write won, by
//!   content; it neither forks the log, nor publishes twice, nor loses what
//!   it acknowledged, and a write that lost to another sequencer is a
//!   takeover;
//! - a store that ignores conditional writes is refused at start, by the
//!   backend and by `stele serve`, with a clear message and nothing written.
//!
//! The log is always checked from the bucket directly, not through the
//! proxy.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::seaweed::{ACCESS_KEY_ID, SeaweedFs};
use stele_sequencer::storage::s3::{S3Config, S3Storage};
use stele_sequencer::storage::{
    Condition, Key, KeyPrefix, PutOptions, PutOutcome, Storage, StorageError,
};
use stele_sequencer::{Accepted, Log, LogConfig, SubmitError};
use stele_testkit::proxy::{Action, Exchange, FaultProxy, Rule, Signing};
use stele_tiles::bundle;
use stele_tiles::checkpoint::open_checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile};

const ORIGIN: &str = "test.example/s3-faults";

fn keys() -> (Arc<Ed25519Signer>, Arc<Ed25519Verifier>) {
    let signer = Ed25519Signer::from_seed(ORIGIN, &[11u8; 32]).expect("key");
    let verifier = signer.verifier();
    (Arc::new(signer), Arc::new(verifier))
}

fn signing(server: &SeaweedFs) -> Signing {
    Signing {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: server.secret_access_key.clone(),
        region: "us-east-1".into(),
    }
}

fn fresh_prefix(test: &str) -> String {
    format!("{test}-{:08x}/", fastrand::u32(..))
}

/// A store under `prefix` reached through `proxy`, retrying quickly.
async fn through(server: &SeaweedFs, proxy: &FaultProxy, prefix: &str) -> S3Storage {
    S3Storage::connect(S3Config {
        endpoint_url: Some(proxy.endpoint.clone()),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_attempts: 4,
        ..common::seaweed::config(server, prefix)
    })
    .await
}

/// The same prefix, straight from the bucket.
async fn direct(server: &SeaweedFs, prefix: &str) -> S3Storage {
    S3Storage::connect(common::seaweed::config(server, prefix)).await
}

async fn start_proxy(server: &SeaweedFs) -> FaultProxy {
    FaultProxy::start(&server.endpoint, Some(signing(server))).await
}

fn key(path: &str) -> Key {
    Key::new(path).expect("key")
}

/// Exchanges for one path (by suffix), in order.
fn for_path<'a>(exchanges: &'a [Exchange], suffix: &str) -> Vec<&'a Exchange> {
    exchanges
        .iter()
        .filter(|exchange| {
            exchange
                .path
                .split('?')
                .next()
                .unwrap_or("")
                .ends_with(suffix)
        })
        .collect()
}

/// The answers a store gives under load or trouble, which a client should
/// try again: AWS's conflict on concurrent conditional writes, throttling,
/// server errors, and a request that timed out on the server side.
const RETRIED: [(u16, &str); 7] = [
    (409, "OperationAborted"),
    (409, "ConditionalRequestConflict"),
    (429, "TooManyRequests"),
    (500, "InternalError"),
    (503, "SlowDown"),
    (503, "ServiceUnavailable"),
    (400, "RequestTimeout"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_and_others_are_not() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;
    let prefix = fresh_prefix("retries");
    let store = through(server, &proxy, &prefix).await;
    let bucket = direct(server, &prefix).await;

    for (status, code) in RETRIED {
        proxy.clear();
        let path = format!("retried/{code}-{status}");
        // Fewer failures than attempts: every operation gets through.
        proxy.add(Rule::new(Action::Error { status, code }).times(2));
        let bytes = bytes::Bytes::from(format!("after {code}"));
        let written = store
            .put(
                &key(&path),
                bytes.clone(),
                PutOptions::private(Condition::CreateOnly),
            )
            .await
            .unwrap_or_else(|err| panic!("{status} {code} on put not retried: {err}"));
        assert!(matches!(written, PutOutcome::Written { .. }), "{written:?}");
        let attempts: Vec<_> = for_path(&proxy.exchanges(), &path)
            .into_iter()
            .map(|exchange| (exchange.action.clone(), exchange.upstream_status))
            .collect();
        assert_eq!(
            attempts,
            vec![
                (Some(Action::Error { status, code }), None),
                (Some(Action::Error { status, code }), None),
                (None, Some(200)),
            ],
            "{status} {code}"
        );
        assert_eq!(
            bucket.get(&key(&path)).await.expect("get").map(|o| o.bytes),
            Some(bytes.clone())
        );

        // Reads, lists and deletes are retried as well.
        proxy.add(
            Rule::new(Action::Error { status, code })
                .method("GET")
                .times(1),
        );
        let read = store.get(&key(&path)).await.expect("get retried");
        assert_eq!(read.map(|object| object.bytes), Some(bytes));
        proxy.add(
            Rule::new(Action::Error { status, code })
                .method("GET")
                .times(1),
        );
        let listed = store
            .list(&KeyPrefix::new("retried/").expect("prefix"))
            .await
            .expect("list retried");
        assert!(listed.contains(&key(&path)), "{listed:?}");
        proxy.add(
            Rule::new(Action::Error { status, code })
                .method("DELETE")
                .times(1),
        );
        store.delete(&key(&path)).await.expect("delete retried");
        assert!(bucket.get(&key(&path)).await.expect("get").is_none());
    }

    // A refusal that no retry can change is reported at once, as fatal.
    proxy.clear();
    proxy.add(Rule::new(Action::Error {
        status: 403,
        code: "AccessDenied",
    }));
    let refused = store
        .put(
            &key("refused"),
            bytes::Bytes::from_static(b"x"),
            PutOptions::private(Condition::None),
        )
        .await;
    assert!(
        matches!(refused, Err(StorageError::Fatal { .. })),
        "{refused:?}"
    );
    assert_eq!(for_path(&proxy.exchanges(), "refused").len(), 1);

    // A store that keeps throttling: the attempts are bounded, the error
    // is transient, and nothing was written.
    proxy.clear();
    proxy.add(Rule::new(Action::SLOW_DOWN));
    let throttled = store
        .put(
            &key("throttled"),
            bytes::Bytes::from_static(b"x"),
            PutOptions::private(Condition::None),
        )
        .await;
    match throttled {
        Err(StorageError::Transient { message, .. }) => {
            assert!(message.contains("SlowDown"), "{message}");
            assert!(message.contains("4 attempts"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(for_path(&proxy.exchanges(), "throttled").len(), 4);
    proxy.clear();
    assert!(bucket.get(&key("throttled")).await.expect("get").is_none());
}

// ---------------------------------------------------------------------------
// A log over the proxy.

fn log_config() -> LogConfig {
    LogConfig {
        origin: ORIGIN.into(),
        max_batch: 8,
        batch_interval: Duration::from_millis(5),
        pool_size: 1000,
        ..LogConfig::default()
    }
}

async fn open_log(
    store: S3Storage,
) -> Result<
    (
        Log,
        tokio::task::JoinHandle<Result<(), stele_sequencer::Error>>,
    ),
    stele_sequencer::Error,
> {
    let (signer, verifier) = keys();
    let (log, sequencer) = Log::open(
        Arc::new(store),
        signer as Arc<dyn NoteSigner>,
        verifier as Arc<dyn NoteVerifier>,
        log_config(),
        Default::default(),
    )
    .await?;
    Ok((log, tokio::spawn(sequencer.run())))
}

async fn submit_all(log: &Log, entries: &[Vec<u8>]) -> Vec<Result<Accepted, SubmitError>> {
    let tasks: Vec<_> = entries
        .iter()
        .cloned()
        .map(|entry| {
            let log = log.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(60), log.submit(entry))
                    .await
                    .expect("a submission was never answered")
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("submit task"));
    }
    results
}

fn entries(name: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("{name} entry {i}").into_bytes())
        .collect()
}

/// The log in the bucket, checked without the sequencer: the public
/// checkpoint is the committed one, the bundles hash to its root, every
/// acknowledged entry is at its index exactly once, and every receipt's
/// checkpoint is the root of that many first entries of the log. Returns
/// the log's entries.
async fn check_bucket(bucket: &S3Storage, acknowledged: &[(Vec<u8>, Accepted)]) -> Vec<Vec<u8>> {
    let (_, verifier) = keys();
    let get = |path: &str| {
        let path = path.to_owned();
        async move {
            bucket
                .get(&key(&path))
                .await
                .expect("read the bucket")
                .unwrap_or_else(|| panic!("{path} missing"))
                .bytes
        }
    };
    let (checkpoint, _) =
        open_checkpoint(&get("checkpoint").await, ORIGIN, verifier.as_ref()).expect("checkpoint");
    let (committed, _) =
        open_checkpoint(&get(".stele/lock").await, ORIGIN, verifier.as_ref()).expect("lock");
    assert_eq!(
        checkpoint, committed,
        "the public checkpoint is the committed one"
    );
    let width = u64::from(TILE_WIDTH);
    let mut log: Vec<Vec<u8>> = Vec::new();
    for index in 0..checkpoint.size.div_ceil(width) {
        let tile = Tile::entries(index, (checkpoint.size - index * width).min(width) as u32);
        let data = get(&tile.path()).await;
        for entry in bundle::decode(&data, Some(tile.width as usize)).expect("bundle") {
            log.push(entry.to_vec());
        }
    }
    let root_of = |size: usize| {
        RightEdge::empty(TILE_HEIGHT)
            .integrate(&log[..size])
            .expect("integrate")
            .root
    };
    assert_eq!(
        root_of(log.len()),
        checkpoint.root,
        "bundles hash to the root"
    );
    let distinct: std::collections::BTreeSet<&Vec<u8>> = log.iter().collect();
    assert_eq!(distinct.len(), log.len(), "an entry was logged twice");
    let policy = WitnessPolicy::new(vec![], 0).expect("policy");
    for (entry, accepted) in acknowledged {
        assert_eq!(
            log.get(accepted.index as usize),
            Some(entry),
            "acknowledged entry missing from index {}",
            accepted.index
        );
        let tree = accepted
            .receipt()
            .verify(entry, ORIGIN, verifier.as_ref(), &policy)
            .expect("receipt verifies");
        assert_eq!(
            root_of(tree.size as usize),
            tree.root,
            "a receipt's checkpoint is not a prefix of the log"
        );
    }
    log
}

fn acknowledged(
    entries: &[Vec<u8>],
    results: Vec<Result<Accepted, SubmitError>>,
) -> Vec<(Vec<u8>, Accepted)> {
    entries
        .iter()
        .cloned()
        .zip(results)
        .filter_map(|(entry, result)| result.ok().map(|accepted| (entry, accepted)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_over_a_throttling_store_is_complete() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;
    let prefix = fresh_prefix("throttled-log");
    // Faults at every step of the protocol: staging, the commit, tiles,
    // the checkpoint, reads and deletes; each fewer times than attempts.
    let rules = [
        Rule::new(Action::SLOW_DOWN)
            .method("PUT")
            .path_contains(".stele/staging/")
            .times(2),
        Rule::new(Action::Error {
            status: 409,
            code: "ConditionalRequestConflict",
        })
        .method("PUT")
        .path_contains(".stele/lock")
        .with_header("if-match")
        .times(2),
        Rule::new(Action::Error {
            status: 500,
            code: "InternalError",
        })
        .method("PUT")
        .path_contains("/tile/")
        .times(3),
        Rule::new(Action::Error {
            status: 429,
            code: "TooManyRequests",
        })
        .method("PUT")
        .path_contains("/checkpoint")
        .times(2),
        Rule::new(Action::Error {
            status: 503,
            code: "ServiceUnavailable",
        })
        .method("GET")
        .times(3),
        Rule::new(Action::SLOW_DOWN).method("DELETE").times(2),
    ];
    for rule in rules.iter().cloned() {
        proxy.add(rule);
    }
    let (log, task) = open_log(through(server, &proxy, &prefix).await)
        .await
        .expect("open through the faults");
    let all = entries("throttled", 60);
    let mut acked = Vec::new();
    for chunk in all.chunks(20) {
        let results = submit_all(&log, chunk).await;
        for result in &results {
            assert!(result.is_ok(), "{result:?}");
        }
        acked.extend(acknowledged(chunk, results));
    }
    log.shutdown();
    task.await.expect("task").expect("clean stop");

    // Every kind of fault was met.
    let exchanges = proxy.exchanges();
    for code in [
        "SlowDown",
        "ConditionalRequestConflict",
        "InternalError",
        "TooManyRequests",
        "ServiceUnavailable",
    ] {
        assert!(
            exchanges.iter().any(|exchange| matches!(
                exchange.action,
                Some(Action::Error { code: found, .. }) if found == code
            )),
            "no {code} was injected"
        );
    }
    let log = check_bucket(&direct(server, &prefix).await, &acked).await;
    assert_eq!(log.len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_to_the_commit_is_resolved_by_reading_the_lock() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;
    let prefix = fresh_prefix("lost-commit-reply");
    let (log, task) = open_log(through(server, &proxy, &prefix).await)
        .await
        .expect("open");
    let first = entries("before", 5);
    let mut acked = acknowledged(&first, submit_all(&log, &first).await);
    assert_eq!(acked.len(), first.len());

    // The next commit reaches the store, and its answer is lost: the retry
    // fails its own condition, and the lock's content shows the write won.
    proxy.add(
        Rule::new(Action::DropReply)
            .method("PUT")
            .path_contains(".stele/lock")
            .with_header("if-match")
            .times(1),
    );
    let second = entries("lost reply", 5);
    let results = submit_all(&log, &second).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    acked.extend(acknowledged(&second, results));
    let commits: Vec<_> = for_path(&proxy.exchanges(), ".stele/lock")
        .into_iter()
        .filter(|exchange| exchange.method == "PUT" && exchange.if_match.is_some())
        .cloned()
        .collect();
    let dropped = commits
        .iter()
        .position(|exchange| exchange.action == Some(Action::DropReply))
        .expect("the reply was dropped");
    assert_eq!(
        commits[dropped].upstream_status,
        Some(200),
        "the dropped write reached the store"
    );
    let retry = &commits[dropped + 1];
    assert_eq!(retry.if_match, commits[dropped].if_match, "the same write");
    assert_eq!(
        retry.upstream_status,
        Some(412),
        "its retry met its own write"
    );

    let third = entries("after", 5);
    let results = submit_all(&log, &third).await;
    acked.extend(acknowledged(&third, results));
    log.shutdown();
    task.await.expect("task").expect("clean stop");
    let log = check_bucket(&direct(server, &prefix).await, &acked).await;
    assert_eq!(log.len(), 15);
    assert_eq!(acked.len(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_reply_to_the_commit_is_lost_recovery_finds_the_write_won() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;
    let prefix = fresh_prefix("all-commit-replies-lost");
    let (log, task) = open_log(through(server, &proxy, &prefix).await)
        .await
        .expect("open");
    let first = entries("before", 3);
    let mut acked = acknowledged(&first, submit_all(&log, &first).await);

    // Every attempt of the next commit loses its answer: the sequencer
    // cannot tell, answers "unavailable" (nothing acknowledged), and its
    // recovery reads the lock.
    proxy.add(
        Rule::new(Action::DropReply)
            .method("PUT")
            .path_contains(".stele/lock")
            .with_header("if-match")
            .times(4),
    );
    let second = entries("unanswered", 4);
    let results = submit_all(&log, &second).await;
    for result in &results {
        assert!(
            matches!(
                result,
                Err(SubmitError::Unavailable(_) | SubmitError::Degraded { .. })
            ),
            "acknowledged without knowing the commit: {result:?}"
        );
    }
    let commits: Vec<_> = for_path(&proxy.exchanges(), ".stele/lock")
        .into_iter()
        .filter(|exchange| exchange.method == "PUT" && exchange.if_match.is_some())
        .map(|exchange| exchange.upstream_status)
        .collect();
    assert_eq!(
        commits[commits.len() - 4..],
        [Some(200), Some(412), Some(412), Some(412)],
        "the first attempt won, the retries met it"
    );

    // The write won: the batch is in the log, published by recovery, and
    // the submitters' retries get the indices it gave. A submitter told to
    // come back does so until the log has recovered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut results = submit_all(&log, &second).await;
    while results
        .iter()
        .any(|result| matches!(result, Err(SubmitError::Degraded { .. })))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        results = submit_all(&log, &second).await;
    }
    for result in &results {
        let accepted = result.as_ref().expect("logged");
        assert!(accepted.duplicate, "{accepted:?}");
        assert!((3..7).contains(&accepted.index), "{accepted:?}");
    }
    acked.extend(acknowledged(&second, results));
    log.shutdown();
    task.await.expect("task").expect("clean stop");
    let log = check_bucket(&direct(server, &prefix).await, &acked).await;
    assert_eq!(log.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_to_a_commit_that_lost_is_a_takeover() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;
    let prefix = fresh_prefix("lost-reply-takeover");
    let (stale, stale_task) = open_log(through(server, &proxy, &prefix).await)
        .await
        .expect("open");
    let first = entries("shared", 2);
    let mut acked = acknowledged(&first, submit_all(&stale, &first).await);

    // A second sequencer takes the log over and commits.
    let (newer, newer_task) = open_log(direct(server, &prefix).await)
        .await
        .expect("second opens");
    let theirs = entries("newer", 2);
    acked.extend(acknowledged(&theirs, submit_all(&newer, &theirs).await));

    // The stale one's commit is refused by the store, and that answer is
    // lost: its retry is refused too, and the lock holds another
    // checkpoint. It must not take the write for its own.
    proxy.add(
        Rule::new(Action::DropReply)
            .method("PUT")
            .path_contains(".stele/lock")
            .with_header("if-match")
            .times(1),
    );
    let results = submit_all(&stale, &entries("fork attempt", 1)).await;
    assert!(
        matches!(results[0], Err(SubmitError::Unavailable(_))),
        "{:?}",
        results[0]
    );
    let outcome = tokio::time::timeout(Duration::from_secs(30), stale_task)
        .await
        .expect("the stale sequencer stops")
        .expect("task");
    assert!(
        matches!(outcome, Err(stele_sequencer::Error::TakenOver { .. })),
        "{outcome:?}"
    );
    let dropped = for_path(&proxy.exchanges(), ".stele/lock")
        .into_iter()
        .find(|exchange| exchange.action == Some(Action::DropReply))
        .cloned()
        .expect("a dropped reply");
    assert_eq!(dropped.upstream_status, Some(412));

    newer.shutdown();
    newer_task.await.expect("task").expect("clean stop");
    let log = check_bucket(&direct(server, &prefix).await, &acked).await;
    assert_eq!(log.len(), 4, "the fork attempt is not in the log");
}

// ---------------------------------------------------------------------------
// A store that ignores conditional writes.

async fn objects_under(server: &SeaweedFs, prefix: &str) -> Vec<Key> {
    direct(server, prefix)
        .await
        .list(&KeyPrefix::new("").expect("prefix"))
        .await
        .expect("list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_conditions_is_refused_and_left_as_found() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let proxy = start_proxy(server).await;

    // Through the proxy with no rule, the store passes the check: the
    // proxy alone changes nothing.
    let prefix = fresh_prefix("conditions-kept");
    through(server, &proxy, &prefix)
        .await
        .check_conditional_writes()
        .await
        .expect("SeaweedFS enforces conditions");
    assert_eq!(objects_under(server, &prefix).await, vec![]);

    // Without the condition headers, the backend refuses the store.
    proxy.add(Rule::new(Action::StripConditions));
    let prefix = fresh_prefix("conditions-ignored");
    let refused = through(server, &proxy, &prefix)
        .await
        .check_conditional_writes()
        .await;
    match &refused {
        Err(error @ StorageError::ConditionalWritesUnsupported { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("If-None-Match: * replaced an existing object"),
                "{message}"
            );
        }
        other => panic!("a store ignoring conditions was accepted: {other:?}"),
    }
    // The headers were removed and the store took the write they guarded.
    assert!(proxy.exchanges().iter().any(|exchange| {
        exchange.action == Some(Action::StripConditions)
            && exchange.if_none_match.is_some()
            && exchange.upstream_status == Some(200)
    }));
    assert_eq!(
        objects_under(server, &prefix).await,
        vec![],
        "the refused check left objects behind"
    );

    // `stele serve` refuses to start on it, says why, and writes nothing.
    let prefix = fresh_prefix("serve-conditions-ignored");
    let data = tempfile::tempdir().expect("data folder");
    let output = tokio::process::Command::new(common::stele::STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args([
            "--s3-bucket",
            common::seaweed::BUCKET,
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
            "--s3-prefix",
            &prefix,
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run stele serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "stele serve started: {stderr}");
    assert!(
        stderr.contains("conditional writes") && stderr.contains("refuses to run"),
        "{stderr}"
    );
    assert_eq!(objects_under(server, &prefix).await, vec![]);
}
