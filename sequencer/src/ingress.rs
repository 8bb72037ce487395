//! The sequencer's side of the private ingress: a listener of its own
//! (`--ingress-listen`), apart from the public API, that takes
//! authenticated canonical entries and answers as the Rekor v2 API does.
//!
//! Every refusal is answered with its reason and logged through a
//! [`RateLimitedWarn`] per cause, so a flood of refused requests writes at
//! most one line per cause and interval, and is counted in
//! `stele_refusals_total{cause="ingress_..."}`.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::api::{ApiConfig, ApiError, BodyError, Handler, ResponseBody, read_limited};
use crate::log::MAX_ENTRY_SIZE;
use crate::ratelog::{DEFAULT_INTERVAL, RateLimitedWarn};
use crate::shard::Shards;
use stele_rekor::entry::check_canonical;
use stele_rekor::ingress::{AuthError, Authenticator, parse_ingress_path};

/// The ingress handler: authenticate, then log through the same path as
/// `POST /api/v2/log/entries`.
#[derive(Debug)]
pub struct Ingress {
    shards: Arc<Shards>,
    auth: Authenticator,
    limits: ApiConfig,
    refusals: Refusals,
}

/// One rate-limited warning per cause of refusal.
#[derive(Debug)]
struct Refusals {
    /// No credentials, malformed ones, or a MAC that does not verify.
    unauthenticated: RateLimitedWarn,
    /// A time too far from this server's clock.
    stale: RateLimitedWarn,
    /// A nonce seen before.
    replayed: RateLimitedWarn,
    /// Too many recent nonces to remember another.
    overloaded: RateLimitedWarn,
    /// An authenticated body that is not a canonical hashedrekord entry.
    not_canonical: RateLimitedWarn,
    /// A body too large, too slow, or cut off.
    body: RateLimitedWarn,
}

impl Refusals {
    fn new(metrics: &crate::metrics::Metrics) -> Refusals {
        let warner = |cause| RateLimitedWarn::new(cause, DEFAULT_INTERVAL, metrics);
        Refusals {
            unauthenticated: warner("ingress_unauthenticated"),
            stale: warner("ingress_stale"),
            replayed: warner("ingress_replayed"),
            overloaded: warner("ingress_overloaded"),
            not_canonical: warner("ingress_not_canonical"),
            body: warner("ingress_body"),
        }
    }

    fn auth(&self, err: &AuthError) -> &RateLimitedWarn {
        match err {
            AuthError::Missing(_) | AuthError::Malformed { .. } | AuthError::BadMac => {
                &self.unauthenticated
            }
            AuthError::Stale { .. } => &self.stale,
            AuthError::Replayed => &self.replayed,
            AuthError::Overloaded => &self.overloaded,
        }
    }
}

impl Ingress {
    /// An ingress in front of the process's logs; `limits` are its own
    /// connection limits and timeouts.
    pub fn new(shards: Arc<Shards>, auth: Authenticator, limits: ApiConfig) -> Arc<Ingress> {
        let refusals = Refusals::new(shards.metrics_of_process());
        Arc::new(Ingress {
            shards,
            auth,
            limits,
            refusals,
        })
    }

    async fn entries(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let path = request.uri().path().to_owned();
        let shard = parse_ingress_path(&path).flatten().map(str::to_owned);
        let (parts, body) = request.into_parts();
        let deadline = Instant::now() + self.limits.body_timeout;
        let body: Bytes =
            read_limited(body, MAX_ENTRY_SIZE, deadline)
                .await
                .map_err(|err: BodyError| {
                    let refusal = ApiError::from(err);
                    self.refusals.body.warn(format_args!(
                        "refused an ingress request whose body did not arrive whole: {}",
                        refusal.message
                    ));
                    refusal
                })?;
        let format = self
            .auth
            .authenticate(&parts.headers, parts.uri.path(), &body, SystemTime::now())
            .map_err(|err| {
                self.refusals
                    .auth(&err)
                    .warn(format_args!("refused an ingress request: {err}"));
                let status = match err {
                    AuthError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::UNAUTHORIZED,
                };
                let mut refusal = ApiError::new(status, format!("ingress: {err}"));
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    refusal.retry_after = Some(1);
                }
                refusal
            })?;
        // The function checked the signature; the body must be exactly
        // what it forwards, so that an old or broken build (or a holder of
        // the secret that is not the function) cannot log anything else.
        if let Err(err) = check_canonical(&body) {
            self.refusals.not_canonical.warn(format_args!(
                "refused an authenticated ingress request whose body is not a canonical \
                 hashedrekord entry: {err}"
            ));
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("ingress: the body is not a canonical hashedrekord entry: {err}"),
            ));
        }
        self.shards
            .submission_api(shard.as_deref())?
            .log_rekor_v2(format, body.to_vec())
            .await
    }
}

impl Handler for Ingress {
    fn limits(&self) -> &ApiConfig {
        &self.limits
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let path = request.uri().path().to_owned();
        let result = match (parse_ingress_path(&path), path.as_str(), request.method()) {
            (Some(_), _, &Method::POST) => {
                let result = self.entries(request).await;
                if result.is_err() {
                    self.shards
                        .metrics_of_process()
                        .submissions
                        .with_label_values(&["rejected"])
                        .inc();
                }
                result
            }
            (Some(_), _, _) => Err(ApiError {
                allow: Some("POST"),
                ..ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST")
            }),
            (None, "/healthz", &Method::GET) => Ok(self.shards.health()),
            (None, path, _) => Err(ApiError::not_found(format!(
                "no such path on the ingress: {path}"
            ))),
        };
        let mut response = result.unwrap_or_else(crate::api::error_response);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
