//! Reading a request body within its size and time limits.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Body;
use hyper::header::HeaderValue;
pub(super) use stele_rekor::http::ApiError;
use stele_rekor::http::body_over_limit;
use tokio::time::Instant;
use tracing::debug;

use crate::storage::CONTENT_TYPE_BINARY;

/// How much of an oversized body is read and thrown away before answering
/// 413, so that a client still sending is not cut off by a TCP reset before
/// it reads the answer.
const OVERSIZE_DRAIN_LIMIT: usize = 256 * 1024;

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
pub(super) fn is_octet_stream(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE_BINARY)
}
