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

/// How long a refusing task waits for a request head, and then how long it
/// spends answering and reading what else comes.
const REFUSE_TIME: Duration = Duration::from_secs(1);
/// Bytes a refusing task reads from one connection at most.
const REFUSE_READ: usize = 64 * 1024;
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
                    let refuser = Arc::clone(&refusers).try_acquire_owned().ok();
                    let answered = match refuser {
                        Some(_) => "answered 503",
                        None => "closed without an answer",
                    };
                    // The warning is written before the answer is sent: a
                    // client that has its 503 finds the cause in the log.
                    busy.warn(&format_args!(
                        "{} connections are open, the limit: a new one was {answered}",
                        limits.max_connections
                    ));
                    if let Some(permit) = refuser {
                        tokio::spawn(refuse(stream, permit));
                    }
                }
            }
        }
    }

    /// Serves one connection, holding the place `place`, within the
    /// timeouts of `limits`.
    async fn connection(
        self: Arc<Witness>,
        stream: TcpStream,
        limits: Arc<ServerLimits>,
        place: OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(Activity {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        });
        let io = TokioIo::new(Watched {
            place: Some(place),
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
        let path = request.uri().path();
        let monitored = path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix("/checkpoint"));
        let (answer, close) = if let Some(hash) = monitored {
            // HEAD as HTTP asks of every GET resource (a CDN in front of
            // the monitoring prefix may send it); hyper sends no body.
            if request.method() == Method::GET || request.method() == Method::HEAD {
                let witness = Arc::clone(&self);
                let hash = hash.to_owned();
                let answer =
                    tokio::task::spawn_blocking(move || witness.monitored_checkpoint(&hash))
                        .await
                        .unwrap_or_else(|err| Answer::text(500, err.to_string()));
                (answer, false)
            } else {
                (
                    Answer::text(405, "the monitoring endpoint takes GET (or HEAD)"),
                    false,
                )
            }
        } else if path != "/add-checkpoint" {
            (
                Answer::text(
                    404,
                    "not found: the witness serves POST /add-checkpoint and GET /<origin hash>/checkpoint",
                ),
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

/// Answers 503 to a connection over the limit and closes it.
///
/// The answer waits for the request head: an HTTP client that receives
/// bytes on a connection before it has written its request takes them for
/// a protocol error (hyper's "unexpected message"), not for an answer, so
/// a 503 sent at once is lost to a client whose request was still being
/// queued. The head gets at most [`REFUSE_TIME`]; a client that sends
/// none by then is still answered. Then the 503 is written, the sending
/// side shut, and what else the client sends is read and dropped, so that
/// the answer is not lost to a reset: at most [`REFUSE_TIME`] again, and at
/// most [`REFUSE_READ`] bytes read in all.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    const BODY: &str = "the witness is at its connection limit; try again later\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut total = 0;
    let _ = tokio::time::timeout(REFUSE_TIME, read_head(&mut stream, &mut total)).await;
    let _ = tokio::time::timeout(REFUSE_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while total < REFUSE_READ {
            match stream.read(&mut sink).await? {
                0 => break,
                read => total += read,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Reads from `stream` to the end of a request head (an empty line), the
/// end of the stream, an error or [`REFUSE_READ`] bytes, counting them in
/// `total`; what follows the head may have been read too.
async fn read_head(stream: &mut TcpStream, total: &mut usize) {
    const END: &[u8] = b"\r\n\r\n";
    let mut buf = [0u8; 4096];
    // The last bytes read, to find an end split over two reads.
    let mut tail: Vec<u8> = Vec::with_capacity(buf.len() + END.len());
    while *total < REFUSE_READ {
        let read = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        *total += read;
        tail.extend_from_slice(&buf[..read]);
        if tail.windows(END.len()).any(|window| window == END) {
            return;
        }
        tail.drain(..tail.len().saturating_sub(END.len() - 1));
    }
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

/// A connection's socket, telling its [`Activity`] when bytes arrive, and
/// its place among the connections served at once.
///
/// The place is given back before the client can see the connection end:
/// when the sending side is shut, or when the socket is dropped (fields are
/// dropped in order, `place` before `stream`). A client that has seen the
/// server close its connection can count on that place being free.
#[derive(Debug)]
struct Watched {
    place: Option<OwnedSemaphorePermit>,
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
        let this = self.get_mut();
        this.place = None;
        Pin::new(&mut this.stream).poll_shutdown(cx)
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
