//! Release statements against an independent implementation:
//! tests/release_vectors.py writes them from docs/formats.md and signs them
//! with Python `cryptography` (Ed25519 and ECDSA P-256), valid ones and one
//! broken rule at a time; it also reads back, with its own parser and
//! `cryptography`, what the Rust code signs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stele_rekor::entry::hashedrekord_key_id;
use stele_rekor::release::{
    self, Bundle, KeyKind, MaintainerKey, Release, key_id, namespace_path, public_key_from_text,
};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/release_vectors.py")
}

/// Complains that python3 with `cryptography` is missing: a failure under
/// `CI`, a loud warning otherwise.
fn python_missing(why: &str) {
    let message = format!(
        "{} {why}: it needs python3 with cryptography (scripts/install-test-deps.sh installs it)",
        script().display()
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI is set, so this fails rather than skip the independent check"
    );
    eprintln!(
        "\n==================================================================\n\
         WARNING: {message}.\n\
         ==================================================================\n"
    );
}

/// Fresh vectors from the script, or the committed ones when python3 is
/// missing (outside CI only).
fn vectors() -> Value {
    let output = Command::new("python3").arg(script()).output();
    match output {
        Ok(output) if output.status.success() => {
            serde_json::from_slice(&output.stdout).expect("the script's JSON")
        }
        failed => {
            python_missing(&match failed {
                Ok(output) => format!(
                    "exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ),
                Err(err) => format!("could not be run ({err})"),
            });
            let committed =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/release_vectors.json");
            serde_json::from_slice(&std::fs::read(committed).expect("committed vectors"))
                .expect("committed JSON")
        }
    }
}

fn bytes(value: &Value) -> Vec<u8> {
    STANDARD
        .decode(value.as_str().expect("base64 string"))
        .expect("base64")
}

#[test]
fn vectors_from_python_cryptography() {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().expect("cases");
    let (mut valid, mut invalid) = (0, 0);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let entry = bytes(&case["entry"]);
        let result = release::parse(&entry);
        if case["valid"].as_bool().expect("valid") {
            valid += 1;
            let release = result.unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(release.render(), entry, "{name}: renders back");
            assert_eq!(release.key_id(), case["key_id"], "{name}");
            assert_eq!(key_id(&release.key), case["key_id"], "{name}");
            assert_eq!(
                namespace_path(&release.namespace),
                case["namespace_path"],
                "{name}"
            );
            assert_eq!(
                release::key_index_path(&release.key_id()),
                format!("index/key/{}", case["key_id"].as_str().expect("key id"))
            );
            assert!(release::claims_release(&entry));
        } else {
            invalid += 1;
            let err = match result {
                Ok(release) => panic!("{name}: accepted {release:?}"),
                Err(err) => err,
            };
            assert_eq!(err.line as u64, case["line"], "{name}: {err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("release statement, line {}", err.line)),
                "{name}: {message}"
            );
        }
    }
    assert!(
        valid >= 10 && invalid >= 50,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn hashedrekord_signers_named_like_python() {
    let vectors = vectors();
    let entries = vectors["hashedrekord"].as_array().expect("hashedrekord");
    assert_eq!(entries.len(), 2);
    for entry in entries {
        let text = entry["entry"].as_str().expect("entry");
        assert_eq!(
            hashedrekord_key_id(text.as_bytes()).as_deref(),
            entry["key_id"].as_str(),
            "{text}"
        );
    }
    assert_eq!(hashedrekord_key_id(b"stele/release/v1\n"), None);
    assert_eq!(hashedrekord_key_id(br#"{"kind":"other"}"#), None);
}

/// Python's keys load, sign here, and Python verifies what was signed, with
/// keys made by either side.
#[test]
fn python_reads_what_rust_signs() {
    let vectors = vectors();
    let mut signed = Vec::new();
    let mut expected = Vec::new();
    for key in vectors["keys"].as_array().expect("keys") {
        let private =
            MaintainerKey::from_pem(key["private_pem"].as_str().expect("private_pem").as_bytes())
                .expect("Python's PKCS#8 key");
        let public =
            public_key_from_text(key["public_pem"].as_str().expect("public_pem").as_bytes())
                .expect("Python's SPKI");
        assert_eq!(private.public_key_der(), public);
        assert_eq!(private.key_id(), key["key_id"]);
        let kind = match key["kind"].as_str() {
            Some("ed25519") => KeyKind::Ed25519,
            _ => KeyKind::EcdsaP256,
        };
        assert_eq!(private.kind(), kind);
        signed.push(sign(&private));
        expected.push(Value::from(private.key_id()));
    }
    for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
        let generated = MaintainerKey::generate(kind).expect("generate");
        let reloaded = MaintainerKey::from_pem(generated.to_pkcs8_pem().expect("pem").as_bytes())
            .expect("pem");
        assert_eq!(reloaded.public_key_der(), generated.public_key_der());
        assert_eq!(
            public_key_from_text(generated.public_key_pem().expect("pem").as_bytes()),
            Ok(generated.public_key_der())
        );
        signed.push(sign(&reloaded));
        expected.push(Value::from(generated.key_id()));
    }
    let input = Value::from(
        signed
            .iter()
            .map(|entry| STANDARD.encode(entry))
            .collect::<Vec<_>>(),
    );
    let child = Command::new("python3")
        .arg(script())
        .arg("verify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        python_missing("could not be run");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("python");
    if !output.status.success() {
        python_missing(&format!("exited with {}", output.status));
        return;
    }
    let answers: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(answers, Value::from(expected));
}

fn sign(key: &MaintainerKey) -> Vec<u8> {
    let release = Release::sign(
        "github.com/org/repo",
        "v1.2.3",
        "repo-1.2.3.tar.gz",
        [0x42; 32],
        key,
    )
    .expect("sign");
    let entry = release.render();
    assert_eq!(release::parse(&entry), Ok(release));
    entry
}

#[test]
fn bundle_round_trip_and_refusals() {
    let key = MaintainerKey::generate(KeyKind::Ed25519).expect("key");
    let release = Release::sign("pypi/x", "1", "x-1.tar.gz", [1; 32], &key).expect("sign");
    let receipt = stele_tiles::receipt::Receipt {
        extra: None,
        index: 7,
        proof: vec![stele_tiles::Hash([3; 32]), stele_tiles::Hash([4; 32])],
        checkpoint: b"example.com/log\n8\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\xe2\x80\x94 example.com/log AAAA\n"
            .to_vec(),
    };
    let bundle = Bundle {
        release: release.clone(),
        receipt,
    };
    let bytes = bundle.render();
    assert_eq!(Bundle::parse(&bytes), Ok(bundle.clone()));
    assert_eq!(bundle.entry(), release.render());
    let entry_len = release.render().len();
    // Cut anywhere: refused.
    for cut in [0, 10, entry_len - 1, entry_len, entry_len + 5] {
        assert!(Bundle::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // A flipped byte in the statement breaks the signature or the format.
    for at in 0..entry_len {
        let mut broken = bytes.clone();
        broken[at] ^= 0x01;
        assert!(Bundle::parse(&broken).is_err(), "flip at {at}");
    }
}
