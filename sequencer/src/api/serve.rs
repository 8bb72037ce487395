//! The accept loop: connection limits, refusals when every connection is
//! taken, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, debug_span, info, warn};

use super::{Handler, MAX_REFUSALS};
use crate::ratelog::{self, RateLimitedWarn};

/// Most bytes hyper buffers per connection (and so the largest request
/// head). Its default, about 400 KiB, times a thousand connections is
/// memory an attacker gets for free; bodies are streamed in frames, so a
/// small buffer costs only a few more reads.
const MAX_CONNECTION_BUFFER: usize = 16 * 1024;

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
pub(super) fn probe_method(line: &[u8]) -> Option<bool> {
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
