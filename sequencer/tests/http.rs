//! The real `stele` binary over HTTP: every test starts it on a free port
//! with its own data folder and talks to it with a small raw HTTP/1.1 client
//! (raw, so that malformed, slow, cut-off and traversal requests reach the
//! server exactly as written). Receipts are checked offline with
//! `stele-tiles` against the key the binary wrote to `DATA/log.vkey`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::http::{
    Response, check_receipt, connect, get, metric_value, parse_response, post_add, read_response,
    request_head, send, tree_size,
};
use common::stele::{STELE, Stele};
use stele_tiles::receipt::Receipt;

/// A running `stele serve`.
struct Server {
    stele: Stele,
    addr: SocketAddr,
    data: PathBuf,
}

impl Server {
    fn start(data: &Path, args: &[&str]) -> Server {
        Server::start_with_env(data, args, &[])
    }

    fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let stele = Stele::start_with_env(data, args, env);
        Server {
            addr: stele.addr(),
            stele,
            data: data.to_owned(),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        self.stele.terminate()
    }

    fn post(&self, entry: &[u8]) -> Response {
        post_add(self.addr, entry)
    }

    fn get(&self, path: &str) -> Response {
        get(self.addr, path)
    }

    /// Size of the published tree, from `GET /checkpoint`, checked against
    /// the log's key.
    fn tree_size(&self) -> u64 {
        tree_size(self.addr, &self.data)
    }

    /// Checks a 200 answer to `POST /add` for `entry`: headers, and the
    /// receipt verified offline. Returns the index.
    fn check_receipt(&self, entry: &[u8], response: &Response) -> u64 {
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        check_receipt(&self.data, entry, response)
    }

    fn stderr(&self) -> String {
        self.stele.stderr()
    }
}

fn data_dir() -> tempfile::TempDir {
    // On the target's disk rather than a tmpfs, so fsyncs are real.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data folder")
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").text();
    metric_value(&text, name).unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

#[test]
fn submission_gets_a_receipt_that_verifies_offline() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    let vkey = std::fs::read_to_string(data.path().join("log.vkey")).expect("vkey written");
    assert!(vkey.starts_with("localhost/stele+"), "{vkey}");

    let first = server.post(b"first entry");
    assert_eq!(server.check_receipt(b"first entry", &first), 0);
    assert_eq!(first.header("x-log-duplicate"), None);

    // Concurrent submissions share batches; each gets its own receipt.
    let addr = server.addr;
    let handles: Vec<_> = (0..16)
        .map(|n| thread::spawn(move || (n, post_add(addr, format!("entry {n}").as_bytes()))))
        .collect();
    let mut indices = Vec::new();
    for handle in handles {
        let (n, response) = handle.join().expect("thread");
        indices.push(server.check_receipt(format!("entry {n}").as_bytes(), &response));
    }
    indices.sort_unstable();
    assert_eq!(indices, (1..=16).collect::<Vec<u64>>());
    assert_eq!(server.tree_size(), 17);
}

#[test]
fn duplicates_keep_their_index_also_after_a_restart() {
    let data = data_dir();
    let mut server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    assert_eq!(server.check_receipt(b"a", &server.post(b"a")), 0);
    assert_eq!(server.check_receipt(b"b", &server.post(b"b")), 1);
    let again = server.post(b"a");
    assert_eq!(server.check_receipt(b"a", &again), 0);
    assert_eq!(again.header("x-log-duplicate"), Some("true"));
    assert_eq!(server.tree_size(), 2);
    assert!(server.terminate().success());

    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    let again = server.post(b"b");
    assert_eq!(server.check_receipt(b"b", &again), 1);
    assert_eq!(again.header("x-log-duplicate"), Some("true"));
    assert_eq!(server.check_receipt(b"c", &server.post(b"c")), 2);
    assert_eq!(server.check_receipt(b"a", &server.post(b"a")), 0);
    assert_eq!(server.tree_size(), 3);
}

#[test]
fn bad_submissions_get_their_4xx_and_change_nothing() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--max-entry-size", "100"]);
    let addr = server.addr;
    let octets = "Content-Type: application/octet-stream\r\n";
    let with_body = |head: String, body: &[u8]| {
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        request
    };
    let chunked = |body: &[u8]| {
        let mut request = request_head(
            "POST",
            "/add",
            &format!("{octets}Transfer-Encoding: chunked\r\n"),
        )
        .into_bytes();
        for chunk in body.chunks(64) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        request
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("GET", request_head("GET", "/add", "").into_bytes(), 405),
        (
            "PUT",
            with_body(
                request_head("PUT", "/add", &format!("{octets}Content-Length: 1\r\n")),
                b"x",
            ),
            405,
        ),
        (
            "text/plain",
            with_body(
                request_head(
                    "POST",
                    "/add",
                    "Content-Type: text/plain\r\nContent-Length: 1\r\n",
                ),
                b"x",
            ),
            415,
        ),
        (
            "form",
            with_body(
                request_head(
                    "POST",
                    "/add",
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1\r\n",
                ),
                b"x",
            ),
            415,
        ),
        (
            "empty",
            request_head("POST", "/add", &format!("{octets}Content-Length: 0\r\n")).into_bytes(),
            400,
        ),
        ("empty chunked", chunked(b""), 400),
        (
            // Only the headers: the limit is checked before any body byte.
            "Content-Length over the limit",
            request_head("POST", "/add", &format!("{octets}Content-Length: 101\r\n")).into_bytes(),
            413,
        ),
        (
            "huge Content-Length",
            request_head(
                "POST",
                "/add",
                &format!("{octets}Content-Length: 99999999999999\r\n"),
            )
            .into_bytes(),
            413,
        ),
        ("chunked over the limit", chunked(&[7u8; 101]), 413),
        ("chunked far over the limit", chunked(&[7u8; 100_000]), 413),
    ];
    for (name, request, expected) in &cases {
        let response = send(addr, request);
        assert_eq!(response.status, *expected, "{name}: {}", response.text());
        assert!(
            !response.body.is_empty(),
            "{name}: the error says what was wrong"
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{name}"
        );
        if *expected == 405 {
            assert_eq!(response.header("allow"), Some("POST"), "{name}");
        }
    }
    assert_eq!(server.tree_size(), 0, "nothing was logged");
    assert_eq!(metric(&server, "stele_tree_size"), 0.0);

    // Positive controls: exactly at the limit, by length and chunked, and
    // without a Content-Type.
    assert_eq!(
        server.check_receipt(&[1u8; 100], &server.post(&[1u8; 100])),
        0
    );
    let response = send(addr, &chunked(&[2u8; 100]));
    assert_eq!(server.check_receipt(&[2u8; 100], &response), 1);
    let response = send(
        addr,
        &with_body(
            request_head("POST", "/add", "Content-Length: 3\r\n"),
            b"raw",
        ),
    );
    assert_eq!(server.check_receipt(b"raw", &response), 2);
}

#[test]
fn slow_and_aborted_uploads_change_nothing() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--body-timeout", "1s"]);
    let head = request_head(
        "POST",
        "/add",
        "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n",
    );

    // Stalls after 3 of 10 bytes: 408 once the body timeout passes (the
    // read timeout of the client is far longer, so the answer is the
    // server's).
    let mut stream = connect(server.addr);
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(b"abc").expect("send part");
    let response = read_response(&mut stream);
    assert_eq!(response.status, 408, "{}", response.text());
    assert!(response.text().contains("within 1s"), "{}", response.text());

    // A chunked upload that stalls mid-chunk.
    let mut stream = connect(server.addr);
    let chunked = request_head(
        "POST",
        "/add",
        "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n",
    );
    stream.write_all(chunked.as_bytes()).expect("send head");
    stream.write_all(b"a\r\nabc").expect("send part");
    assert_eq!(read_response(&mut stream).status, 408);

    // Cut off: the client stops sending (half-close) after 3 of 10 bytes.
    let mut stream = connect(server.addr);
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(b"abc").expect("send part");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let response = read_response(&mut stream);
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.text().contains("cut off"), "{}", response.text());

    // Cut off entirely: the client goes away.
    let mut stream = connect(server.addr);
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(b"abc").expect("send part");
    drop(stream);

    assert_eq!(server.tree_size(), 0, "nothing was logged");
    assert_eq!(server.get("/healthz").status, 200);
    // The 10 bytes sent whole are logged, once, and first: none of the
    // partial uploads above took an index.
    assert_eq!(
        server.check_receipt(b"abcdefghij", &server.post(b"abcdefghij")),
        0
    );
    assert_eq!(server.tree_size(), 1);
    assert_eq!(
        metric(&server, "stele_submissions_total{outcome=\"new\"}"),
        1.0
    );
}

#[test]
fn read_paths_are_served_with_cdn_headers() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    for entry in [&b"one"[..], b"two", b"three"] {
        server.check_receipt(entry, &server.post(entry));
    }
    let immutable = "public, max-age=31536000, immutable";
    for prefix in ["", "/api/v2"] {
        let checkpoint = server.get(&format!("{prefix}/checkpoint"));
        assert_eq!(checkpoint.status, 200);
        assert_eq!(
            checkpoint.header("cache-control"),
            Some("public, max-age=2")
        );
        assert_eq!(
            checkpoint.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(checkpoint.text().starts_with("localhost/stele\n"));

        let tile = server.get(&format!("{prefix}/tile/0/000.p/3"));
        assert_eq!(tile.status, 200);
        assert_eq!(tile.body.len(), 3 * 32);
        assert_eq!(tile.header("cache-control"), Some(immutable));
        assert_eq!(
            tile.header("content-type"),
            Some("application/octet-stream")
        );
        let leaves: Vec<_> = [&b"one"[..], b"two", b"three"]
            .iter()
            .flat_map(|entry| stele_tiles::leaf_hash(entry).as_bytes().to_vec())
            .collect();
        assert_eq!(tile.body, leaves);

        let bundle = server.get(&format!("{prefix}/tile/entries/000.p/3"));
        assert_eq!(bundle.status, 200);
        assert_eq!(bundle.header("cache-control"), Some(immutable));
        let entries = stele_tiles::bundle::decode(&bundle.body, Some(3)).expect("bundle");
        assert_eq!(entries, vec![&b"one"[..], b"two", b"three"]);

        // HEAD: the same headers, no body.
        let head = send(
            server.addr,
            request_head("HEAD", &format!("{prefix}/tile/0/000.p/3"), "").as_bytes(),
        );
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("96"));
        assert_eq!(head.header("cache-control"), Some(immutable));
        assert!(head.body.is_empty());

        // Tiles that do not exist (yet).
        for missing in [
            "/tile/0/000",
            "/tile/0/000.p/4",
            "/tile/1/000.p/1",
            "/tile/entries/001",
        ] {
            let response = server.get(&format!("{prefix}{missing}"));
            assert_eq!(response.status, 404, "{prefix}{missing}");
        }
    }
    let post = send(
        server.addr,
        request_head("POST", "/checkpoint", "Content-Length: 0\r\n").as_bytes(),
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn private_files_and_traversal_attempts_are_not_served() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    server.check_receipt(b"x", &server.post(b"x"));
    let lock = std::fs::read(data.path().join(".stele/lock")).expect("lock object exists");
    for path in [
        "/.stele/lock",
        "/.stele/lock.pid",
        "/.stele/",
        "/log.key",
        "/api/v2/.stele/lock",
        "/api/v2/log.key",
        "/explorer/../log.key",
        "/history/../log.key",
        "/stats/v1/../../log.key",
        "/index/key/../../log.key",
        "/tile/../.stele/lock",
        "/tile/../log.key",
        "/tile/0/../../log.key",
        "/tile/entries/../../.stele/lock",
        "/api/v2/../.stele/lock",
        "/api/v2/../log.key",
        "/%2e%2e/log.key",
        "/tile/%2e%2e/%2e%2e/log.key",
        "/tile/0/..%2f..%2flog.key",
        "//.stele/lock",
        "/tile//0/000.p/1",
        "/tile/0/000.p/1/../../../log.key",
        "/checkpoint/../log.key",
        "/tile\\..\\log.key",
        "http://stele.test/.stele/lock",
    ] {
        let response = get(server.addr, path);
        assert!(
            (400..500).contains(&response.status),
            "{path}: status {}",
            response.status
        );
        assert!(!response.text().contains("PRIVATE+KEY"), "{path}");
        assert!(
            !response
                .body
                .windows(lock.len())
                .any(|window| window == lock),
            "{path} served the lock object"
        );
    }
}

#[test]
fn connections_over_the_limit_are_refused() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--max-connections", "2"]);
    // The server accepts connections in the order they were made (the
    // kernel's accept queue is first in, first out), so the two held ones
    // have their slots before the third is looked at. A read path rather
    // than /healthz, which an orchestrator must reach even then.
    let held: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
    let mut third = connect(server.addr);
    let _ = third.write_all(request_head("GET", "/checkpoint", "").as_bytes());
    let response = read_response(&mut third);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(response.text().contains("too many connections"));

    drop(held);
    // The slots come back once the server sees the two closed; poll for
    // that, with a generous deadline.
    let started = Instant::now();
    loop {
        let mut stream = connect(server.addr);
        let _ = stream.write_all(request_head("GET", "/checkpoint", "").as_bytes());
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        if parse_response(&raw).status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "slots were not freed"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_pool_answers_503_with_retry_after() {
    let data = data_dir();
    let server = Server::start(
        data.path(),
        &[
            "--pool-size",
            "1",
            "--max-batch",
            "1",
            "--batch-interval",
            "1s",
        ],
    );
    let addr = server.addr;
    let mut accepted = 0u64;
    let mut refused = 0;
    for round in 0..5 {
        let handles: Vec<_> = (0..64)
            .map(|n| {
                let entry = format!("round {round} entry {n}");
                thread::spawn(move || {
                    let response = post_add(addr, entry.as_bytes());
                    (entry, response)
                })
            })
            .collect();
        for handle in handles {
            let (entry, response) = handle.join().expect("thread");
            match response.status {
                200 => {
                    server.check_receipt(entry.as_bytes(), &response);
                    accepted += 1;
                }
                503 => {
                    let seconds: u64 = response
                        .header("retry-after")
                        .expect("Retry-After")
                        .parse()
                        .expect("Retry-After in seconds");
                    assert!(seconds >= 1);
                    assert!(response.text().contains("busy"), "{}", response.text());
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", response.text()),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "a pool of 1 was never full");
    assert_eq!(
        server.tree_size(),
        accepted,
        "refused entries were not logged"
    );
}

/// Submits `entries` from threads of their own, and returns once the
/// server holds every one of them waiting for a batch: the pool's byte
/// count (`stele_pool_bytes`) covers them all. The threads return the
/// answers.
fn submit_and_wait_until_pending(
    server: &Server,
    entries: Vec<Vec<u8>>,
) -> Vec<thread::JoinHandle<Response>> {
    let addr = server.addr;
    let mut handles = Vec::new();
    let mut pending_bytes = 0.0;
    for entry in entries {
        // One at a time, so that each one's bytes are seen arriving: the
        // figure is the test's own, not a guess at how the pool counts.
        let before = metric(server, "stele_pool_bytes");
        handles.push(thread::spawn(move || post_add(addr, &entry)));
        wait_for(
            Duration::from_secs(60),
            "the entry to reach the pool",
            || metric(server, "stele_pool_bytes") > before,
        );
        pending_bytes = metric(server, "stele_pool_bytes");
    }
    assert!(pending_bytes > 0.0);
    assert_eq!(
        metric(server, "stele_tree_size"),
        0.0,
        "nothing published yet"
    );
    handles
}

/// Polls `done` until it holds; panics after `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM or SIGINT (`signal`) while 20 submissions wait for their batch:
/// every one gets its receipt, the process exits 0, and the log holds them.
fn signal_publishes_pending_submissions_and_exits_0(signal: &str) {
    let data = data_dir();
    // The longest interval: the submissions are still waiting when the
    // signal comes.
    let mut server = Server::start(data.path(), &["--batch-interval", "60s"]);
    let entries: Vec<Vec<u8>> = (0..20)
        .map(|n| format!("pending {n:02}").into_bytes())
        .collect();
    let handles = submit_and_wait_until_pending(&server, entries.clone());
    server.stele.signal(signal);
    let status = server.stele.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit status {status}: {}",
        server.stderr()
    );
    for (entry, handle) in entries.iter().zip(handles) {
        let response = handle.join().expect("thread");
        server.check_receipt(entry, &response);
    }
    let stderr = server.stderr();
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    // The log says which signal it took.
    assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");

    // The published log holds them all.
    let server = Server::start(data.path(), &[]);
    assert_eq!(server.tree_size(), 20);
}

#[test]
fn sigterm_publishes_pending_submissions_and_exits_0() {
    signal_publishes_pending_submissions_and_exits_0("TERM");
}

#[test]
fn sigint_publishes_pending_submissions_and_exits_0() {
    signal_publishes_pending_submissions_and_exits_0("INT");
}

#[test]
fn healthz_and_metrics() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    let health = server.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.text(), "ok\n");
    assert_eq!(metric(&server, "stele_tree_size"), 0.0);
    server.check_receipt(b"m", &server.post(b"m"));
    server.check_receipt(b"m", &server.post(b"m"));
    let text = server.get("/metrics").text();
    for name in [
        "stele_tree_size 1",
        "stele_pool_depth",
        "stele_batch_size_bucket",
        "stele_submit_seconds_bucket",
        "stele_storage_operations_total",
        "stele_submissions_total{outcome=\"new\"} 1",
        "stele_submissions_total{outcome=\"duplicate\"} 1",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn keygen_writes_go_compatible_keys_that_serve_uses() {
    let data = data_dir();
    let output = Command::new(STELE)
        .args(["keygen", "--origin", "example.com/log", "--out"])
        .arg(data.path())
        .output()
        .expect("run keygen");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let vkey = std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey");
    assert_eq!(printed, vkey);
    assert!(vkey.starts_with("example.com/log+"), "{vkey}");
    let key_path = data.path().join("log.key");
    let key = std::fs::read_to_string(&key_path).expect("log.key");
    assert!(key.starts_with("PRIVATE+KEY+example.com/log+"), "{key}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // keygen never replaces a key.
    let again = Command::new(STELE)
        .args(["keygen", "--origin", "example.com/log", "--out"])
        .arg(data.path())
        .output()
        .expect("run keygen");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&key_path).expect("log.key"), key);

    // serve uses the key and its origin.
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    server.check_receipt(b"k", &server.post(b"k"));
    assert!(
        server
            .get("/checkpoint")
            .text()
            .starts_with("example.com/log\n")
    );
    drop(server);

    // A different configured origin is refused, not silently used.
    let output = Command::new(STELE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "other.example/log",
            "--data",
        ])
        .arg(data.path())
        .output()
        .expect("run serve");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("other.example/log"),
        "{output:?}"
    );
}

#[test]
fn configuration_precedence_is_file_then_env_then_flag() {
    let data = data_dir();
    let config = data.path().join("stele.toml");
    std::fs::write(&config, "max_entry_size = 10\nbatch_interval = \"10ms\"\n").expect("config");
    let config = config.to_str().expect("UTF-8 path");
    let limit_of = |server: &Server| -> usize {
        let mut size = 8;
        while server.post(&vec![b'x'; size + 1]).status == 200 {
            size += 1;
        }
        size
    };
    let subdir = |name: &str| data.path().join(name);

    let server = Server::start(&subdir("file"), &["--config", config]);
    assert_eq!(limit_of(&server), 10, "file");
    drop(server);
    let env = [("STELE_MAX_ENTRY_SIZE", "12")];
    let server = Server::start_with_env(&subdir("env"), &["--config", config], &env);
    assert_eq!(limit_of(&server), 12, "env over file");
    drop(server);
    let server = Server::start_with_env(
        &subdir("flag"),
        &["--config", config, "--max-entry-size", "14"],
        &env,
    );
    assert_eq!(limit_of(&server), 14, "flag over env");
    drop(server);
    let env_config = [("STELE_CONFIG", config), ("STELE_NO_OPAQUE", "true")];
    let server = Server::start_with_env(&subdir("no-opaque"), &[], &env_config);
    let response = server.post(b"x");
    assert_eq!(response.status, 404);
    assert!(response.text().contains("turned off"));
    drop(server);

    // Bad configuration: exit 1 naming the option.
    for (args, needle) in [
        (vec!["--max-entry-size", "65536"], "max_entry_size"),
        (vec!["--batch-interval", "0s"], "batch_interval"),
    ] {
        let output = Command::new(STELE)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(subdir("bad"))
            .args(&args)
            .output()
            .expect("run serve");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(needle),
            "{args:?}: {output:?}"
        );
    }
    let typo = data.path().join("typo.toml");
    std::fs::write(&typo, "max_bacth = 3\n").expect("config");
    let output = Command::new(STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&typo)
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_bacth"));
}

#[test]
fn serve_help_documents_every_option() {
    let output = Command::new(STELE)
        .args(["serve", "--help"])
        .output()
        .expect("run help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("UTF-8");
    for option in [
        "config",
        "data",
        "listen",
        "origin",
        "key",
        "max-batch",
        "batch-interval",
        "pool-size",
        "max-entry-size",
        "no-opaque",
        "max-connections",
        "header-timeout",
        "body-timeout",
        "request-timeout",
        "shutdown-timeout",
        "delete-partials",
        "log-level",
        "s3-bucket",
        "s3-endpoint",
        "s3-region",
        "s3-path-style",
        "s3-prefix",
    ] {
        assert!(help.contains(&format!("--{option}")), "--{option} missing");
        let env = format!("STELE_{}", option.to_ascii_uppercase().replace('-', "_"));
        assert!(help.contains(&env), "{env} missing");
    }
}

#[test]
fn a_second_process_or_a_foreign_key_is_refused() {
    let data = data_dir();
    let server = Server::start(data.path(), &["--batch-interval", "10ms"]);
    server.check_receipt(b"x", &server.post(b"x"));

    let output = Command::new(STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("already used"),
        "{output:?}"
    );
    drop(server);

    // Another key for the same origin cannot take the log over, and does
    // not replace the log's published verifier key.
    let vkey = std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey");
    let other = data_dir();
    let keygen = Command::new(STELE)
        .args(["keygen", "--origin", "localhost/stele", "--out"])
        .arg(other.path())
        .output()
        .expect("run keygen");
    assert!(keygen.status.success());
    let output = Command::new(STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--key")
        .arg(other.path().join("log.key"))
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("stele: error"),
        "{output:?}"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey"),
        vkey
    );

    // A lost key is not silently replaced by a new one.
    std::fs::rename(data.path().join("log.key"), other.path().join("saved.key")).expect("move");
    let output = Command::new(STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("key file"),
        "{output:?}"
    );
    assert!(!data.path().join("log.key").exists());
}

#[test]
fn s3_backend_serves_only_the_submission_api() {
    let Some(weed) = common::seaweed::shared() else {
        return;
    };
    let data = data_dir();
    let prefix = format!("http-{:08x}", fastrand::u32(..));
    let mut server = Server::start_with_env(
        data.path(),
        &[
            "--s3-bucket",
            common::seaweed::BUCKET,
            "--s3-endpoint",
            &weed.endpoint,
            "--s3-path-style",
            "--s3-prefix",
            &prefix,
            "--batch-interval",
            "10ms",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", common::seaweed::ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", &weed.secret_access_key),
        ],
    );
    let response = server.post(b"in the bucket");
    assert_eq!(server.check_receipt(b"in the bucket", &response), 0);
    let receipt = Receipt::parse(&response.body).expect("receipt");

    // Readers use the bucket, not the sequencer.
    for path in ["/checkpoint", "/tile/0/000.p/1", "/api/v2/checkpoint"] {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert!(response.text().contains("S3"), "{}", response.text());
    }
    assert_eq!(server.get("/healthz").status, 200);

    // The bucket holds the log under the prefix.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (checkpoint, tile) = runtime.block_on(async {
        use stele_sequencer::storage::{Key, Storage};
        let store = stele_sequencer::storage::s3::S3Storage::connect(common::seaweed::config(
            weed,
            &format!("{prefix}/"),
        ))
        .await;
        let get = |path: &'static str| {
            let store = store.clone();
            async move {
                store
                    .get(&Key::new(path).expect("key"))
                    .await
                    .expect("read the bucket")
                    .expect("object exists")
                    .bytes
            }
        };
        (get("checkpoint").await, get("tile/0/000.p/1").await)
    });
    assert_eq!(checkpoint.as_ref(), receipt.checkpoint.as_slice());
    assert_eq!(
        tile.as_ref(),
        stele_tiles::leaf_hash(b"in the bucket").as_bytes()
    );
    assert!(server.terminate().success());
}
