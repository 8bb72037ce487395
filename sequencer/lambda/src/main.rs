//! `stele-lambda`: the serverless front door of a Stele log, for AWS Lambda.
//!
//! It takes `POST /api/v2/log/entries`, or a shard's
//! `POST /<shard>/api/v2/log/entries` (docs/shards.md), from an API Gateway
//! HTTP API or a Lambda Function URL (both send payload format 2.0 events),
//! checks the Rekor v2 request with the same code as the sequencer's own
//! API (`stele-rekor`), and forwards the canonical entry to the sequencer's
//! private ingress, to the same shard (docs/submission.md). This file is only the adapter between
//! Lambda's events and plain HTTP requests: everything else is
//! [`Front::handle`], which the tests run the same way.
//!
//! Environment: `STELE_SEQUENCER_URL` (base URL of the ingress),
//! `STELE_INGRESS_SECRET` or `STELE_INGRESS_SECRET_FILE` (the shared
//! secret), optionally `STELE_SHARDS` (the shard names taken, `2026,2027`;
//! unset: the single log, or any valid shard name, left to the sequencer),
//! `STELE_FORWARD_TIMEOUT` (default 25s) and `RUST_LOG`.
//! The Lambda runtime sets `AWS_LAMBDA_RUNTIME_API`.

mod front;

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::error;

use crate::front::Front;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // CloudWatch stamps each line itself and shows no colours.
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let front = match Front::from_env() {
        Ok(front) => Arc::new(front),
        Err(err) => {
            // Lambda reports an exit during init as Runtime.ExitError, with
            // this line in the function's log.
            error!(%err, "stele-lambda is not configured");
            eprintln!("stele-lambda: {err}");
            return ExitCode::from(2);
        }
    };
    let handler = service_fn(move |event: Request| {
        let front = front.clone();
        async move { Ok::<_, Infallible>(answer(&front, event).await) }
    });
    match lambda_http::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(%err, "the Lambda runtime loop failed");
            ExitCode::FAILURE
        }
    }
}

/// Turns the event into a plain request, answers it, and turns the answer
/// back into what API Gateway expects.
async fn answer(front: &Front, event: Request) -> Response<Body> {
    let stage = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let (mut parts, body) = event.into_parts();
    if let Some(path) = without_stage(parts.uri.path(), stage.as_deref()) {
        let mut uri = path.to_owned();
        if let Some(query) = parts.uri.query() {
            uri.push('?');
            uri.push_str(query);
        }
        if let Ok(uri) = uri.parse() {
            parts.uri = uri;
        }
    }
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let response = front
        .handle(lambda_http::http::Request::from_parts(parts, body))
        .await;
    let (parts, body) = response.into_parts();
    // Every answer is text (JSON, a receipt, a message); anything else
    // goes back base64-encoded.
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(err) => Body::Binary(err.into_bytes()),
    };
    Response::from_parts(parts, body)
}

/// The path without a named stage's prefix (`/prod/api/...` on stage
/// `prod`), so the function answers the same under any stage; `None` when
/// there is nothing to strip.
fn without_stage<'a>(path: &'a str, stage: Option<&str>) -> Option<&'a str> {
    let stage = stage.filter(|stage| *stage != "$default")?;
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    rest.starts_with('/').then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::without_stage;

    #[test]
    fn stages_are_stripped() {
        let entries = "/api/v2/log/entries";
        assert_eq!(
            without_stage("/prod/api/v2/log/entries", Some("prod")),
            Some(entries)
        );
        assert_eq!(without_stage(entries, Some("$default")), None);
        assert_eq!(without_stage(entries, None), None);
        assert_eq!(without_stage("/production/api", Some("prod")), None);
        assert_eq!(without_stage("/prod", Some("prod")), None);
    }
}
