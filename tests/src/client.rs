//! A small HTTP/1.1 client over hyper with keep-alive, for submitting
//! entries to `stele serve` and for reading a log's public objects.
//!
//! One [`Client`] keeps a pool of idle connections per host, so that each
//! load-generator worker reuses its connection instead of paying a TCP
//! handshake per entry.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use stele_sequencer::error_chain;

/// Header with the index of the logged entry (set by `POST /add`).
pub const X_LOG_INDEX: &str = "x-log-index";
/// Header set to `true` when the entry was already in the log.
pub const X_LOG_DUPLICATE: &str = "x-log-duplicate";

/// What went wrong talking to a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse as an `http://` URL.
    #[error("bad URL {url}: {reason}")]
    Url { url: String, reason: String },
    /// Connecting, sending or receiving failed (refused, reset, closed).
    #[error("{method} {url}: {reason}")]
    Transport {
        method: &'static str,
        url: String,
        reason: String,
    },
    /// No complete answer within the time limit.
    #[error("{method} {url}: no answer within {after:?}")]
    Timeout {
        method: &'static str,
        url: String,
        after: Duration,
    },
    /// The server acknowledged a submission without a usable index.
    #[error("POST {url}: acknowledged without a valid {X_LOG_INDEX} header")]
    MissingIndex { url: String },
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    /// A header's value as text ("" when missing or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// 200: the entry is logged at `index`; `receipt` is its
    /// c2sp.org/tlog-proof.
    Accepted {
        index: u64,
        duplicate: bool,
        receipt: Bytes,
    },
    /// 503: come back after `retry_after` (back-pressure, shutdown, storage
    /// trouble).
    Busy {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Any other status: the entry was refused.
    Rejected { status: StatusCode, message: String },
}

/// An HTTP/1.1 client with a keep-alive connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Client {
    /// A client that keeps up to `idle_per_host` idle connections per host
    /// and gives every request `timeout` to complete.
    pub fn new(idle_per_host: usize, timeout: Duration) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle_per_host)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client { inner, timeout }
    }

    /// `GET url`, the whole body read.
    pub async fn get(&self, url: &str) -> Result<Fetched, ClientError> {
        self.send(Method::GET, url, &[], None).await
    }

    /// `POST base_url/add` of raw entry bytes.
    pub async fn submit(&self, base_url: &str, entry: Bytes) -> Result<Submission, ClientError> {
        let url = format!("{}/add", base_url.trim_end_matches('/'));
        self.post(&url, &[], entry).await
    }

    /// `POST url` of a submission with extra `headers` (a Content-Type
    /// among them replaces `application/octet-stream`). 200 and 201 are
    /// acknowledgements, and so is 409 (Rekor v2's answer to an entry
    /// already logged), whose body must then be the receipt.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(HeaderName, String)],
        body: Bytes,
    ) -> Result<Submission, ClientError> {
        let fetched = self.send(Method::POST, url, headers, Some(body)).await?;
        let message = || String::from_utf8_lossy(&fetched.body).trim_end().to_owned();
        Ok(match fetched.status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::CONFLICT => {
                let index = fetched.header(X_LOG_INDEX).parse::<u64>().map_err(|_| {
                    ClientError::MissingIndex {
                        url: url.to_owned(),
                    }
                })?;
                Submission::Accepted {
                    index,
                    duplicate: fetched.status == StatusCode::CONFLICT
                        || fetched.header(X_LOG_DUPLICATE) == "true",
                    receipt: fetched.body.clone(),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => Submission::Busy {
                retry_after: fetched
                    .header(header::RETRY_AFTER.as_str())
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs),
                message: message(),
            },
            status => Submission::Rejected {
                status,
                message: message(),
            },
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        body: Option<Bytes>,
    ) -> Result<Fetched, ClientError> {
        let method_name = if method == Method::POST {
            "POST"
        } else {
            "GET"
        };
        let uri: hyper::Uri =
            url.parse()
                .map_err(|err: hyper::http::uri::InvalidUri| ClientError::Url {
                    url: url.to_owned(),
                    reason: err.to_string(),
                })?;
        let mut builder = Request::builder().method(method).uri(uri);
        if body.is_some() && !headers.iter().any(|(name, _)| name == header::CONTENT_TYPE) {
            builder = builder.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
        }
        for (name, value) in headers {
            builder = builder.header(name, value.as_str());
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|err| ClientError::Url {
                url: url.to_owned(),
                reason: err.to_string(),
            })?;
        let transport = |reason: String| ClientError::Transport {
            method: method_name,
            url: url.to_owned(),
            reason,
        };
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|err| transport(error_chain(&err)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|err| transport(error_chain(&err)))?
                .to_bytes();
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                method: method_name,
                url: url.to_owned(),
                after: self.timeout,
            }),
        }
    }
}

/// Checks that `url` is `http://` on a loopback address: the load generator
/// and the tests never send anything off this machine.
pub fn require_loopback(url: &str) -> Result<(), ClientError> {
    let bad = |reason: &str| ClientError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// URLs are supported"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(bad(
            "the host is not a loopback address (127.0.0.0/8, ::1, localhost)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5/",
            "http://[::1]:80",
            "http://localhost:1",
        ] {
            assert!(require_loopback(url).is_ok(), "{url}");
        }
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1",
            "127.0.0.1:8080",
            "http://[::2]:80",
        ] {
            assert!(require_loopback(url).is_err(), "{url}");
        }
    }
}
