//! The S3 backend: any S3-compatible bucket that enforces conditional writes
//! (AWS S3, MinIO, SeaweedFS), which are the only coordination the commit
//! protocol uses ([`crate::commit`]).
//!
//! - [`Condition::CreateOnly`] is `If-None-Match: *`. On `412` the object is
//!   read back and compared: identical bytes are
//!   [`PutOutcome::AlreadyExisted`], different bytes a
//!   [`StorageError::Conflict`] (as Tessera does).
//! - [`Condition::IfMatch`] is `If-Match: <etag>`.
//! - Every put carries an explicit `Content-Type` and `Cache-Control`, which
//!   the bucket serves to the CDN.
//! - Timeouts, 5xx, throttling (`503 SlowDown`, `429`) and `409` (AWS's
//!   answer to concurrent conditional writes) are retried with exponential
//!   backoff and full jitter, a bounded number of times, then reported as
//!   [`StorageError::Transient`]. The SDK's own retries are off, so that
//!   attempts do not multiply.
//! - [`S3Storage::check_conditional_writes`] refuses a store that silently
//!   ignores the conditions; run it before sequencing.
//!
//! SDK types stay inside this module.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::error_chain;

use super::{
    Condition, ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError,
};

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// A custom endpoint (`http://127.0.0.1:8333` for SeaweedFS or MinIO);
    /// `None` for AWS S3.
    pub endpoint_url: Option<String>,
    pub region: String,
    /// Address the bucket as `<endpoint>/<bucket>` rather than as a host name;
    /// most self-hosted stores need this.
    pub force_path_style: bool,
    /// Prepended to every key, e.g. `logs/example/`; empty for none.
    pub key_prefix: String,
    /// Explicit credentials; `None` uses the usual AWS chain (environment
    /// variables `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, profile,
    /// instance or task role).
    pub credentials: Option<StaticCredentials>,
    /// Attempts per operation before giving up with a transient error.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

impl S3Config {
    /// Defaults that suit AWS S3 and a local SeaweedFS or MinIO alike.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint_url: None,
            region: "us-east-1".into(),
            force_path_style: false,
            key_prefix: String::new(),
            credentials: None,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
        }
    }

    /// The endpoint as errors name it.
    fn endpoint_name(&self) -> String {
        let endpoint = self
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("AWS S3 ({})", self.region));
        format!("{endpoint}, bucket {}", self.bucket)
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("key_prefix", &self.key_prefix)
            .field("credentials", &self.credentials)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// An access key pair given in configuration rather than the environment.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// A bucket (or a prefix in one) as a [`Storage`].
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    config: S3Config,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How one failed attempt should be handled.
enum Failure {
    /// Worth another attempt; the message is kept for the final error.
    Retry(String),
    /// Final.
    Fail(StorageError),
}

impl S3Storage {
    /// Builds a client from `config`; no request is made.
    pub async fn connect(config: S3Config) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if let Some(credentials) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                None,
                None,
                "stele-config",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(config.attempt_timeout)
                    .build(),
            )
            // SigV4 already signs a SHA-256 of the body; the extra CRC
            // headers of newer SDKs are not understood by every
            // S3-compatible store.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            config,
        }
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Proves that the store enforces `If-None-Match: *` and `If-Match`, and
    /// refuses it otherwise: on a store that ignores them, two sequencers
    /// could both commit and fork the log.
    ///
    /// Writes a probe object under `.stele/probe/`, then deletes it, whether
    /// the store passes or not.
    pub async fn check_conditional_writes(&self) -> Result<(), StorageError> {
        let probe = Key::new(format!(".stele/probe/{:016x}", fastrand::u64(..)))?;
        let checked = self.probe_conditions(&probe).await;
        // A refused store is left as it was found: a probe object left
        // behind would be the only trace of a sequencer that never ran (and
        // a store that ignores conditions still deletes). The check's own
        // error is the one worth reporting, so a failed delete is only
        // logged then.
        match (checked, self.delete(&probe).await) {
            (Ok(()), deleted) => deleted,
            (Err(error), Ok(())) => Err(error),
            (Err(error), Err(delete)) => {
                tracing::warn!(%delete, key = %probe, "could not delete the conditional-write probe");
                Err(error)
            }
        }
    }

    /// The writes and reads of [`S3Storage::check_conditional_writes`].
    async fn probe_conditions(&self, probe: &Key) -> Result<(), StorageError> {
        let probe = probe.clone();
        let unsupported = |check| StorageError::ConditionalWritesUnsupported {
            endpoint: self.config.endpoint_name(),
            check,
        };
        let options = PutOptions::private;

        let first = match self
            .put(
                &probe,
                Bytes::from_static(b"probe 1"),
                options(Condition::CreateOnly),
            )
            .await?
        {
            PutOutcome::Written { etag } => etag,
            PutOutcome::AlreadyExisted { .. } => {
                return Err(unsupported(
                    "a create-only write to a new key found it existing",
                ));
            }
        };
        match self
            .put(
                &probe,
                Bytes::from_static(b"probe 2"),
                options(Condition::CreateOnly),
            )
            .await
        {
            Err(StorageError::Conflict { .. }) => {}
            Ok(_) => return Err(unsupported("If-None-Match: * replaced an existing object")),
            Err(other) => return Err(other),
        }
        let second = self
            .put(
                &probe,
                Bytes::from_static(b"probe 3"),
                options(Condition::IfMatch(first.clone())),
            )
            .await
            .map_err(|e| match e {
                StorageError::PreconditionFailed { .. } => {
                    unsupported("If-Match with the current ETag was refused")
                }
                other => other,
            })?;
        match self
            .put(
                &probe,
                Bytes::from_static(b"probe 4"),
                options(Condition::IfMatch(first)),
            )
            .await
        {
            Err(StorageError::PreconditionFailed { .. }) => {}
            Ok(_) => {
                return Err(unsupported(
                    "If-Match with a stale ETag replaced the object",
                ));
            }
            Err(other) => return Err(other),
        }
        match self.get(&probe).await? {
            Some(object)
                if object.bytes.as_ref() == b"probe 3" && object.etag == *second.etag() => {}
            _ => {
                return Err(unsupported(
                    "the object read back is not the last accepted write",
                ));
            }
        }
        Ok(())
    }

    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.config.key_prefix)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts are
    /// used up. Backoff is "full jitter": a uniform delay below an
    /// exponentially growing cap.
    async fn with_retries<T, F, Fut>(
        &self,
        operation: &'static str,
        key: &str,
        mut attempt: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut cap = self.config.initial_backoff;
        let mut number = 0;
        loop {
            number += 1;
            match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(Failure::Fail(error)) => return Err(error),
                Err(Failure::Retry(message)) if number >= self.config.max_attempts.max(1) => {
                    return Err(StorageError::Transient {
                        operation,
                        key: key.to_string(),
                        message: format!(
                            "{message} (gave up after {number} attempts at {})",
                            self.config.endpoint_name()
                        ),
                    });
                }
                Err(Failure::Retry(message)) => {
                    let delay = cap.mul_f64(fastrand::f64());
                    tracing::debug!(
                        operation,
                        key,
                        attempt = number,
                        delay = %crate::ratelog::human_duration(delay),
                        %message,
                        "retrying S3 request"
                    );
                    tokio::time::sleep(delay).await;
                    cap = (cap * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Sorts an SDK error into retry or final failure.
    fn classify<E, R>(&self, operation: &'static str, key: &Key, error: SdkError<E, R>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
        SdkError<E, R>: HasStatus,
    {
        let status = error.status();
        let fatal = |message: String| {
            Failure::Fail(StorageError::Fatal {
                operation,
                key: key.to_string(),
                message,
            })
        };
        match &error {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("");
                let message = service.err().message().unwrap_or("");
                let described = format!("HTTP {} {code}: {message}", status.unwrap_or(0));
                match status {
                    Some(412) => {
                        Failure::Fail(StorageError::PreconditionFailed { key: key.clone() })
                    }
                    Some(409 | 429 | 500..=599) => Failure::Retry(described),
                    _ if code == "RequestTimeout" || code == "SlowDown" => {
                        Failure::Retry(described)
                    }
                    _ => fatal(format!("{described} at {}", self.config.endpoint_name())),
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Failure::Retry(error_chain(&error)),
            _ => fatal(error_chain(&error)),
        }
    }

    async fn try_get(&self, key: &Key) -> Result<Option<Object>, Failure> {
        let response = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key.as_str()))
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) if error.status() == Some(404) => return Ok(None),
            Err(error) => return Err(self.classify("get", key, error)),
        };
        let etag = output.e_tag().map(ETag::new);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Failure::Retry(format!("reading the body: {e}")))?
            .into_bytes();
        let etag = etag.ok_or_else(|| self.missing_etag("get", key))?;
        Ok(Some(Object { bytes, etag }))
    }

    fn missing_etag(&self, operation: &'static str, key: &Key) -> Failure {
        Failure::Fail(StorageError::Fatal {
            operation,
            key: key.to_string(),
            message: format!(
                "{} returned no ETag, which conditional writes need",
                self.config.endpoint_name()
            ),
        })
    }

    async fn try_put(
        &self,
        key: &Key,
        bytes: &Bytes,
        options: &PutOptions,
    ) -> Result<ETag, Failure> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key.as_str()))
            .body(ByteStream::from(bytes.clone()))
            .content_type(options.content_type.as_ref())
            .cache_control(options.cache_control.as_ref());
        request = match &options.condition {
            Condition::None => request,
            Condition::CreateOnly => request.if_none_match("*"),
            Condition::IfMatch(etag) => request.if_match(etag.as_str()),
        };
        match request.send().await {
            Ok(output) => output
                .e_tag()
                .map(ETag::new)
                .ok_or_else(|| self.missing_etag("put", key)),
            // AWS answers If-Match on a missing object with 404.
            Err(error)
                if error.status() == Some(404)
                    && matches!(options.condition, Condition::IfMatch(_)) =>
            {
                Err(Failure::Fail(StorageError::PreconditionFailed {
                    key: key.clone(),
                }))
            }
            Err(error) => Err(self.classify("put", key, error)),
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        self.with_retries("get", key.as_str(), |_| self.try_get(key))
            .await
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        // Whether an earlier attempt may have been applied though its answer
        // was lost: then a failed condition may be our own write.
        let mut ambiguous = false;
        let result = self
            .with_retries("put", key.as_str(), |number| {
                ambiguous |= number > 1;
                self.try_put(key, &bytes, &options)
            })
            .await;
        match (result, &options.condition) {
            (Ok(etag), _) => Ok(PutOutcome::Written { etag }),
            (Err(StorageError::PreconditionFailed { .. }), Condition::CreateOnly) => {
                match self.get(key).await? {
                    Some(existing) if existing.bytes == bytes => Ok(PutOutcome::AlreadyExisted {
                        etag: existing.etag,
                    }),
                    Some(existing) => Err(StorageError::conflict(key, &existing.bytes, &bytes)),
                    None => Err(StorageError::Transient {
                        operation: "put",
                        key: key.to_string(),
                        message: "the object was deleted during a create-only write".into(),
                    }),
                }
            }
            (Err(StorageError::PreconditionFailed { .. }), Condition::IfMatch(_)) if ambiguous => {
                // A retried If-Match whose first attempt landed fails its own
                // condition. If the object holds exactly our bytes, the
                // write was ours (or an identical one): report it written.
                match self.get(key).await? {
                    Some(current) if current.bytes == bytes => {
                        Ok(PutOutcome::Written { etag: current.etag })
                    }
                    _ => Err(StorageError::PreconditionFailed { key: key.clone() }),
                }
            }
            (Err(error), _) => Err(error),
        }
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        self.with_retries("delete", key.as_str(), |_| async {
            let response = self
                .client
                .delete_object()
                .bucket(&self.config.bucket)
                .key(self.object_key(key.as_str()))
                .send()
                .await;
            match response {
                Ok(_) => Ok(()),
                Err(error) if error.status() == Some(404) => Ok(()),
                Err(error) => Err(self.classify("delete", key, error)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        let full_prefix = self.object_key(prefix.as_str());
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        // The classifier wants a key to name; the prefix is the closest.
        let prefix_key = Key::new(prefix.as_str().trim_end_matches('/'))
            .unwrap_or_else(|_| Key(String::from("(bucket root)")));
        loop {
            let page = self
                .with_retries("list", prefix.as_str(), |_| {
                    let request = self
                        .client
                        .list_objects_v2()
                        .bucket(&self.config.bucket)
                        .prefix(&full_prefix)
                        .set_continuation_token(continuation.clone());
                    let prefix_key = &prefix_key;
                    async move {
                        request
                            .send()
                            .await
                            .map_err(|error| self.classify("list", prefix_key, error))
                    }
                })
                .await?;
            for object in page.contents() {
                let Some(name) = object
                    .key()
                    .and_then(|name| name.strip_prefix(&self.config.key_prefix))
                else {
                    continue;
                };
                match Key::new(name) {
                    Ok(key) => keys.push(key),
                    Err(error) => tracing::warn!(%error, "ignoring an object stele did not write"),
                }
            }
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string());
                }
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// The HTTP status of an SDK error, when a response came back.
trait HasStatus {
    fn status(&self) -> Option<u16>;
}

impl<E> HasStatus for SdkError<E, aws_sdk_s3::config::http::HttpResponse> {
    fn status(&self) -> Option<u16> {
        self.raw_response()
            .map(|response| response.status().as_u16())
    }
}
