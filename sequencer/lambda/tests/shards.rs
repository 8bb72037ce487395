//! `stele-lambda` in front of a sequencer that runs several shards
//! (docs/shards.md): the built function under a Lambda Runtime API served
//! here, forwarding to a real `stele serve` whose configuration has
//! `[[shard]]` tables. A submission to `/<name>/api/v2/log/entries` must be
//! logged in that shard and no other, and verify against that shard's key
//! only; names the function does not take are refused without a request to
//! the sequencer; the sequencer's refusals for a shard outside its window
//! reach the client unchanged; and at the ingress, a request signed for one
//! shard is refused at another's path.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use stele_rekor::ingress::{self, IngressSecret};
use stele_rekor::response::Format;
use stele_tiles::note::Ed25519Verifier;

use common::{
    Answer, Function, JSON, RuntimeApi, SECRET, check_entry, fixtures, http_api_event,
    no_witnesses, read_verifier, spawn_serve,
};

/// A shard of the test's sequencer.
struct Shard {
    name: &'static str,
    origin: String,
    verifier: Ed25519Verifier,
}

/// A running `stele serve` with `[[shard]]` tables.
struct Sequencer {
    child: Child,
    public: String,
    ingress: String,
    _data: tempfile::TempDir,
    shards: Vec<Shard>,
}

/// Each shard's name and window, `(accept_from, accept_until)`.
type Windows = [(&'static str, Option<SystemTime>, Option<SystemTime>)];

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

impl Sequencer {
    fn start(windows: &Windows) -> Sequencer {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = format!(
            "data = {:?}\nbatch_interval = \"10ms\"\noperator = \"lambda.test\"\n",
            data.path().display().to_string()
        );
        for (name, from, until) in windows {
            config.push_str(&format!(
                "\n[[shard]]\nname = {name:?}\norigin = \"lambda.test/{name}\"\n\
                 url = \"https://lambda.test/{name}\"\n"
            ));
            if let Some(from) = from {
                config.push_str(&format!("accept_from = \"{}\"\n", rfc3339(*from)));
            }
            if let Some(until) = until {
                config.push_str(&format!("accept_until = \"{}\"\n", rfc3339(*until)));
            }
        }
        let file = data.path().join("stele.toml");
        std::fs::write(&file, config).expect("write the config");
        let (child, public, ingress) = spawn_serve(&[
            "--config".as_ref(),
            file.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--ingress-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--log-level".as_ref(),
            "warn".as_ref(),
        ]);
        let shards = windows
            .iter()
            .map(|(name, _, _)| Shard {
                name,
                origin: format!("lambda.test/{name}"),
                verifier: read_verifier(&data.path().join(name).join("log.vkey")),
            })
            .collect();
        Sequencer {
            child,
            public,
            ingress,
            _data: data,
            shards,
        }
    }

    fn shard(&self, name: &str) -> &Shard {
        self.shards
            .iter()
            .find(|shard| shard.name == name)
            .unwrap_or_else(|| panic!("no shard {name} in the test"))
    }

    /// The size of a shard's published tree.
    async fn tree_size(&self, name: &str) -> u64 {
        let answer = reqwest::get(format!("{}/{name}/checkpoint", self.public))
            .await
            .expect("GET checkpoint");
        assert_eq!(answer.status(), 200, "{name}/checkpoint");
        let text = answer.text().await.expect("checkpoint text");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(self.shard(name).origin.as_str()));
        lines
            .next()
            .and_then(|line| line.parse().ok())
            .expect("checkpoint size line")
    }

    async fn tree_sizes(&self) -> Vec<u64> {
        let mut sizes = Vec::new();
        for shard in &self.shards {
            sizes.push(self.tree_size(shard.name).await);
        }
        sizes
    }

    /// A Rekor v2 submission straight to a shard's public API.
    async fn direct(&self, name: &str, body: &[u8]) -> Answer {
        let answer = reqwest::Client::new()
            .post(format!("{}/{name}/api/v2/log/entries", self.public))
            .header(JSON.0, JSON.1)
            .body(body.to_vec())
            .send()
            .await
            .expect("send");
        Answer::from_reqwest(answer).await
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP API event for `POST path` with a JSON body.
fn event_to(path: &str, body: &[u8]) -> Value {
    let mut event = http_api_event("POST", &[JSON], body, false);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

/// The valid fixtures: each request body and its canonical entry.
fn valid_requests() -> Vec<(Vec<u8>, Vec<u8>)> {
    fixtures()
        .into_iter()
        .filter(|fixture| fixture.1)
        .map(|(_, _, request, canonical)| {
            (
                serde_json::to_vec(&request).expect("JSON"),
                canonical
                    .expect("valid fixtures carry their entry")
                    .into_bytes(),
            )
        })
        .collect()
}

/// Whether `answer`'s entry verifies against `shard`'s key.
fn verifies_against(answer: &Answer, shard: &Shard) -> bool {
    let entry =
        stele_verifier::tle::parse("function answer", &answer.body).expect("TransparencyLogEntry");
    entry
        .receipt
        .verify(&entry.body, &shard.origin, &shard.verifier, &no_witnesses())
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_submission_reaches_its_own_shard() {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let sequencer = Sequencer::start(&[
        ("2026", Some(now - day), Some(now + day)),
        ("2027", Some(now - day), None),
        ("2030", Some(now + 365 * day), None),
    ]);
    let runtime = RuntimeApi::start().await;
    let _function = Function::start_with(
        &runtime,
        &sequencer.ingress,
        SECRET,
        &[("STELE_SHARDS", "2026,2027,2030")],
    );
    let requests = valid_requests();
    assert!(requests.len() >= 3, "three valid fixtures");
    let (a, b) = (sequencer.shard("2026"), sequencer.shard("2027"));

    // One entry to each active shard: each is logged in its own shard, and
    // its proof verifies against that shard's key and not the other's.
    let answer = runtime
        .http(event_to("/2026/api/v2/log/entries", &requests[0].0))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(
        check_entry(&answer, &a.origin, &a.verifier, &requests[0].1),
        0
    );
    assert!(!verifies_against(&answer, b));
    let answer = runtime
        .http(event_to("/2027/api/v2/log/entries", &requests[1].0))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(
        check_entry(&answer, &b.origin, &b.verifier, &requests[1].1),
        0
    );
    assert!(!verifies_against(&answer, a));
    assert_eq!(sequencer.tree_sizes().await, [1, 1, 0]);

    // The first entry again: a duplicate in its shard, but new in the
    // other, whose deduplication is its own.
    let again = runtime
        .http(event_to("/2026/api/v2/log/entries", &requests[0].0))
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.header("x-log-index"), Some("0"));
    let other = runtime
        .http(event_to("/2027/api/v2/log/entries", &requests[0].0))
        .await;
    assert_eq!(other.status, 201, "{}", other.text());
    assert_eq!(
        check_entry(&other, &b.origin, &b.verifier, &requests[0].1),
        1
    );
    assert_eq!(sequencer.tree_sizes().await, [1, 2, 0]);

    // A shard before its window: the sequencer's refusal, passed on as the
    // shard's own public API gives it.
    let pending = runtime
        .http(event_to("/2030/api/v2/log/entries", &requests[2].0))
        .await;
    let direct = sequencer.direct("2030", &requests[2].0).await;
    assert_eq!(pending.status, 403, "{}", pending.text());
    assert_eq!(
        (pending.status, pending.text()),
        (direct.status, direct.text())
    );
    assert!(pending.text().contains("2030"), "{}", pending.text());

    // Names the function does not take, the unprefixed path of a sharded
    // log, and paths that are no shard's: 404 naming where to submit.
    for path in [
        "/2028/api/v2/log/entries",
        "/api/v2/log/entries",
        "/Prod/api/v2/log/entries",
        "/2026/add",
        "/2026/2027/api/v2/log/entries",
    ] {
        let answer = runtime.http(event_to(path, &requests[2].0)).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(
            answer.text().contains("/2026/api/v2/log/entries"),
            "{path}: {}",
            answer.text()
        );
    }
    // A wrong method on a shard's path, as the sequencer's API answers it.
    let mut get = event_to("/2026/api/v2/log/entries", b"");
    get["requestContext"]["http"]["method"] = json!("GET");
    let get = runtime.http(get).await;
    assert_eq!(get.status, 405, "{}", get.text());
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(
        sequencer.tree_sizes().await,
        [1, 2, 0],
        "nothing refused was logged"
    );

    // Without STELE_SHARDS the function forwards any valid name, and the
    // sequencer answers for the shard it does not run.
    let runtime = RuntimeApi::start().await;
    let _open = Function::start(&runtime, &sequencer.ingress, SECRET);
    let unknown = runtime
        .http(event_to("/2028/api/v2/log/entries", &requests[2].0))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let answer = runtime
        .http(event_to("/2027/api/v2/log/entries", &requests[2].0))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(
        check_entry(&answer, &b.origin, &b.verifier, &requests[2].1),
        2
    );
    assert_eq!(sequencer.tree_sizes().await, [1, 3, 0]);
}

/// With STELE_SHARDS set, the function refuses other names itself: with no
/// sequencer listening, an unknown name is still 404 while a known one is
/// the 503 of a sequencer that cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_shards_are_refused_without_the_sequencer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let runtime = RuntimeApi::start().await;
    let _function = Function::start_with(&runtime, &url, SECRET, &[("STELE_SHARDS", "2026, 2027")]);
    let request = &valid_requests()[0].0;
    let unknown = runtime
        .http(event_to("/2029/api/v2/log/entries", request))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(
        unknown
            .text()
            .contains("/2026/api/v2/log/entries or /2027/api/v2/log/entries"),
        "{}",
        unknown.text()
    );
    let known = runtime
        .http(event_to("/2027/api/v2/log/entries", request))
        .await;
    assert_eq!(known.status, 503, "{}", known.text());

    // A list naming something that is no shard name stops the function at
    // start, saying why.
    for bad in ["2026,Prod", "2026,,2027", "2026,2026", ""] {
        let output = Command::new(env!("CARGO_BIN_EXE_stele-lambda"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
            .env("STELE_SEQUENCER_URL", &url)
            .env("STELE_INGRESS_SECRET", SECRET)
            .env("STELE_SHARDS", bad)
            .stdin(Stdio::null())
            .output()
            .expect("run stele-lambda");
        assert_eq!(output.status.code(), Some(2), "STELE_SHARDS={bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("STELE_SHARDS"), "{bad:?}: {stderr}");
    }
}

/// At the ingress itself: a request MACed for one shard's path is refused
/// at another shard's (and at the single log's), and taken at its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_refuses_a_request_signed_for_another_shard() {
    let now = SystemTime::now();
    let sequencer = Sequencer::start(&[("2026", None, None), ("2027", Some(now), None)]);
    let (_, entry) = valid_requests().swap_remove(0);
    let secret = IngressSecret::new(SECRET).expect("secret");
    let signed_for_2026 = ingress::sign(
        &secret,
        &ingress::ingress_path(Some("2026")),
        Format::TransparencyLogEntry,
        &entry,
        SystemTime::now(),
        [26; 16],
    );
    let send = |path: String| {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", sequencer.ingress))
            .header("content-type", "application/octet-stream")
            .body(entry.clone());
        for (name, value) in &signed_for_2026 {
            request = request.header(name, value);
        }
        async move { Answer::from_reqwest(request.send().await.expect("send")).await }
    };
    for path in [
        ingress::ingress_path(Some("2027")),
        ingress::INGRESS_PATH.to_owned(),
    ] {
        let answer = send(path.clone()).await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.text());
    }
    assert_eq!(sequencer.tree_sizes().await, [0, 0]);
    let answer = send(ingress::ingress_path(Some("2026"))).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let a = sequencer.shard("2026");
    check_entry(&answer, &a.origin, &a.verifier, &entry);
    assert_eq!(sequencer.tree_sizes().await, [1, 0]);
}

/// A shard whose window closes while the test runs: the function passes
/// on the sequencer's 410, as the shard's public API gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_shard_is_refused_with_the_sequencers_answer() {
    let now = SystemTime::now();
    let until = now + Duration::from_secs(6);
    let sequencer = Sequencer::start(&[
        ("old", Some(now - Duration::from_secs(60)), Some(until)),
        ("new", Some(now - Duration::from_secs(60)), None),
    ]);
    let runtime = RuntimeApi::start().await;
    let _function = Function::start_with(
        &runtime,
        &sequencer.ingress,
        SECRET,
        &[("STELE_SHARDS", "old,new")],
    );
    let requests = valid_requests();
    let before = runtime
        .http(event_to("/old/api/v2/log/entries", &requests[0].0))
        .await;
    assert!(
        SystemTime::now() < until,
        "the test was too slow to submit before the window closed"
    );
    assert_eq!(before.status, 201, "{}", before.text());
    let old = sequencer.shard("old");
    check_entry(&before, &old.origin, &old.verifier, &requests[0].1);

    if let Ok(wait) = until.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait + Duration::from_millis(500)).await;
    }
    let after = runtime
        .http(event_to("/old/api/v2/log/entries", &requests[1].0))
        .await;
    let direct = sequencer.direct("old", &requests[1].0).await;
    assert_eq!(after.status, 410, "{}", after.text());
    assert_eq!((after.status, after.text()), (direct.status, direct.text()));
    assert!(
        after.text().contains("new"),
        "names the shard taking entries: {}",
        after.text()
    );
    let answer = runtime
        .http(event_to("/new/api/v2/log/entries", &requests[1].0))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());

    // The frozen shard's final checkpoint holds the one entry.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reqwest::get(format!("{}/old/final-checkpoint", sequencer.public))
            .await
            .expect("GET final-checkpoint");
        if answer.status() == 200 {
            let text = answer.text().await.expect("text");
            assert_eq!(text.lines().nth(1), Some("1"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no final checkpoint 30 s after the window closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
