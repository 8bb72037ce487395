//! Unit tests of routing, content types, body limits and probes.

use super::body::*;
use super::route::*;
use super::serve::*;
use super::*;
use stele_tiles::tile::Tile;
use tokio::time::Instant;

fn config() -> ApiConfig {
    ApiConfig {
        max_entry_size: 16,
        opaque: true,
        serve_reads: true,
        max_connections: 8,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        shutdown_timeout: Duration::from_secs(1),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}

#[test]
fn health_probes_are_told_from_other_requests() {
    assert_eq!(
        probe_method(b"GET /healthz HTTP/1.1\r\nhost: x\r\n"),
        Some(false)
    );
    assert_eq!(probe_method(b"HEAD /healthz HTTP/1.0\r\n"), Some(true));
    for other in [
        &b"POST /healthz HTTP/1.1\r\n"[..],
        b"GET /healthz?x HTTP/1.1\r\n",
        b"GET /checkpoint HTTP/1.1\r\n",
        b"GET /healthz",
        b"GET /healthz HTTP/1.1 extra\r\n",
        b"",
    ] {
        assert_eq!(
            probe_method(other),
            None,
            "{:?}",
            String::from_utf8_lossy(other)
        );
    }
}

#[test]
fn routes() {
    let config = config();
    let tile = |path: &str| Route::Tile(Tile::parse_path(path).expect("valid tile path"));
    let cases = [
        (Method::POST, "/add", Route::AddOpaque),
        (Method::GET, "/healthz", Route::Healthz),
        (Method::HEAD, "/metrics", Route::Metrics),
        (Method::GET, "/checkpoint", Route::Checkpoint),
        (Method::GET, "/api/v2/checkpoint", Route::Checkpoint),
        (Method::GET, "/tile/0/000", tile("tile/0/000")),
        (
            Method::HEAD,
            "/tile/1/x001/002.p/3",
            tile("tile/1/x001/002.p/3"),
        ),
        (
            Method::GET,
            "/api/v2/tile/entries/000",
            tile("tile/entries/000"),
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            route(&method, path, &config),
            Ok(expected),
            "{method} {path}"
        );
    }
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let config = config();
    for (method, path, allow) in [
        (Method::GET, "/add", "POST"),
        (Method::PUT, "/add", "POST"),
        (Method::POST, "/checkpoint", "GET, HEAD"),
        (Method::DELETE, "/tile/0/000", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
    ] {
        let err = route(&method, path, &config).expect_err(path);
        assert_eq!(
            err.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(err.allow, Some(allow), "{method} {path}");
    }
}

#[test]
fn unknown_private_and_malformed_paths_are_404() {
    let config = config();
    for path in [
        "/",
        "/.stele/lock",
        "/log.key",
        "/tile/../.stele/lock",
        "/api/v2/../.stele/lock",
        "/tile/0/0",
        "/tile/0/001.p/256",
        "/tile/0/x000/001",
        "/tile/64/000",
        "/tile/0/000/",
        "/tile/0/%30%30%30",
        "/checkpoint/",
        "/api/v2/add",
        "/api/v2/healthz",
    ] {
        let err = route(&Method::GET, path, &config).expect_err(path);
        assert_eq!(err.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn switches_turn_routes_off() {
    let mut config = config();
    config.opaque = false;
    config.serve_reads = false;
    for path in ["/add", "/checkpoint", "/tile/0/000"] {
        let err = route(&Method::POST, path, &config).expect_err(path);
        assert_eq!(err.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(route(&Method::GET, "/healthz", &config), Ok(Route::Healthz));
}

#[test]
fn content_types() {
    for (value, ok) in [
        ("application/octet-stream", true),
        ("Application/Octet-Stream", true),
        ("application/octet-stream; charset=binary", true),
        ("application/x-www-form-urlencoded", false),
        ("text/plain", false),
        ("application/octet-streamx", false),
    ] {
        assert_eq!(
            is_octet_stream(&HeaderValue::from_static(value)),
            ok,
            "{value}"
        );
    }
}

#[tokio::test]
async fn bodies_are_read_within_limits() {
    let deadline = Instant::now() + Duration::from_secs(1);
    let body = read_limited(
        Full::new(Bytes::from_static(b"0123456789abcdef")),
        16,
        deadline,
    )
    .await;
    assert_eq!(body, Ok(Bytes::from_static(b"0123456789abcdef")));
    let body = read_limited(
        Full::new(Bytes::from_static(b"0123456789abcdefg")),
        16,
        deadline,
    )
    .await;
    assert_eq!(body, Err(BodyError::TooLarge { limit: 16 }));
}

/// Even a route that names a private object (none does: this is the guard
/// behind the routing) gets a 404 and never its bytes: the signing key in a
/// log's folder, the sequencer's state. Every object a log publishes
/// passes.
#[tokio::test]
async fn private_objects_are_never_read_whatever_the_route() {
    use crate::storage::memory::MemoryStorage;
    use crate::storage::{Key, PutOptions, Storage};
    let storage = MemoryStorage::new();
    for key in [
        "log.key",
        ".stele/lock",
        "keys/log.key",
        "checkpoint",
        "final-checkpoint",
        "log.vkey",
        "tile/0/000",
        "index/sha256/00",
        "history/2026",
        "stats/v1/summary.json",
        "explorer/index.html",
    ] {
        storage
            .put(
                &Key::new(key).expect("key"),
                bytes::Bytes::from_static(b"secret"),
                PutOptions::private(crate::storage::Condition::None),
            )
            .await
            .expect("put");
    }
    let derived = |path: &str| {
        Route::Derived(Derived {
            path: path.to_owned(),
            content_type: "text/plain",
            cache_control: "no-store",
        })
    };
    for private in ["log.key", ".stele/lock", "keys/log.key"] {
        let answer = answer_read(&storage, &derived(private)).await;
        let err = answer.expect_err(private);
        assert_eq!(err.status, StatusCode::NOT_FOUND, "{private}");
    }
    for public in [
        "checkpoint",
        "final-checkpoint",
        "log.vkey",
        "tile/0/000",
        "index/sha256/00",
        "history/2026",
        "stats/v1/summary.json",
        "explorer/index.html",
    ] {
        let answer = answer_read(&storage, &derived(public)).await;
        assert_eq!(answer.expect(public).status(), StatusCode::OK, "{public}");
    }
}
