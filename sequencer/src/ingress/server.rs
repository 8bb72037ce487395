//! The sequencer's side of the private ingress: a listener of its own
//! (`--ingress-listen`), apart from the public API, that takes
//! authenticated canonical entries and answers as the Rekor v2 API does.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::warn;

use super::{AuthError, Authenticator, INGRESS_PATH};
use crate::api::{Api, ApiConfig, ApiError, Handler, ResponseBody, read_limited};
use crate::log::MAX_ENTRY_SIZE;
use crate::sigstore::entry::artifact_digest;

/// The ingress handler: authenticate, then log through the same path as
/// `POST /api/v2/log/entries`.
#[derive(Debug)]
pub struct Ingress {
    api: Arc<Api>,
    auth: Authenticator,
    limits: ApiConfig,
}

impl Ingress {
    /// An ingress in front of `api`'s log; `limits` are its own connection
    /// limits and timeouts.
    pub fn new(api: Arc<Api>, auth: Authenticator, limits: ApiConfig) -> Arc<Ingress> {
        Arc::new(Ingress { api, auth, limits })
    }

    async fn entries(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let (parts, body) = request.into_parts();
        let deadline = Instant::now() + self.limits.body_timeout;
        let body: Bytes = read_limited(body, MAX_ENTRY_SIZE, deadline).await?;
        let format = self
            .auth
            .authenticate(&parts.headers, &body, SystemTime::now())
            .map_err(|err| {
                warn!(%err, "refused an unauthenticated ingress request");
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
        // The function checked the signature; this only guards against a
        // function that forwards something other than a canonical
        // hashedrekord entry (an old or broken build), which the digest
        // index could not read.
        if artifact_digest(&body).is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "ingress: the body is not a canonical hashedrekord entry",
            ));
        }
        self.api.log_rekor_v2(format, body.to_vec()).await
    }
}

impl Handler for Ingress {
    fn limits(&self) -> &ApiConfig {
        &self.limits
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let result = match (request.uri().path(), request.method()) {
            (INGRESS_PATH, &Method::POST) => {
                let result = self.entries(request).await;
                if result.is_err() {
                    self.api
                        .metrics()
                        .submissions
                        .with_label_values(&["rejected"])
                        .inc();
                }
                result
            }
            (INGRESS_PATH, _) => Err(ApiError {
                allow: Some("POST"),
                ..ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST")
            }),
            ("/healthz", &Method::GET) => Ok(self.api.health()),
            (path, _) => Err(ApiError::not_found(format!(
                "no such path on the ingress: {path}"
            ))),
        };
        let mut response = result.unwrap_or_else(ApiError::into_response);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
