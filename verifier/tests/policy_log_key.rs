//! `stele-verify --policy FILE` without `--vkey` takes the log's key from
//! the policy, for the logs a policy may list (c2sp.org/tlog-policy), each
//! served by the real `stele serve`:
//!
//! - a log signing with Ed25519 and ML-DSA-44 (`mldsa_key`), listed with
//!   both keys: two `log` lines of one origin are one log, and a damaged
//!   ML-DSA-44 line still refuses the receipt;
//! - a log signing with ECDSA P-256, listed with its type `0x02` vkey
//!   (the form Rekor's vkeys take);
//! - a policy of two logs: a command about the latest checkpoint needs
//!   `--origin`, a receipt names its own.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::stele::{Process, serve, stele_binary, text, verify};
use sha2::{Digest, Sha256};
use stele_tiles::note::Note;

/// `stele keygen ARGS --out DIR`.
fn keygen(dir: &Path, args: &[&str]) {
    let output = Command::new(stele_binary())
        .arg("keygen")
        .args(args)
        .args(["--out", &dir.display().to_string()])
        .output()
        .expect("run stele keygen");
    assert!(output.status.success(), "{}", text(&output));
}

/// `POST /add` of `entry` to the log at `url`; returns the receipt.
fn add(url: &str, entry: &[u8]) -> Vec<u8> {
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("connect");
    let head = format!(
        "POST /add HTTP/1.1\r\nHost: stele.test\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        entry.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(entry).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete head");
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    raw[split + 4..].to_vec()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.display().to_string()
}

fn read_vkey(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("vkey")
        .trim_end()
        .to_owned()
}

fn succeeds(output: &Output) {
    assert!(output.status.success(), "{}", text(output));
}

/// A log listed by its Ed25519 and its ML-DSA-44 key.
#[test]
fn a_log_listed_with_two_keys_is_one_log() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let origin = "hybrid.example/log";
    keygen(&data, &["--origin", origin]);
    let config = write(
        temp.path(),
        "stele.toml",
        format!(
            "mldsa_key = {:?}\n",
            data.join("log.mldsa44.key").display().to_string()
        )
        .as_bytes(),
    );
    let (_log, url): (Process, String) = serve(&data, &["--config", &config]);
    let ed25519 = read_vkey(&data.join("log.vkey"));
    let mldsa = read_vkey(&data.join("log.mldsa44.vkey"));
    let entry = write(temp.path(), "entry", b"an entry of a hybrid log");
    let receipt_bytes = add(&url, b"an entry of a hybrid log");
    let receipt = write(temp.path(), "receipt", &receipt_bytes);
    let policy = write(
        temp.path(),
        "hybrid.policy",
        format!("log {ed25519} {url}\nlog {mldsa}\nquorum none\n").as_bytes(),
    );
    succeeds(&verify(&["checkpoint", "--log", &url, "--policy", &policy]));
    succeeds(&verify(&[
        "checkpoint",
        "--log",
        &url,
        "--policy",
        &policy,
        "--origin",
        origin,
    ]));
    succeeds(&verify(&[
        "receipt", &receipt, "--entry", &entry, "--policy", &policy,
    ]));

    // The ML-DSA-44 line is checked too: damaged, the receipt is refused.
    let parsed = stele_tiles::receipt::Receipt::parse(&receipt_bytes).expect("receipt");
    let mut note = Note::parse(&parsed.checkpoint).expect("note");
    assert_eq!(note.signatures.len(), 2);
    note.signatures[1].signature[200] ^= 1;
    let damaged = stele_tiles::receipt::Receipt {
        checkpoint: note.to_bytes(),
        ..parsed
    };
    let damaged = write(temp.path(), "damaged", &damaged.to_bytes());
    let output = verify(&["receipt", &damaged, "--entry", &entry, "--policy", &policy]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // Beside another log, the origin picks it: the receipt's own, or
    // --origin for the latest checkpoint.
    let other = stele_tiles::note::Ed25519Signer::from_seed("other.example/log", &[5; 32])
        .expect("key")
        .verifier()
        .to_text();
    let two_logs = write(
        temp.path(),
        "two.policy",
        format!("log {other}\nlog {ed25519}\nlog {mldsa}\nquorum none\n").as_bytes(),
    );
    let output = verify(&["checkpoint", "--log", &url, "--policy", &two_logs]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--origin"),
        "{}",
        text(&output)
    );
    succeeds(&verify(&[
        "checkpoint",
        "--log",
        &url,
        "--policy",
        &two_logs,
        "--origin",
        origin,
    ]));
    succeeds(&verify(&[
        "receipt", &receipt, "--entry", &entry, "--policy", &two_logs,
    ]));
}

/// A log listed by its ECDSA P-256 key, as a type `0x02` vkey:
/// `<origin>+<hex SHA-256(DER SPKI)[:4]>+<base64(0x02 ‖ DER SPKI)>`.
#[test]
fn an_ecdsa_log_of_a_policy() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let origin = "ecdsa.example/log";
    keygen(&data, &["--algorithm", "ecdsa-p256", "--origin", origin]);
    let (_log, url): (Process, String) = serve(&data, &["--origin", origin]);
    let pem = std::fs::read_to_string(data.join("log.vkey")).expect("PEM vkey");
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|line| !line.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("PEM body");
    let mut material = vec![0x02];
    material.extend_from_slice(&der);
    let vkey = format!(
        "{origin}+{}+{}",
        hex::encode(&Sha256::digest(&der)[..4]),
        STANDARD.encode(&material)
    );
    let policy = write(
        temp.path(),
        "ecdsa.policy",
        format!("log {vkey}\nquorum none\n").as_bytes(),
    );
    let entry = write(temp.path(), "entry", b"an entry of an ECDSA log");
    let receipt = write(
        temp.path(),
        "receipt",
        &add(&url, b"an entry of an ECDSA log"),
    );
    succeeds(&verify(&["checkpoint", "--log", &url, "--policy", &policy]));
    succeeds(&verify(&[
        "receipt", &receipt, "--entry", &entry, "--policy", &policy,
    ]));
}
