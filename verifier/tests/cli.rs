//! The `stele-verify` binary: exit statuses, and every command against a
//! log written by the real sequencer (`stele serve`).

mod common;

use std::process::{Child, Command, Output, Stdio};

use common::FolderLog;

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stele-verify"))
        .args(args)
        .env(
            "STELE_VERIFY_CACHE",
            std::env::temp_dir().join("stele-verify-test-cache"),
        )
        .output()
        .expect("run stele-verify")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn exit_statuses_and_messages() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let old = log.grow(300);
    log.grow(20);
    let dir = log.dir.display().to_string();
    let vkey = common::vkey();
    let old_file = temp.path().join("old");
    std::fs::write(&old_file, &old).expect("write");

    let ok = verify(&["checkpoint", "--log", &dir, "--vkey", &vkey]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let ok = verify(&[
        "consistency",
        "--log",
        &dir,
        "--vkey",
        &vkey,
        "--old",
        &old_file.display().to_string(),
        "--json",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("json");
    assert_eq!(json["result"]["new"]["size"], 320);

    // A usage error: 2.
    let usage = verify(&["inclusion", "--log", &dir, "--vkey", &vkey]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    let usage = verify(&["checkpoint", "--log", &dir]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));

    // A failed check: 1, naming the evidence.
    let wrong = temp.path().join("wrong-entry");
    std::fs::write(&wrong, common::entry(6, "a")).expect("write");
    let fail = verify(&[
        "inclusion",
        "--log",
        &dir,
        "--vkey",
        &vkey,
        "--index",
        "5",
        "--entry",
        &wrong.display().to_string(),
    ]);
    assert_eq!(fail.status.code(), Some(1), "{}", text(&fail));
    assert!(
        text(&fail).contains("the log holds leaf hash"),
        "{}",
        text(&fail)
    );
    let path = log.dir.join("tile/0/000");
    let mut data = std::fs::read(&path).expect("read");
    data[0] ^= 1;
    std::fs::write(&path, data).expect("write");
    let fail = verify(&["get", "3", "--log", &dir, "--vkey", &vkey]);
    assert_eq!(fail.status.code(), Some(1), "{}", text(&fail));
    assert!(
        text(&fail).contains("tile/0/000 hashes to"),
        "{}",
        text(&fail)
    );
}

#[test]
fn cosigner_keygen_writes_a_usable_key() {
    let temp = tempfile::tempdir().expect("temp");
    let out = temp.path().join("witness.key");
    let made = verify(&[
        "cosigner",
        "keygen",
        "--name",
        "witness.example/w9",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let key = std::fs::read_to_string(&out).expect("key");
    let signer = stele_tiles::cosignature::CosignatureSigner::from_private_key_text(key.trim())
        .expect("key");
    let vkey = std::fs::read_to_string(out.with_extension("pub")).expect("pub");
    assert_eq!(vkey.trim(), signer.verifier().to_text());
    // Never overwrites.
    let again = verify(&[
        "cosigner",
        "keygen",
        "--name",
        "witness.example/w9",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(1));
}

struct Sequencer(Child);

impl Sequencer {
    /// Starts `stele serve` on a free port for the log in `data` and waits
    /// until it answers; returns it with its URL.
    async fn start(
        binary: &std::path::Path,
        data: &std::path::Path,
        origin: &str,
    ) -> (Sequencer, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let sequencer = Sequencer(
            Command::new(binary)
                .arg("serve")
                .arg("--data")
                .arg(data)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--origin", origin])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start stele serve"),
        );
        common::wait_for(&format!("{url}/healthz")).await;
        (sequencer, url)
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn against_the_real_sequencer() {
    let binary = common::stele::stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let (_sequencer, url) = Sequencer::start(&binary, &data, "example.com/sequenced").await;
    let client = reqwest::Client::new();

    let submit = |body: Vec<u8>| common::submit_entry(&client, &url, body);
    let mut receipts = Vec::new();
    for chunk in 0..6u64 {
        let batch = (chunk * 50..chunk * 50 + 50).map(|i| submit(common::entry(i, "seq")));
        receipts.extend(futures::future::join_all(batch).await);
    }
    // Submitted concurrently, entries are logged in any order: the receipt
    // says where each went.
    let logged_at_200 = receipts
        .iter()
        .position(|receipt| {
            stele_tiles::receipt::Receipt::parse(receipt)
                .expect("receipt")
                .index
                == 200
        })
        .expect("an entry at index 200") as u64;
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    let vkey = vkey.trim();
    let dir = data.display().to_string();
    let state = temp.path().join("monitor");
    let state = state.display().to_string();
    let old_file = temp.path().join("old-checkpoint");
    std::fs::copy(data.join("checkpoint"), &old_file).expect("copy");

    for log in [url.as_str(), dir.as_str()] {
        let output = verify(&["checkpoint", "--log", log, "--vkey", vkey, "--json"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(json["result"]["size"], 300);

        let entry = temp.path().join("entry");
        std::fs::write(&entry, common::entry(123, "seq")).expect("write");
        let output = verify(&[
            "inclusion",
            "--log",
            log,
            "--vkey",
            vkey,
            "--entry",
            &entry.display().to_string(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));

        let expected = String::from_utf8(common::entry(logged_at_200, "seq")).expect("utf-8");
        let output = verify(&["get", "200", "--log", log, "--vkey", vkey, "--json"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(json["result"]["index"], 200, "{json}");
        assert_eq!(json["result"]["entry"], expected.as_str(), "{json}");
        // The text form shows the entry as it is, trailing spaces included.
        let output = verify(&["get", "200", "--log", log, "--vkey", vkey]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let shown = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            shown.split_once(":\n").map(|(_, entry)| entry),
            Some(format!("{expected}\n").as_str()),
            "{}",
            text(&output)
        );
    }

    // Receipts from POST /add verify offline, for their own entry only.
    for (index, receipt) in [(0usize, &receipts[0]), (299, &receipts[299])] {
        let file = temp.path().join(format!("receipt-{index}"));
        std::fs::write(&file, receipt).expect("write");
        let entry = temp.path().join("receipt-entry");
        std::fs::write(&entry, common::entry(index as u64, "seq")).expect("write");
        let args = [
            "receipt",
            &file.display().to_string(),
            "--vkey",
            vkey,
            "--entry",
            &entry.display().to_string(),
        ];
        let output = verify(&args);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        std::fs::write(&entry, b"another entry").expect("write");
        let output = verify(&args);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    }

    let output = verify(&[
        "monitor", "--log", &url, "--vkey", vkey, "--state", &state, "--once",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let more = (300..340).map(|i| submit(common::entry(i, "seq")));
    futures::future::join_all(more).await;
    let output = verify(&[
        "monitor", "--log", &url, "--vkey", vkey, "--state", &state, "--once", "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["result"]["old_size"], 300);
    assert_eq!(json["result"]["new_size"], 340);
    let output = verify(&[
        "consistency",
        "--log",
        &url,
        "--vkey",
        vkey,
        "--old",
        &old_file.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// A log whose key is ECDSA P-256 (`stele keygen --algorithm ecdsa-p256`,
/// as Rekor v2 logs use): `--vkey` takes the log's `log.vkey`, a PEM public
/// key file, with `--origin`, since PEM carries no name.
#[tokio::test(flavor = "multi_thread")]
async fn against_the_real_sequencer_with_an_ecdsa_key() {
    const ORIGIN: &str = "example.com/ecdsa";
    let binary = common::stele::stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let keygen = |out: &std::path::Path| {
        let output = Command::new(&binary)
            .args(["keygen", "--algorithm", "ecdsa-p256", "--origin", ORIGIN])
            .arg("--out")
            .arg(out)
            .output()
            .expect("run stele keygen");
        assert!(output.status.success(), "{output:?}");
    };
    keygen(&data);
    let (_sequencer, url) = Sequencer::start(&binary, &data, ORIGIN).await;
    let client = reqwest::Client::new();
    let mut receipts = Vec::new();
    for index in 0..3 {
        receipts.push(common::submit_entry(&client, &url, common::entry(index, "ec")).await);
    }
    let pem_file = data.join("log.vkey");
    let pem_file = pem_file.display().to_string();
    assert!(
        std::fs::read_to_string(&pem_file)
            .expect("log.vkey")
            .starts_with("-----BEGIN PUBLIC KEY-----"),
        "log.vkey of an ECDSA log is PEM"
    );

    let output = verify(&[
        "checkpoint",
        "--log",
        &url,
        "--vkey",
        &pem_file,
        "--origin",
        ORIGIN,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["result"]["size"], 3);
    assert_eq!(json["result"]["origin"], ORIGIN);

    let entry = temp.path().join("entry");
    std::fs::write(&entry, common::entry(1, "ec")).expect("write");
    let entry = entry.display().to_string();
    let output = verify(&[
        "inclusion",
        "--log",
        &url,
        "--vkey",
        &pem_file,
        "--origin",
        ORIGIN,
        "--entry",
        &entry,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let receipt = temp.path().join("receipt");
    std::fs::write(&receipt, &receipts[1]).expect("write");
    let receipt = receipt.display().to_string();
    let output = verify(&[
        "receipt", &receipt, "--vkey", &pem_file, "--origin", ORIGIN, "--entry", &entry,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Without --origin: a usage error that says what is missing.
    let output = verify(&["checkpoint", "--log", &url, "--vkey", &pem_file]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--origin"), "{}", text(&output));
    // Another origin, or another key for the same origin: the check fails.
    let output = verify(&[
        "checkpoint",
        "--log",
        &url,
        "--vkey",
        &pem_file,
        "--origin",
        "example.com/other",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let other = temp.path().join("other");
    keygen(&other);
    let other_pem = other.join("log.vkey").display().to_string();
    let output = verify(&[
        "checkpoint",
        "--log",
        &url,
        "--vkey",
        &other_pem,
        "--origin",
        ORIGIN,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let output = verify(&[
        "receipt", &receipt, "--vkey", &other_pem, "--origin", ORIGIN, "--entry", &entry,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

#[test]
fn monitor_exits_1_with_evidence_on_a_fork() {
    let temp = tempfile::tempdir().expect("temp");
    let mut honest = FolderLog::new(&temp.path().join("a"), "a");
    let mut fork = FolderLog::new(&temp.path().join("b"), "b");
    honest.grow(300);
    fork.grow(310);
    let vkey = common::vkey();
    let state = temp.path().join("state").display().to_string();
    let run = |log: &FolderLog| {
        verify(&[
            "monitor",
            "--log",
            &log.dir.display().to_string(),
            "--vkey",
            &vkey,
            "--state",
            &state,
            "--once",
        ])
    };
    let ok = run(&honest);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("300 entries checked"), "{}", text(&ok));
    let fail = run(&fork);
    assert_eq!(fail.status.code(), Some(1), "{}", text(&fail));
    let message = text(&fail);
    assert!(
        message.contains("is not consistent with checkpoint of size 300")
            && message.contains("evidence written to"),
        "{message}"
    );
    // The state still holds the honest checkpoint.
    assert_eq!(
        std::fs::read(temp.path().join("state/checkpoint")).expect("state"),
        honest.read("checkpoint")
    );
}
