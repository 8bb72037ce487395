//! `POST /api/v2/log/entries`: the Rekor v2 write API, and the answer the
//! private ingress shares with it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
pub(super) use stele_rekor::http::ApiError;
use stele_rekor::http::{X_LOG_INDEX, rekor_v2_preflight, validation_error};
use stele_rekor::response::{Format, Inclusion, TLOG_PROOF_MEDIA_TYPE, transparency_log_entry};
use tokio::time::Instant;

use super::body::read_limited;
use super::{Api, ResponseBody};
use crate::storage::CONTENT_TYPE_TEXT;

impl Api {
    /// `POST /api/v2/log/entries`: checks a Rekor v2 `CreateEntryRequest`
    /// ([`stele_rekor::validate`]), logs its canonical entry and answers
    /// 201 with the `TransparencyLogEntry` JSON, or with the
    /// c2sp.org/tlog-proof receipt when the client asks for it with
    /// `Accept: application/x-tlog-proof` or `?format=tlog-proof`. An entry
    /// already in the log is 409 with `x-log-index`, as in rekor-tiles
    /// (`internal/server/service.go`); in receipt format its body is the
    /// receipt. Content type `application/json` (or none), else 415.
    pub(super) async fn rekor_v2_entries<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        if self.sigstore.is_none() {
            return Err(sigstore_off());
        }
        self.counting_rejections(async {
            let format = rekor_v2_preflight(request.headers(), request.uri().query())?;
            // The request is dropped once its entry is out: only the
            // entry waits in the pool, counted there.
            let entry = {
                let _reserved =
                    self.reserve_body(request.headers(), stele_rekor::MAX_REQUEST_SIZE)?;
                let deadline = Instant::now() + self.config.body_timeout;
                let body =
                    read_limited(request.into_body(), stele_rekor::MAX_REQUEST_SIZE, deadline)
                        .await?;
                stele_rekor::validate(&body)
                    .map_err(validation_error)?
                    .entry
            };
            self.log_rekor_v2(format, entry).await
        })
        .await
    }

    /// Logs the canonical entry of a checked Rekor v2 request and answers as
    /// `POST /api/v2/log/entries` does: 201 with the `TransparencyLogEntry`
    /// (or the receipt, in `format`), 409 with `x-log-index` for an entry
    /// already logged. Shared by the public API and the private ingress
    /// ([`crate::ingress`]), which takes entries the submit function checked.
    pub(crate) async fn log_rekor_v2(
        &self,
        format: Format,
        entry: Vec<u8>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let Some(rekor) = &self.sigstore else {
            return Err(sigstore_off());
        };
        let accepted = self.accept(entry.clone()).await?;
        let (status, content_type, body) = match (format, accepted.duplicate) {
            (Format::TransparencyLogEntry, false) => (
                StatusCode::CREATED,
                "application/json",
                transparency_log_entry(
                    &Inclusion {
                        index: accepted.index,
                        proof: &accepted.proof,
                        tree_size: accepted.tree.size,
                        root: accepted.tree.root,
                        checkpoint: &accepted.checkpoint,
                    },
                    &rekor.log_id,
                    &entry,
                ),
            ),
            (Format::TransparencyLogEntry, true) => (
                StatusCode::CONFLICT,
                CONTENT_TYPE_TEXT,
                format!(
                    "an equivalent entry already exists in the transparency log with index {}\n",
                    accepted.index
                )
                .into_bytes(),
            ),
            (Format::TlogProof, duplicate) => (
                if duplicate {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::CREATED
                },
                TLOG_PROOF_MEDIA_TYPE,
                accepted.receipt().to_bytes(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(X_LOG_INDEX, HeaderValue::from(accepted.index));
        Ok(response)
    }
}

pub(super) fn sigstore_off() -> ApiError {
    ApiError::not_found("the Sigstore API (POST /api/v2/log/entries) is turned off on this log")
}
