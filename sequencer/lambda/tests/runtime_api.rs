//! `stele-lambda` run as Lambda runs it: the built binary, with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a Lambda Runtime API served here on
//! localhost (the documented `invocation/next`, `invocation/{id}/response`
//! and `invocation/{id}/error` routes), fed API Gateway HTTP API and
//! Function URL events (payload format 2.0), forwarding to a real
//! `stele serve` with its private ingress. Every answer is checked against
//! what the sequencer's own API answers for the same request, and accepted
//! entries are verified offline against the log's key.

mod common;

use std::process::Child;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use stele_rekor::ingress::{self, IngressSecret};
use stele_rekor::response::Format;
use stele_tiles::note::Ed25519Verifier;
use stele_tiles::receipt::Receipt;

use common::{
    Answer, Function, JSON, Outcome, Refusal, RuntimeApi, SECRET, check_entry, fixtures,
    function_url_event, http_api_event, no_witnesses, read_verifier, spawn_serve,
};

const ORIGIN: &str = "lambda.test/log";

/// A running `stele serve` with its public API and private ingress.
struct Sequencer {
    child: Child,
    public: String,
    ingress: String,
    _data: tempfile::TempDir,
    verifier: Ed25519Verifier,
}

impl Sequencer {
    fn start() -> Sequencer {
        let data = tempfile::tempdir().expect("tempdir");
        let (child, public, ingress) = spawn_serve(&[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--ingress-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--origin".as_ref(),
            ORIGIN.as_ref(),
            "--batch-interval".as_ref(),
            "10ms".as_ref(),
            "--log-level".as_ref(),
            "warn".as_ref(),
            "--data".as_ref(),
            data.path().as_os_str(),
        ]);
        let verifier = read_verifier(&data.path().join("log.vkey"));
        Sequencer {
            child,
            public,
            ingress,
            _data: data,
            verifier,
        }
    }

    /// The size of the published tree.
    async fn tree_size(&self) -> u64 {
        let text = reqwest::get(format!("{}/checkpoint", self.public))
            .await
            .expect("GET checkpoint")
            .text()
            .await
            .expect("checkpoint text");
        text.lines()
            .nth(1)
            .and_then(|line| line.parse().ok())
            .expect("checkpoint size line")
    }

    /// Sends a request straight to the sequencer's public API.
    async fn direct(&self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let client = reqwest::Client::new();
        let mut request = client.request(
            method.parse().expect("method"),
            format!("{}/api/v2/log/entries", self.public),
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::from_reqwest(request.body(body.to_vec()).send().await.expect("send")).await
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_checks_forwards_and_answers_like_the_sequencer() {
    let sequencer = Sequencer::start();
    let runtime = RuntimeApi::start().await;
    let _function = Function::start(&runtime, &sequencer.ingress, SECRET);
    let fixtures = fixtures();

    // Every valid request, from independent tooling, through the function:
    // 201 with a TransparencyLogEntry that verifies against the log's key.
    let mut logged = 0;
    for (name, valid, request, canonical) in &fixtures {
        if !valid {
            continue;
        }
        let body = serde_json::to_vec(request).expect("JSON");
        let answer = runtime
            .http(http_api_event("POST", &[JSON], &body, false))
            .await;
        assert_eq!(answer.status, 201, "{name}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let canonical = canonical
            .as_ref()
            .expect("valid fixtures carry their entry");
        check_entry(&answer, ORIGIN, &sequencer.verifier, canonical.as_bytes());
        logged += 1;
    }
    assert_eq!(sequencer.tree_size().await, logged);

    // A duplicate: 409 with x-log-index, the same answer the sequencer's
    // own API gives.
    let (_, _, first, _) = fixtures.iter().find(|f| f.1).expect("a valid fixture");
    let first = serde_json::to_vec(first).expect("JSON");
    let via_function = runtime
        .http(http_api_event("POST", &[JSON], &first, false))
        .await;
    let direct = sequencer.direct("POST", &[JSON], &first).await;
    assert_eq!(via_function.status, 409);
    assert_eq!(
        (via_function.status, via_function.body.clone()),
        (direct.status, direct.body.clone())
    );
    assert_eq!(
        via_function.header("x-log-index"),
        direct.header("x-log-index")
    );

    // Requests the checks refuse: the committed invalid fixtures, and one
    // broken field each of a valid one. The function answers exactly as
    // the sequencer does, and nothing is logged.
    let mut refused: Vec<Refusal<'_>> = fixtures
        .iter()
        .filter(|f| !f.1)
        .map(|(name, _, request, _)| {
            (
                name.clone(),
                serde_json::to_vec(request).expect("JSON"),
                vec![JSON],
            )
        })
        .collect();
    let valid: Value = serde_json::from_slice(&first).expect("JSON");
    let broken = |path: &[&str], value: Value| {
        let mut request = valid.clone();
        let mut field = &mut request;
        for step in &path[..path.len() - 1] {
            field = &mut field[*step];
        }
        field[path[path.len() - 1]] = value;
        serde_json::to_vec(&request).expect("JSON")
    };
    let signature = &valid["hashedRekordRequestV002"]["signature"]["content"];
    let mut flipped = STANDARD
        .decode(signature.as_str().expect("signature"))
        .expect("base64");
    flipped[10] ^= 1;
    refused.push((
        "wrong signature".into(),
        broken(
            &["hashedRekordRequestV002", "signature", "content"],
            json!(STANDARD.encode(&flipped)),
        ),
        vec![JSON],
    ));
    refused.push((
        "short digest".into(),
        broken(
            &["hashedRekordRequestV002", "digest"],
            json!(STANDARD.encode([7u8; 20])),
        ),
        vec![JSON],
    ));
    refused.push((
        "unknown keyDetails".into(),
        broken(
            &[
                "hashedRekordRequestV002",
                "signature",
                "verifier",
                "keyDetails",
            ],
            json!("PKIX_ECDSA_P256_SHA_999"),
        ),
        vec![JSON],
    ));
    refused.push(("not JSON".into(), b"{\"hashedRekord".to_vec(), vec![JSON]));
    refused.push(("empty body".into(), Vec::new(), vec![JSON]));
    refused.push((
        "DSSE".into(),
        br#"{"dsseRequestV002":{"envelope":{}}}"#.to_vec(),
        vec![JSON],
    ));
    refused.push((
        "form content type".into(),
        first.clone(),
        vec![("content-type", "application/x-www-form-urlencoded")],
    ));
    refused.push(("oversized".into(), vec![b' '; 200 * 1024], vec![JSON]));
    let size_before = sequencer.tree_size().await;
    for (name, body, headers) in &refused {
        let via_function = runtime
            .http(http_api_event("POST", headers, body, false))
            .await;
        let direct = sequencer.direct("POST", headers, body).await;
        assert!(
            (400..500).contains(&via_function.status),
            "{name}: {}",
            via_function.status
        );
        assert_eq!(
            (via_function.status, via_function.text()),
            (direct.status, direct.text()),
            "{name}: the function answers as the sequencer does"
        );
    }
    // A wrong method: 405 with Allow, as the sequencer's API.
    let get = runtime.http(http_api_event("GET", &[], b"", false)).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(
        sequencer.tree_size().await,
        size_before,
        "nothing refused was logged"
    );

    // The same request in the other event shapes and encodings, and the
    // c2sp.org/tlog-proof receipt when asked for.
    let (_, _, second, second_canonical) = fixtures
        .iter()
        .filter(|f| f.1)
        .nth(1)
        .expect("two valid fixtures");
    let second = serde_json::to_vec(second).expect("JSON");
    let base64_event = http_api_event("POST", &[JSON], &second, true);
    let again = runtime.http(base64_event).await;
    assert_eq!(again.status, 409, "{}", again.text());
    let receipt_answer = runtime
        .http(http_api_event(
            "POST",
            &[JSON, ("accept", "application/x-tlog-proof")],
            &second,
            false,
        ))
        .await;
    assert_eq!(
        receipt_answer.header("content-type"),
        Some("application/x-tlog-proof")
    );
    let receipt = Receipt::parse(&receipt_answer.body).expect("a tlog-proof receipt");
    receipt
        .verify(
            second_canonical.as_ref().expect("entry").as_bytes(),
            ORIGIN,
            &sequencer.verifier,
            &no_witnesses(),
        )
        .expect("the receipt verifies");

    // A Function URL event and a named API Gateway stage reach the same
    // entry (already logged, so 409).
    let url_answer = runtime.http(function_url_event(&second)).await;
    assert_eq!(url_answer.status, 409, "{}", url_answer.text());
    let mut staged = http_api_event("POST", &[JSON], &second, false);
    staged["rawPath"] = json!("/prod/api/v2/log/entries");
    staged["requestContext"]["stage"] = json!("prod");
    staged["requestContext"]["http"]["path"] = json!("/prod/api/v2/log/entries");
    let staged_answer = runtime.http(staged).await;
    assert_eq!(staged_answer.status, 409, "{}", staged_answer.text());

    // An event that is not an HTTP event: the runtime's error route.
    match runtime
        .invoke(json!({"Records": [{"eventSource": "aws:sqs"}]}))
        .await
    {
        Outcome::Error(error) => assert!(error["errorMessage"].is_string(), "{error}"),
        Outcome::Response(value) => panic!("answered a non-HTTP event: {value}"),
    }
    // And the function goes on afterwards.
    let after = runtime
        .http(http_api_event("POST", &[JSON], &second, false))
        .await;
    assert_eq!(after.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_takes_only_authenticated_fresh_requests() {
    let sequencer = Sequencer::start();
    let client = reqwest::Client::new();
    let (_, _, _, canonical) = fixtures()
        .into_iter()
        .find(|f| f.1)
        .expect("a valid fixture");
    let entry = canonical.expect("entry").into_bytes();
    let url = format!("{}{}", sequencer.ingress, ingress::INGRESS_PATH);
    let send = |headers: Vec<(hyper::header::HeaderName, String)>, body: Vec<u8>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { Answer::from_reqwest(request.send().await.expect("send")).await }
    };
    let nonce = |n: u8| [n; 16];
    let secret = IngressSecret::new(SECRET).expect("secret");

    // No credentials, another secret, a stale time: 401, nothing logged.
    let bare = send(Vec::new(), entry.clone()).await;
    assert_eq!(bare.status, 401, "{}", bare.text());
    let other = IngressSecret::new("another-secret-also-thirty-two-bytes!!").expect("secret");
    let forged = ingress::sign(
        &other,
        ingress::INGRESS_PATH,
        Format::TransparencyLogEntry,
        &entry,
        SystemTime::now(),
        nonce(1),
    );
    let answer = send(forged, entry.clone()).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    let stale = ingress::sign(
        &secret,
        ingress::INGRESS_PATH,
        Format::TransparencyLogEntry,
        &entry,
        SystemTime::now() - Duration::from_secs(120),
        nonce(2),
    );
    let answer = send(stale, entry.clone()).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer.text().contains("clock"), "{}", answer.text());
    // Signed for one body, sent with another.
    let signed = ingress::sign(
        &secret,
        ingress::INGRESS_PATH,
        Format::TransparencyLogEntry,
        &entry,
        SystemTime::now(),
        nonce(3),
    );
    let mut other_body = entry.clone();
    other_body.push(b' ');
    let answer = send(signed.clone(), other_body).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        sequencer.tree_size().await,
        0,
        "nothing unauthenticated was logged"
    );

    // Authenticated: logged without a signature check, answered as the
    // public API answers.
    let answer = send(signed.clone(), entry.clone()).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    check_entry(&answer, ORIGIN, &sequencer.verifier, &entry);
    // The same request again is a replay.
    let replay = send(signed, entry.clone()).await;
    assert_eq!(replay.status, 401, "{}", replay.text());
    assert!(replay.text().contains("replay"), "{}", replay.text());
    // Authenticated bytes that are not a hashedrekord entry are refused.
    let junk = b"not an entry".to_vec();
    let answer = send(
        ingress::sign(
            &secret,
            ingress::INGRESS_PATH,
            Format::TlogProof,
            &junk,
            SystemTime::now(),
            nonce(4),
        ),
        junk,
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(sequencer.tree_size().await, 1);
    // The public port has no ingress.
    let public = client
        .post(format!("{}{}", sequencer.public, ingress::INGRESS_PATH))
        .body(entry)
        .send()
        .await
        .expect("send");
    assert_eq!(public.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_reports_a_missing_or_refusing_sequencer() {
    let sequencer = Sequencer::start();
    let runtime = RuntimeApi::start().await;
    let (_, _, request, _) = fixtures()
        .into_iter()
        .find(|f| f.1)
        .expect("a valid fixture");
    let body = serde_json::to_vec(&request).expect("JSON");

    // A function whose secret the sequencer does not share: 502, and the
    // client is not told the ingress's reason.
    {
        let _function = Function::start(&runtime, &sequencer.ingress, &"w".repeat(40));
        let answer = runtime
            .http(http_api_event("POST", &[JSON], &body, false))
            .await;
        assert_eq!(answer.status, 502, "{}", answer.text());
        assert!(!answer.text().contains("MAC"), "{}", answer.text());
    }
    assert_eq!(sequencer.tree_size().await, 0);

    // No sequencer at all: 503 with Retry-After, so clients come back. A
    // new Runtime API for the new function: the killed one's long poll
    // may still hold the old one's queue.
    let ingress = sequencer.ingress.clone();
    drop(sequencer);
    let runtime = RuntimeApi::start().await;
    let _function = Function::start(&runtime, &ingress, SECRET);
    let answer = runtime
        .http(http_api_event("POST", &[JSON], &body, false))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.header("retry-after"), Some("1"));
}
