//! The submit function's side: take a public `POST /api/v2/log/entries`
//! (or a shard's `POST /<shard>/api/v2/log/entries`), check it exactly as
//! the sequencer's own API does, forward the canonical entry to the private
//! ingress (`/ingress/v1/entries`, or the shard's
//! `/<shard>/ingress/v1/entries`), and answer with what the sequencer said.
//!
//! Which shards the function takes is [`SHARDS_ENV`]: when it is set, a
//! submission to any other name (or to the unprefixed path) is refused
//! here, 404, without a word to the sequencer; when it is not, any valid
//! shard name is forwarded and the sequencer says whether it has that
//! shard, and whether the shard takes entries now (403 before its window,
//! 410 after: passed on unchanged like every other answer).
//!
//! [`Front::handle`] works on plain `http` requests and responses, so the
//! function binary (`stele-lambda`) is only an adapter between its
//! platform's events and this.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use lambda_http::http::header::{self, HeaderName, HeaderValue};
use lambda_http::http::{Method, Request, Response, StatusCode};
use rand_core::{OsRng, RngCore};
use stele_rekor::http::{
    ApiError, ENTRIES_PATH, X_LOG_DUPLICATE, X_LOG_INDEX, body_over_limit, rekor_v2_preflight,
    validation_error,
};
use stele_rekor::ingress::{IngressSecret, SECRET_ENV, ingress_path, sign};
use stele_rekor::response::Format;
use stele_rekor::shard::{MAX_NAME_LEN, valid_name};
use stele_rekor::{MAX_REQUEST_SIZE, validate};
use tracing::{error, warn};

/// The content type of the forwarded entry.
const CONTENT_TYPE_BINARY: &str = "application/octet-stream";
/// Environment variable with the base URL of the sequencer's ingress.
pub(crate) const SEQUENCER_URL_ENV: &str = "STELE_SEQUENCER_URL";
/// Environment variable with a file holding the shared secret, read when
/// [`SECRET_ENV`] is not set.
pub(crate) const SECRET_FILE_ENV: &str = "STELE_INGRESS_SECRET_FILE";
/// Environment variable listing the shards the function takes, by name,
/// separated by commas (`2026,2027`); unset for a single log, or to take
/// every valid shard name.
pub(crate) const SHARDS_ENV: &str = "STELE_SHARDS";
/// Environment variable with the longest wait for the sequencer.
pub(crate) const FORWARD_TIMEOUT_ENV: &str = "STELE_FORWARD_TIMEOUT";
/// Default longest wait for the sequencer: under the 30 s an API Gateway
/// integration may take, so the client gets this function's 503 with
/// `Retry-After` rather than the gateway's bare 504.
pub(crate) const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(25);
/// Headers of the sequencer's answer that are passed on.
const PASSED_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    header::ALLOW,
    X_LOG_INDEX,
    X_LOG_DUPLICATE,
];

/// Why the function cannot start: its configuration is wrong.
#[derive(Debug)]
pub(crate) struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

/// The submit function's logic, platform aside.
#[derive(Debug)]
pub(crate) struct Front {
    /// The sequencer's base URL, without a trailing `/`.
    base: String,
    /// The shards taken; `None`: the single log, or any valid shard name.
    shards: Option<Vec<String>>,
    secret: IngressSecret,
    client: reqwest::Client,
    timeout: Duration,
}

impl Front {
    /// A front forwarding to the ingress at `sequencer_url` (scheme, host,
    /// port, and an optional path prefix), for the shards named in `shards`
    /// ([`parse_shards`]) if any.
    pub(crate) fn new(
        sequencer_url: &str,
        secret: IngressSecret,
        timeout: Duration,
        shards: Option<Vec<String>>,
    ) -> Result<Front, ConfigError> {
        let base = sequencer_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|err| ConfigError(format!("{SEQUENCER_URL_ENV} {sequencer_url:?}: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(ConfigError(format!(
                "{SEQUENCER_URL_ENV} {sequencer_url:?}: not an http(s) URL without a query"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            // Below the sequencer's keep-alive limit, so a connection kept
            // across a frozen function is not one the sequencer has closed.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| ConfigError(format!("HTTP client: {err}")))?;
        Ok(Front {
            base: base.to_owned(),
            shards,
            secret,
            client,
            timeout,
        })
    }

    /// A front configured from the environment: [`SEQUENCER_URL_ENV`], the
    /// secret in [`SECRET_ENV`] or the file named by
    /// [`SECRET_FILE_ENV`], [`FORWARD_TIMEOUT_ENV`] and [`SHARDS_ENV`].
    pub(crate) fn from_env() -> Result<Front, ConfigError> {
        let url = std::env::var(SEQUENCER_URL_ENV).map_err(|_| {
            ConfigError(format!(
                "{SEQUENCER_URL_ENV} is not set: give the base URL of the sequencer's ingress \
                 (its --ingress-listen address)"
            ))
        })?;
        let secret_file = std::env::var_os(SECRET_FILE_ENV).map(std::path::PathBuf::from);
        let secret = IngressSecret::from_env_or_file(secret_file.as_deref())
            .map_err(|err| ConfigError(err.to_string()))?
            .ok_or_else(|| {
                ConfigError(format!(
                    "no ingress secret: set {} or {SECRET_FILE_ENV}",
                    SECRET_ENV
                ))
            })?;
        let timeout = match std::env::var(FORWARD_TIMEOUT_ENV) {
            Ok(text) => humantime::parse_duration(&text)
                .map_err(|err| ConfigError(format!("{FORWARD_TIMEOUT_ENV} {text:?}: {err}")))?,
            Err(_) => DEFAULT_FORWARD_TIMEOUT,
        };
        let shards = match std::env::var(SHARDS_ENV) {
            Ok(text) => Some(parse_shards(&text)?),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError(format!("{SHARDS_ENV} is not UTF-8")));
            }
        };
        Front::new(&url, secret, timeout, shards)
    }

    /// Answers one public request: the same status, headers that matter and
    /// body as the sequencer's own `POST /api/v2/log/entries` would give.
    pub(crate) async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        match self.submit(request).await {
            Ok(response) => response,
            Err(err) => plain(err),
        }
    }

    async fn submit(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ApiError> {
        let shard = self.route(request.uri().path())?;
        if request.method() != Method::POST {
            return Err(ApiError {
                allow: Some("POST"),
                ..ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST")
            });
        }
        let format = rekor_v2_preflight(request.headers(), request.uri().query())?;
        let body = request.into_body();
        if body.len() > MAX_REQUEST_SIZE {
            return Err(body_over_limit(MAX_REQUEST_SIZE));
        }
        let validated = validate(&body).map_err(validation_error)?;
        self.forward(shard.as_deref(), format, validated.entry)
            .await
    }

    /// The shard a submission path is for (`None`: the single log), or the
    /// 404 for a path this function does not take.
    fn route(&self, path: &str) -> Result<Option<String>, ApiError> {
        let Some(shard) = submission_shard(path) else {
            return Err(ApiError::not_found(format!(
                "no such path: {path}; submit entries to POST {}",
                self.submission_paths()
            )));
        };
        match (&self.shards, shard) {
            (None, shard) => Ok(shard.map(str::to_owned)),
            (Some(shards), Some(name)) if shards.iter().any(|taken| taken == name) => {
                Ok(Some(name.to_owned()))
            }
            (Some(_), Some(name)) => Err(ApiError::not_found(format!(
                "no shard {name:?} takes entries here; submit them to POST {}",
                self.submission_paths()
            ))),
            (Some(_), None) => Err(ApiError::not_found(format!(
                "this log is sharded: submit entries to POST {}",
                self.submission_paths()
            ))),
        }
    }

    /// Where submissions go, for messages: the single log's path, or each
    /// taken shard's.
    fn submission_paths(&self) -> String {
        match &self.shards {
            None => format!("{ENTRIES_PATH} (or /<shard>{ENTRIES_PATH})"),
            Some(shards) => shards
                .iter()
                .map(|name| format!("/{name}{ENTRIES_PATH}"))
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    /// Sends the entry to the ingress, once more if the first attempt
    /// failed before an answer came (the entry is logged at most once
    /// either way: the log deduplicates, and the retry has its own nonce).
    async fn forward(
        &self,
        shard: Option<&str>,
        format: Format,
        entry: Vec<u8>,
    ) -> Result<Response<Bytes>, ApiError> {
        let entry = Bytes::from(entry);
        // The MAC covers the path the sequencer receives, which binds the
        // entry to this shard; a prefix of the base URL is the proxy's.
        let path = ingress_path(shard);
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            let mut nonce = [0u8; 16];
            OsRng.fill_bytes(&mut nonce);
            let mut request = self
                .client
                .post(&url)
                .header(header::CONTENT_TYPE, CONTENT_TYPE_BINARY)
                .body(entry.clone());
            for (name, value) in sign(
                &self.secret,
                &path,
                format,
                &entry,
                SystemTime::now(),
                nonce,
            ) {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(answer) => break answer,
                Err(err) if err.is_timeout() => {
                    warn!(%err, "the sequencer did not answer in time");
                    return Err(ApiError::unavailable(
                        format!(
                            "the log did not answer within {}; the entry may still be logged: \
                             submit it again for its receipt",
                            humantime::format_duration(self.timeout)
                        ),
                        1,
                    ));
                }
                Err(err) if attempt < 2 => {
                    warn!(%err, "forwarding to the sequencer failed; trying once more");
                }
                Err(err) => {
                    error!(%err, %url, "the sequencer cannot be reached");
                    return Err(ApiError::unavailable(
                        "the log's sequencer cannot be reached; retry later",
                        1,
                    ));
                }
            }
        };
        let status = answer.status();
        if status == StatusCode::UNAUTHORIZED {
            // The ingress's reason is for the operators, not the client.
            let reason = answer.text().await.unwrap_or_default();
            error!(reason = %reason.trim_end(), "the sequencer refused this function's credentials");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the log's sequencer refused this front end (a configuration fault of the log, \
                 not of the request)",
            ));
        }
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = status;
        for name in PASSED_HEADERS {
            if let Some(value) = answer.headers().get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        let body = answer.bytes().await.map_err(|err| {
            warn!(%err, "the sequencer's answer was cut off");
            ApiError::unavailable(
                "the log's answer was cut off; the entry may still be logged: submit it again \
                 for its receipt",
                1,
            )
        })?;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
        *response.body_mut() = body;
        Ok(response)
    }
}

/// An error as the sequencer's API words it.
fn plain(err: ApiError) -> Response<Bytes> {
    let mut response = err.into_plain();
    // A function's connection is the platform's, not ours to close.
    response.headers_mut().remove(header::CONNECTION);
    response
}

/// The shard a public submission path names: `Some(None)` for
/// `/api/v2/log/entries`, `Some(Some(name))` for
/// `/<name>/api/v2/log/entries` with a valid shard name, `None` otherwise.
fn submission_shard(path: &str) -> Option<Option<&str>> {
    if path == ENTRIES_PATH {
        return Some(None);
    }
    let name = path.strip_prefix('/')?.strip_suffix(ENTRIES_PATH)?;
    valid_name(name).then_some(Some(name))
}

/// The shard names in [`SHARDS_ENV`]: comma-separated, spaces around a
/// name ignored, each valid and named once.
pub(crate) fn parse_shards(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut shards: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if !valid_name(name) {
            return Err(ConfigError(format!(
                "{SHARDS_ENV} {text:?}: {name:?} is not a shard name ([a-z0-9][a-z0-9._-]*, at \
                 most {MAX_NAME_LEN} bytes; names are separated by commas)"
            )));
        }
        if shards.iter().any(|seen| seen == name) {
            return Err(ConfigError(format!(
                "{SHARDS_ENV} {text:?}: {name:?} is named twice"
            )));
        }
        shards.push(name.to_owned());
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_paths_name_their_shard() {
        assert_eq!(submission_shard("/api/v2/log/entries"), Some(None));
        assert_eq!(
            submission_shard("/2026/api/v2/log/entries"),
            Some(Some("2026"))
        );
        for path in [
            "",
            "/",
            "/add",
            "/2026/add",
            "//api/v2/log/entries",
            "/api/v2/log/entries/",
            "/a/b/api/v2/log/entries",
            "/../api/v2/log/entries",
            "/.stele/api/v2/log/entries",
            "/2026/ingress/v1/entries",
            "/ingress/v1/entries",
        ] {
            assert_eq!(submission_shard(path), None, "{path:?}");
        }
    }

    #[test]
    fn shard_lists_are_checked() {
        assert_eq!(
            parse_shards("2026,2027").expect("valid"),
            vec!["2026".to_owned(), "2027".to_owned()]
        );
        assert_eq!(
            parse_shards(" a , b-2 ").expect("valid"),
            vec!["a".to_owned(), "b-2".to_owned()]
        );
        for (text, problem) in [
            ("", "is not a shard name"),
            ("2026,", "is not a shard name"),
            ("2026;2027", "is not a shard name"),
            ("2026 2027", "is not a shard name"),
            ("Prod", "is not a shard name"),
            ("2026,2026", "named twice"),
        ] {
            let err = parse_shards(text).expect_err(text);
            assert!(err.to_string().contains(problem), "{text:?}: {err}");
        }
    }
}
