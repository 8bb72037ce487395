//! `stele-verify --mirror` against a real mirror: a real `stele serve` log,
//! copied by the real `stele mirror` into a folder that a plain file server
//! serves, is read and proven from the mirror alone: checkpoint, inclusion
//! of every logged entry, consistency with an older checkpoint, `get`;
//! `--mirror-key` requires the mirror's cosignature (another key fails);
//! and a mirror whose tile was changed fails like a log would.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::stele::{serve, stele_binary, text, verify};
use stele_tiles::cosignature::CosignatureSigner;

const ORIGIN: &str = "mirror.test/log";

/// Runs `stele mirror --once` from `url` into `out`.
fn mirror_once(url: &str, data: &Path, key: &Path, out: &Path, state: &Path) {
    let output = std::process::Command::new(stele_binary())
        .args(["mirror", "--once", "--log", url, "--key"])
        .arg(data.join("log.vkey"))
        .arg("--mirror-key")
        .arg(key)
        .arg("--state")
        .arg(state)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run stele mirror");
    assert!(output.status.success(), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn stele_verify_reads_and_proves_from_a_mirror() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("log");
    let out = temp.path().join("mirror");
    let state = temp.path().join("state");
    let (_log, url) = serve(&data, &["--origin", ORIGIN]);
    let client = reqwest::Client::new();
    let mut entries = Vec::new();
    for index in 0..300u32 {
        let entry = format!("mirrored entry {index}").into_bytes();
        let response = client
            .post(format!("{url}/add"))
            .body(entry.clone())
            .send()
            .await
            .expect("POST /add");
        assert!(response.status().is_success(), "{}", response.status());
        entries.push(entry);
    }
    let signer = CosignatureSigner::from_seed("mirror.test/m1", &[42; 32]).expect("key");
    let key = temp.path().join("mirror.key");
    std::fs::write(&key, signer.to_private_key_text()).expect("key file");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mirror_vkey = signer.verifier().to_text();
    mirror_once(&url, &data, &key, &out, &state);
    let old = std::fs::read(out.join(format!("{}/checkpoint", common_hash(ORIGIN))))
        .expect("the mirror's checkpoint");
    let old_path = temp.path().join("old-checkpoint");
    std::fs::write(&old_path, &old).expect("write");

    // The log moves on; the mirror follows. Then the log stops: readers
    // have only the mirror.
    for index in 300..520u32 {
        let entry = format!("mirrored entry {index}").into_bytes();
        client
            .post(format!("{url}/add"))
            .body(entry.clone())
            .send()
            .await
            .expect("POST");
        entries.push(entry);
    }
    mirror_once(&url, &data, &key, &out, &state);
    drop(_log);
    let files = common::serve(&out).await;
    let mirror_url = files.url.trim_end_matches('/').to_owned();
    let vkey = data.join("log.vkey").display().to_string();
    let from_mirror = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--mirror", &mirror_url, "--vkey", &vkey]);
        verify(&all)
    };

    let output = from_mirror(&["checkpoint", "--mirror-key", &mirror_vkey]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("size 520"),
        "{}",
        text(&output)
    );
    for index in [0usize, 255, 256, 299, 300, 519] {
        let entry = temp.path().join(format!("entry-{index}"));
        std::fs::write(&entry, &entries[index]).expect("entry file");
        let output = from_mirror(&[
            "inclusion",
            "--entry",
            entry.to_str().expect("utf-8"),
            "--index",
            &index.to_string(),
            "--mirror-key",
            &mirror_vkey,
        ]);
        assert!(output.status.success(), "entry {index}: {}", text(&output));
    }
    let output = from_mirror(&["consistency", "--old", old_path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output));
    let output = from_mirror(&["get", "301"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("mirrored entry 301"),
        "{}",
        text(&output)
    );

    // Another mirror key: the cosignature it asks for is not there.
    let other = CosignatureSigner::from_seed("mirror.test/other", &[7; 32]).expect("key");
    let output = from_mirror(&["checkpoint", "--mirror-key", &other.verifier().to_text()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // A tile of the mirror changed: refused as from a log.
    let tile = format!("{}/tile/0/001", common_hash(ORIGIN));
    let mut bytes = std::fs::read(out.join(&tile)).expect("tile");
    bytes[0] ^= 1;
    files
        .behaviour
        .lock()
        .expect("lock")
        .overrides
        .insert(tile, bytes);
    let entry = temp.path().join("entry-300");
    let output = from_mirror(&[
        "inclusion",
        "--entry",
        entry.to_str().expect("utf-8"),
        "--index",
        "300",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

/// Lowercase hex SHA-256 of the origin, computed here on its own.
fn common_hash(origin: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(origin.as_bytes()))
}
