//! A c2sp.org/tlog-witness server: `POST /add-checkpoint`.
//!
//! The witness cosigns (`cosignature/v1`, c2sp.org/tlog-cosignature) a
//! checkpoint of a log it knows only after verifying the log's signature and
//! a consistency proof from the size it last cosigned. Status codes, as the
//! spec assigns them:
//!
//! | status | when |
//! |---|---|
//! | 200 | cosigned: the body is the signature line |
//! | 400 | the body is malformed, or `old` is above the checkpoint size |
//! | 403 | no signature verifies against the log's key |
//! | 404 | the checkpoint's origin is not a known log |
//! | 409 | `old` is not the size last cosigned (body: that size, `text/x.tlog.size`), or the same size with another root |
//! | 422 | the consistency proof does not verify |
//!
//! # State
//!
//! `<state>/<hex SHA-256 of the origin>.checkpoint` holds the last cosigned
//! checkpoint of each log, verbatim. It is written (temporary file, `fsync`,
//! `rename`, `fsync` of the folder) *before* the cosignature is returned,
//! and the check and the write happen under one lock, so two concurrent
//! requests cannot roll the witness back (the race the spec describes).
//!
//! # Evidence
//!
//! A request with a valid log signature whose proof fails is kept as
//! possible evidence of misbehaviour in `<state>/rejected/`, one file per
//! request, named `<unix time>-<checkpoint size>-<16 hex digits of the
//! SHA-256 of the body>-<counter>.txt`. A name that exists is never
//! reused, so no evidence replaces other evidence. The folder's total size
//! (the sum of its files' lengths, counted at start-up and kept up to date)
//! is bounded: when a request would take it past the bound, the *new*
//! request is not kept and a rate-limited warning counts how many were
//! dropped. Dropping the newest rather than the oldest is deliberate: anyone
//! can replay a genuinely signed checkpoint with a wrong proof, so a flood of
//! such requests must not be able to push out the evidence that was there
//! before it; the operator, warned, can move files away to make room (a
//! full folder is measured again, at most every few seconds).
//!
//! # Serving
//!
//! [`Witness::serve_with`] protects the server from its clients
//! ([`ServerLimits`]): a connection must send a request's headers within the
//! header timeout of their first byte, its body within the body timeout of
//! the headers (else 408 and the connection is closed), and is closed after
//! the idle timeout without a request (before the first one, or between
//! keep-alive requests). At most `max_connections` connections are served at
//! once; beyond that, a connection gets 503 and is closed by one of a few
//! small tasks, or closed at once if those are busy too, so a flood costs
//! bounded memory. When `accept` fails (out of descriptors, out of memory, a
//! connection reset before it was taken) the loop waits before trying again,
//! from 10 ms doubling up to 1 s, and reset by the next success. Warnings
//! whose rate a client controls (accept failures, refused connections,
//! evidence not kept) are written at most once per interval per cause, with
//! the number of occurrences not written.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::note::{Note, verify_note};
use stele_tiles::proof::verify_consistency;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::keys::LogKey;
use crate::monitor::write_atomic;

/// Largest request body: a checkpoint note plus 63 proof lines.
const MAX_BODY: usize = stele_tiles::note::MAX_NOTE_SIZE + 64 * 64;

/// Default [`ServerLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default bound of the evidence folder, in bytes: 64 MiB, at least 63
/// requests of the largest size and thousands of ordinary ones.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 64 << 20;
/// Default interval of rate-limited warnings.
pub const DEFAULT_WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Descriptors the server needs beside its connections: the listener, the
/// runtime, standard streams, state and evidence files, and the tasks that
/// answer 503 to connections over the limit.
pub const RESERVED_DESCRIPTORS: u64 = REFUSERS as u64 + 32;

/// Tasks that may be answering 503 to connections over the limit at once;
/// beyond them, such connections are closed without an answer.
const REFUSERS: usize = 32;
/// How long a refusing task spends on one connection at most.
const REFUSE_TIME: Duration = Duration::from_secs(1);
/// The first and the longest wait after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// How often a full evidence folder is measured again at most.
const REMEASURE: Duration = Duration::from_secs(5);
/// Largest read buffer of a connection, hence largest request head.
const MAX_HEAD: usize = 64 * 1024;

/// How the witness server protects itself from its clients.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to send a request's headers, from their first byte.
    pub header_timeout: Duration,
    /// Time to send a request's body, from the end of its headers; past it
    /// the answer is 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Time a connection may wait for a request (the first, or the next on
    /// a kept-alive connection) before it is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// At most one warning line per cause per this interval.
    pub warn_interval: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            warn_interval: DEFAULT_WARN_INTERVAL,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A warning for one cause whose rate someone else controls: the first
/// occurrence is written at once, then nothing until `interval` has passed;
/// the next line says how many occurrences were not written.
#[derive(Debug)]
pub struct RateLimitedWarn {
    cause: &'static str,
    interval: Duration,
    /// When the last line was written, and occurrences since then.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedWarn {
    /// A warner for `cause`, writing at most one line per `interval`.
    pub fn new(cause: &'static str, interval: Duration) -> RateLimitedWarn {
        RateLimitedWarn {
            cause,
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Records one occurrence, described by `detail`; returns whether a
    /// line was written.
    pub fn warn(&self, detail: &dyn Display) -> bool {
        let now = Instant::now();
        let suppressed = {
            let mut state = lock(&self.state);
            if state
                .0
                .is_some_and(|last| now.duration_since(last) < self.interval)
            {
                state.1 += 1;
                return false;
            }
            state.0 = Some(now);
            std::mem::take(&mut state.1)
        };
        tracing::warn!(
            cause = self.cause,
            suppressed,
            "{detail} ({suppressed} more of this cause not logged since the previous line; at most one line per {})",
            humantime::format_duration(self.interval)
        );
        true
    }
}

/// Raises the soft limit on open descriptors to the hard limit, and returns
/// the soft limit then in force (`None`: unlimited).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        // Refused on some systems for an unlimited hard limit: the soft
        // limit then stays as it was, which is what is reported.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

/// The evidence folder and its bound.
#[derive(Debug)]
struct Evidence {
    dir: PathBuf,
    /// Bytes the folder may hold.
    limit: u64,
    /// Bytes it holds.
    used: u64,
    /// The counter of the next file name.
    next: u64,
    /// Requests not kept because the folder was full, since the start.
    dropped: u64,
    /// When `used` was last measured on disk.
    measured: Instant,
}

impl Evidence {
    /// Reads the size of the folder `dir`, removing temporary files an
    /// interrupted write left.
    fn open(dir: PathBuf, limit: u64) -> Result<Evidence> {
        let used = measure(&dir).map_err(|err| Error::io("read", &dir, err))?;
        Ok(Evidence {
            dir,
            limit,
            used,
            next: 0,
            dropped: 0,
            measured: Instant::now(),
        })
    }

    /// Whether `len` more bytes fit. A full folder is measured again (at
    /// most once per [`REMEASURE`]), so that files moved away make room.
    fn has_room(&mut self, len: u64) -> bool {
        if self.used.saturating_add(len) <= self.limit {
            return true;
        }
        if self.measured.elapsed() >= REMEASURE {
            self.measured = Instant::now();
            if let Ok(used) = measure(&self.dir) {
                self.used = used;
            }
        }
        self.used.saturating_add(len) <= self.limit
    }

    /// Writes `body` durably under a name no other file has, and returns
    /// that name.
    fn keep(&mut self, body: &[u8], size: u64, now: u64) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let digest = hex::encode(Sha256::digest(body));
        let temporary = self
            .dir
            .join(format!(".incoming-{}.tmp", std::process::id()));
        let result = self.keep_from(&temporary, body, |next| {
            format!("{now}-{size}-{}-{next}.txt", &digest[..16])
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }

    fn keep_from(
        &mut self,
        temporary: &Path,
        body: &[u8],
        name: impl Fn(u64) -> String,
    ) -> std::io::Result<PathBuf> {
        let mut file = std::fs::File::create(temporary)?;
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        // All writes happen under the witness's lock, so a name found free
        // here is still free at the rename.
        let path = loop {
            let path = self.dir.join(name(self.next));
            self.next += 1;
            match std::fs::symlink_metadata(&path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => break path,
                Err(err) => return Err(err),
                Ok(_) => continue,
            }
        };
        std::fs::rename(temporary, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.used += body.len() as u64;
        Ok(path)
    }
}

/// The total length of the files in `dir` (0 if it does not exist),
/// removing the temporary files of interrupted writes; called under the
/// witness's lock, when no write is under way.
fn measure(dir: &Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut used = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if !metadata.is_file() {
            continue;
        }
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            std::fs::remove_file(entry.path())?;
        } else {
            used += metadata.len();
        }
    }
    Ok(used)
}

/// A witness's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        let mut body = body.into();
        body.push('\n');
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

/// A witness: its key, the logs it knows, and its state folder.
#[derive(Debug)]
pub struct Witness {
    signer: CosignatureSigner,
    logs: HashMap<String, LogKey>,
    state: PathBuf,
    /// Held from reading the stored size to writing the new one.
    lock: Mutex<()>,
    /// Taken only under `lock`.
    evidence: Mutex<Evidence>,
    evidence_full: RateLimitedWarn,
    evidence_failed: RateLimitedWarn,
}

impl Witness {
    /// A witness cosigning with `signer` for `logs`, keeping state in
    /// `state` (created if missing), evidence bounded by
    /// [`DEFAULT_MAX_EVIDENCE_BYTES`].
    pub fn new(signer: CosignatureSigner, logs: Vec<LogKey>, state: &Path) -> Result<Witness> {
        Witness::with_evidence_limit(
            signer,
            logs,
            state,
            DEFAULT_MAX_EVIDENCE_BYTES,
            DEFAULT_WARN_INTERVAL,
        )
    }

    /// As [`Witness::new`], keeping at most `max_evidence_bytes` of
    /// rejected requests in `<state>/rejected/` (0: none), and warning of
    /// requests not kept at most once per `warn_interval`.
    pub fn with_evidence_limit(
        signer: CosignatureSigner,
        logs: Vec<LogKey>,
        state: &Path,
        max_evidence_bytes: u64,
        warn_interval: Duration,
    ) -> Result<Witness> {
        std::fs::create_dir_all(state).map_err(|err| Error::io("create", state, err))?;
        let evidence = Evidence::open(state.join("rejected"), max_evidence_bytes)?;
        Ok(Witness {
            signer,
            logs: logs
                .into_iter()
                .map(|key| (key.origin.clone(), key))
                .collect(),
            state: state.to_owned(),
            lock: Mutex::new(()),
            evidence: Mutex::new(evidence),
            evidence_full: RateLimitedWarn::new("evidence folder full", warn_interval),
            evidence_failed: RateLimitedWarn::new("evidence not written", warn_interval),
        })
    }

    /// Bytes the evidence folder holds.
    pub fn evidence_bytes(&self) -> u64 {
        lock(&self.evidence).used
    }

    /// Keeps a rejected request as evidence, if the folder has room; called
    /// under `lock`.
    fn keep_evidence(&self, body: &[u8], size: u64, now: u64) {
        let mut evidence = lock(&self.evidence);
        let len = body.len() as u64;
        if !evidence.has_room(len) {
            evidence.dropped += 1;
            self.evidence_full.warn(&format_args!(
                "a rejected request for size {size} ({len} bytes) was not kept: {} holds {} of its {} bytes; {} not kept since the start",
                evidence.dir.display(),
                evidence.used,
                evidence.limit,
                evidence.dropped
            ));
            return;
        }
        match evidence.keep(body, size, now) {
            Ok(path) => tracing::info!(path = %path.display(), size, "kept a rejected request"),
            Err(err) => {
                self.evidence_failed.warn(&format_args!(
                    "a rejected request for size {size} was not kept in {}: {err}",
                    evidence.dir.display()
                ));
            }
        }
    }

    /// The witness's verifier key text.
    pub fn verifier_text(&self) -> String {
        self.signer.verifier().to_text()
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        self.state.join(format!(
            "{}.checkpoint",
            hex::encode(Sha256::digest(origin.as_bytes()))
        ))
    }

    /// The size and root last cosigned for `origin`: (0, empty) if none.
    pub fn latest(&self, origin: &str) -> Result<(u64, Hash)> {
        let path = self.state_path(origin);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((0, Hash::EMPTY)),
            Err(err) => return Err(Error::io("read", path, err)),
        };
        let checkpoint = Note::parse(&bytes)
            .and_then(|note| Checkpoint::parse(&note.text))
            .map_err(|err| Error::State {
                path: path.clone(),
                reason: err.to_string(),
            })?;
        Ok((checkpoint.size, checkpoint.root))
    }

    /// Handles an `add-checkpoint` body, cosigning at time `now` (seconds).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Answer {
        let request = match parse_request(body) {
            Ok(request) => request,
            Err(reason) => return Answer::text(400, reason),
        };
        let Ok(checkpoint) = Checkpoint::parse(&request.note.text) else {
            return Answer::text(400, "the note is not a checkpoint");
        };
        let Some(key) = self.logs.get(&checkpoint.origin) else {
            return Answer::text(404, format!("unknown log {:?}", checkpoint.origin));
        };
        if let Err(err) = verify_note(&request.note, &[key.verifier()]) {
            return Answer::text(403, format!("checkpoint signature: {err}"));
        }
        if request.old_size > checkpoint.size {
            return Answer::text(
                400,
                format!(
                    "old size {} is above the checkpoint size {}",
                    request.old_size, checkpoint.size
                ),
            );
        }
        let _guard = lock(&self.lock);
        let (stored_size, stored_root) = match self.latest(&checkpoint.origin) {
            Ok(latest) => latest,
            Err(err) => return Answer::text(500, err.to_string()),
        };
        if request.old_size != stored_size {
            return Answer {
                status: 409,
                content_type: "text/x.tlog.size",
                body: format!("{stored_size}\n"),
            };
        }
        if checkpoint.size == stored_size && checkpoint.root != stored_root {
            return Answer::text(
                409,
                format!(
                    "already cosigned size {stored_size} with root {stored_root}, not {}",
                    checkpoint.root
                ),
            );
        }
        if let Err(err) = verify_consistency(
            stored_size,
            checkpoint.size,
            &stored_root,
            &checkpoint.root,
            &request.proof,
        ) {
            self.keep_evidence(body, checkpoint.size, now);
            return Answer::text(422, format!("consistency proof: {err}"));
        }
        let signature = match self.signer.cosign(&request.note.text, now) {
            Ok(signature) => signature,
            Err(err) => return Answer::text(500, err.to_string()),
        };
        let bytes = request.note.to_bytes();
        if let Err(err) = write_atomic(&self.state_path(&checkpoint.origin), &bytes) {
            return Answer::text(500, err.to_string());
        }
        tracing::info!(origin = %checkpoint.origin, size = checkpoint.size, "cosigned");
        Answer {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: format!("\u{2014} {} {}\n", signature.name, signature.to_base64()),
        }
    }

    /// Serves `POST /add-checkpoint` on `listener` with the default
    /// [`ServerLimits`] until the task is dropped.
    pub async fn serve(self: Arc<Witness>, listener: TcpListener) -> Result<()> {
        self.serve_with(listener, ServerLimits::default()).await
    }

    /// Serves `POST /add-checkpoint` on `listener` within `limits` until
    /// the task is dropped.
    pub async fn serve_with(
        self: Arc<Witness>,
        listener: TcpListener,
        limits: ServerLimits,
    ) -> Result<()> {
        let limits = Arc::new(limits);
        let interval = limits.warn_interval;
        let connections = Arc::new(Semaphore::new(
            limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let refusers = Arc::new(Semaphore::new(REFUSERS));
        let out_of_descriptors = RateLimitedWarn::new("accept: out of descriptors", interval);
        let out_of_memory = RateLimitedWarn::new("accept: out of memory", interval);
        let connection_lost = RateLimitedWarn::new("accept: connection lost", interval);
        let other = RateLimitedWarn::new("accept: other error", interval);
        let busy = RateLimitedWarn::new("connection limit", interval);
        let mut backoff = ACCEPT_BACKOFF.0;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = ACCEPT_BACKOFF.0;
                    stream
                }
                Err(err) => {
                    use rustix::io::Errno;
                    let warner = match Errno::from_io_error(&err) {
                        Some(Errno::MFILE | Errno::NFILE) => &out_of_descriptors,
                        Some(Errno::NOBUFS | Errno::NOMEM) => &out_of_memory,
                        Some(
                            Errno::CONNABORTED | Errno::CONNRESET | Errno::PROTO | Errno::PERM,
                        ) => &connection_lost,
                        _ => &other,
                    };
                    warner.warn(&format_args!(
                        "accepting a connection failed: {err}; waiting {} before the next try",
                        humantime::format_duration(backoff)
                    ));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    continue;
                }
            };
            match Arc::clone(&connections).try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(Arc::clone(&self).connection(stream, Arc::clone(&limits), permit));
                }
                Err(_) => {
                    let answered = match Arc::clone(&refusers).try_acquire_owned() {
                        Ok(permit) => {
                            tokio::spawn(refuse(stream, permit));
                            "answered 503"
                        }
                        Err(_) => "closed without an answer",
                    };
                    busy.warn(&format_args!(
                        "{} connections are open, the limit: a new one was {answered}",
                        limits.max_connections
                    ));
                }
            }
        }
    }

    /// Serves one connection within the timeouts of `limits`.
    async fn connection(
        self: Arc<Witness>,
        stream: TcpStream,
        limits: Arc<ServerLimits>,
        _permit: OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(Activity {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        });
        let io = TokioIo::new(Watched {
            stream,
            activity: Arc::clone(&activity),
        });
        let body_timeout = limits.body_timeout;
        let service_activity = Arc::clone(&activity);
        let service = service_fn(move |request| {
            let witness = Arc::clone(&self);
            let activity = Arc::clone(&service_activity);
            async move {
                activity.set(Phase::Busy);
                let response = witness.handle(request, body_timeout).await;
                activity.set(Phase::Idle(Instant::now()));
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = http1::Builder::new();
        // The header timeout is kept here, apart from the idle one: hyper's
        // own would run from the end of the previous response.
        builder.header_read_timeout(None).max_buf_size(MAX_HEAD);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        loop {
            let deadline = activity.deadline(&limits);
            let changed = activity.changed.notified();
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "connection ended");
                    }
                    return;
                }
                () = changed => {}
                () = sleep_until(deadline.map(|(at, _)| at)) => {
                    // The phase may have changed as the timer fired.
                    if let Some((at, why)) = activity.deadline(&limits) {
                        if Instant::now() >= at {
                            tracing::debug!("closing a connection: {why} timeout");
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn handle(
        self: Arc<Witness>,
        request: Request<Incoming>,
        body_timeout: Duration,
    ) -> Response<Full<Bytes>> {
        let (answer, close) = if request.uri().path() != "/add-checkpoint" {
            (
                Answer::text(404, "not found: the witness serves POST /add-checkpoint"),
                false,
            )
        } else if request.method() != Method::POST {
            (Answer::text(405, "add-checkpoint takes POST"), false)
        } else {
            let body = Limited::new(request.into_body(), MAX_BODY).collect();
            match tokio::time::timeout(body_timeout, body).await {
                Ok(Ok(body)) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    let body = body.to_bytes();
                    let witness = Arc::clone(&self);
                    // The check fsyncs under a lock: off the async workers.
                    let answer =
                        tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now))
                            .await
                            .unwrap_or_else(|err| Answer::text(500, err.to_string()));
                    (answer, false)
                }
                Ok(Err(err)) => (Answer::text(400, format!("reading the body: {err}")), true),
                Err(_) => (
                    Answer::text(
                        408,
                        format!(
                            "the request body did not arrive within {}",
                            humantime::format_duration(body_timeout)
                        ),
                    ),
                    true,
                ),
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(answer.body)));
        *response.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(answer.content_type),
        );
        if close {
            // The rest of the body is unread: the connection cannot be reused.
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Answers 503 to a connection over the limit and closes it, reading what
/// the client sent meanwhile so that the answer is not lost to a reset; at
/// most [`REFUSE_TIME`] and 64 KiB.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    const BODY: &str = "the witness is at its connection limit; try again later\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(REFUSE_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                read => total += read,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Where a connection is, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request since then.
    Idle(Instant),
    /// Reading a request head whose first byte came then.
    Head(Instant),
    /// A request is being handled (its body has its own timeout).
    Busy,
}

/// A connection's phase, shared by its reader, its service and its
/// watchdog; `changed` wakes the watchdog.
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn set(&self, phase: Phase) {
        *lock(&self.phase) = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection now reads a request head.
    fn bytes_arrived(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// When the connection must be closed, and why.
    fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, &'static str)> {
        match *lock(&self.phase) {
            Phase::Idle(since) => since
                .checked_add(limits.idle_timeout)
                .map(|at| (at, "idle")),
            Phase::Head(since) => since
                .checked_add(limits.header_timeout)
                .map(|at| (at, "header")),
            Phase::Busy => None,
        }
    }
}

/// A connection's socket, telling its [`Activity`] when bytes arrive.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A parsed c2sp.org/tlog-witness `add-checkpoint` request body.
#[derive(Debug, Clone)]
pub struct AddRequest {
    /// The size the client believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The submitted checkpoint, with its signatures.
    pub note: Note,
}

/// Parses an `add-checkpoint` request body strictly; the error says what
/// was wrong, for a 400 answer.
pub fn parse_request(body: &[u8]) -> std::result::Result<AddRequest, String> {
    let mut rest = body;
    let mut next_line = |what: &str| -> std::result::Result<&[u8], String> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("{what} does not end in a newline"))?;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        Ok(line)
    };
    let old = next_line("the old size line")?;
    let digits = old
        .strip_prefix(b"old ")
        .ok_or("the first line must be `old <size>`")?;
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err("the old size is not a decimal number without leading zeros".into());
    }
    let old_size: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or("the old size does not fit in 64 bits")?;
    let mut proof = Vec::new();
    loop {
        let line = next_line("a consistency proof line")?;
        if line.is_empty() {
            break;
        }
        if proof.len() == 63 {
            return Err("more than 63 consistency proof lines".into());
        }
        let hash = std::str::from_utf8(line)
            .ok()
            .and_then(|text| Hash::from_base64(text).ok())
            .ok_or("a consistency proof line is not base64 of 32 bytes")?;
        proof.push(hash);
    }
    let note = Note::parse(rest).map_err(|err| format!("checkpoint: {err}"))?;
    Ok(AddRequest {
        old_size,
        proof,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a long interval, only the first occurrence is written and the
    /// others are counted for the next line; with none, every one is.
    #[test]
    fn rate_limited_warnings_count_what_they_do_not_write() {
        let warn = RateLimitedWarn::new("test", Duration::from_secs(3600));
        assert!(warn.warn(&"first"));
        for _ in 0..5 {
            assert!(!warn.warn(&"again"));
        }
        assert_eq!(lock(&warn.state).1, 5);
        let every = RateLimitedWarn::new("test", Duration::ZERO);
        assert!((0..5).all(|_| every.warn(&"each")));
        assert_eq!(lock(&every.state).1, 0);
    }

    /// Evidence never replaces a file: a name that exists is skipped, a
    /// restart counts what the folder holds and clears interrupted writes.
    #[test]
    fn evidence_names_are_never_reused() {
        let temp = tempfile::tempdir().expect("temp");
        let dir = temp.path().join("rejected");
        let mut evidence = Evidence::open(dir.clone(), 1000).expect("open");
        let digest = hex::encode(Sha256::digest(b"body"));
        // A file from an earlier run with the name the counter starts at.
        std::fs::create_dir_all(&dir).expect("dir");
        let taken = dir.join(format!("7-3-{}-0.txt", &digest[..16]));
        std::fs::write(&taken, b"earlier").expect("write");
        let first = evidence.keep(b"body", 3, 7).expect("keep");
        let second = evidence.keep(b"body", 3, 7).expect("keep");
        assert_ne!(first, taken);
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&taken).expect("read"), b"earlier");
        assert_eq!(std::fs::read(&first).expect("read"), b"body");
        assert_eq!(std::fs::read(&second).expect("read"), b"body");
        assert_eq!(evidence.used, 8);
        std::fs::write(dir.join(".incoming-1.tmp"), b"partial").expect("write");
        let reopened = Evidence::open(dir.clone(), 1000).expect("open");
        assert_eq!(reopened.used, 7 + 8);
        assert!(!dir.join(".incoming-1.tmp").exists());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 3);
    }

    /// Arbitrary bodies never panic and never get a cosignature: every
    /// answer is a 4xx.
    #[test]
    fn garbage_bodies_are_refused() {
        let temp = tempfile::tempdir().expect("temp");
        let signer = CosignatureSigner::from_seed("w.example/w", &[1; 32]).expect("key");
        let log = stele_tiles::note::Ed25519Signer::from_seed("l.example/log", &[2; 32])
            .expect("log key");
        let key = LogKey::parse(&log.verifier().to_text(), None).expect("vkey");
        let witness = Witness::new(signer, vec![key], temp.path()).expect("witness");
        let seeds: [&[u8]; 6] = [
            b"",
            b"old 0\n",
            b"old 0\n\n",
            b"old 0\n\nl.example/log\n1\n",
            b"old 18446744073709551616\n\n",
            b"old 0\nAAAA\n\nl.example/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        ];
        let mut rng = 0x2545f4914f6cdd1du64;
        for seed in seeds {
            for round in 0..200 {
                let mut body = seed.to_vec();
                if round > 0 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let position = (rng as usize) % (body.len() + 1);
                    body.insert(position, (rng >> 32) as u8);
                }
                let answer = witness.add_checkpoint(&body, 1);
                assert!((400..500).contains(&answer.status), "{body:?}: {answer:?}");
            }
        }
    }
}
