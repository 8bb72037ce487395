//! The log read through a CDN, as README.md ("Deploying") deploys it: the real
//! `stele serve` writes to SeaweedFS, and readers go through nginx
//! configured by the shipped `infra/cdn/stele-cdn.conf.template`. Checked:
//!
//! - entries submitted to the sequencer verify through the CDN with the
//!   real `stele-verify` (checkpoint, inclusion, consistency), and the
//!   whole log audits through it;
//! - a full tile comes with the immutable Cache-Control, and is then
//!   served from the cache (`X-Cache-Status: HIT`), whatever query string
//!   a reader adds;
//! - a tile that is missing is cached as missing only briefly: once the
//!   sequencer writes it, the CDN serves it within seconds;
//! - the checkpoint is cached, and re-fetched after its max-age, so a
//!   reader of the CDN sees the log grow;
//! - the sequencer's private `.stele/` is not served, however the path is
//!   spelled, and neither is a listing of the bucket;
//! - with SeaweedFS stopped, cached tiles are still served as HITs.
//!
//! No timing is asserted: every "eventually" polls up to a deadline far
//! above the lifetimes in the config.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use common::nginx::{self, Nginx};
use common::seaweed::{self, SeaweedFs};
use common::{Backend, ServeOptions, Stele, log_key};
use hyper::StatusCode;
use stele_e2e::audit::{CACHE_IMMUTABLE, LogKey, PublicLog, audit};
use stele_e2e::client::{Client, Fetched, Submission};
use tokio::time::Instant;

/// Entries of the first round: a full level-0 tile (256) and a partial one.
const FIRST_ROUND: usize = 300;
/// Entries of the second round, which the CDN's readers must see.
const SECOND_ROUND: usize = 40;
/// Submissions in flight at once.
const WORKERS: usize = 16;
/// Longest wait for anything that must happen "within seconds"; the
/// config's lifetimes are 1 s (missing objects) and 2 s (checkpoint).
const DEADLINE: Duration = Duration::from_secs(30);

/// The first full level-0 tile and its entry bundle.
const FULL_TILE: &str = "tile/0/000";
const FULL_BUNDLE: &str = "tile/entries/000";

/// An acknowledged entry.
#[derive(Debug, Clone)]
struct Logged {
    index: u64,
    entry: Bytes,
}

/// `stele-verify`, beside the `stele` binary the tests run (both are
/// built by `cargo build`), or `STELE_VERIFY_BIN`.
fn stele_verify_binary() -> PathBuf {
    let binary = std::env::var_os("STELE_VERIFY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::stele_binary().with_file_name("stele-verify"));
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p stele-verifier --bin stele-verify` \
         (same profile as the tests), or set STELE_VERIFY_BIN",
        binary.display()
    );
    binary
}

/// Runs `stele-verify` without its tile cache, so that every tile comes
/// through the CDN.
fn stele_verify(args: &[&str]) -> Output {
    tokio::task::block_in_place(|| {
        Command::new(stele_verify_binary())
            .arg("--no-cache")
            .args(["--timeout", "10"])
            .args(args)
            .output()
            .expect("run stele-verify")
    })
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn get(client: &Client, url: &str) -> Fetched {
    client
        .get(url)
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
}

/// Submits `count` random entries over `WORKERS` connections and returns
/// them once all are acknowledged.
async fn submit_entries(
    client: &Client,
    stele_url: &str,
    round: &str,
    count: usize,
) -> Vec<Logged> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let client = client.clone();
        let url = stele_url.to_owned();
        let round = round.to_owned();
        tasks.spawn(async move {
            let mut logged = Vec::new();
            for number in (worker..count).step_by(WORKERS) {
                let mut entry = format!("cdn e2e {round} entry {number} ").into_bytes();
                entry.extend((0..32).map(|_| fastrand::u8(..)));
                let entry = Bytes::from(entry);
                let deadline = Instant::now() + DEADLINE;
                loop {
                    match client.submit(&url, entry.clone()).await {
                        Ok(Submission::Accepted { index, .. }) => {
                            logged.push(Logged { index, entry });
                            break;
                        }
                        Ok(Submission::Busy { .. }) | Err(_) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("submitting {round} entry {number}: {other:?}"),
                    }
                }
            }
            logged
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("submitting worker"));
    }
    all.sort_by_key(|logged| logged.index);
    all
}

/// The size of the checkpoint the CDN serves now, verified with the key.
async fn cdn_checkpoint(client: &Client, cdn: &str, key: &LogKey) -> (Fetched, u64) {
    let fetched = get(client, &format!("{cdn}/checkpoint")).await;
    assert_eq!(
        fetched.status,
        StatusCode::OK,
        "GET checkpoint through the CDN: {}",
        String::from_utf8_lossy(&fetched.body)
    );
    let size = key
        .open_checkpoint(&fetched.body)
        .unwrap_or_else(|err| panic!("the CDN's checkpoint: {err}"))
        .size;
    (fetched, size)
}

/// The `max-age` of a Cache-Control value.
fn max_age(cache_control: &str) -> Option<u64> {
    cache_control
        .split(',')
        .filter_map(|directive| directive.trim().strip_prefix("max-age="))
        .find_map(|seconds| seconds.parse().ok())
}

/// GETs `url` until `done` accepts an answer; panics at the deadline with
/// the last answer. Returns the accepted answer and how many GETs it took.
async fn poll_until(
    client: &Client,
    url: &str,
    what: &str,
    done: impl Fn(&Fetched) -> bool,
) -> (Fetched, usize) {
    let deadline = Instant::now() + DEADLINE;
    let mut attempts = 0;
    loop {
        let fetched = get(client, url).await;
        attempts += 1;
        if done(&fetched) {
            return (fetched, attempts);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?} ({attempts} GETs of {url}); the last answer: {} \
             X-Cache-Status {:?} Cache-Control {:?} {:?}",
            fetched.status,
            fetched.header("x-cache-status"),
            fetched.header("cache-control"),
            String::from_utf8_lossy(&fetched.body)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn write_file(folder: &Path, name: &str, bytes: &[u8]) -> String {
    let path = folder.join(name);
    std::fs::write(&path, bytes).expect("write a file for stele-verify");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_verifies_through_nginx_which_caches_as_the_sequencer_says() {
    let Some(nginx_binary) = nginx::require_binary() else {
        return;
    };
    if std::env::var("STELE_SKIP_S3_TESTS").as_deref() == Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "STELE_SKIP_S3_TESTS=1 asks to skip the CDN test, but CI is set: a CI run \
             must not pass without it; unset STELE_SKIP_S3_TESTS"
        );
        eprintln!("SKIPPED: STELE_SKIP_S3_TESTS=1: skipping the CDN test");
        return;
    }
    let started = Instant::now();
    // A server of this test's own, since the test stops it; it lives as
    // long as the process, as the shared one does.
    let server: &'static SeaweedFs = Box::leak(Box::new(tokio::task::block_in_place(|| {
        std::thread::spawn(SeaweedFs::start)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })));
    let folder = tempfile::tempdir().expect("temp folder");
    let backend = Backend::s3(server, "cdn");
    let Backend::S3 { prefix, .. } = &backend else {
        unreachable!("an S3 backend")
    };
    let bucket_base = format!("{}/{}/{prefix}", server.endpoint, seaweed::BUCKET);
    let options = ServeOptions {
        data: folder.path().join("data"),
        backend: backend.clone(),
        max_batch: 64,
        batch_interval: "10ms",
        key: None,
        origin: Some("e2e.example/cdn".to_owned()),
        history_interval: None,
    };
    std::fs::create_dir_all(&options.data).expect("data folder");
    let mut stele = tokio::task::block_in_place(|| Stele::start(&options, "serve"));
    let key = log_key(&options.data);
    let vkey = options.data.join("log.vkey").display().to_string();
    let cdn_server = tokio::task::block_in_place(|| {
        Nginx::start(
            &nginx_binary,
            server.endpoint.trim_start_matches("http://"),
            &format!("/{}/{prefix}", seaweed::BUCKET),
        )
    });
    let cdn = cdn_server.url.clone();
    let client = Client::new(WORKERS, Duration::from_secs(15));

    // A tile that does not exist yet is answered 404, and that answer is
    // cached (a HIT on a 404 shows proxy_cache_valid at work) ...
    let (missing, gets) = poll_until(
        &client,
        &format!("{cdn}/{FULL_TILE}"),
        "a cached 404 for a tile not written yet",
        |fetched| {
            fetched.status == StatusCode::NOT_FOUND && fetched.header("x-cache-status") == "HIT"
        },
    )
    .await;
    eprintln!(
        "404 of {FULL_TILE} served from the cache after {gets} GETs ({:?})",
        missing.header("x-cache-status")
    );

    // ... but only briefly: once the sequencer wrote the tile, the CDN
    // serves it.
    let mut logged = submit_entries(&client, &stele.url, "first", FIRST_ROUND).await;
    let written = get(&client, &format!("{bucket_base}/{FULL_TILE}")).await;
    assert_eq!(
        written.status,
        StatusCode::OK,
        "{FULL_TILE} is in the bucket"
    );
    let waited = Instant::now();
    let (tile, gets) = poll_until(
        &client,
        &format!("{cdn}/{FULL_TILE}"),
        "the CDN serving a tile it had cached as missing",
        |fetched| fetched.status == StatusCode::OK,
    )
    .await;
    eprintln!(
        "{FULL_TILE} served {:.1} s ({gets} GETs) after it was written",
        waited.elapsed().as_secs_f64()
    );

    // Full tiles and bundles: the bucket's bytes and headers, then HITs,
    // with or without a query string (the cache key is the path).
    for (path, first) in [(FULL_TILE, Some(tile)), (FULL_BUNDLE, None)] {
        let direct = get(&client, &format!("{bucket_base}/{path}")).await;
        let first = match first {
            Some(first) => first,
            None => get(&client, &format!("{cdn}/{path}")).await,
        };
        assert_eq!(first.status, StatusCode::OK, "{path} through the CDN");
        assert_eq!(first.body, direct.body, "{path}: the CDN's bytes differ");
        assert_eq!(
            first.header("cache-control"),
            CACHE_IMMUTABLE,
            "{path}: Cache-Control through the CDN"
        );
        assert_eq!(
            first.header("content-type"),
            "application/octet-stream",
            "{path}"
        );
        for url in [
            format!("{cdn}/{path}"),
            format!("{cdn}/{path}?reader=cache-buster"),
        ] {
            let again = get(&client, &url).await;
            assert_eq!(again.status, StatusCode::OK, "GET {url}");
            assert_eq!(again.body, direct.body, "GET {url}: bytes");
            assert_eq!(
                again.header("x-cache-status"),
                "HIT",
                "GET {url}: a cached immutable object was fetched again"
            );
        }
    }

    // The real verifier, through the CDN only.
    let entries = folder.path().join("entries");
    std::fs::create_dir_all(&entries).expect("entries folder");
    let output = stele_verify(&["checkpoint", "--log", &cdn, "--vkey", &vkey]);
    assert!(
        output.status.success(),
        "stele-verify checkpoint: {}",
        describe(&output)
    );
    for logged in [&logged[0], &logged[200], &logged[FIRST_ROUND - 1]] {
        let entry_file = write_file(&entries, &format!("{}", logged.index), &logged.entry);
        let index = logged.index.to_string();
        let output = stele_verify(&[
            "inclusion",
            "--log",
            &cdn,
            "--vkey",
            &vkey,
            "--index",
            &index,
            "--entry",
            &entry_file,
        ]);
        assert!(
            output.status.success(),
            "stele-verify inclusion of index {index}: {}",
            describe(&output)
        );
    }
    // ... which can fail: another entry's bytes at that index.
    let wrong_file = write_file(&entries, "wrong", &logged[1].entry);
    let output = stele_verify(&[
        "inclusion",
        "--log",
        &cdn,
        "--vkey",
        &vkey,
        "--index",
        "0",
        "--entry",
        &wrong_file,
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stele-verify inclusion of the wrong bytes must fail: {}",
        describe(&output)
    );

    // The checkpoint is cached briefly: short max-age, and HITs ...
    let (old_checkpoint, old_size) = cdn_checkpoint(&client, &cdn, &key).await;
    let checkpoint_max_age = max_age(old_checkpoint.header("cache-control"));
    assert!(
        checkpoint_max_age.is_some_and(|seconds| seconds <= 10),
        "the checkpoint's Cache-Control {:?} must allow only seconds of caching",
        old_checkpoint.header("cache-control")
    );
    assert_eq!(
        old_checkpoint.header("content-type"),
        "text/plain; charset=utf-8"
    );
    poll_until(
        &client,
        &format!("{cdn}/checkpoint"),
        "a checkpoint served from the cache",
        |fetched| fetched.status == StatusCode::OK && fetched.header("x-cache-status") == "HIT",
    )
    .await;
    assert!(
        old_size >= FIRST_ROUND as u64,
        "the CDN's checkpoint covers {old_size} entries, {FIRST_ROUND} were acknowledged"
    );
    let old_file = write_file(folder.path(), "old-checkpoint", &old_checkpoint.body);

    // ... and fetched again after its max-age: the CDN's readers see the
    // log grow.
    let second = submit_entries(&client, &stele.url, "second", SECOND_ROUND).await;
    let grown_to = second
        .iter()
        .map(|logged| logged.index + 1)
        .max()
        .unwrap_or(0);
    let waited = Instant::now();
    let (_, gets) = poll_until(
        &client,
        &format!("{cdn}/checkpoint"),
        "the CDN serving the grown checkpoint",
        |fetched| {
            fetched.status == StatusCode::OK
                && key
                    .open_checkpoint(&fetched.body)
                    .is_ok_and(|checkpoint| checkpoint.size >= grown_to)
        },
    )
    .await;
    eprintln!(
        "checkpoint grew from {old_size} to at least {grown_to} through the CDN after {:.1} s \
         ({gets} GETs; max-age {checkpoint_max_age:?})",
        waited.elapsed().as_secs_f64()
    );
    logged.extend(second);
    let output = stele_verify(&[
        "consistency",
        "--log",
        &cdn,
        "--vkey",
        &vkey,
        "--old",
        &old_file,
    ]);
    assert!(
        output.status.success(),
        "stele-verify consistency {old_size} -> now: {}",
        describe(&output)
    );
    // Every tile and bundle through the CDN, recomputed from the entries.
    let audited = audit(&PublicLog::new(client.clone(), &cdn), &key)
        .await
        .unwrap_or_else(|err| panic!("auditing the log through the CDN: {err}"));
    for record in &logged {
        audited
            .check_entry(record.index, &record.entry)
            .unwrap_or_else(|err| panic!("{err}"));
    }

    // An index that does not exist is a plain 404 through the CDN.
    let no_index = get(&client, &format!("{cdn}/index/sha256/{}", "ab".repeat(32))).await;
    assert_eq!(no_index.status, StatusCode::NOT_FOUND, "a missing index");

    // The sequencer's private objects: in the bucket (readable there, in
    // this test's SeaweedFS) but never through the CDN.
    let lock = get(&client, &format!("{bucket_base}/.stele/lock")).await;
    assert_eq!(
        lock.status,
        StatusCode::OK,
        "the lock object is in the bucket"
    );
    for path in [
        "/.stele/lock",
        "/%2Estele/lock",
        "/%2estele/%6Cock",
        "/tile/../.stele/lock",
        "/tile/0/../../.stele/lock",
        "/.stele/",
    ] {
        let fetched = get(&client, &format!("{cdn}{path}")).await;
        assert!(
            fetched.status == StatusCode::FORBIDDEN || fetched.status == StatusCode::NOT_FOUND,
            "GET {path} through the CDN answered {}",
            fetched.status
        );
        assert!(
            !contains(&fetched.body, &lock.body),
            "GET {path} through the CDN returned the lock object's bytes"
        );
    }
    // Nothing reaches the bucket as a listing.
    for path in [
        "/",
        "/?list-type=2",
        "/checkpoint?list-type=2&prefix=.stele",
    ] {
        let fetched = get(&client, &format!("{cdn}{path}")).await;
        assert!(
            !String::from_utf8_lossy(&fetched.body).contains("ListBucketResult"),
            "GET {path} through the CDN listed the bucket"
        );
    }
    // Readers only read.
    match client.submit(&cdn, Bytes::from_static(b"not here")).await {
        Ok(Submission::Rejected { status, .. }) => {
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "POST through the CDN"
            );
        }
        other => panic!("POST through the CDN: {other:?}"),
    }

    // The origin goes away; what is cached is still served.
    let status = stele
        .terminate(Duration::from_secs(30))
        .expect("stele exits after SIGTERM");
    assert!(status.success(), "stele exited with {status}");
    tokio::task::block_in_place(|| server.stop());
    assert!(
        client
            .get(&format!("{bucket_base}/checkpoint"))
            .await
            .is_err(),
        "SeaweedFS still answers after it was stopped"
    );
    for path in [FULL_TILE, FULL_BUNDLE] {
        let fetched = get(&client, &format!("{cdn}/{path}")).await;
        assert_eq!(
            fetched.status,
            StatusCode::OK,
            "{path} through the CDN with the origin down"
        );
        assert_eq!(
            fetched.header("x-cache-status"),
            "HIT",
            "{path} with the origin down"
        );
    }
    let (stale, size) = cdn_checkpoint(&client, &cdn, &key).await;
    assert!(size >= grown_to, "the checkpoint went back to {size}");
    eprintln!(
        "with the origin down: tiles HIT, checkpoint {:?}; access log lines: {}; total {:.1} s",
        stale.header("x-cache-status"),
        cdn_server.access_log().lines().count(),
        started.elapsed().as_secs_f64()
    );
}
