//! `POST /add`: opaque entries, and the submission pipeline the Rekor v2
//! endpoint and the ingress share.

use std::future::Future;

use bytes::Bytes;
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
pub(super) use stele_rekor::http::ApiError;
use stele_rekor::http::{X_LOG_DUPLICATE, X_LOG_INDEX, content_length, too_large};
use tokio::time::Instant;
use tracing::warn;

use super::body::{is_octet_stream, read_limited};
use super::{Api, RETRY_AFTER_UNAVAILABLE, ResponseBody, text_response};
use crate::log::{Accepted, SubmitError};
use crate::storage::CONTENT_TYPE_BINARY;

/// A body that claims to be a release statement (begins with
/// `stele/release/v1\n`) must be a valid, signed one, so that every entry
/// of the log that claims to be a release is one (docs/formats.md).
fn check_release(entry: &[u8]) -> Result<(), ApiError> {
    if !stele_rekor::release::claims_release(entry) {
        return Ok(());
    }
    stele_rekor::release::parse(entry).map(drop).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body begins with stele/release/v1 but is not a valid release: {err}"),
        )
    })
}

impl Api {
    /// `POST /add`: checks the request, reads the body within its limits and
    /// submits it.
    pub(super) async fn add_opaque<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
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
            check_release(&entry)?;
            self.submit(entry).await
        })
        .await
    }

    /// Runs a submission handler and counts it as rejected if it fails.
    pub(super) async fn counting_rejections(
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
    pub(super) fn reserve_body(
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

    /// Logs canonical entry bytes and waits, within `request_timeout`, for
    /// the receipt.
    pub(super) async fn accept(&self, entry: Vec<u8>) -> Result<Accepted, ApiError> {
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

pub(super) fn empty_body() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "the body is empty: send the entry bytes",
    )
}

pub(super) fn submit_error(err: SubmitError) -> ApiError {
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
