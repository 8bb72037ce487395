//! The real `stele` binary through the paths around its lifecycle: the
//! request timeout's 503, `/healthz` while shutting down and once the
//! sequencer has stopped, the shutdown's force-close of connections that
//! outlive `--shutdown-timeout`, `stele reindex` against a digest index
//! rebuilt by the test from the entries themselves, and the private
//! ingress's secret (from a file, and the refusals around it).
//!
//! No test measures time: each waits for an event it can see (a log line,
//! an answer, a metric, a file) within a generous deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

use common::http::{
    Response, check_receipt, connect, get, metric_value, post, post_add, read_response,
    request_head, tree_size,
};
use common::stele::{Stele, run, serve_fails, serve_fails_with_env};

/// Longest wait for any one event.
const DEADLINE: Duration = Duration::from_secs(60);

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data folder")
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = get(addr, "/metrics").text();
    metric_value(&text, name).unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

/// Polls `done` until it holds; panics after [`DEADLINE`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Submits `entry` from a thread of its own and returns once the server
/// holds it waiting for a batch (the pool's byte count went up).
fn submit_pending(addr: SocketAddr, entry: &[u8]) -> thread::JoinHandle<Response> {
    let before = metric(addr, "stele_pool_bytes");
    let entry = entry.to_vec();
    let handle = thread::spawn(move || post_add(addr, &entry));
    wait_for("the entry to reach the pool", || {
        metric(addr, "stele_pool_bytes") > before
    });
    handle
}

/// A connection that has sent only the start of a `GET path` head, and
/// that the server has accepted: a complete request on a second
/// connection, made after it, was answered, and the server takes
/// connections in the order they came (the kernel's accept queue is first
/// in, first out). [`finish_request`] sends the rest.
fn half_sent_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: stele.test\r\n").as_bytes())
        .expect("send the start of the head");
    let later = get(addr, "/checkpoint");
    assert_eq!(later.status, 200, "{}", later.text());
    stream
}

fn finish_request(mut stream: TcpStream) -> Response {
    stream
        .write_all(b"Connection: close\r\n\r\n")
        .expect("send the rest of the head");
    read_response(&mut stream)
}

// ---------------------------------------------------------------------
// The request timeout.

/// A receipt that cannot come within `--request-timeout` (the batch waits
/// for the longest interval) is a 503 with `Retry-After` that says the
/// entry may still be logged. Submitted again meanwhile, it is not logged
/// twice; after the shutdown's drain it is in the log once, and submitting
/// it again then gives its receipt at its index.
#[test]
fn a_receipt_that_cannot_come_in_time_is_a_503_and_the_entry_is_logged_once() {
    let data = data_dir();
    let mut stele = Stele::start(
        data.path(),
        &["--batch-interval", "60s", "--request-timeout", "1s"],
    );
    let addr = stele.addr();
    let entry = b"an entry whose receipt comes late";
    for attempt in 0..2 {
        let response = post_add(addr, entry);
        assert_eq!(
            response.status,
            503,
            "attempt {attempt}: {}",
            response.text()
        );
        let retry_after: u64 = response
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry_after >= 1);
        let text = response.text();
        assert!(text.contains("no receipt within 1s"), "{text}");
        assert!(text.contains("submit it again"), "{text}");
    }
    // The process is up and has published nothing yet.
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(tree_size(stele.addr(), data.path()), 0);

    // SIGTERM sequences what is pending, though its submitter is gone.
    let status = stele.terminate();
    assert!(status.success(), "{status}: {}", stele.stderr());
    assert!(
        stele.stderr().contains("stopped cleanly"),
        "{}",
        stele.stderr()
    );

    let stele = Stele::start(data.path(), &["--batch-interval", "10ms"]);
    assert_eq!(tree_size(stele.addr(), data.path()), 1, "logged once");
    let again = post_add(stele.addr(), entry);
    assert_eq!(check_receipt(data.path(), entry, &again), 0);
    assert_eq!(again.header("x-log-duplicate"), Some("true"));
    let next = post_add(stele.addr(), b"next");
    assert_eq!(check_receipt(data.path(), b"next", &next), 1);
    stele.stop();
}

// ---------------------------------------------------------------------
// Shutdown.

/// SIGTERM while a submission waits for its batch and while another
/// client is half-way through a `/healthz` request: that request, finished
/// after the server stopped accepting, is answered 503 ("shutting down"),
/// the waiting submission gets its receipt, the process exits 0, and
/// nothing listens any more.
#[test]
fn healthz_is_503_during_shutdown_while_pending_entries_are_published() {
    let data = data_dir();
    let mut stele = Stele::start(
        data.path(),
        &[
            "--batch-interval",
            "60s",
            "--shutdown-timeout",
            "60s",
            "--header-timeout",
            "1h",
        ],
    );
    let addr = stele.addr();
    let pending = submit_pending(addr, b"pending at shutdown");
    let health = half_sent_get(addr, "/healthz");

    stele.signal("TERM");
    stele.wait_for_log("stopped accepting connections", DEADLINE);
    let answer = finish_request(health);
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(answer.text().contains("shutting down"), "{}", answer.text());

    let receipt = pending.join().expect("submitter");
    assert_eq!(
        check_receipt(data.path(), b"pending at shutdown", &receipt),
        0
    );
    let status = stele.wait(DEADLINE);
    assert!(status.success(), "{status}: {}", stele.stderr());
    assert!(
        stele.stderr().contains("stopped cleanly"),
        "{}",
        stele.stderr()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "something still listens on {addr}"
    );
}

/// When the sequencer stops on its own (here: the lock object changes
/// under it, as when another sequencer takes the log over), `/healthz`
/// answers 503 ("the sequencer has stopped") to a request still open, the
/// process exits 1 saying why, and nothing more was published.
#[test]
fn healthz_is_503_once_the_sequencer_has_stopped() {
    let data = data_dir();
    let mut stele = Stele::start(
        data.path(),
        &[
            "--batch-interval",
            "10ms",
            "--shutdown-timeout",
            "60s",
            "--header-timeout",
            "1h",
        ],
    );
    let addr = stele.addr();
    assert_eq!(
        check_receipt(data.path(), b"before", &post_add(addr, b"before")),
        0
    );
    let checkpoint_before = std::fs::read(data.path().join("checkpoint")).expect("checkpoint");
    let health = half_sent_get(addr, "/healthz");

    // Another writer's commit: the lock object no longer holds what this
    // sequencer committed.
    let lock = data.path().join(".stele/lock");
    let mut moved = std::fs::read(&lock).expect("lock object");
    moved.extend_from_slice(b"\n");
    let replacement = data.path().join(".stele/lock.moved");
    std::fs::write(&replacement, &moved).expect("write the moved lock");
    std::fs::rename(&replacement, &lock).expect("replace the lock object");

    let refused = post_add(addr, b"after the lock moved");
    assert_eq!(refused.status, 503, "{}", refused.text());
    stele.wait_for_log("another sequencer has taken over", DEADLINE);
    stele.wait_for_log("stopped accepting connections", DEADLINE);
    let answer = finish_request(health);
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(
        answer.text().contains("the sequencer has stopped"),
        "{}",
        answer.text()
    );

    let status = stele.wait(DEADLINE);
    assert_eq!(status.code(), Some(1), "{}", stele.stderr());
    assert!(
        stele
            .stderr()
            .contains("stele: error: another sequencer has taken over"),
        "{}",
        stele.stderr()
    );
    // It stopped without writing: the public checkpoint is the one from
    // before, and the lock object is the other writer's.
    assert_eq!(
        std::fs::read(data.path().join("checkpoint")).expect("checkpoint"),
        checkpoint_before
    );
    assert_eq!(std::fs::read(&lock).expect("lock"), moved);
}

/// A client that keeps a request open past `--shutdown-timeout` (a body
/// it never finishes, under a body timeout of an hour) does not keep the
/// process alive: the server says it closes the connection, the client
/// sees it closed without an answer, the process exits 0, and the
/// unfinished entry is not in the log.
#[test]
fn shutdown_closes_connections_that_outlive_the_shutdown_timeout() {
    let data = data_dir();
    let mut stele = Stele::start(
        data.path(),
        &[
            "--shutdown-timeout",
            "1s",
            "--header-timeout",
            "1h",
            "--body-timeout",
            "1h",
        ],
    );
    let addr = stele.addr();
    let mut held = connect(addr);
    held.write_all(
        request_head(
            "POST",
            "/add",
            "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n",
        )
        .as_bytes(),
    )
    .expect("send head");
    held.write_all(b"abc").expect("send part of the body");
    // Accepted before the signal (see half_sent_get).
    assert_eq!(get(addr, "/checkpoint").status, 200);

    stele.signal("TERM");
    stele.wait_for_log("did not finish in time; closing them", DEADLINE);
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut held, &mut rest);
    assert!(
        read.is_err() || rest.is_empty(),
        "the held connection got an answer: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let status = stele.wait(DEADLINE);
    assert!(status.success(), "{status}: {}", stele.stderr());
    assert!(
        stele.stderr().contains("stopped cleanly"),
        "{}",
        stele.stderr()
    );

    let stele = Stele::start(data.path(), &[]);
    assert_eq!(
        tree_size(stele.addr(), data.path()),
        0,
        "the cut-off entry was logged"
    );
}

// ---------------------------------------------------------------------
// stele reindex.

/// The digest and signer indexes as the entries say they should be: for
/// every hashedrekord entry, its `data.algorithm` and base64 `data.digest`,
/// and the SHA-256 of its public key, read with a JSON parser; objects
/// `index/<sha256|sha384|sha512>/<hex>` and `index/key/<hex>` holding the
/// entries' indices one per line, ascending.
fn index_model(entries: &[Vec<u8>]) -> BTreeMap<String, String> {
    let mut model: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let Ok(json) = serde_json::from_slice::<Value>(entry) else {
            continue; // an opaque entry
        };
        let data = &json["spec"]["hashedRekordV002"]["data"];
        let algorithm = match data["algorithm"].as_str().expect("data.algorithm") {
            "SHA2_256" => "sha256",
            "SHA2_384" => "sha384",
            "SHA2_512" => "sha512",
            other => panic!("unexpected algorithm {other}"),
        };
        let digest = STANDARD
            .decode(data["digest"].as_str().expect("data.digest"))
            .expect("base64 digest");
        model
            .entry(format!("index/{algorithm}/{}", hex::encode(digest)))
            .or_default()
            .insert(index as u64);
        // The signer index: SHA-256 of the DER public key; for a
        // certificate, of its subjectPublicKeyInfo (read by the library,
        // whose key IDs are checked against Python elsewhere).
        let verifier = &json["spec"]["hashedRekordV002"]["signature"]["verifier"];
        let key_id = match verifier["publicKey"]["rawBytes"].as_str() {
            Some(raw) => Some(hex::encode(Sha256::digest(
                STANDARD.decode(raw).expect("base64 key"),
            ))),
            None => stele_rekor::entry::hashedrekord_key_id(entry),
        };
        if let Some(key_id) = key_id {
            model
                .entry(format!("index/key/{key_id}"))
                .or_default()
                .insert(index as u64);
        }
    }
    model
        .into_iter()
        .map(|(path, indices)| {
            let text: String = indices.iter().map(|index| format!("{index}\n")).collect();
            (path, text)
        })
        .collect()
}

/// Every file under `DATA/index/`, by its path relative to `DATA`.
fn index_files(data: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let root = data.join("index");
    let mut folders: Vec<PathBuf> = vec![root];
    while let Some(folder) = folders.pop() {
        let Ok(listing) = std::fs::read_dir(&folder) else {
            continue;
        };
        for item in listing {
            let path = item.expect("folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path
                    .strip_prefix(data)
                    .expect("under DATA")
                    .to_string_lossy()
                    .into_owned();
                files.insert(
                    relative,
                    String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned(),
                );
            }
        }
    }
    files
}

/// A hashedrekord request for `digest` (SHA-256), signed by a fresh P-256
/// key.
fn p256_request(digest: &[u8; 32]) -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::EncodePublicKey;
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let signature: p256::ecdsa::Signature = key.sign_prehash(digest).expect("sign");
    let spki = key
        .verifying_key()
        .to_public_key_der()
        .expect("SPKI")
        .into_vec();
    serde_json::to_vec(&serde_json::json!({
        "hashedRekordRequestV002": {
            "digest": STANDARD.encode(digest),
            "signature": {
                "content": STANDARD.encode(signature.to_der().as_bytes()),
                "verifier": {
                    "publicKey": { "rawBytes": STANDARD.encode(spki) },
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                },
            },
        },
    }))
    .expect("JSON")
}

/// The committed fixtures' valid requests (SHA-256, SHA-384 and SHA-512
/// digests; keys of every type), made by independent tooling.
fn fixture_requests() -> Vec<Vec<u8>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/fixtures");
    let mut requests = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("fixtures")
        .map(|item| item.expect("fixture").path())
        .collect();
    names.sort();
    for path in names {
        let json: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("fixture JSON");
        if json["valid"].as_bool() == Some(true) {
            requests.push(serde_json::to_vec(&json["request"]).expect("JSON"));
        }
    }
    assert!(
        requests.len() >= 10,
        "fixtures missing in {}",
        folder.display()
    );
    requests
}

/// The entries of a log of `size` < 256 entries, read over HTTP from its
/// one entry bundle.
fn read_entries(addr: SocketAddr, size: u64) -> Vec<Vec<u8>> {
    assert!(size > 0 && size < 256);
    let bundle = get(addr, &format!("/tile/entries/000.p/{size}"));
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    stele_tiles::bundle::decode(&bundle.body, Some(size as usize))
        .expect("entry bundle")
        .into_iter()
        .map(|entry| entry.to_vec())
        .collect()
}

/// A log of Sigstore entries (the fixtures, one artifact signed by three
/// keys, opaque entries between them), its digest index damaged while the
/// server is stopped (objects deleted, garbled, cut short, a stale one
/// added, the marker gone); `stele reindex --data DIR` rebuilds exactly the
/// index the entries call for. While `stele serve` runs, reindex is
/// refused.
#[test]
fn reindex_rebuilds_the_digest_index_the_entries_call_for() {
    let data = data_dir();
    let stele = Stele::start(data.path(), &["--batch-interval", "10ms"]);
    let addr = stele.addr();
    let shared = [0x5au8; 32];
    let mut requests = fixture_requests();
    for round in 0..3u8 {
        requests.push(p256_request(&shared));
        requests.push(p256_request(&[round; 32]));
    }
    let mut shared_indices = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let response = post(addr, "/api/v2/log/entries", "application/json", "", request);
        assert_eq!(response.status, 201, "request {n}: {}", response.text());
        let index: u64 = response
            .header("x-log-index")
            .expect("X-Log-Index")
            .parse()
            .expect("index");
        if request
            .windows(44)
            .any(|w| w == STANDARD.encode(shared).as_bytes())
        {
            shared_indices.push(index);
        }
        let opaque = format!("opaque entry {n}");
        check_receipt(
            data.path(),
            opaque.as_bytes(),
            &post_add(addr, opaque.as_bytes()),
        );
    }
    assert_eq!(shared_indices.len(), 3);
    let size = tree_size(stele.addr(), data.path());
    assert_eq!(size, 2 * requests.len() as u64);
    let entries = read_entries(addr, size);
    let model = index_model(&entries);
    // The model, cross-checked with what the API answered.
    let shared_path = format!("index/sha256/{}", hex::encode(shared));
    let shared_text: String = shared_indices.iter().map(|i| format!("{i}\n")).collect();
    assert_eq!(model.get(&shared_path), Some(&shared_text));
    assert!(model.keys().any(|path| path.starts_with("index/sha384/")));
    assert!(model.keys().any(|path| path.starts_with("index/sha512/")));

    // The live index catches up with the published log (its marker says
    // how far) and then matches the model.
    let marker = data.path().join(".stele/index-size");
    wait_for("the digest index to cover the log", || {
        std::fs::read_to_string(&marker).is_ok_and(|text| text.trim() == size.to_string())
    });
    assert_eq!(index_files(data.path()), model, "the live index");

    // A second writer is refused while the server runs.
    let refused = run(&["reindex", "--data", data.path().to_str().expect("UTF-8")]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already used"),
        "{refused:?}"
    );
    stele.stop();

    // Damage.
    let paths: Vec<&String> = model.keys().collect();
    std::fs::remove_file(data.path().join(paths[0])).expect("delete an index object");
    std::fs::write(data.path().join(paths[1]), "not an index\n").expect("garble");
    std::fs::write(
        data.path().join(&shared_path),
        format!("{}\n", shared_indices[0]),
    )
    .expect("cut short");
    let stale = format!("index/sha256/{}", "e".repeat(64));
    assert!(!model.contains_key(&stale));
    std::fs::write(data.path().join(&stale), "0\n").expect("stale object");
    std::fs::remove_file(&marker).expect("delete the marker");
    assert_ne!(index_files(data.path()), model);

    let output = run(&["reindex", "--data", data.path().to_str().expect("UTF-8")]);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(index_files(data.path()), model, "the rebuilt index");
    assert!(
        printed.contains(&format!(
            "indexes rebuilt: {size} entries, {} index objects written ({} signer keys, 0 \
             namespaces), 1 removed",
            model.len(),
            model
                .keys()
                .filter(|path| path.starts_with("index/key/"))
                .count()
        )),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker").trim(),
        size.to_string()
    );

    // The server serves the rebuilt objects.
    let stele = Stele::start(data.path(), &[]);
    let served = get(stele.addr(), &format!("/{shared_path}"));
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.text(), shared_text);
    assert_eq!(get(stele.addr(), &format!("/{stale}")).status, 404);
    stele.stop();
}

// ---------------------------------------------------------------------
// The private ingress's secret.

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn write_secret(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write the secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A canonical hashedrekord entry made by independent tooling (the
/// committed fixture's `canonical`).
fn canonical_entry() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/fixtures/p256-key.json");
    let json: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON");
    json["canonical"]
        .as_str()
        .expect("canonical entry")
        .as_bytes()
        .to_vec()
}

/// A forwarded request as the ingress protocol (sequencer/src/ingress)
/// describes it, authenticated with `secret` by this test's own HMAC.
fn ingress_request(secret: &str, body: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let format = "transparency-log-entry";
    let message = format!(
        "stele-ingress-v1\nPOST\n/ingress/v1/entries\n{format}\n{time}\n{nonce}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC key");
    mac.update(message.as_bytes());
    let tag = hex::encode(mac.finalize().into_bytes());
    let mut request = request_head(
        "POST",
        "/ingress/v1/entries",
        &format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
             X-Stele-Ingress-Format: {format}\r\nX-Stele-Ingress-Time: {time}\r\n\
             X-Stele-Ingress-Nonce: {nonce}\r\nAuthorization: Stele-HMAC-SHA256 {tag}\r\n",
            body.len()
        ),
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// `--ingress-secret-file`: the ingress takes entries authenticated with
/// the file's secret (and logs them), and refuses one authenticated with
/// another.
#[test]
fn the_ingress_takes_its_secret_from_a_file() {
    let data = data_dir();
    let secret_file = data.path().join("ingress.secret");
    write_secret(&secret_file, &format!("{SECRET}\n"), 0o600);
    let stele = Stele::start(
        data.path(),
        &[
            "--batch-interval",
            "10ms",
            "--ingress-listen",
            "127.0.0.1:0",
            "--ingress-secret-file",
            secret_file.to_str().expect("UTF-8"),
        ],
    );
    let ingress = stele.ingress.expect("the ingress's address was printed");
    let entry = canonical_entry();

    let other = "f".repeat(64);
    let refused = common::http::send(ingress, &ingress_request(&other, &entry));
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(tree_size(stele.addr(), data.path()), 0);

    let answer = common::http::send(ingress, &ingress_request(SECRET, &entry));
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.header("x-log-index"), Some("0"));
    assert_eq!(tree_size(stele.addr(), data.path()), 1);
    assert_eq!(read_entries(stele.addr(), 1), vec![entry]);
    stele.stop();
}

/// An ingress secret file that is missing, empty, short or readable by
/// others stops the start with a message naming the file; nothing listens.
#[test]
fn a_bad_ingress_secret_file_is_refused() {
    let data = data_dir();
    let missing = data.path().join("no-such-secret");
    let empty = data.path().join("empty.secret");
    write_secret(&empty, "", 0o600);
    let short = data.path().join("short.secret");
    write_secret(&short, "too short\n", 0o600);
    // A good secret that other users may read is refused too, as ssh
    // refuses a private key that others may read.
    let open = data.path().join("open.secret");
    write_secret(&open, SECRET, 0o644);
    for (file, needle) in [
        (&missing, "cannot read the ingress secret file"),
        (&empty, "is 0 bytes; it must be at least 32"),
        (&short, "is 9 bytes; it must be at least 32"),
        (&open, "is readable by other users (mode 0644)"),
    ] {
        let path = file.to_str().expect("UTF-8");
        let output = serve_fails(
            &data.path().join("log"),
            &[
                "--ingress-listen",
                "127.0.0.1:0",
                "--ingress-secret-file",
                path,
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{path}: {stderr}");
        assert!(stderr.contains(path), "{path}: {stderr}");
        assert!(stderr.contains(needle), "{path}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening on"),
            "{path}: it listened"
        );
    }
}

/// `--ingress-listen` without a secret (neither `STELE_INGRESS_SECRET` nor
/// `--ingress-secret-file`) stops the start, naming both; with the
/// variable set, the same command starts.
#[test]
fn an_ingress_without_a_secret_is_refused() {
    let data = data_dir();
    let args = ["--ingress-listen", "127.0.0.1:0"];
    let output = serve_fails(data.path(), &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no ingress secret"), "{stderr}");
    assert!(stderr.contains("STELE_INGRESS_SECRET"), "{stderr}");
    assert!(stderr.contains("ingress_secret_file"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening on"),
        "it listened"
    );
    // Refused before anything was created: no key, no lock.
    for made in ["log.key", "log.vkey", ".stele"] {
        assert!(!data.path().join(made).exists(), "{made} was created");
    }

    // A secret too short in the variable is refused too.
    let output = serve_fails_with_env(data.path(), &args, &[("STELE_INGRESS_SECRET", "short")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STELE_INGRESS_SECRET"), "{stderr}");
    assert!(stderr.contains("at least 32"), "{stderr}");

    // Positive control: the same command with the variable set starts.
    let stele = Stele::start_with_env(data.path(), &args, &[("STELE_INGRESS_SECRET", SECRET)]);
    assert!(stele.ingress.is_some());
    stele.stop();
}
