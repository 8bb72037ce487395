//! Serving `POST /add-checkpoint`: the accept loop, its back-off and
//! refusals, and the timeouts of each connection.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::limits::{REFUSERS, RateLimitedWarn, ServerLimits, lock};
use super::{Answer, MAX_BODY, Witness};
use crate::error::Result;

/// How long a refusing task spends on one connection at most.
const REFUSE_TIME: Duration = Duration::from_secs(1);
/// The first and the longest wait after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Largest read buffer of a connection, hence largest request head.
const MAX_HEAD: usize = 64 * 1024;

impl Witness {
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
