//! `stele-lambda` run as Lambda runs it: the built binary, with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a Lambda Runtime API served here on
//! localhost (the documented `invocation/next`, `invocation/{id}/response`
//! and `invocation/{id}/error` routes), fed API Gateway HTTP API and
//! Function URL events (payload format 2.0), forwarding to a real
//! `stele serve` with its private ingress. Every answer is checked against
//! what the sequencer's own API answers for the same request, and accepted
//! entries are verified offline against the log's key.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stele_rekor::ingress::{self, IngressSecret};
use stele_rekor::response::Format;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::Ed25519Verifier;
use stele_tiles::receipt::Receipt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";
const ORIGIN: &str = "lambda.test/log";
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// What the function reported for one invocation.
#[derive(Debug)]
enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`.
    Error(Value),
}

/// A Lambda Runtime API: events wait in a queue until the function asks
/// for the next one; each invocation's outcome goes back to its caller.
struct RuntimeApi {
    address: SocketAddr,
    events: mpsc::UnboundedSender<(String, Value)>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    next_id: Mutex<u64>,
}

struct RuntimeState {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (sender, receiver) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(HashMap::new()));
        let state = Arc::new(RuntimeState {
            events: tokio::sync::Mutex::new(receiver),
            waiting: waiting.clone(),
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(state.serve(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            address,
            events: sender,
            waiting,
            next_id: Mutex::new(0),
        }
    }

    /// Invokes the function with `event` and waits for its outcome.
    async fn invoke(&self, event: Value) -> Outcome {
        let id = {
            let mut next = self.next_id.lock().expect("lock");
            *next += 1;
            format!("8476a536-e9f4-11e8-9739-{:012x}", *next)
        };
        let (sender, receiver) = oneshot::channel();
        self.waiting
            .lock()
            .expect("lock")
            .insert(id.clone(), sender);
        self.events.send((id, event)).expect("queue the event");
        tokio::time::timeout(Duration::from_secs(60), receiver)
            .await
            .expect("the function answered within 60 s")
            .expect("outcome")
    }

    /// Invokes with an HTTP event and returns the HTTP answer the function
    /// gave API Gateway.
    async fn http(&self, event: Value) -> Answer {
        match self.invoke(event).await {
            Outcome::Response(value) => Answer::from_lambda(&value),
            Outcome::Error(error) => panic!("the function reported an error: {error}"),
        }
    }
}

impl RuntimeState {
    async fn serve(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let Some(route) = path.strip_prefix(RUNTIME_PREFIX) else {
            return status(StatusCode::NOT_FOUND);
        };
        if route == "/invocation/next" {
            let Some((id, event)) = self.events.lock().await.recv().await else {
                return status(StatusCode::GONE);
            };
            let deadline = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_millis()
                + 30_000;
            let mut response = Response::new(Full::new(Bytes::from(event.to_string())));
            let headers = response.headers_mut();
            headers.insert("content-type", "application/json".parse().expect("value"));
            headers.insert("lambda-runtime-aws-request-id", id.parse().expect("value"));
            headers.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().expect("value"),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:stele-submit"
                    .parse()
                    .expect("value"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                    .parse()
                    .expect("value"),
            );
            return response;
        }
        let body = request
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (id, outcome) = if let Some(rest) = route.strip_prefix("/invocation/") {
            match rest.rsplit_once('/') {
                Some((id, "response")) => (id.to_owned(), Outcome::Response(value)),
                Some((id, "error")) => (id.to_owned(), Outcome::Error(value)),
                _ => return status(StatusCode::NOT_FOUND),
            }
        } else if route == "/init/error" {
            panic!("the function failed to start: {value}");
        } else {
            return status(StatusCode::NOT_FOUND);
        };
        match self.waiting.lock().expect("lock").remove(&id) {
            Some(sender) => {
                let _ = sender.send(outcome);
                status(StatusCode::ACCEPTED)
            }
            None => status(StatusCode::BAD_REQUEST),
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *response.status_mut() = code;
    response
}

/// An HTTP answer, from the function or from the sequencer directly.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    /// The API Gateway v2 response a function returned.
    fn from_lambda(value: &Value) -> Answer {
        let status = value["statusCode"].as_u64().expect("statusCode") as u16;
        let headers = value["headers"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(name, value)| {
                        (
                            name.to_ascii_lowercase(),
                            value.as_str().expect("header text").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let text = value["body"].as_str().unwrap_or_default();
        let body = if value["isBase64Encoded"].as_bool().unwrap_or(false) {
            STANDARD.decode(text).expect("base64 body")
        } else {
            text.as_bytes().to_vec()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn from_reqwest(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An API Gateway HTTP API event (payload format 2.0) for a request, as
/// the gateway sends it to a Lambda integration on the `$default` stage.
fn http_api_event(method: &str, headers: &[(&str, &str)], body: &[u8], base64: bool) -> Value {
    let mut header_map = serde_json::Map::new();
    for (name, value) in [
        ("host", "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"),
        ("user-agent", "sigstore-python/4.5.1"),
        (
            "x-amzn-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700",
        ),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ]
    .into_iter()
    .chain(headers.iter().copied())
    {
        header_map.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    header_map.insert(
        "content-length".to_owned(),
        Value::String(body.len().to_string()),
    );
    let body_text = if base64 {
        STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("text body")
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/v2/log/entries",
        "rawQueryString": "",
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": "/api/v2/log/entries",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "sigstore-python/4.5.1"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_795_622_400_000u64
        },
        "body": body_text,
        "isBase64Encoded": base64
    })
}

/// A Lambda Function URL event for the same request: format 2.0 with the
/// URL's own request context.
fn function_url_event(body: &[u8]) -> Value {
    let mut event = http_api_event("POST", &[("content-type", "application/json")], body, false);
    event["headers"]["host"] = json!("abcdefghij.lambda-url.us-east-1.on.aws");
    event["requestContext"] = json!({
        "accountId": "anonymous",
        "apiId": "abcdefghij",
        "authentication": null,
        "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abcdefghij",
        "http": {
            "method": "POST",
            "path": "/api/v2/log/entries",
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "sigstore-python/4.5.1"
        },
        "requestId": "5d4c3b2a-0000-4000-8000-000000000001",
        "routeKey": "$default",
        "stage": "$default",
        "time": "25/Nov/2026:16:00:00 +0000",
        "timeEpoch": 1_795_622_400_000u64
    });
    event
}

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
        let mut child = Command::new(binary("stele"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--ingress-listen",
                "127.0.0.1:0",
                "--origin",
                ORIGIN,
                "--batch-interval",
                "10ms",
                "--log-level",
                "warn",
                "--data",
            ])
            .arg(data.path())
            .env("STELE_INGRESS_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start stele serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (mut public, mut ingress) = (None, None);
        let mut line = String::new();
        while public.is_none() {
            line.clear();
            assert!(
                stdout.read_line(&mut line).expect("read") > 0,
                "stele serve exited before listening"
            );
            if let Some(url) = line.trim().strip_prefix("ingress listening on ") {
                ingress = Some(url.to_owned());
            } else if let Some(url) = line.trim().strip_prefix("listening on ") {
                public = Some(url.to_owned());
            }
        }
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let vkey = std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey");
        Sequencer {
            child,
            public: public.expect("public URL"),
            ingress: ingress.expect("the ingress URL is printed before the public one"),
            _data: data,
            verifier: Ed25519Verifier::from_text(vkey.trim_end()).expect("verifier key"),
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

/// A running `stele-lambda` polling `runtime`.
struct Function(Child);

impl Function {
    fn start(runtime: &RuntimeApi, sequencer_url: &str, secret: &str) -> Function {
        let child = Command::new(env!("CARGO_BIN_EXE_stele-lambda"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "stele-submit")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stele-submit")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/25/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", "us-east-1")
            .env("STELE_SEQUENCER_URL", sequencer_url)
            .env("STELE_INGRESS_SECRET", secret)
            .env("STELE_FORWARD_TIMEOUT", "5s")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start stele-lambda");
        Function(child)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A workspace binary of this build profile: `STELE_BIN` for `stele` if
/// set, else beside this crate's own binary.
fn binary(name: &str) -> PathBuf {
    if name == "stele" {
        if let Some(path) = std::env::var_os("STELE_BIN") {
            return PathBuf::from(path);
        }
    }
    let own = Path::new(env!("CARGO_BIN_EXE_stele-lambda"));
    let path = own.with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// The valid and invalid requests made by independent tooling
/// (sequencer/tests/sigstore/make_fixtures.py).
fn fixtures() -> Vec<(String, bool, Value, Option<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sigstore/fixtures");
    let mut fixtures = Vec::new();
    for file in std::fs::read_dir(&dir).expect("fixtures") {
        let json: Value =
            serde_json::from_slice(&std::fs::read(file.expect("entry").path()).expect("read"))
                .expect("fixture JSON");
        fixtures.push((
            json["name"].as_str().expect("name").to_owned(),
            json["valid"].as_bool().expect("valid"),
            json["request"].clone(),
            json["canonical"].as_str().map(str::to_owned),
        ));
    }
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        fixtures.len() >= 14,
        "fixtures missing in {}",
        dir.display()
    );
    fixtures
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A request the checks refuse: what it is, its body and headers.
type Refusal<'a> = (String, Vec<u8>, Vec<(&'a str, &'a str)>);

fn no_witnesses() -> WitnessPolicy {
    WitnessPolicy::new(Vec::new(), 0).expect("an empty policy")
}

/// Checks a `TransparencyLogEntry` offline: its proof and checkpoint
/// against the log's key, and its body against the expected entry.
fn check_entry(answer: &Answer, verifier: &Ed25519Verifier, canonical: &[u8]) -> u64 {
    let entry =
        stele_verifier::tle::parse("function answer", &answer.body).expect("TransparencyLogEntry");
    assert_eq!(entry.body, canonical, "canonicalizedBody");
    entry
        .receipt
        .verify(&entry.body, ORIGIN, verifier, &no_witnesses())
        .expect("the entry's proof and checkpoint verify");
    let json: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(
        json["logId"]["keyId"],
        json!(STANDARD.encode(stele_rekor::log_id_ed25519(ORIGIN, &verifier.public_key()))),
    );
    assert_eq!(
        answer.header("x-log-index"),
        Some(entry.receipt.index.to_string().as_str())
    );
    entry.receipt.index
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
        check_entry(&answer, &sequencer.verifier, canonical.as_bytes());
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
    check_entry(&answer, &sequencer.verifier, &entry);
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
