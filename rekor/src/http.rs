//! The HTTP pieces of `POST /api/v2/log/entries` that the sequencer's own
//! API and the submit function must answer alike: the path, the checks made
//! before the body is read, the extra headers of an accepted entry, and the
//! plain-text refusal every Stele endpoint answers with.
//!
//! Only `http`'s types are used here, so the sequencer (hyper) and the
//! submit function (Lambda) each wrap [`ApiError::into_plain`] in their own
//! body type and nothing else differs.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::error::RequestError;
use crate::request::MAX_REQUEST_SIZE;
use crate::response::Format;

/// The public path of the Rekor v2 write API.
pub const ENTRIES_PATH: &str = "/api/v2/log/entries";
/// Header with the index an accepted entry was logged at.
pub const X_LOG_INDEX: HeaderName = HeaderName::from_static("x-log-index");
/// Header set to `true` when the entry was already in the log.
pub const X_LOG_DUPLICATE: HeaderName = HeaderName::from_static("x-log-duplicate");
/// The content type of every plain-text answer.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An answer other than success: status, message and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the client; the body is this and a newline.
    pub message: String,
    /// Methods the resource takes, for 405.
    pub allow: Option<&'static str>,
    /// Seconds to wait before trying again, for 503.
    pub retry_after: Option<u64>,
    /// Close the connection after answering (a body was left unread).
    pub close: bool,
}

impl ApiError {
    /// An answer with `status` and `message` and no extra header.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
            close: false,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503 with `Retry-After: retry_after`.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// The same answer, closing the connection after it.
    pub fn closing(self) -> ApiError {
        ApiError {
            close: true,
            ..self
        }
    }

    /// The plain-text answer: the message and a newline, with `Allow`,
    /// `Retry-After` and `Connection: close` as set.
    pub fn into_plain(self) -> Response<Bytes> {
        let mut message = self.message;
        message.push('\n');
        let mut response = text_response(self.status, message.into());
        let headers = response.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A `text/plain; charset=utf-8` answer.
pub fn text_response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

/// Whether a `Content-Type` is JSON (parameters ignored).
fn is_json(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The declared body length, if the client sent one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The checks of a Rekor v2 submission made before its body is read: a JSON
/// content type (or none; else 415) and a `Content-Length` within
/// [`MAX_REQUEST_SIZE`] (else 413). Returns the answer format the client
/// asked for.
pub fn rekor_v2_preflight(headers: &HeaderMap, query: Option<&str>) -> Result<Format, ApiError> {
    let format = Format::negotiate(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
        query,
    );
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        if !is_json(content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {content_type:?} is not accepted: send the \
                     CreateEntryRequest as application/json"
                ),
            )
            .closing());
        }
    }
    let limit = MAX_REQUEST_SIZE;
    if let Some(length) = content_length(headers) {
        if length > limit as u64 {
            return Err(too_large(length as usize, limit));
        }
    }
    Ok(format)
}

/// 413 for a body of `length` bytes over `limit`.
pub fn too_large(length: usize, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body of {length} bytes is larger than the limit of {limit} bytes"),
    )
    .closing()
}

/// 413 for a body read past `limit` bytes (its length was not declared).
pub fn body_over_limit(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than the limit of {limit} bytes"),
    )
    .closing()
}

/// The answer to a Rekor v2 request that failed its checks.
pub fn validation_error(err: RequestError) -> ApiError {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[test]
    fn preflight_takes_json_or_no_type_within_the_limit() {
        assert_eq!(
            rekor_v2_preflight(&headers(&[]), None),
            Ok(Format::TransparencyLogEntry)
        );
        let json = headers(&[
            (header::CONTENT_TYPE, "Application/JSON; charset=utf-8"),
            (header::ACCEPT, "application/x-tlog-proof"),
        ]);
        assert_eq!(rekor_v2_preflight(&json, None), Ok(Format::TlogProof));
        let form = headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")]);
        let refused = rekor_v2_preflight(&form, None).expect_err("not JSON");
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(refused.close);
        let over = (MAX_REQUEST_SIZE + 1).to_string();
        let long = headers(&[(header::CONTENT_LENGTH, over.as_str())]);
        let refused = rekor_v2_preflight(&long, None).expect_err("too long");
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        let exact = MAX_REQUEST_SIZE.to_string();
        let at_limit = headers(&[(header::CONTENT_LENGTH, exact.as_str())]);
        assert!(rekor_v2_preflight(&at_limit, None).is_ok());
    }

    #[test]
    fn plain_answers_carry_their_headers() {
        let answer = ApiError {
            allow: Some("POST"),
            ..ApiError::unavailable("busy", 3).closing()
        }
        .into_plain();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body().as_ref(), b"busy\n");
        let header = |name| answer.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header(header::CONTENT_TYPE), Some(TEXT_PLAIN));
        assert_eq!(header(header::RETRY_AFTER), Some("3"));
        assert_eq!(header(header::ALLOW), Some("POST"));
        assert_eq!(header(header::CONNECTION), Some("close"));
    }
}
