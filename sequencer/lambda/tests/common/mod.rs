//! What the tests of `stele-lambda` share: a Lambda Runtime API served
//! on localhost (the documented `invocation/next`,
//! `invocation/{id}/response` and `invocation/{id}/error` routes), API
//! Gateway HTTP API and Function URL events (payload format 2.0), the
//! built function and `stele serve` as processes, the request fixtures made
//! by independent tooling, and the offline check of an answer.

#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

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
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::Ed25519Verifier;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// The ingress secret the tests' sequencers and functions share.
pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";

pub const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// What the function reported for one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`.
    Error(Value),
}

/// A Lambda Runtime API: events wait in a queue until the function asks
/// for the next one; each invocation's outcome goes back to its caller.
pub struct RuntimeApi {
    pub address: SocketAddr,
    events: mpsc::UnboundedSender<(String, Value)>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    next_id: Mutex<u64>,
}

pub struct RuntimeState {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
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
    pub async fn invoke(&self, event: Value) -> Outcome {
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
    pub async fn http(&self, event: Value) -> Answer {
        match self.invoke(event).await {
            Outcome::Response(value) => Answer::from_lambda(&value),
            Outcome::Error(error) => panic!("the function reported an error: {error}"),
        }
    }
}

impl RuntimeState {
    pub async fn serve(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
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

pub fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *response.status_mut() = code;
    response
}

/// An HTTP answer, from the function or from the sequencer directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The API Gateway v2 response a function returned.
    pub fn from_lambda(value: &Value) -> Answer {
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

    pub async fn from_reqwest(response: reqwest::Response) -> Answer {
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

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An API Gateway HTTP API event (payload format 2.0) for a request, as
/// the gateway sends it to a Lambda integration on the `$default` stage.
pub fn http_api_event(method: &str, headers: &[(&str, &str)], body: &[u8], base64: bool) -> Value {
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
pub fn function_url_event(body: &[u8]) -> Value {
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

/// A running `stele-lambda` polling `runtime`.
pub struct Function(Child);

impl Function {
    pub fn start(runtime: &RuntimeApi, sequencer_url: &str, secret: &str) -> Function {
        Function::start_with(runtime, sequencer_url, secret, &[])
    }

    /// A function with `extra` environment variables besides the usual.
    pub fn start_with(
        runtime: &RuntimeApi,
        sequencer_url: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> Function {
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
            .envs(extra.iter().copied())
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
pub fn binary(name: &str) -> PathBuf {
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
pub fn fixtures() -> Vec<(String, bool, Value, Option<String>)> {
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

pub const JSON: (&str, &str) = ("content-type", "application/json");

/// A request the checks refuse: what it is, its body and headers.
pub type Refusal<'a> = (String, Vec<u8>, Vec<(&'a str, &'a str)>);

pub fn no_witnesses() -> WitnessPolicy {
    WitnessPolicy::new(Vec::new(), 0).expect("an empty policy")
}

/// Checks a `TransparencyLogEntry` offline: its proof and checkpoint
/// against the key of the log named `origin`, and its body against the
/// expected entry; returns its index.
pub fn check_entry(
    answer: &Answer,
    origin: &str,
    verifier: &Ed25519Verifier,
    canonical: &[u8],
) -> u64 {
    let entry =
        stele_verifier::tle::parse("function answer", &answer.body).expect("TransparencyLogEntry");
    assert_eq!(entry.body, canonical, "canonicalizedBody");
    entry
        .receipt
        .verify(&entry.body, origin, verifier, &no_witnesses())
        .expect("the entry's proof and checkpoint verify");
    let json: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(
        json["logId"]["keyId"],
        json!(STANDARD.encode(stele_rekor::log_id_ed25519(origin, &verifier.public_key()))),
    );
    assert_eq!(
        answer.header("x-log-index"),
        Some(entry.receipt.index.to_string().as_str())
    );
    entry.receipt.index
}

/// Starts `stele serve` with `args` and the shared secret, and reads the
/// URLs it prints: `(process, public API, private ingress)`.
pub fn spawn_serve(args: &[&std::ffi::OsStr]) -> (Child, String, String) {
    let mut child = Command::new(binary("stele"))
        .arg("serve")
        .args(args)
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
    (
        child,
        public.expect("public URL"),
        ingress.expect("the ingress URL is printed before the public one"),
    )
}

/// The Ed25519 verifier key in the file at `path` (a `log.vkey`).
pub fn read_verifier(path: &Path) -> Ed25519Verifier {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    Ed25519Verifier::from_text(text.trim_end()).expect("verifier key")
}
