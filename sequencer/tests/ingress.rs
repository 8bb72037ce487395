//! The private ingress of the real `stele serve`, driven with requests
//! signed by the shared secret: it takes exactly the canonical entries the
//! submit function forwards (those made by independent tooling,
//! sequencer/tests/sigstore/make_fixtures.py) and refuses every other
//! body with 400 and its reason, logging nothing; refusals of every cause
//! are counted in `/metrics` and warned of at most once an interval each;
//! a stalled body's 408 gives its timeout in whole units.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::stele::Stele;
use hyper::header::HeaderName;
use serde_json::Value;
use stele_rekor::ingress::{self, IngressSecret};
use stele_rekor::response::Format;

const SECRET: &str = "ingress-test-secret-of-at-least-32-bytes";

fn start(data: &Path, args: &[&str]) -> (Stele, SocketAddr) {
    let mut all = vec!["--ingress-listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let stele = Stele::start_with_env(data, &all, &[("STELE_INGRESS_SECRET", SECRET)]);
    let ingress = stele.ingress.expect("the ingress address is printed");
    (stele, ingress)
}

fn secret() -> IngressSecret {
    IngressSecret::new(SECRET).expect("secret")
}

/// A fresh random nonce for each request.
fn nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce.fill_with(|| fastrand::u8(..));
    nonce
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

async fn send(addr: SocketAddr, headers: Vec<(HeaderName, String)>, body: Vec<u8>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{}", ingress::INGRESS_PATH))
        .header("content-type", "application/octet-stream")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("answer text"),
    }
}

/// Sends `body` signed with the shared secret, fresh.
async fn send_signed(addr: SocketAddr, body: &[u8]) -> Answer {
    let headers = ingress::sign(
        &secret(),
        ingress::INGRESS_PATH,
        Format::TransparencyLogEntry,
        body,
        SystemTime::now(),
        nonce(),
    );
    send(addr, headers, body.to_vec()).await
}

/// The canonical entries of the valid fixtures, by name.
fn canonical_fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/fixtures");
    let mut entries = Vec::new();
    for file in std::fs::read_dir(&dir).expect("fixtures") {
        let json: Value =
            serde_json::from_slice(&std::fs::read(file.expect("entry").path()).expect("read"))
                .expect("fixture JSON");
        if let Some(canonical) = json["canonical"].as_str() {
            entries.push((
                json["name"].as_str().expect("name").to_owned(),
                canonical.to_owned(),
            ));
        }
    }
    entries.sort();
    assert!(entries.len() >= 10, "fixtures missing in {}", dir.display());
    entries
}

/// The `spec.hashedRekordV002` of an entry.
fn rekord(entry: &mut Value) -> &mut Value {
    &mut entry["spec"]["hashedRekordV002"]
}

async fn tree_size(stele: &Stele) -> u64 {
    let checkpoint = reqwest::get(format!("{}/checkpoint", stele.url))
        .await
        .expect("get checkpoint")
        .text()
        .await
        .expect("checkpoint text");
    checkpoint
        .lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .expect("a tree size on the checkpoint's second line")
}

async fn metrics(stele: &Stele) -> String {
    reqwest::get(format!("{}/metrics", stele.url))
        .await
        .expect("get metrics")
        .text()
        .await
        .expect("metrics text")
}

fn refusals(exposition: &str, cause: &str) -> u64 {
    let prefix = format!("stele_refusals_total{{cause=\"{cause}\"}} ");
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|count| count.parse().expect("a count"))
        .unwrap_or(0)
}

/// Every way a body signed with the right secret can differ from what the
/// function forwards, each refused with 400 and its reason, and nothing
/// logged; then every fixture's canonical entry is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_canonical_hashedrekord_entries_are_taken() {
    let data = tempfile::tempdir().expect("tempdir");
    let (stele, addr) = start(data.path(), &["--batch-interval", "10ms"]);
    let fixtures = canonical_fixtures();
    let (_, key_entry) = fixtures
        .iter()
        .find(|(name, _)| name == "p256-key")
        .expect("the p256-key fixture");
    let (_, cert_entry) = fixtures
        .iter()
        .find(|(name, _)| name == "p256-cert")
        .expect("the p256-cert fixture");
    let value: Value = serde_json::from_str(key_entry).expect("fixture entry");
    let edited = |edit: &dyn Fn(&mut Value)| -> String {
        let mut copy = value.clone();
        edit(&mut copy);
        // serde_json keeps keys sorted (no preserve_order), so only the
        // edit differs from the canonical text.
        serde_json::to_string(&copy).expect("json")
    };
    let digest = value["spec"]["hashedRekordV002"]["data"]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert!(digest.ends_with('='), "a padded digest: {digest}");
    assert_eq!(
        edited(&|_| {}),
        *key_entry,
        "re-serialising the fixture unchanged gives its canonical text"
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "pretty-printed",
            serde_json::to_string_pretty(&value).expect("json"),
            "not in canonical form",
        ),
        (
            "a trailing newline",
            format!("{key_entry}\n"),
            "not in canonical form",
        ),
        (
            "an extra top-level field",
            edited(&|v| v["extra"] = Value::from(1)),
            "has a field \"extra\"",
        ),
        (
            "an extra field in the verifier",
            edited(&|v| {
                rekord(v)["signature"]["verifier"]["comment"] = Value::from("x");
            }),
            "has a field \"comment\"",
        ),
        (
            "no signature",
            edited(&|v| {
                rekord(v)
                    .as_object_mut()
                    .expect("object")
                    .remove("signature");
            }),
            "spec.hashedRekordV002.signature is missing",
        ),
        (
            "an empty signature",
            edited(&|v| rekord(v)["signature"]["content"] = Value::from("")),
            "signature.content is empty",
        ),
        (
            "neither key nor certificate",
            edited(&|v| {
                rekord(v)["signature"]["verifier"]
                    .as_object_mut()
                    .expect("object")
                    .remove("publicKey");
            }),
            "neither publicKey nor x509Certificate",
        ),
        (
            "keys in another order",
            key_entry.replacen(
                r#"{"apiVersion":"0.0.2","kind":"hashedrekord","#,
                r#"{"kind":"hashedrekord","apiVersion":"0.0.2","#,
                1,
            ),
            "not in canonical form",
        ),
        (
            "a field given twice",
            key_entry.replacen(
                r#"{"apiVersion":"0.0.2","#,
                r#"{"apiVersion":"0.0.2","apiVersion":"0.0.2","#,
                1,
            ),
            "not in canonical form",
        ),
        (
            "unpadded base64",
            key_entry.replacen(&digest, digest.trim_end_matches('='), 1),
            "data.digest is not standard base64",
        ),
        (
            "a digest of the wrong length",
            edited(&|v| rekord(v)["data"]["digest"] = Value::from(&digest[..digest.len() - 4])),
            "data.digest is",
        ),
        (
            "an algorithm the key details do not hash with",
            edited(&|v| rekord(v)["data"]["algorithm"] = Value::from("SHA2_512")),
            "PKIX_ECDSA_P256_SHA_256 hashes with SHA2_256",
        ),
        (
            "another kind",
            edited(&|v| v["kind"] = Value::from("dsse")),
            "kind is \"dsse\"",
        ),
        ("not JSON", "not an entry".to_owned(), "not JSON"),
        (
            "an opaque JSON value",
            "[1,2,3]".to_owned(),
            "the entry is not a JSON object",
        ),
    ];
    // Both key and certificate at once (certificate from another fixture).
    let both = {
        let cert: Value = serde_json::from_str(cert_entry).expect("fixture entry");
        edited(&|v| {
            rekord(v)["signature"]["verifier"]["x509Certificate"] =
                cert["spec"]["hashedRekordV002"]["signature"]["verifier"]["x509Certificate"]
                    .clone();
        })
    };
    let cases = cases.into_iter().chain([(
        "both a key and a certificate",
        both,
        "both publicKey and x509Certificate",
    )]);
    let mut refused = 0;
    for (what, body, reason) in cases {
        assert_ne!(body, *key_entry, "{what}: the case must change the entry");
        let answer = send_signed(addr, body.as_bytes()).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.text);
        assert!(
            answer
                .text
                .starts_with("ingress: the body is not a canonical hashedrekord entry: "),
            "{what}: {}",
            answer.text
        );
        assert!(answer.text.contains(reason), "{what}: {}", answer.text);
        refused += 1;
    }
    assert_eq!(tree_size(&stele).await, 0, "nothing refused was logged");
    assert_eq!(
        refusals(&metrics(&stele).await, "ingress_not_canonical"),
        refused
    );

    // Every canonical entry the independent tooling made is taken, in
    // order, and the first refused body did not take an index.
    for (index, (name, entry)) in fixtures.iter().enumerate() {
        let answer = send_signed(addr, entry.as_bytes()).await;
        assert_eq!(answer.status, 201, "{name}: {}", answer.text);
        assert_eq!(
            answer.headers.get("x-log-index").map(|v| v.to_str().ok()),
            Some(Some(index.to_string().as_str())),
            "{name}"
        );
    }
}

/// A flood of refused requests of several causes: each is answered and
/// counted, but the log gets at most one line per cause and interval (10 s),
/// with the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_and_warned_of_once_an_interval() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut stele, addr) = start(data.path(), &["--batch-interval", "10ms"]);
    let started = Instant::now();
    const FLOOD: u64 = 300;
    let entry = canonical_fixtures().remove(0).1.into_bytes();

    for n in 0..FLOOD {
        // Unauthenticated: no credentials, or another secret.
        let headers = if n % 2 == 0 {
            Vec::new()
        } else {
            let other = IngressSecret::new(&"o".repeat(40)).expect("secret");
            ingress::sign(
                &other,
                ingress::INGRESS_PATH,
                Format::TlogProof,
                &entry,
                SystemTime::now(),
                nonce(),
            )
        };
        assert_eq!(send(addr, headers, entry.clone()).await.status, 401);
        // Stale.
        let stale = ingress::sign(
            &secret(),
            ingress::INGRESS_PATH,
            Format::TlogProof,
            &entry,
            SystemTime::now() - Duration::from_secs(600),
            nonce(),
        );
        assert_eq!(send(addr, stale, entry.clone()).await.status, 401);
        // Not canonical.
        assert_eq!(send_signed(addr, b"{}").await.status, 400);
    }
    // One taken, then replayed FLOOD times.
    let signed = ingress::sign(
        &secret(),
        ingress::INGRESS_PATH,
        Format::TlogProof,
        &entry,
        SystemTime::now(),
        nonce(),
    );
    assert_eq!(send(addr, signed.clone(), entry.clone()).await.status, 201);
    for _ in 0..FLOOD {
        let answer = send(addr, signed.clone(), entry.clone()).await;
        assert_eq!(answer.status, 401, "{}", answer.text);
    }

    let exposition = metrics(&stele).await;
    for cause in [
        "ingress_unauthenticated",
        "ingress_stale",
        "ingress_not_canonical",
        "ingress_replayed",
    ] {
        assert_eq!(
            refusals(&exposition, cause),
            FLOOD,
            "{cause}:\n{exposition}"
        );
    }
    // Stop the server so that everything it wrote has been read.
    let status = stele.terminate();
    assert!(status.success(), "{status}");
    let elapsed = started.elapsed();
    let stderr = stele.stderr();
    // A cause may have a line at the start of each 10 s interval it saw.
    let most = 1 + elapsed.as_secs() / 10;
    for cause in [
        "ingress_unauthenticated",
        "ingress_stale",
        "ingress_not_canonical",
        "ingress_replayed",
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains(&format!("cause=\"{cause}\"")))
            .collect();
        assert!(
            !lines.is_empty() && lines.len() as u64 <= most,
            "{cause}: {} lines in {elapsed:?}:\n{stderr}",
            lines.len()
        );
        assert!(lines[0].contains("count=1"), "{}", lines[0]);
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
    }
    let refusal_lines = stderr
        .lines()
        .filter(|line| line.contains("refused an"))
        .count();
    assert!(
        refusal_lines as u64 <= 4 * most,
        "{refusal_lines} refusal lines for {} refusals:\n{stderr}",
        4 * FLOOD
    );
}

/// A body that stalls is answered 408 with the body timeout in whole units
/// (not the remaining time to the nanosecond).
#[test]
fn a_stalled_ingress_body_gets_a_rounded_timeout() {
    let data = tempfile::tempdir().expect("tempdir");
    let (_stele, addr) = start(data.path(), &["--body-timeout", "2s"]);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: ingress\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 10\r\n\r\nabc",
        ingress::INGRESS_PATH
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    assert_eq!(body, "the body did not arrive within 2s\n", "{answer}");
}
