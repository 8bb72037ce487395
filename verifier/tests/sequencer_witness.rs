//! The real binaries together: `stele serve` with `stele-verify witness` as
//! its witness. The sequencer publishes checkpoints cosigned by the witness,
//! receipts carry the cosignature and verify under a witness policy with
//! `stele-verify receipt`, and the witness follows the log across a restart
//! of the sequencer.

mod common;

use common::stele::{Process, free_port, text, verify};

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `stele-verify receipt` on `receipt` for `entry`, requiring the
/// witness's cosignature.
fn check_receipt(
    dir: &Path,
    name: &str,
    receipt: &[u8],
    entry: &[u8],
    vkey: &str,
    witness: &str,
) -> Output {
    let receipt_file = dir.join(format!("receipt-{name}"));
    std::fs::write(&receipt_file, receipt).expect("write");
    let entry_file = dir.join(format!("entry-{name}"));
    std::fs::write(&entry_file, entry).expect("write");
    verify(&[
        "receipt",
        &receipt_file.display().to_string(),
        "--vkey",
        vkey,
        "--entry",
        &entry_file.display().to_string(),
        "--witness",
        witness,
        "--min-witnesses",
        "1",
    ])
}

fn serve(binary: &Path, data: &Path, port: u16, witness: &str) -> Process {
    Process(
        Command::new(binary)
            .args(["serve", "--data", &data.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--batch-interval", "10ms"])
            .args(["--witness", witness, "--witness-threshold", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stele serve"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sequencer_publishes_checkpoints_cosigned_by_the_witness() {
    let binary = common::stele::stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let origin = "example.com/witnessed";

    // The log's key first: the witness must know it.
    let keygen = Command::new(&binary)
        .args([
            "keygen",
            "--origin",
            origin,
            "--out",
            &data.display().to_string(),
        ])
        .output()
        .expect("stele keygen");
    assert!(keygen.status.success(), "{}", text(&keygen));
    let vkey_file = data.join("log.vkey");
    let vkey = std::fs::read_to_string(&vkey_file).expect("log.vkey");
    let vkey = vkey.trim().to_owned();

    let witness_key = temp.path().join("witness.key");
    let made = verify(&[
        "cosigner",
        "keygen",
        "--name",
        "witness.example/w1",
        "--out",
        &witness_key.display().to_string(),
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let witness_vkey = std::fs::read_to_string(witness_key.with_extension("pub"))
        .expect("witness verifier key")
        .trim()
        .to_owned();
    let witness_port = free_port();
    let _witness = Process(
        Command::new(env!("CARGO_BIN_EXE_stele-verify"))
            .args(["witness", "--vkey", &vkey])
            .args(["--key", &witness_key.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{witness_port}")])
            .args([
                "--state",
                &temp.path().join("witness-state").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the witness"),
    );
    let witness_setting = format!("http://127.0.0.1:{witness_port}={witness_vkey}");

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut sequencer = serve(&binary, &data, port, &witness_setting);
    common::wait_for(&format!("{url}/healthz")).await;

    let client = reqwest::Client::new();
    let submit = |body: Vec<u8>| common::submit_entry(&client, &url, body);
    let receipts =
        futures::future::join_all((0..20).map(|i| submit(format!("entry {i}").into_bytes()))).await;

    // Each receipt verifies offline under a policy that needs the witness.
    for (i, receipt) in receipts.iter().enumerate().step_by(7) {
        let output = check_receipt(
            temp.path(),
            &i.to_string(),
            receipt,
            format!("entry {i}").as_bytes(),
            &vkey,
            &witness_vkey,
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }

    // The public checkpoint is cosigned too.
    let output = verify(&[
        "checkpoint",
        "--log",
        &url,
        "--vkey",
        &vkey,
        "--witness",
        &witness_vkey,
        "--min-witnesses",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // A restarted sequencer knows nothing of the witness's state and still
    // gets cosignatures (the witness answers 409 with the size it holds).
    drop(sequencer);
    sequencer = serve(&binary, &data, port, &witness_setting);
    common::wait_for(&format!("{url}/healthz")).await;
    let receipt = submit(b"after restart".to_vec()).await;
    let output = check_receipt(
        temp.path(),
        "after",
        &receipt,
        b"after restart",
        &vkey,
        &witness_vkey,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    drop(sequencer);
}

/// A Rekor v2 TransparencyLogEntry from the real sequencer's Sigstore API
/// verifies offline with `stele-verify receipt`, and one flipped byte of its
/// root hash, proof or body makes it fail.
#[tokio::test(flavor = "multi_thread")]
async fn a_rekor_transparency_log_entry_verifies_offline() {
    let binary = common::stele::stele_binary();
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../sequencer/tests/sigstore/fixtures/p256-key.json"),
        )
        .expect("a signed hashedrekord request fixture"),
    )
    .expect("fixture JSON");
    let request = serde_json::to_vec(&fixture["request"]).expect("request");
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _sequencer = Process(
        Command::new(&binary)
            .args(["serve", "--data", &data.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--batch-interval", "10ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stele serve"),
    );
    common::wait_for(&format!("{url}/healthz")).await;
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v2/log/entries"))
        .header("content-type", "application/json")
        .body(request)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 201);
    let entry = response.bytes().await.expect("body").to_vec();
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    let file = temp.path().join("entry.json");
    std::fs::write(&file, &entry).expect("write");
    let output = verify(&[
        "receipt",
        &file.display().to_string(),
        "--vkey",
        vkey.trim(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let json: serde_json::Value = serde_json::from_slice(&entry).expect("json");
    let flip = |path: &[&str]| {
        let mut value = json.clone();
        let mut slot = &mut value;
        for key in path {
            slot = if let Ok(i) = key.parse::<usize>() {
                &mut slot[i]
            } else {
                &mut slot[*key]
            };
        }
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut raw = engine
            .decode(slot.as_str().expect("base64 field"))
            .expect("base64");
        raw[0] ^= 1;
        *slot = serde_json::Value::String(engine.encode(raw));
        serde_json::to_vec(&value).expect("json")
    };
    let mut cases = vec![
        ("root hash", flip(&["inclusionProof", "rootHash"])),
        ("canonicalized body", flip(&["canonicalizedBody"])),
    ];
    if json["inclusionProof"]["hashes"]
        .as_array()
        .is_some_and(|h| !h.is_empty())
    {
        cases.push(("proof hash", flip(&["inclusionProof", "hashes", "0"])));
    }
    for (what, forged) in cases {
        std::fs::write(&file, forged).expect("write");
        let output = verify(&[
            "receipt",
            &file.display().to_string(),
            "--vkey",
            vkey.trim(),
        ]);
        assert_eq!(output.status.code(), Some(1), "{what}: {}", text(&output));
    }
}
