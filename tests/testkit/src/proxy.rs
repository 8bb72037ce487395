//! A fault-injecting HTTP proxy to put in front of a real S3 server (the
//! SeaweedFS of [`crate::seaweed`]), for tests of what an S3 client does
//! when the store misbehaves in the ways real ones do:
//!
//! - [`Action::Error`]: answer a request itself with a status and an S3
//!   error document (`409 OperationAborted`, `429`, `500`, `503 SlowDown`),
//!   without forwarding it: throttling and server errors;
//! - [`Action::DropReply`]: forward the request, let the store apply it,
//!   then close the client's connection without its answer: a reply lost on
//!   the way back, so the client cannot tell whether its write happened;
//! - [`Action::StripConditions`]: forward the request without its
//!   `If-Match` and `If-None-Match` headers, as a store that ignores
//!   conditional writes would. SigV4 signs those headers, so the proxy signs
//!   the request again with the credentials it was given.
//!
//! Faults are scripted with [`Rule`]s (method, path, a header, how many
//! matches to let through and how many to hit); every exchange is recorded
//! ([`FaultProxy::exchanges`]) so that a test can show the fault happened
//! and what came after it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the proxy does to a request a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with `status` and an S3 error document whose `<Code>` is
    /// `code`; the store never sees the request.
    Error { status: u16, code: &'static str },
    /// Forward the request, then close the connection without answering.
    DropReply,
    /// Forward the request without `If-Match` and `If-None-Match`.
    StripConditions,
}

impl Action {
    /// `503 SlowDown`, S3's throttling answer.
    pub const SLOW_DOWN: Action = Action::Error {
        status: 503,
        code: "SlowDown",
    };
}

/// Which requests get an [`Action`]: every condition given must hold.
#[derive(Debug, Clone)]
pub struct Rule {
    action: Action,
    method: Option<String>,
    path_contains: Option<String>,
    with_header: Option<String>,
    skip: u64,
    times: Option<u64>,
    matched: u64,
}

impl Rule {
    /// A rule that applies `action` to every request until narrowed.
    pub fn new(action: Action) -> Rule {
        Rule {
            action,
            method: None,
            path_contains: None,
            with_header: None,
            skip: 0,
            times: None,
            matched: 0,
        }
    }

    /// Only requests with this method (`GET`, `PUT`, `DELETE`).
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path and query contain `text`.
    pub fn path_contains(mut self, text: &str) -> Rule {
        self.path_contains = Some(text.to_owned());
        self
    }

    /// Only requests that carry this header.
    pub fn with_header(mut self, name: &str) -> Rule {
        self.with_header = Some(name.to_ascii_lowercase());
        self
    }

    /// Lets the first `count` matching requests through.
    pub fn skip(mut self, count: u64) -> Rule {
        self.skip = count;
        self
    }

    /// Applies to at most `count` requests (after the skipped ones).
    pub fn times(mut self, count: u64) -> Rule {
        self.times = Some(count);
        self
    }

    fn check(&mut self, method: &str, path: &str, headers: &hyper::HeaderMap) -> Option<Action> {
        let applies = self.method.as_deref().is_none_or(|wanted| wanted == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|text| path.contains(text))
            && self
                .with_header
                .as_deref()
                .is_none_or(|name| headers.contains_key(name));
        if !applies {
            return None;
        }
        self.matched += 1;
        let fired = self.matched.saturating_sub(self.skip);
        let within = self.times.is_none_or(|times| fired <= times);
        (fired > 0 && within).then(|| self.action.clone())
    }
}

/// One request through the proxy and what became of it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query, as the client sent them.
    pub path: String,
    /// The condition headers the client sent.
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    /// The rule's action, if one applied.
    pub action: Option<Action>,
    /// The store's status, when the request was forwarded and answered.
    pub upstream_status: Option<u16>,
}

/// Credentials the proxy signs altered requests with.
#[derive(Debug, Clone)]
pub struct Signing {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    exchanges: Mutex<Vec<Exchange>>,
    client: Client<HttpConnector, Full<Bytes>>,
    signing: Option<Signing>,
}

/// A running proxy; dropping it stops accepting connections.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give it to the client as the S3 endpoint.
    pub endpoint: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the proxy ended a connection without an answer: a dropped reply,
/// or a failure to forward.
#[derive(Debug)]
struct ProxyError(String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyError {}

fn failed(what: &str) -> impl FnOnce(String) -> ProxyError + '_ {
    move |error| ProxyError(format!("{what}: {error}"))
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`
    /// (`http://HOST:PORT`). `signing` is needed only for
    /// [`Action::StripConditions`] on a store that checks signatures.
    pub async fn start(upstream: &str, signing: Option<Signing>) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let address: SocketAddr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            rules: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
            signing,
        });
        let served = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { shared.handle(request).await }
                    });
                    // A dropped reply ends the connection with an error.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{address}"),
            shared,
            task,
        }
    }

    /// Adds a rule; rules are checked in order and the first that applies
    /// decides.
    pub fn add(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Removes every rule: from now on requests pass unchanged.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every exchange so far, in the order requests arrived.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.exchanges).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An S3 error document, as S3 sends it.
fn error_document(status: u16, code: &str, path: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the fault proxy</Message><Resource>{path}</Resource>\
         <RequestId>fault-proxy</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("error response")
}

impl Shared {
    async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ProxyError> {
        let (mut parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| failed("reading the request")(e.to_string()))?
            .to_bytes();
        let method = parts.method.as_str().to_owned();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let action = lock(&self.rules)
            .iter_mut()
            .find_map(|rule| rule.check(&method, &path, &parts.headers));
        let mut exchange = Exchange {
            method,
            path: path.clone(),
            if_match: header("if-match"),
            if_none_match: header("if-none-match"),
            action: action.clone(),
            upstream_status: None,
        };
        if let Some(Action::Error { status, code }) = action {
            lock(&self.exchanges).push(exchange);
            return Ok(error_document(status, code, &path));
        }
        if action == Some(Action::StripConditions) {
            let had = parts.headers.remove("if-match").is_some()
                | parts.headers.remove("if-none-match").is_some();
            if had {
                self.sign_again(&mut parts.headers, &parts.method, &path)
                    .map_err(failed("signing again"))?;
            }
        }
        parts.uri = format!("http://{}{path}", self.upstream)
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| failed("upstream URI")(e.to_string()))?;
        let forwarded = Request::from_parts(parts, Full::new(body));
        let answer = match self.client.request(forwarded).await {
            Ok(answer) => answer,
            Err(error) => {
                lock(&self.exchanges).push(exchange);
                return Err(failed("forwarding")(error.to_string()));
            }
        };
        let (mut answer_parts, answer_body) = answer.into_parts();
        let answer_body = answer_body
            .collect()
            .await
            .map_err(|e| failed("reading the answer")(e.to_string()))?
            .to_bytes();
        exchange.upstream_status = Some(answer_parts.status.as_u16());
        lock(&self.exchanges).push(exchange);
        if action == Some(Action::DropReply) {
            return Err(ProxyError("reply dropped by the fault proxy".into()));
        }
        // The body is passed on whole, with its length.
        answer_parts.headers.remove("transfer-encoding");
        answer_parts.headers.remove("connection");
        Ok(Response::from_parts(answer_parts, Full::new(answer_body)))
    }

    /// Replaces the SigV4 signature of a request whose headers changed.
    fn sign_again(
        &self,
        headers: &mut hyper::HeaderMap,
        method: &hyper::Method,
        path: &str,
    ) -> Result<(), String> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        headers.remove("authorization");
        headers.remove("x-amz-date");
        let payload = headers
            .get("x-amz-content-sha256")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("UNSIGNED-PAYLOAD")
            .to_owned();
        let body = if payload == "UNSIGNED-PAYLOAD" {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Precomputed(payload)
        };
        let host = headers
            .get("host")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let pairs: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let identity: Identity = Credentials::new(
            &signing.access_key_id,
            &signing.secret_access_key,
            None,
            None,
            "fault-proxy",
        )
        .into();
        // S3 signs paths as they are: single encoding, no normalisation.
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&signing.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            format!("http://{host}{path}"),
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            body,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let (new_headers, _) = instructions.into_parts();
        for header in new_headers {
            headers.insert(
                HeaderName::from_bytes(header.name().as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(header.value()).map_err(|e| e.to_string())?,
            );
        }
        Ok(())
    }
}
