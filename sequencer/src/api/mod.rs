//! The HTTP API of `stele serve`, on hyper 1 (HTTP/1.1).
//!
//! Routes (see [`route`], the one place that maps requests to handlers):
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/add` | the raw entry bytes in, a c2sp.org/tlog-proof receipt out |
//! | `GET`, `HEAD` | `/healthz` | `ok` while the sequencer runs |
//! | `GET`, `HEAD` | `/metrics` | Prometheus text format |
//! | `GET`, `HEAD` | `/checkpoint`, `/tile/...` | the log itself (filesystem backend only) |
//! | `POST` | `/api/v2/log/entries` | a Rekor v2 `CreateEntryRequest` in, a `TransparencyLogEntry` (or, when asked, a c2sp.org/tlog-proof receipt) out; see [`crate::sigstore`] |
//! | `GET`, `HEAD` | `/index/<sha256\|sha384\|sha512>/<hex>`, `/index/key/<key ID>`, `/index/namespace/<ns, / as ~>` | the digest, signer and namespace indexes (filesystem backend only); see [`crate::sigstore::index`] |
//! | `GET`, `HEAD` | `/history/<YYYY>`, `/history/checkpoint/<size>`, `/stats/v1/{summary,hourly,daily}.json` | the checkpoint history and the statistics (filesystem backend only); see [`crate::history`] |
//! | `GET`, `HEAD` | `/explorer/`, `/explorer/<file>`, `/log.vkey`, `/log.mldsa44.vkey` | the explorer page and the log's verifier keys (the second: an ML-DSA-44 key signing beside the log's) (filesystem backend only); `/explorer` redirects; see [`crate::explorer`] |
//!
//! The read paths are also served under `/api/v2/`, where some Sigstore
//! clients read tiles. Only paths that parse strictly as c2sp.org/tlog-tiles
//! paths are read, and the storage key is rebuilt from the parsed tile, so
//! no request can reach `.stele/` or anything outside the log.
//!
//! `POST /add` takes `Content-Type: application/octet-stream`, or no
//! Content-Type at all; anything else is 415, so that a form post from a
//! browser or `curl --data` without a type is not logged by mistake.
//!
//! Bad input changes nothing and gets a plain-text message with a 4xx:
//! wrong method 405 (with `Allow`), wrong content type 415, empty body 400,
//! body over the limit 413 (from `Content-Length` before reading, or while
//! streaming a chunked body), a body not sent within the body timeout 408, a
//! body cut off 400. Back-pressure is 503 with `Retry-After`, as Tessera
//! does it: the pool is full, the log is shutting down, or storage failed.
//! Connections beyond the limit get a 503 and are closed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
pub use stele_rekor::http::ApiError;
use tokio::sync::Semaphore;

use crate::log::Log;
use crate::metrics::Metrics;
use crate::sigstore::SigstoreConfig;

mod body;
mod rekor;
mod route;
mod serve;
mod submit;
#[cfg(test)]
mod tests;

pub use body::{BodyError, read_limited};
pub use route::{Route, answer_read, route};
pub use serve::serve;

/// The response body type of every route.
pub type ResponseBody = Full<Bytes>;

/// Connections answered "too many connections" at once; beyond this they are
/// closed without a word.
pub const MAX_REFUSALS: usize = 64;
/// Seconds a client turned away for a full pool or a shutdown should wait.
const RETRY_AFTER_UNAVAILABLE: u64 = 1;

/// What the HTTP layer enforces.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest `POST /add` body, at most 65535.
    pub max_entry_size: usize,
    /// Whether `POST /add` (the opaque entry kind) is served.
    pub opaque: bool,
    /// Whether the read paths are served (filesystem backend).
    pub serve_reads: bool,
    /// Most open connections.
    pub max_connections: usize,
    /// Time to send request headers; also the keep-alive idle limit.
    pub header_timeout: Duration,
    /// Time to send a request body.
    pub body_timeout: Duration,
    /// Longest wait for a receipt.
    pub request_timeout: Duration,
    /// Longest wait for open connections at shutdown.
    pub shutdown_timeout: Duration,
    /// Most bytes of submission bodies being read at once, over all
    /// connections; beyond it a submission gets 503 with `Retry-After`
    /// before its body is read. With [`crate::log::LogConfig::pool_bytes`]
    /// it bounds in bytes the memory that submitters can make the process
    /// hold.
    pub max_body_bytes: usize,
}

/// Default of [`ApiConfig::max_body_bytes`]: 16 MiB, room for 256 bodies of
/// the largest opaque entry (64 KiB) or 128 of the largest Rekor v2 request
/// (128 KiB) being read at once, and thousands of typical ones.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

/// A plain-text answer in the server's body type.
fn text_response(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    stele_rekor::http::text_response(status, body).map(Full::new)
}

/// A 200 plain-text answer.
pub(crate) fn text_ok(body: Bytes) -> Response<ResponseBody> {
    text_response(StatusCode::OK, body)
}

/// `/explorer` to `/explorer/`, relative so that it holds behind a path
/// prefix too.
fn explorer_redirect() -> Response<ResponseBody> {
    let mut response = text_response(
        StatusCode::MOVED_PERMANENTLY,
        Bytes::from_static(b"the explorer is at explorer/\n"),
    );
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("explorer/"));
    response
}

/// The answer to a request, with a HEAD request's body taken off (its
/// headers kept, with the length GET would send).
pub fn finish(
    head: bool,
    result: Result<Response<ResponseBody>, ApiError>,
) -> Response<ResponseBody> {
    let mut response = result.unwrap_or_else(error_response);
    if head {
        let length = response.body().size_hint().exact().unwrap_or(0);
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// An error answer in the server's body type.
pub fn error_response(err: ApiError) -> Response<ResponseBody> {
    err.into_plain().map(Full::new)
}

/// The HTTP front of one log.
#[derive(Debug)]
pub struct Api {
    log: Log,
    metrics: Metrics,
    config: ApiConfig,
    /// Cleared when the sequencer stops (for `/healthz`).
    sequencer_running: AtomicBool,
    /// Set when shutdown begins (for `/healthz`).
    shutting_down: AtomicBool,
    /// The Rekor v2 API, when served.
    sigstore: Option<SigstoreConfig>,
    /// Bytes of submission bodies that may still be read at once.
    body_bytes: Arc<Semaphore>,
}

impl Api {
    pub fn new(log: Log, metrics: Metrics, config: ApiConfig) -> Arc<Api> {
        Api::with_sigstore(log, metrics, config, None)
    }

    /// An API that also serves `POST /api/v2/log/entries` when `sigstore`
    /// is given.
    pub fn with_sigstore(
        log: Log,
        metrics: Metrics,
        config: ApiConfig,
        sigstore: Option<SigstoreConfig>,
    ) -> Arc<Api> {
        Arc::new(Api {
            log,
            metrics,
            sequencer_running: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            body_bytes: Arc::new(Semaphore::new(config.max_body_bytes)),
            config,
            sigstore,
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Marks the sequencer as stopped: `/healthz` answers 503.
    pub fn sequencer_stopped(&self) {
        self.sequencer_running.store(false, Ordering::Relaxed);
    }

    /// Marks the start of shutdown: `/healthz` answers 503.
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Answers one request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let head = request.method() == Method::HEAD;
        let result = match route(request.method(), request.uri().path(), &self.config) {
            Ok(Route::AddOpaque) => self.add_opaque(request).await,
            Ok(Route::Healthz) => self.healthz(),
            Ok(Route::Metrics) => Ok(text_response(
                StatusCode::OK,
                Bytes::from(self.metrics.render()),
            )),
            Ok(Route::RekorV2Entries) => self.rekor_v2_entries(request).await,
            Ok(read) => answer_read(self.log.storage().as_ref(), &read).await,
            Err(err) => Err(err),
        };
        finish(head, result)
    }

    /// The `/healthz` answer: 200 while the sequencer runs, else 503.
    pub fn health(&self) -> Response<ResponseBody> {
        self.healthz().unwrap_or_else(error_response)
    }

    fn healthz(&self) -> Result<Response<ResponseBody>, ApiError> {
        let body = self.health_text()?;
        Ok(text_response(StatusCode::OK, Bytes::from(body)))
    }

    /// The text of a healthy `/healthz` (`ok`, or why entries are turned
    /// away), or the 503 of an unhealthy one.
    pub(crate) fn health_text(&self) -> Result<String, ApiError> {
        // A shutdown is the reason first: once it has drained, the
        // sequencer has stopped too, as it should.
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(ApiError::unavailable("shutting down", 1));
        }
        if !self.sequencer_running.load(Ordering::Relaxed) {
            return Err(ApiError::unavailable("the sequencer has stopped", 1));
        }
        // Degraded is still healthy: the process serves reads and answers
        // duplicates, and restarting it would not clear a full disk; the
        // body and `/metrics` (`stele_degraded`) say why entries wait.
        Ok(match self.log.fault() {
            Some(reason) => format!("degraded: not taking new entries: {reason}\n"),
            None => "ok\n".to_owned(),
        })
    }
}

/// What [`serve`] answers requests with: the public [`Api`], or the
/// private ingress ([`crate::ingress::Ingress`]).
pub trait Handler: Send + Sync + 'static {
    /// Connection limits and timeouts.
    fn limits(&self) -> &ApiConfig;
    /// Answers one request.
    fn answer(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send;
    /// The `/healthz` answer (status and text), for a probe that arrives
    /// when every connection is taken; `None` where there is no `/healthz`.
    fn health_probe(&self) -> Option<(StatusCode, String)> {
        None
    }
    /// Where refused connections and failed accepts are counted
    /// (`stele_refusals_total`); `None`: only rate-limited log lines.
    fn metrics(&self) -> Option<&Metrics> {
        None
    }
}

impl Handler for Api {
    fn limits(&self) -> &ApiConfig {
        &self.config
    }

    fn answer(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send {
        self.handle(request)
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }

    fn health_probe(&self) -> Option<(StatusCode, String)> {
        Some(match self.health_text() {
            Ok(text) => (StatusCode::OK, text),
            Err(err) => (err.status, format!("{}\n", err.message)),
        })
    }
}
