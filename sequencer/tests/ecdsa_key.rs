//! `stele serve` with an ECDSA P-256 log key, as Sigstore's Rekor v2 logs
//! use: made by `stele keygen --algorithm ecdsa-p256`, detected from the key
//! file, named by `--origin`. The checkpoints it signs are checked with
//! stele-tiles and, independently, with Python `cryptography`
//! (tests/sigstore/check_ecdsa_checkpoint.py), which works the key ID and the
//! Sigstore log ID out from the public key itself.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::stele::{Stele, keygen, python_has, serve_fails};
use serde_json::Value;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::{EcdsaP256Verifier, NoteVerifier};
use stele_tiles::receipt::Receipt;

const ORIGIN: &str = "ecdsa.example/log";

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data folder")
}

/// Runs the independent checker on a checkpoint note. `log_id` is a
/// TransparencyLogEntry's `logId.keyId` to check too.
fn run_checker(
    checkpoint: &[u8],
    public_key_pem: &Path,
    origin: &str,
    log_id: Option<&str>,
) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("checkpoint");
    std::fs::write(&file, checkpoint).expect("write checkpoint");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/check_ecdsa_checkpoint.py");
    Command::new("python3")
        .arg(&script)
        .arg(&file)
        .arg(public_key_pem)
        .arg(origin)
        .args(log_id)
        .output()
        .expect("run python3")
}

/// Runs the independent checker; panics unless it passes.
fn python_check(checkpoint: &[u8], public_key_pem: &Path, origin: &str, log_id: Option<&str>) {
    let output = run_checker(checkpoint, public_key_pem, origin, log_id);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Same as [`python_check`], expecting the checker to refuse.
fn python_refuses(checkpoint: &[u8], public_key_pem: &Path, origin: &str) -> String {
    let output = run_checker(checkpoint, public_key_pem, origin, None);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sigstore_request() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/fixtures/p256-key.json");
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(path).expect("read fixture")).expect("fixture JSON");
    fixture["request"].clone()
}

/// Checks the key files of an ECDSA P-256 log in `data`: a PKCS#8 PEM
/// private key of mode 0600 and the SPKI PEM public key. Returns the
/// private key's text, the public key's and its verifier.
fn ecdsa_key_files(data: &Path) -> (String, String, EcdsaP256Verifier) {
    let key_path = data.join("log.key");
    let private = std::fs::read_to_string(&key_path).expect("log.key");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private}"
    );
    let mode = std::fs::metadata(&key_path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public_pem = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    assert!(
        public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public_pem}"
    );
    let verifier = EcdsaP256Verifier::from_spki_pem(ORIGIN, &public_pem).expect("log.vkey");
    (private, public_pem, verifier)
}

/// Logs an opaque entry and checks its receipt offline with `verifier`.
async fn add_and_verify(client: &reqwest::Client, url: &str, verifier: &EcdsaP256Verifier) {
    let response = client
        .post(format!("{url}/add"))
        .body("an entry")
        .send()
        .await
        .expect("POST /add");
    assert_eq!(response.status(), 200);
    let receipt = Receipt::parse(&response.bytes().await.expect("body")).expect("receipt");
    let policy = WitnessPolicy::new(Vec::new(), 0).expect("policy");
    receipt
        .verify(b"an entry", ORIGIN, verifier, &policy)
        .expect("the receipt verifies with the ECDSA key");
}

/// The log's current checkpoint.
async fn fetch_checkpoint(client: &reqwest::Client, url: &str) -> Vec<u8> {
    client
        .get(format!("{url}/checkpoint"))
        .send()
        .await
        .expect("GET /checkpoint")
        .bytes()
        .await
        .expect("checkpoint")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_signs_checkpoints_with_an_ecdsa_p256_key() {
    let data = data_dir();
    let output = keygen("ecdsa-p256", ORIGIN, data.path());
    assert!(output.status.success(), "{output:?}");
    let key_path = data.path().join("log.key");
    let vkey_path = data.path().join("log.vkey");
    let (private, public_pem, verifier) = ecdsa_key_files(data.path());
    assert_eq!(String::from_utf8_lossy(&output.stdout), public_pem);

    // keygen never replaces a key, whatever the algorithm asked for.
    for algorithm in ["ecdsa-p256", "ed25519"] {
        let again = keygen(algorithm, ORIGIN, data.path());
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    }
    assert_eq!(
        std::fs::read_to_string(&key_path).expect("log.key"),
        private
    );

    // PEM has no name: without --origin, serve says what to do.
    let output = serve_fails(data.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--origin"), "{stderr}");
    assert!(stderr.contains("log.key"), "{stderr}");

    let server = Stele::start(
        data.path(),
        &["--origin", ORIGIN, "--batch-interval", "10ms"],
    );
    let client = reqwest::Client::new();

    // An opaque entry's receipt verifies offline with the PEM key.
    add_and_verify(&client, &server.url, &verifier).await;

    // A Sigstore entry names the log by SHA-256 of the key's DER SPKI.
    let response = client
        .post(format!("{}/api/v2/log/entries", server.url))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&sigstore_request()).expect("JSON"))
        .send()
        .await
        .expect("POST /api/v2/log/entries");
    assert_eq!(response.status(), 201);
    let entry: Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON answer");
    let log_id = entry["logId"]["keyId"].as_str().expect("logId.keyId");
    let envelope = entry["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .expect("checkpoint envelope");
    let note = stele_tiles::note::Note::parse(envelope.as_bytes()).expect("note");
    let verified = stele_tiles::note::verify_note(&note, &[&verifier as &dyn NoteVerifier])
        .expect("the envelope verifies");
    assert_eq!(verified.len(), 1);

    let checkpoint = fetch_checkpoint(&client, &server.url).await;
    assert!(checkpoint.starts_with(format!("{ORIGIN}\n2\n").as_bytes()));

    if python_has(&["cryptography"], "pip install cryptography") {
        python_check(&checkpoint, &vkey_path, ORIGIN, Some(log_id));
        python_check(envelope.as_bytes(), &vkey_path, ORIGIN, Some(log_id));
        // The checker can fail: one changed byte of the text, a wrong origin
        // and another key are each refused.
        let text = String::from_utf8(checkpoint.to_vec()).expect("UTF-8");
        let changed = text.replacen(&format!("{ORIGIN}\n2\n"), &format!("{ORIGIN}\n3\n"), 1);
        let stderr = python_refuses(changed.as_bytes(), &vkey_path, ORIGIN);
        assert!(stderr.contains("does not verify"), "{stderr}");
        let stderr = python_refuses(&checkpoint, &vkey_path, "other.example/log");
        assert!(stderr.contains("origin"), "{stderr}");
        let other = data_dir();
        assert!(keygen("ecdsa-p256", ORIGIN, other.path()).status.success());
        let stderr = python_refuses(&checkpoint, &other.path().join("log.vkey"), ORIGIN);
        assert!(stderr.contains("expected one signature"), "{stderr}");
    }
    server.stop();

    // Another origin cannot take the log over: its checkpoint names ORIGIN.
    let output = serve_fails(data.path(), &["--origin", "other.example/log"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("serve it with --origin {ORIGIN}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&vkey_path).expect("log.vkey"),
        public_pem
    );

    // Restarted with its origin, the log goes on where it was.
    let server = Stele::start(data.path(), &["--origin", ORIGIN]);
    let checkpoint = fetch_checkpoint(&client, &server.url).await;
    assert!(
        checkpoint.starts_with(format!("{ORIGIN}\n2\n").as_bytes()),
        "{}",
        String::from_utf8_lossy(&checkpoint)
    );
    assert!(
        server.stderr().contains("algorithm=ecdsa-p256"),
        "{}",
        server.stderr()
    );
    // Logs to a pipe are plain text, without terminal colour codes.
    assert!(!server.stderr().contains('\x1b'), "{}", server.stderr());
    server.stop();
}

/// `stele serve --key-algorithm ecdsa-p256` makes the key itself on first
/// start, and holds the log to it afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn serve_creates_an_ecdsa_p256_key_on_first_start() {
    let data = data_dir();
    let key_path = data.path().join("log.key");

    // Without an origin nothing is created.
    let output = serve_fails(data.path(), &["--key-algorithm", "ecdsa-p256"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("origin"), "{stderr}");
    assert!(!key_path.exists());

    let server = Stele::start(
        data.path(),
        &["--origin", ORIGIN, "--key-algorithm", "ecdsa-p256"],
    );
    let (private, _, verifier) = ecdsa_key_files(data.path());
    let client = reqwest::Client::new();
    add_and_verify(&client, &server.url, &verifier).await;
    let checkpoint = fetch_checkpoint(&client, &server.url).await;
    let vkey_path = data.path().join("log.vkey");
    if python_has(&["cryptography"], "pip install cryptography") {
        python_check(&checkpoint, &vkey_path, ORIGIN, None);
    }
    server.stop();

    // Asked for the other algorithm later, serve refuses and keeps the key.
    let output = serve_fails(
        data.path(),
        &["--origin", ORIGIN, "--key-algorithm", "ed25519"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("key_algorithm is ed25519"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&key_path).expect("log.key"),
        private
    );
}
