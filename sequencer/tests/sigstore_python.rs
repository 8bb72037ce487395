//! A real Sigstore client end to end: sigstore-python (the PyPI package
//! `sigstore` 4.x) signs artifacts and a DSSE statement, submits them to a
//! running `stele serve` with its Rekor v2 client, and verifies the returned
//! `TransparencyLogEntry`s with its own code: inclusion proof, signed
//! checkpoint against a trusted root holding the log's key, and the entry
//! body against what was signed (tests/sigstore/sigstore_python_e2e.py says
//! which functions). For an Ed25519 and an ECDSA P-256 log key.
//!
//! The script also checks that sigstore-python refuses tampered entries and
//! another log key; here the whole run is repeated against a wrong key file,
//! which must fail, so a run that skipped verification could not pass.
//!
//! Without `sigstore` importable the tests skip with a message, unless `CI`
//! is set: then they fail (scripts/install-test-deps.sh installs it).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::stele::{Stele, keygen, python_has};

fn python_ready() -> bool {
    python_has(&["sigstore", "cryptography"], "pip install sigstore==4.5.1")
}

fn run_script(url: &str, log_key: &Path, origin: Option<&str>, extra: &[&str]) -> Output {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/sigstore_python_e2e.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args(["--url", url, "--log-key"])
        .arg(log_key)
        .args(extra);
    if let Some(origin) = origin {
        command.args(["--origin", origin]);
    }
    let output = command.output().expect("run python3");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the script against the log at `data` served by `server`, then again
/// with `wrong_key` (same key type and origin, another key).
fn verifies_and_refuses_a_wrong_key(
    server: &Stele,
    data: &Path,
    wrong_key: &Path,
    origin: Option<&str>,
) {
    let output = run_script(&server.url, &data.join("log.vkey"), origin, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "sigstore-python's checks failed");
    assert!(stdout.contains("sigstore-python 4."), "{stdout}");
    assert_eq!(stdout.matches("verified by sigstore-python").count(), 4);
    assert!(stdout.contains("DSSE envelope"), "{stdout}");
    assert!(stdout.contains("all negative cases refused"), "{stdout}");

    let output = run_script(&server.url, wrong_key, origin, &["--skip-negative"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "a wrong log key passed");
    assert!(
        stderr.contains("sigstore-python verification failed: checkpoint: invalid signature"),
        "{stderr}"
    );
}

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data folder")
}

#[test]
fn sigstore_python_verifies_an_ed25519_log() {
    if !python_ready() {
        return;
    }
    const ORIGIN: &str = "ed25519.example/sigstore";
    let data = data_dir();
    let server = Stele::start(
        data.path(),
        &["--origin", ORIGIN, "--batch-interval", "10ms"],
    );
    let other = data_dir();
    assert!(keygen("ed25519", ORIGIN, other.path()).status.success());
    verifies_and_refuses_a_wrong_key(&server, data.path(), &other.path().join("log.vkey"), None);
    server.stop();
}

#[test]
fn sigstore_python_verifies_an_ecdsa_p256_log() {
    if !python_ready() {
        return;
    }
    const ORIGIN: &str = "ecdsa.example/sigstore";
    let data = data_dir();
    assert!(keygen("ecdsa-p256", ORIGIN, data.path()).status.success());
    let server = Stele::start(
        data.path(),
        &["--origin", ORIGIN, "--batch-interval", "10ms"],
    );
    let other = data_dir();
    assert!(keygen("ecdsa-p256", ORIGIN, other.path()).status.success());
    verifies_and_refuses_a_wrong_key(
        &server,
        data.path(),
        &other.path().join("log.vkey"),
        Some(ORIGIN),
    );
    server.stop();
}
