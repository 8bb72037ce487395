//! The real binaries with post-quantum keys and a tlog-policy file: `stele
//! serve` signing with an ML-DSA-44 log key and asking the witnesses of a
//! policy file (one Ed25519, one ML-DSA-44, both `stele-verify witness`)
//! until the policy's quorum is met; `stele-verify receipt --policy` and
//! `checkpoint --policy` accept what it publishes with nothing but the
//! policy, and refuse it under a policy whose quorum names a witness that
//! never cosigned. The witnesses' monitoring endpoints serve what they
//! cosigned, and an ML-DSA implementation independent of Stele's
//! (`@noble/post-quantum`, `tiles/tests/mldsa/vectors.mjs`) verifies the
//! log's and the witness's ML-DSA-44 signatures on the published checkpoint.

mod common;

use common::stele::{Process, free_port, text, verify};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use stele_tiles::cosignature::WitnessVerifier;
use stele_tiles::note::{MlDsa44Verifier, Note, NoteVerifier, verify_note};

const ORIGIN: &str = "pq.example/log";

/// Makes a witness key of `algorithm` and starts `stele-verify witness`
/// with it for the log `vkey`; returns the process, its URL and its vkey.
fn witness(dir: &Path, name: &str, algorithm: &str, log_vkey: &str) -> (Process, String, String) {
    let key = dir.join(format!("{algorithm}.key"));
    let made = verify(&[
        "cosigner",
        "keygen",
        "--name",
        name,
        "--algorithm",
        algorithm,
        "--out",
        &key.display().to_string(),
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let vkey = std::fs::read_to_string(key.with_extension("pub"))
        .expect("witness vkey")
        .trim()
        .to_owned();
    let port = free_port();
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_stele-verify"))
            .args(["witness", "--vkey", log_vkey])
            .args(["--key", &key.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--state",
                &dir.join(format!("{algorithm}-state")).display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the witness"),
    );
    (process, format!("http://127.0.0.1:{port}"), vkey)
}

/// `@noble/post-quantum`'s verdict on ML-DSA-44 signatures of `note` by
/// each of `vkeys`, or `None` when it is not installed (a failure under CI).
fn noble_verifies(note: &[u8], vkeys: &[&str]) -> Option<Vec<bool>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tiles/tests/mldsa");
    let installed = dir
        .join("node_modules/@noble/post-quantum/package.json")
        .is_file()
        && Command::new("node").arg("--version").output().is_ok();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "@noble/post-quantum is not installed in {} (scripts/install-test-deps.sh)",
            dir.display()
        );
        eprintln!("SKIPPED: @noble/post-quantum is not installed");
        return None;
    }
    let note = String::from_utf8(note.to_vec()).expect("UTF-8 note");
    let checkpoints: Vec<_> = vkeys
        .iter()
        .map(|vkey| serde_json::json!({"note": note, "vkey": vkey}))
        .collect();
    let file: PathBuf =
        std::env::temp_dir().join(format!("stele-noble-{}.json", std::process::id()));
    std::fs::write(
        &file,
        serde_json::to_vec(&serde_json::json!({"checkpoints": checkpoints, "subtrees": []}))
            .expect("json"),
    )
    .expect("write");
    let output = Command::new("node")
        .arg(dir.join("vectors.mjs"))
        .arg("verify")
        .arg(&file)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&file);
    assert!(output.status.success(), "{}", text(&output));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    Some(
        answer["checkpoints"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|value| value.as_bool().expect("a verdict"))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_quantum_log_published_under_a_witness_policy() {
    let binary = common::stele::stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let keygen = Command::new(&binary)
        .args(["keygen", "--algorithm", "ml-dsa-44", "--origin", ORIGIN])
        .arg("--out")
        .arg(&data)
        .output()
        .expect("stele keygen");
    assert!(keygen.status.success(), "{}", text(&keygen));
    let log_vkey = std::fs::read_to_string(data.join("log.vkey"))
        .expect("log.vkey")
        .trim()
        .to_owned();

    let (_classic, classic_url, classic_vkey) =
        witness(temp.path(), "witness.example/classic", "ed25519", &log_vkey);
    let (_pq, pq_url, pq_vkey) = witness(temp.path(), "witness.example/pq", "ml-dsa-44", &log_vkey);
    // A third witness the log does not ask (no URL): it never cosigns.
    let idle =
        stele_tiles::cosignature::CosignatureSigner::from_seed("witness.example/idle", &[7; 32])
            .expect("key")
            .verifier()
            .to_text();
    let policy = temp.path().join("policy");
    std::fs::write(
        &policy,
        format!(
            "# the log, and who must have seen its checkpoints\n\
             log {log_vkey}\n\
             witness classic {classic_vkey} {classic_url}\n\
             witness pq {pq_vkey} {pq_url}\n\
             witness idle {idle}\n\
             group both all classic pq\n\
             quorum both\n"
        ),
    )
    .expect("policy");
    let policy_arg = policy.display().to_string();

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _sequencer = Process(
        Command::new(&binary)
            .args(["serve", "--data", &data.display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--batch-interval", "10ms"])
            .args(["--witness-policy", &policy_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stele serve"),
    );
    common::wait_for(&format!("{url}/healthz")).await;
    let client = reqwest::Client::new();
    let receipts = futures::future::join_all(
        (0..6).map(|i| common::submit_entry(&client, &url, format!("pq entry {i}").into_bytes())),
    )
    .await;

    // Each receipt verifies offline with the policy alone: it gives the
    // log's key and the quorum.
    for (i, receipt) in receipts.iter().enumerate() {
        let receipt_file = temp.path().join(format!("receipt-{i}"));
        std::fs::write(&receipt_file, receipt).expect("write");
        let entry_file = temp.path().join(format!("entry-{i}"));
        std::fs::write(&entry_file, format!("pq entry {i}")).expect("write");
        let output = verify(&[
            "receipt",
            &receipt_file.display().to_string(),
            "--entry",
            &entry_file.display().to_string(),
            "--policy",
            &policy_arg,
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let output = verify(&["checkpoint", "--log", &url, "--policy", &policy_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // A policy whose quorum needs the idle witness refuses the same receipt.
    let strict = temp.path().join("strict-policy");
    std::fs::write(
        &strict,
        format!(
            "log {log_vkey}\nwitness classic {classic_vkey}\nwitness idle {idle}\n\
             group needs-idle all classic idle\nquorum needs-idle\n"
        ),
    )
    .expect("policy");
    let output = verify(&[
        "receipt",
        &temp.path().join("receipt-0").display().to_string(),
        "--entry",
        &temp.path().join("entry-0").display().to_string(),
        "--policy",
        &strict.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // The published checkpoint: the log's ML-DSA-44 signature and both
    // cosignatures, checked here with stele-tiles...
    let published = client
        .get(format!("{url}/checkpoint"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body")
        .to_vec();
    let note = Note::parse(&published).expect("checkpoint note");
    let log_key = MlDsa44Verifier::from_text(&log_vkey).expect("log vkey");
    let classic = WitnessVerifier::from_text(&classic_vkey).expect("vkey");
    let pq = WitnessVerifier::from_text(&pq_vkey).expect("vkey");
    for key in [&log_key as &dyn NoteVerifier, &classic, &pq] {
        verify_note(&note, &[key]).expect("each key's line verifies");
    }
    // ... and with noble, for the two ML-DSA-44 keys.
    if let Some(verdicts) = noble_verifies(&published, &[&log_vkey, &pq_vkey]) {
        assert_eq!(verdicts, [true, true]);
    }

    // Each witness's monitoring endpoint serves the checkpoint it last
    // cosigned, with its own cosignature.
    let origin_hash = hex::encode(Sha256::digest(ORIGIN.as_bytes()));
    for (witness_url, key) in [(&classic_url, &classic), (&pq_url, &pq)] {
        let response = client
            .get(format!("{witness_url}/{origin_hash}/checkpoint"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status().as_u16(), 200);
        let served = Note::parse(&response.bytes().await.expect("body")).expect("note");
        verify_note(&served, &[key as &dyn NoteVerifier]).expect("its cosignature");
        verify_note(&served, &[&log_key as &dyn NoteVerifier]).expect("the log's signature");
    }
}

/// A policy the sequencer cannot satisfy is refused at the start, naming
/// the problem: no URL for a witness its quorum needs, or no log of its
/// origin.
#[test]
fn stele_serve_refuses_a_policy_it_cannot_meet() {
    let binary = common::stele::stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let keygen = Command::new(&binary)
        .args(["keygen", "--origin", ORIGIN])
        .arg("--out")
        .arg(&data)
        .output()
        .expect("stele keygen");
    assert!(keygen.status.success(), "{}", text(&keygen));
    let witness = stele_tiles::cosignature::CosignatureSigner::from_seed("w.example/w", &[8; 32])
        .expect("key")
        .verifier()
        .to_text();
    let other_log = stele_tiles::note::Ed25519Signer::from_seed("other.example/log", &[9; 32])
        .expect("key")
        .verifier()
        .to_text();
    for (policy, expected) in [
        (
            format!("witness w {witness}\nquorum w\n"),
            "cannot be met by the witnesses it gives a URL",
        ),
        (
            format!("log {other_log}\nquorum none\n"),
            "none with this log's origin",
        ),
        ("quorum nobody\n".to_owned(), "policy line 1"),
    ] {
        let file = temp.path().join("policy");
        std::fs::write(&file, &policy).expect("policy");
        let output = Command::new(&binary)
            .args(["serve", "--data", &data.display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--witness-policy", &file.display().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("stele serve");
        assert!(!output.status.success(), "{policy}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{policy}: {stderr}");
    }
}
