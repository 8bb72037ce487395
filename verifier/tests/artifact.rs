//! `stele-verify artifact`: the digest index leads to the entries, each is
//! proven and must be about the artifact; a lying index is caught.

mod common;

use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::FolderLog;
use sha2::{Digest, Sha256};

fn rekord(digest: &[u8; 32], key: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": {"content": STANDARD.encode([1u8; 64]), "verifier": {
                "publicKey": {"rawBytes": STANDARD.encode(key)},
                "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
    }))
    .expect("json")
}

fn run(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stele-verify"))
        .args(args)
        .env("STELE_VERIFY_CACHE", cache)
        .output()
        .expect("stele-verify")
}

#[tokio::test(flavor = "multi_thread")]
async fn artifact_through_the_digest_index() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(500);
    let artifact = temp.path().join("release.tar.gz");
    std::fs::write(&artifact, b"the release bytes").expect("write");
    let digest: [u8; 32] = Sha256::digest(b"the release bytes").into();
    let other: [u8; 32] = Sha256::digest(b"another release").into();
    let batch = vec![
        rekord(&digest, &[7; 91]),
        rekord(&other, &[7; 91]),
        rekord(&digest, &[8; 91]),
    ];
    log.append(&batch);
    // More entries, so that the artifact's tile and bundle are full ones.
    log.grow(300);
    let index_path = format!("index/sha256/{}", hex::encode(digest));
    log.write(&index_path, b"500\n502\n");

    let server = common::serve(&log.dir).await;
    let cache = temp.path().join("cache");
    let vkey = common::vkey();
    let file = artifact.display().to_string();
    let args = [
        "artifact",
        file.as_str(),
        "--log",
        &server.url,
        "--vkey",
        &vkey,
        "--json",
    ];
    let cold = run(&args, &cache);
    assert_eq!(cold.status.code(), Some(0), "{cold:?}");
    let json: serde_json::Value = serde_json::from_slice(&cold.stdout).expect("json");
    let entries = json["result"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["index"], 502);
    assert_eq!(
        entries[1]["signer"]["fingerprint"],
        hex::encode(Sha256::digest([8u8; 91]))
    );
    // Warm: the full tiles come from the cache (the partial ones do not).
    let warm = run(&args, &cache);
    assert_eq!(warm.status.code(), Some(0), "{warm:?}");
    let json: serde_json::Value = serde_json::from_slice(&warm.stdout).expect("json");
    assert!(
        json["result"]["fetched"]["tiles_cached"].as_u64() > Some(0),
        "{json}"
    );

    // The index lies: entry 501 is about another artifact.
    log.write(&index_path, b"500\n501\n");
    let lie = run(&args, &cache);
    assert_eq!(lie.status.code(), Some(1));
    let message = String::from_utf8_lossy(&lie.stderr);
    assert!(
        message.contains("lists entry 501, which does not mention digest"),
        "{message}"
    );
    // A malformed index, and no index at all.
    log.write(&index_path, b"500\n0500\n");
    let bad = run(&args, &cache);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 2"));
    std::fs::remove_file(log.dir.join(&index_path)).expect("remove");
    let none = run(&args, &cache);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no entries for sha256:"));
}
