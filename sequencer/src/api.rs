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
//! | `GET`, `HEAD` | `/index/<sha256\|sha384\|sha512>/<hex>` | the digest index (filesystem backend only); see [`crate::sigstore::index`] |
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

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
pub use stele_rekor::http::ApiError;
use stele_rekor::http::{
    X_LOG_DUPLICATE, X_LOG_INDEX, body_over_limit, content_length, rekor_v2_preflight, too_large,
    validation_error,
};
use stele_rekor::response::{Format, Inclusion, TLOG_PROOF_MEDIA_TYPE, transparency_log_entry};
use stele_tiles::tile::Tile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, error, info, warn};

use crate::published::{CACHE_CHECKPOINT, CHECKPOINT_KEY};
use crate::log::{Accepted, Log, SubmitError};
use crate::metrics::Metrics;
use crate::ratelog::{self, RateLimitedWarn};
use crate::sigstore::SigstoreConfig;
use crate::storage::{CACHE_IMMUTABLE, CONTENT_TYPE_BINARY, CONTENT_TYPE_TEXT, Key};

/// The response body type of every route.
pub type ResponseBody = Full<Bytes>;


/// How much of an oversized body is read and thrown away before answering
/// 413, so that a client still sending is not cut off by a TCP reset before
/// it reads the answer.
const OVERSIZE_DRAIN_LIMIT: usize = 256 * 1024;
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

/// Most bytes hyper buffers per connection (and so the largest request
/// head). Its default, about 400 KiB, times a thousand connections is
/// memory an attacker gets for free; bodies are streamed in frames, so a
/// small buffer costs only a few more reads.
const MAX_CONNECTION_BUFFER: usize = 16 * 1024;

/// What a request is for, once its path and method are known to be valid.
///
/// The Sigstore issue adds `POST /api/v2/log/entries` here (a variant, a
/// line in [`route`] and a handler in [`Api::handle`]); body reading and
/// the submission pipeline are shared through [`Api::read_body`] and
/// [`Api::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /add`: an opaque entry.
    AddOpaque,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /checkpoint`.
    Checkpoint,
    /// `GET /tile/...`: a hash tile or an entry bundle.
    Tile(Tile),
    /// `POST /api/v2/log/entries`: a Rekor v2 hashedrekord entry.
    RekorV2Entries,
    /// `GET /index/<algorithm>/<hex>`: a digest index object (its path).
    Index(String),
}

const ALLOW_READ: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

/// Maps a request to its route: 404 for unknown paths (with the reason a
/// tile path did not parse), 405 with `Allow` for a known path and the wrong
/// method.
pub fn route(method: &Method, path: &str, config: &ApiConfig) -> Result<Route, ApiError> {
    let (route, allow) = match path {
        "/add" if config.opaque => (Route::AddOpaque, ALLOW_POST),
        "/add" => {
            return Err(ApiError::not_found(
                "the opaque entry kind (POST /add) is turned off on this log",
            ));
        }
        "/healthz" => (Route::Healthz, ALLOW_READ),
        "/metrics" => (Route::Metrics, ALLOW_READ),
        "/api/v2/log/entries" => (Route::RekorV2Entries, ALLOW_POST),
        _ => (read_route(path, config)?, ALLOW_READ),
    };
    let allowed = match allow {
        ALLOW_POST => method == Method::POST,
        _ => method == Method::GET || method == Method::HEAD,
    };
    if !allowed {
        return Err(ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        });
    }
    Ok(route)
}

/// The read paths: `checkpoint` and `tile/...`, at the root or under
/// `/api/v2/`.
fn read_route(path: &str, config: &ApiConfig) -> Result<Route, ApiError> {
    let relative = path
        .strip_prefix("/api/v2/")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or(path);
    if let Some(index_path) = stele_rekor::index::parse_request_path(path) {
        if !config.serve_reads {
            return Err(ApiError::not_found(
                "this log is stored in S3: read the digest index from the bucket or its CDN",
            ));
        }
        return Ok(Route::Index(index_path));
    }
    let is_read_path = relative == CHECKPOINT_KEY || relative.starts_with("tile/");
    if !is_read_path {
        return Err(ApiError::not_found(format!("no such path: {path}")));
    }
    if !config.serve_reads {
        return Err(ApiError::not_found(
            "this log is stored in S3: read the checkpoint and tiles from the bucket or its CDN",
        ));
    }
    if relative == CHECKPOINT_KEY {
        return Ok(Route::Checkpoint);
    }
    Tile::parse_path(relative)
        .map(Route::Tile)
        .map_err(|err| ApiError::not_found(format!("no such tile: {err}")))
}

/// Why a request body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    TooLarge { limit: usize },
    TimedOut { after: Duration },
    Aborted(String),
}

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> ApiError {
        match err {
            BodyError::TooLarge { limit } => body_over_limit(limit),
            BodyError::TimedOut { after } => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {}",
                    crate::ratelog::human_duration(after)
                ),
            )
            .closing(),
            BodyError::Aborted(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body was cut off: {reason}"),
            )
            .closing(),
        }
    }
}

/// Reads a body of at most `limit` bytes before `deadline`. Past the limit
/// it reads on (discarding, up to [`OVERSIZE_DRAIN_LIMIT`] more bytes, and
/// never past the deadline) so that the 413 reaches the client.
pub async fn read_limited<B>(
    mut body: B,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let timeout = deadline.saturating_duration_since(Instant::now());
    let mut collected = BytesMut::new();
    let mut oversize = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if oversize > 0 => return Err(BodyError::TooLarge { limit }),
            Err(_) => return Err(BodyError::TimedOut { after: timeout }),
            Ok(None) => break,
            Ok(Some(Err(err))) if oversize > 0 => {
                debug!(%err, "oversized body cut off");
                return Err(BodyError::TooLarge { limit });
            }
            Ok(Some(Err(err))) => return Err(BodyError::Aborted(err.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if oversize > 0 || collected.len() + data.len() > limit {
            oversize += data.len();
            if oversize > OVERSIZE_DRAIN_LIMIT {
                return Err(BodyError::TooLarge { limit });
            }
            continue;
        }
        collected.extend_from_slice(&data);
    }
    if oversize > 0 {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(collected.freeze())
}

/// Whether a `Content-Type` names raw bytes (parameters ignored).
fn is_octet_stream(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE_BINARY)
}

/// A plain-text answer in the server's body type.
fn text_response(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    stele_rekor::http::text_response(status, body).map(Full::new)
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
            Ok(Route::Checkpoint) => {
                self.read_object(CHECKPOINT_KEY, CONTENT_TYPE_TEXT, CACHE_CHECKPOINT)
                    .await
            }
            Ok(Route::Tile(tile)) => {
                self.read_object(&tile.path(), CONTENT_TYPE_BINARY, CACHE_IMMUTABLE)
                    .await
            }
            Ok(Route::RekorV2Entries) => self.rekor_v2_entries(request).await,
            Ok(Route::Index(path)) => {
                self.read_object(
                    &path,
                    CONTENT_TYPE_TEXT,
                    crate::sigstore::index::CACHE_INDEX,
                )
                .await
            }
            Err(err) => Err(err),
        };
        let mut response = result.unwrap_or_else(error_response);
        if head {
            // Same headers as GET, with the length GET would send.
            let length = response.body().size_hint().exact().unwrap_or(0);
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            *response.body_mut() = Full::new(Bytes::new());
        }
        response
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
    fn health_text(&self) -> Result<String, ApiError> {
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

    /// A public object of the log, with the headers a CDN would see.
    async fn read_object(
        &self,
        path: &str,
        content_type: &'static str,
        cache_control: &'static str,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let key = Key::new(path).map_err(|err| ApiError::not_found(err.to_string()))?;
        // Routing only yields tile paths and the checkpoint; this guards
        // the promise that private objects are never served.
        if key.is_private() {
            return Err(ApiError::not_found(format!("no such path: {path}")));
        }
        let object = self.log.storage().get(&key).await.map_err(|err| {
            error!(%err, %key, "reading a public object failed");
            ApiError::unavailable(format!("could not read {key}: storage failed"), 1)
        })?;
        let Some(object) = object else {
            return Err(ApiError::not_found(format!("{key} does not exist (yet)")));
        };
        let mut response = Response::new(Full::new(object.bytes));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        if let Ok(etag) =
            HeaderValue::from_str(&format!("\"{}\"", object.etag.as_str().trim_matches('"')))
        {
            headers.insert(header::ETAG, etag);
        }
        Ok(response)
    }

    /// `POST /add`: checks the request, reads the body within its limits and
    /// submits it.
    async fn add_opaque<B>(&self, request: Request<B>) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        self.counting_rejections(async {
            if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
                if !is_octet_stream(content_type) {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!(
                            "Content-Type {content_type:?} is not accepted: send the raw entry \
                             as {CONTENT_TYPE_BINARY}"
                        ),
                    )
                    .closing());
                }
            }
            let entry = Vec::from(self.read_body(request).await?);
            self.submit(entry).await
        })
        .await
    }

    /// Runs a submission handler and counts it as rejected if it fails.
    async fn counting_rejections(
        &self,
        handler: impl Future<Output = Result<Response<ResponseBody>, ApiError>>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let result = handler.await;
        if result.is_err() {
            self.metrics
                .submissions
                .with_label_values(&["rejected"])
                .inc();
        }
        result
    }

    /// Reads a submission body: 413 over `max_entry_size` (by
    /// `Content-Length` before reading anything, or while streaming), 400
    /// when empty or cut off, 408 when not sent within `body_timeout`.
    pub async fn read_body<B>(&self, request: Request<B>) -> Result<Bytes, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let limit = self.config.max_entry_size;
        match content_length(request.headers()) {
            Some(length) if length > limit as u64 => {
                return Err(too_large(length as usize, limit));
            }
            Some(0) => return Err(empty_body()),
            _ => {}
        }
        let _reserved = self.reserve_body(request.headers(), limit)?;
        let deadline = Instant::now() + self.config.body_timeout;
        let body = read_limited(request.into_body(), limit, deadline).await?;
        if body.is_empty() {
            return Err(empty_body());
        }
        Ok(body)
    }

    /// Reserves room for a body of at most `limit` bytes (its
    /// `Content-Length`, or `limit` for a chunked one) among the bodies
    /// being read; the reservation lasts while the returned permit lives.
    /// With no room left: 503 with `Retry-After`, before reading anything.
    fn reserve_body(
        &self,
        headers: &HeaderMap,
        limit: usize,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let size =
            content_length(headers).map_or(limit, |length| length.min(limit as u64) as usize);
        let permits = u32::try_from(size.max(1)).unwrap_or(u32::MAX);
        self.body_bytes
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                self.metrics
                    .submissions
                    .with_label_values(&["bodies_full"])
                    .inc();
                ApiError::unavailable(
                    format!(
                        "the log is reading {} bytes of other submissions' bodies; retry later",
                        self.config.max_body_bytes - self.body_bytes.available_permits()
                    ),
                    RETRY_AFTER_UNAVAILABLE,
                )
                .closing()
            })
    }

    /// Submits canonical entry bytes and answers with the receipt once the
    /// entry is published.
    pub async fn submit(&self, entry: Vec<u8>) -> Result<Response<ResponseBody>, ApiError> {
        let accepted = self.accept(entry).await?;
        let mut response =
            text_response(StatusCode::OK, Bytes::from(accepted.receipt().to_bytes()));
        let headers = response.headers_mut();
        headers.insert(X_LOG_INDEX, HeaderValue::from(accepted.index));
        if accepted.duplicate {
            headers.insert(X_LOG_DUPLICATE, HeaderValue::from_static("true"));
        }
        Ok(response)
    }
}

impl Api {
    /// `POST /api/v2/log/entries`: checks a Rekor v2 `CreateEntryRequest`
    /// ([`stele_rekor::validate`]), logs its canonical entry and answers
    /// 201 with the `TransparencyLogEntry` JSON, or with the
    /// c2sp.org/tlog-proof receipt when the client asks for it with
    /// `Accept: application/x-tlog-proof` or `?format=tlog-proof`. An entry
    /// already in the log is 409 with `x-log-index`, as in rekor-tiles
    /// (`internal/server/service.go`); in receipt format its body is the
    /// receipt. Content type `application/json` (or none), else 415.
    async fn rekor_v2_entries<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        if self.sigstore.is_none() {
            return Err(sigstore_off());
        }
        self.counting_rejections(async {
            let format = rekor_v2_preflight(request.headers(), request.uri().query())?;
            // The request is dropped once its entry is out: only the
            // entry waits in the pool, counted there.
            let entry = {
                let _reserved = self.reserve_body(request.headers(), stele_rekor::MAX_REQUEST_SIZE)?;
                let deadline = Instant::now() + self.config.body_timeout;
                let body =
                    read_limited(request.into_body(), stele_rekor::MAX_REQUEST_SIZE, deadline).await?;
                stele_rekor::validate(&body).map_err(validation_error)?.entry
            };
            self.log_rekor_v2(format, entry).await
        })
        .await
    }

    /// Logs the canonical entry of a checked Rekor v2 request and answers as
    /// `POST /api/v2/log/entries` does: 201 with the `TransparencyLogEntry`
    /// (or the receipt, in `format`), 409 with `x-log-index` for an entry
    /// already logged. Shared by the public API and the private ingress
    /// ([`crate::ingress`]), which takes entries the submit function checked.
    pub(crate) async fn log_rekor_v2(
        &self,
        format: Format,
        entry: Vec<u8>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let Some(rekor) = &self.sigstore else {
            return Err(sigstore_off());
        };
        let accepted = self.accept(entry.clone()).await?;
        let (status, content_type, body) = match (format, accepted.duplicate) {
            (Format::TransparencyLogEntry, false) => (
                StatusCode::CREATED,
                "application/json",
                transparency_log_entry(
                    &Inclusion {
                        index: accepted.index,
                        proof: &accepted.proof,
                        tree_size: accepted.tree.size,
                        root: accepted.tree.root,
                        checkpoint: &accepted.checkpoint,
                    },
                    &rekor.log_id,
                    &entry,
                ),
            ),
            (Format::TransparencyLogEntry, true) => (
                StatusCode::CONFLICT,
                CONTENT_TYPE_TEXT,
                format!(
                    "an equivalent entry already exists in the transparency log with index {}\n",
                    accepted.index
                )
                .into_bytes(),
            ),
            (Format::TlogProof, duplicate) => (
                if duplicate {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::CREATED
                },
                TLOG_PROOF_MEDIA_TYPE,
                accepted.receipt().to_bytes(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(X_LOG_INDEX, HeaderValue::from(accepted.index));
        Ok(response)
    }

    /// The metrics of this API, for handlers in other modules.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Logs canonical entry bytes and waits, within `request_timeout`, for
    /// the receipt.
    async fn accept(&self, entry: Vec<u8>) -> Result<Accepted, ApiError> {
        match tokio::time::timeout(self.config.request_timeout, self.log.submit(entry)).await {
            Err(_) => Err(ApiError::unavailable(
                format!(
                    "no receipt within {}; the entry may still be logged: submit it again \
                     for its receipt",
                    humantime::format_duration(self.config.request_timeout)
                ),
                RETRY_AFTER_UNAVAILABLE,
            )),
            Ok(Err(err)) => Err(submit_error(err)),
            Ok(Ok(accepted)) => Ok(accepted),
        }
    }
}

fn sigstore_off() -> ApiError {
    ApiError::not_found("the Sigstore API (POST /api/v2/log/entries) is turned off on this log")
}

fn empty_body() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "the body is empty: send the entry bytes",
    )
}

fn submit_error(err: SubmitError) -> ApiError {
    match &err {
        SubmitError::PoolFull { retry_after, .. } => {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::unavailable(err.to_string(), seconds)
        }
        SubmitError::ShuttingDown => {
            ApiError::unavailable(err.to_string(), RETRY_AFTER_UNAVAILABLE)
        }
        // Logged once per fault by the sequencer, not once per submitter.
        SubmitError::Degraded { retry_after, .. } => {
            ApiError::unavailable(err.to_string(), retry_after.as_secs().max(1))
        }
        SubmitError::Unavailable(_) => {
            warn!(%err, "submission failed");
            ApiError::unavailable(err.to_string(), RETRY_AFTER_UNAVAILABLE)
        }
        SubmitError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, err.to_string())
        }
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

/// Serves `api` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish (up to `shutdown_timeout`) and
/// returns. Connections beyond `max_connections` get a 503 and are closed.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    api: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = api.limits().clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_CONNECTION_BUFFER)
        .keep_alive(true);
    tokio::pin!(shutdown);
    // Both happen at the rate clients choose: a line per interval each,
    // every one counted.
    let warner = |cause| match api.metrics() {
        Some(metrics) => RateLimitedWarn::new(cause, ratelog::DEFAULT_INTERVAL, metrics),
        None => RateLimitedWarn::uncounted(cause, ratelog::DEFAULT_INTERVAL),
    };
    let accept_failed = warner("accept_failed");
    let too_many = warner("too_many_connections");
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = MIN_ACCEPT_BACKOFF;
                    accepted
                }
                Err(err) => {
                    // Out of file descriptors (EMFILE, ENFILE) and the
                    // like: the connection stays in the backlog and every
                    // accept fails at once, so back off rather than spin.
                    accept_failed.warn(format_args!("accept failed: {err}"));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            too_many.warn(format_args!(
                "{} connections open; refusing {peer}",
                limits.max_connections
            ));
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                let health = api.health_probe();
                tokio::spawn(async move {
                    refuse(stream, health).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let api = api.clone();
            let span = debug_span!("request", method = %request.method(), path = %request.uri().path(), %peer);
            async move {
                let response = api.answer(request).await;
                debug!(status = response.status().as_u16(), "answered");
                Ok::<_, Infallible>(response)
            }
            .instrument(span)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(%err, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!(
        open_connections = graceful.count(),
        "stopped accepting connections"
    );
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("open connections did not finish in time; closing them");
    }
}

/// Answers a connection over the limit and closes it: a `/healthz` probe
/// gets the health answer (`health`), so that an orchestrator does not
/// restart a healthy log whose connections a slow client holds; anything
/// else gets 503. What the client sends is read (and discarded) for a
/// moment so that it sees the answer rather than a reset.
async fn refuse(mut stream: TcpStream, health: Option<(StatusCode, String)>) {
    const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
        content-type: text/plain; charset=utf-8\r\n\
        retry-after: 1\r\n\
        connection: close\r\n\
        content-length: 21\r\n\r\n\
        too many connections\n";
    let linger = async {
        let mut head = [0u8; 64];
        let mut filled = 0;
        // Enough of the request line to tell a probe; a client that sends
        // nothing for a while gets the 503.
        let _ = tokio::time::timeout(PROBE_WAIT, async {
            while filled < head.len() && !head[..filled].contains(&b'\n') {
                match stream.read(&mut head[filled..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => filled += read,
                }
            }
        })
        .await;
        let answer = match (&health, probe_method(&head[..filled])) {
            (Some((status, text)), Some(head_only)) => {
                let mut answer = format!(
                    "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n\
                     connection: close\r\ncontent-length: {}\r\n\r\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    text.len()
                )
                .into_bytes();
                if !head_only {
                    answer.extend_from_slice(text.as_bytes());
                }
                answer
            }
            _ => TOO_MANY.to_vec(),
        };
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(PROBE_WAIT + Duration::from_secs(1), linger).await;
}

/// Backoff after a failed accept, doubling up to the maximum while
/// accepts keep failing.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long a refused connection may take to send its request line.
const PROBE_WAIT: Duration = Duration::from_millis(500);

/// Whether a request line is a health probe: `Some(true)` for `HEAD
/// /healthz`, `Some(false)` for `GET /healthz`, else `None`.
fn probe_method(line: &[u8]) -> Option<bool> {
    let line = line.split(|&byte| byte == b'\r' || byte == b'\n').next()?;
    let mut parts = line.split(|&byte| byte == b' ');
    let method = parts.next()?;
    let path = parts.next()?;
    let version = parts.next()?;
    if path != b"/healthz" || !version.starts_with(b"HTTP/1.") || parts.next().is_some() {
        return None;
    }
    match method {
        b"GET" => Some(false),
        b"HEAD" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApiConfig {
        ApiConfig {
            max_entry_size: 16,
            opaque: true,
            serve_reads: true,
            max_connections: 8,
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(1),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    #[test]
    fn health_probes_are_told_from_other_requests() {
        assert_eq!(
            probe_method(b"GET /healthz HTTP/1.1\r\nhost: x\r\n"),
            Some(false)
        );
        assert_eq!(probe_method(b"HEAD /healthz HTTP/1.0\r\n"), Some(true));
        for other in [
            &b"POST /healthz HTTP/1.1\r\n"[..],
            b"GET /healthz?x HTTP/1.1\r\n",
            b"GET /checkpoint HTTP/1.1\r\n",
            b"GET /healthz",
            b"GET /healthz HTTP/1.1 extra\r\n",
            b"",
        ] {
            assert_eq!(
                probe_method(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn routes() {
        let config = config();
        let tile = |path: &str| Route::Tile(Tile::parse_path(path).expect("valid tile path"));
        let cases = [
            (Method::POST, "/add", Route::AddOpaque),
            (Method::GET, "/healthz", Route::Healthz),
            (Method::HEAD, "/metrics", Route::Metrics),
            (Method::GET, "/checkpoint", Route::Checkpoint),
            (Method::GET, "/api/v2/checkpoint", Route::Checkpoint),
            (Method::GET, "/tile/0/000", tile("tile/0/000")),
            (
                Method::HEAD,
                "/tile/1/x001/002.p/3",
                tile("tile/1/x001/002.p/3"),
            ),
            (
                Method::GET,
                "/api/v2/tile/entries/000",
                tile("tile/entries/000"),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(
                route(&method, path, &config),
                Ok(expected),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        let config = config();
        for (method, path, allow) in [
            (Method::GET, "/add", "POST"),
            (Method::PUT, "/add", "POST"),
            (Method::POST, "/checkpoint", "GET, HEAD"),
            (Method::DELETE, "/tile/0/000", "GET, HEAD"),
            (Method::POST, "/healthz", "GET, HEAD"),
        ] {
            let err = route(&method, path, &config).expect_err(path);
            assert_eq!(
                err.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(err.allow, Some(allow), "{method} {path}");
        }
    }

    #[test]
    fn unknown_private_and_malformed_paths_are_404() {
        let config = config();
        for path in [
            "/",
            "/.stele/lock",
            "/log.key",
            "/tile/../.stele/lock",
            "/api/v2/../.stele/lock",
            "/tile/0/0",
            "/tile/0/001.p/256",
            "/tile/0/x000/001",
            "/tile/64/000",
            "/tile/0/000/",
            "/tile/0/%30%30%30",
            "/checkpoint/",
            "/api/v2/add",
            "/api/v2/healthz",
        ] {
            let err = route(&Method::GET, path, &config).expect_err(path);
            assert_eq!(err.status, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn switches_turn_routes_off() {
        let mut config = config();
        config.opaque = false;
        config.serve_reads = false;
        for path in ["/add", "/checkpoint", "/tile/0/000"] {
            let err = route(&Method::POST, path, &config).expect_err(path);
            assert_eq!(err.status, StatusCode::NOT_FOUND, "{path}");
        }
        assert_eq!(route(&Method::GET, "/healthz", &config), Ok(Route::Healthz));
    }

    #[test]
    fn content_types() {
        for (value, ok) in [
            ("application/octet-stream", true),
            ("Application/Octet-Stream", true),
            ("application/octet-stream; charset=binary", true),
            ("application/x-www-form-urlencoded", false),
            ("text/plain", false),
            ("application/octet-streamx", false),
        ] {
            assert_eq!(
                is_octet_stream(&HeaderValue::from_static(value)),
                ok,
                "{value}"
            );
        }
    }

    #[tokio::test]
    async fn bodies_are_read_within_limits() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let body = read_limited(
            Full::new(Bytes::from_static(b"0123456789abcdef")),
            16,
            deadline,
        )
        .await;
        assert_eq!(body, Ok(Bytes::from_static(b"0123456789abcdef")));
        let body = read_limited(
            Full::new(Bytes::from_static(b"0123456789abcdefg")),
            16,
            deadline,
        )
        .await;
        assert_eq!(body, Err(BodyError::TooLarge { limit: 16 }));
    }
}
