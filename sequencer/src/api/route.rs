//! Which route a request takes, and the read paths: the log's public
//! objects served with the headers a CDN would see.

use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
pub(super) use stele_rekor::http::ApiError;
use stele_tiles::tile::Tile;
use tracing::error;

use super::{ApiConfig, ResponseBody};
use crate::published::{CACHE_CHECKPOINT, CHECKPOINT_KEY};
use crate::storage::{CACHE_IMMUTABLE, CONTENT_TYPE_BINARY, CONTENT_TYPE_TEXT, Key, Storage};

/// What a request is for, once its path and method are known to be valid.
///
/// The Sigstore issue adds `POST /api/v2/log/entries` here (a variant, a
/// line in [`route`] and a handler in [`Api::handle`]); body reading and
/// the submission pipeline are shared through [`Api::read_body`] and
/// [`Api::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /add`: an opaque entry.
    AddOpaque,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /checkpoint`.
    Checkpoint,
    /// `GET /tile/...`: a hash tile or an entry bundle.
    Tile(Tile),
    /// `POST /api/v2/log/entries`: a Rekor v2 hashedrekord entry.
    RekorV2Entries,
    /// `GET /index/<algorithm>/<hex>`, `/index/key/<key ID>` or
    /// `/index/namespace/<namespace, / as ~>`: an index object (its path),
    /// only for well-formed names (`stele_rekor::index::parse_request_path`).
    Index(String),
    /// `GET /explorer/` and `/explorer/<file>`: a file of the explorer page.
    Explorer(&'static crate::explorer::File),
    /// `GET /explorer`: a redirect to `explorer/`.
    ExplorerRedirect,
    /// `GET /log.vkey`: the log's verifier key.
    Vkey,
    /// `GET /log.mldsa44.vkey`: the vkey of the ML-DSA-44 key signing
    /// beside the log's key (404 when there is none).
    MlDsa44Vkey,
    /// `GET /history/<YYYY>`, `/history/checkpoint/<size>` or
    /// `/stats/v1/<summary|hourly|daily>.json`: an object derived from the
    /// published log (crate::history, crate::sigstore::index), only for
    /// exactly those names.
    Derived(Derived),
}

/// A derived object's path and the headers it is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub path: String,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// The statistics objects, by request path.
const STATS: [&str; 3] = [
    "/stats/v1/summary.json",
    "/stats/v1/hourly.json",
    "/stats/v1/daily.json",
];

/// The derived object a request path names, if it names exactly one.
fn derived(path: &str) -> Option<Derived> {
    if path == "/final-checkpoint" {
        // Written once, when a shard freezes (docs/shards.md), and never
        // changed after.
        return Some(Derived {
            path: crate::published::FINAL_CHECKPOINT_KEY.to_owned(),
            content_type: CONTENT_TYPE_TEXT,
            cache_control: CACHE_IMMUTABLE,
        });
    }
    if STATS.contains(&path) {
        return Some(Derived {
            path: path[1..].to_owned(),
            content_type: "application/json",
            cache_control: crate::history::CACHE_HISTORY,
        });
    }
    let history = stele_rekor::history::parse_request_path(path)?;
    let immutable = history.starts_with("history/checkpoint/");
    Some(Derived {
        path: history,
        content_type: crate::storage::CONTENT_TYPE_TEXT,
        cache_control: if immutable {
            crate::storage::CACHE_IMMUTABLE
        } else {
            crate::history::CACHE_HISTORY
        },
    })
}

const ALLOW_READ: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

/// Maps a request to its route: 404 for unknown paths (with the reason a
/// tile path did not parse), 405 with `Allow` for a known path and the wrong
/// method.
pub fn route(method: &Method, path: &str, config: &ApiConfig) -> Result<Route, ApiError> {
    let (route, allow) = match path {
        "/add" if config.opaque => (Route::AddOpaque, ALLOW_POST),
        "/add" => {
            return Err(ApiError::not_found(
                "the opaque entry kind (POST /add) is turned off on this log",
            ));
        }
        "/healthz" => (Route::Healthz, ALLOW_READ),
        "/metrics" => (Route::Metrics, ALLOW_READ),
        "/api/v2/log/entries" => (Route::RekorV2Entries, ALLOW_POST),
        "/explorer" | "/log.vkey" | "/log.mldsa44.vkey" => {
            (static_route(path, config)?, ALLOW_READ)
        }
        _ if path.starts_with("/explorer/") => (static_route(path, config)?, ALLOW_READ),
        _ => (read_route(path, config)?, ALLOW_READ),
    };
    let allowed = match allow {
        ALLOW_POST => method == Method::POST,
        _ => method == Method::GET || method == Method::HEAD,
    };
    if !allowed {
        return Err(ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        });
    }
    Ok(route)
}

/// The explorer's files and the verifier key: only those exact paths
/// (crate::explorer::FILES), from the folder (filesystem backend).
fn static_route(path: &str, config: &ApiConfig) -> Result<Route, ApiError> {
    let route = match path {
        "/explorer" => Route::ExplorerRedirect,
        "/log.vkey" => Route::Vkey,
        "/log.mldsa44.vkey" => Route::MlDsa44Vkey,
        _ => path
            .strip_prefix("/explorer/")
            .and_then(crate::explorer::file)
            .map(Route::Explorer)
            .ok_or_else(|| ApiError::not_found(format!("no such path: {path}")))?,
    };
    if !config.serve_reads {
        return Err(ApiError::not_found(
            "this log is stored in S3: read the explorer and log.vkey from the bucket or its CDN",
        ));
    }
    Ok(route)
}

/// The read paths: `checkpoint` and `tile/...`, at the root or under
/// `/api/v2/`.
fn read_route(path: &str, config: &ApiConfig) -> Result<Route, ApiError> {
    let relative = path
        .strip_prefix("/api/v2/")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or(path);
    if let Some(index_path) = stele_rekor::index::parse_request_path(path) {
        if !config.serve_reads {
            return Err(ApiError::not_found(
                "this log is stored in S3: read the indexes from the bucket or its CDN",
            ));
        }
        return Ok(Route::Index(index_path));
    }
    if let Some(derived) = derived(path) {
        if !config.serve_reads {
            return Err(ApiError::not_found(
                "this log is stored in S3: read the history and statistics from the bucket or its CDN",
            ));
        }
        return Ok(Route::Derived(derived));
    }
    let is_read_path = relative == CHECKPOINT_KEY || relative.starts_with("tile/");
    if !is_read_path {
        return Err(ApiError::not_found(format!("no such path: {path}")));
    }
    if !config.serve_reads {
        return Err(ApiError::not_found(
            "this log is stored in S3: read the checkpoint and tiles from the bucket or its CDN",
        ));
    }
    if relative == CHECKPOINT_KEY {
        return Ok(Route::Checkpoint);
    }
    Tile::parse_path(relative)
        .map(Route::Tile)
        .map_err(|err| ApiError::not_found(format!("no such tile: {err}")))
}

/// The answer to a read route, from `storage` alone (so that a frozen
/// shard, which has no open log, answers reads the same way). The routes
/// that are not reads are 404s here; [`Api::handle`] answers them before.
pub async fn answer_read(
    storage: &dyn Storage,
    route: &Route,
) -> Result<Response<ResponseBody>, ApiError> {
    match route {
        Route::Checkpoint => {
            read_object(storage, CHECKPOINT_KEY, CONTENT_TYPE_TEXT, CACHE_CHECKPOINT).await
        }
        Route::Tile(tile) => {
            read_object(storage, &tile.path(), CONTENT_TYPE_BINARY, CACHE_IMMUTABLE).await
        }
        Route::Index(path) => {
            read_object(
                storage,
                path,
                CONTENT_TYPE_TEXT,
                crate::sigstore::index::CACHE_INDEX,
            )
            .await
        }
        Route::Derived(derived) => {
            read_object(
                storage,
                &derived.path,
                derived.content_type,
                derived.cache_control,
            )
            .await
        }
        Route::Explorer(file) => {
            let path = format!("{}{}", crate::explorer::PREFIX, file.name);
            read_object(
                storage,
                &path,
                file.content_type,
                crate::explorer::CACHE_EXPLORER,
            )
            .await
        }
        Route::ExplorerRedirect => Ok(super::explorer_redirect()),
        Route::Vkey | Route::MlDsa44Vkey => {
            read_object(
                storage,
                if matches!(route, Route::Vkey) {
                    crate::explorer::VKEY_KEY
                } else {
                    crate::explorer::MLDSA44_VKEY_KEY
                },
                CONTENT_TYPE_TEXT,
                crate::explorer::CACHE_EXPLORER,
            )
            .await
        }
        Route::AddOpaque | Route::Healthz | Route::Metrics | Route::RekorV2Entries => {
            Err(ApiError::not_found("no such path"))
        }
    }
}

/// The first segments of every public object of a log. Whatever else its
/// store holds is never served, whatever a route yields: the sequencer's
/// `.stele/`, and the signing key, which a log's folder holds by default
/// (`log.key`, beside a frozen shard's objects too).
const PUBLIC_TOP_LEVEL: [&str; 9] = [
    CHECKPOINT_KEY,
    crate::published::FINAL_CHECKPOINT_KEY,
    crate::explorer::VKEY_KEY,
    crate::explorer::MLDSA44_VKEY_KEY,
    "tile",
    "index",
    "history",
    "stats",
    "explorer",
];

/// Whether `key` is one of a log's public objects (by its first segment).
pub(super) fn is_public(key: &Key) -> bool {
    let top = key.as_str().split('/').next().unwrap_or_default();
    !key.is_private() && PUBLIC_TOP_LEVEL.contains(&top)
}

/// A public object of the log, with the headers a CDN would see.
async fn read_object(
    storage: &dyn Storage,
    path: &str,
    content_type: &'static str,
    cache_control: &'static str,
) -> Result<Response<ResponseBody>, ApiError> {
    let key = Key::new(path).map_err(|err| ApiError::not_found(err.to_string()))?;
    // Routing only yields public paths; this guards the promise that
    // private objects are never served.
    if !is_public(&key) {
        return Err(ApiError::not_found(format!("no such path: {path}")));
    }
    let object = storage.get(&key).await.map_err(|err| {
        error!(%err, %key, "reading a public object failed");
        ApiError::unavailable(format!("could not read {key}: storage failed"), 1)
    })?;
    let Some(object) = object else {
        return Err(ApiError::not_found(format!("{key} does not exist (yet)")));
    };
    let mut response = Response::new(Full::new(object.bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(etag) =
        HeaderValue::from_str(&format!("\"{}\"", object.etag.as_str().trim_matches('"')))
    {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}
