//! The explorer (`explorer/`) against the real `stele serve`:
//!
//! - the committed `explorer/dist/` is what a fresh `npm ci && npm run
//!   build` makes, byte for byte (so building Stele never needs npm);
//! - `stele serve` publishes the page and `log.vkey` into the log's folder
//!   at start and serves exactly those files;
//! - in headless Chromium (`explorer/test/browser.mjs`, driven by
//!   playwright-core), every view shows the log's real data: the size and
//!   root of the checkpoint file, each kind of entry decoded with the leaf
//!   hash this test computes, inclusion proofs verified, the lookups by
//!   digest, signer key and namespace listing exactly the entries this test
//!   logged, and a key new to a namespace flagged; a screenshot of each view
//!   is kept in `target/explorer-screenshots/`; and behind a proxy that
//!   alters one tile byte, or the checkpoint, the page shows a verification
//!   failure and none of the data. The same for a log with an ECDSA P-256
//!   key, and (`explorer/mldsa.rs`) for a log with an ML-DSA-44 key, alone
//!   or beside an Ed25519 key, with the page's checkpoint verification run
//!   in node on vectors stele-tiles signs.
//!
//! Needs node and npm, and Chromium (Debian's `chromium`) with
//! `explorer/node_modules` (`npm ci` in `explorer/`), as
//! scripts/install-test-deps.sh installs them. Under env `CI` a missing tool
//! fails the test; otherwise the test says so and skips.

mod common;
#[path = "explorer/mldsa.rs"]
mod mldsa;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::{Backend, ServeOptions, Stele};
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stele_e2e::client::{Client, Submission};

/// Longest wait for the indexes to list what was logged.
const INDEX_DEADLINE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// `true` when the test may run; a missing tool fails under `CI` and skips
/// otherwise.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let message = format!(
        "{what} is missing; scripts/install-test-deps.sh installs it (install_node, \
         install_chromium, install_explorer_deps)"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    false
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn chromium() -> PathBuf {
    std::env::var_os("STELE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Copies `from` (a file or folder) into `to`.
fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("explorer test step");
        for item in std::fs::read_dir(from).expect("explorer test step") {
            let item = item.expect("explorer test step");
            copy(&item.path(), &to.join(item.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|err| panic!("copy {}: {err}", from.display()));
    }
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn dist_is_what_a_fresh_build_makes() {
    if !require("npm", runs("npm", "--version")) {
        return;
    }
    let explorer = repo_root().join("explorer");
    let work = tempfile::tempdir().expect("explorer test step");
    for item in ["package.json", "package-lock.json", "build.mjs", "src"] {
        copy(&explorer.join(item), &work.path().join(item));
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(work.path()),
        "npm ci",
    );
    run(
        Command::new("npm")
            .args(["run", "build"])
            .current_dir(work.path()),
        "npm run build",
    );
    for file in ["index.html", "explorer.js", "explorer.css"] {
        let built = std::fs::read(work.path().join("dist").join(file)).expect("explorer test step");
        let committed =
            std::fs::read(explorer.join("dist").join(file)).expect("explorer test step");
        assert!(
            built == committed,
            "explorer/dist/{file} is not what `npm ci && npm run build` makes ({} bytes built, \
             {} committed): run `npm run build` in explorer/ and commit dist/",
            built.len(),
            committed.len()
        );
    }
    // The sequencer embeds the same bytes.
    for file in stele_sequencer::explorer::FILES {
        let committed =
            std::fs::read(explorer.join("dist").join(file.name)).expect("explorer test step");
        assert_eq!(file.bytes, &committed[..], "{} as embedded", file.name);
    }
}

/// The page's proof maths (explorer/test/tlog.test.mjs) against RFC
/// 6962's reference tree and a model written from RFC 9162's definitions.
#[test]
fn proof_maths_of_the_page() {
    if !require("node", runs("node", "--version"))
        || !require(
            "explorer/node_modules",
            repo_root()
                .join("explorer/node_modules/@noble/hashes/package.json")
                .is_file(),
        )
    {
        return;
    }
    let out = run(
        Command::new("node")
            .args(["--test", "test/tlog.test.mjs"])
            .current_dir(repo_root().join("explorer")),
        "node --test test/tlog.test.mjs",
    );
    assert!(
        out.contains("# fail 0") && !out.contains("# pass 0"),
        "{out}"
    );
}

fn serve_options(data: &Path) -> ServeOptions {
    ServeOptions {
        data: data.to_path_buf(),
        backend: Backend::Filesystem,
        max_batch: 64,
        batch_interval: "20ms",
        key: None,
        origin: None,
        // Snapshots every second, so that the growth chart has points.
        history_interval: Some("1s"),
    }
}

fn client() -> Client {
    Client::new(4, Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stele_serve_publishes_and_serves_the_explorer() {
    let dir = tempfile::tempdir().expect("explorer test step");
    let stele = Stele::start(&serve_options(dir.path()), "explorer-files");
    let client = client();
    let dist = repo_root().join("explorer/dist");
    for (path, file, content_type) in [
        ("/explorer/", "index.html", "text/html; charset=utf-8"),
        (
            "/explorer/index.html",
            "index.html",
            "text/html; charset=utf-8",
        ),
        (
            "/explorer/explorer.js",
            "explorer.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/explorer/explorer.css",
            "explorer.css",
            "text/css; charset=utf-8",
        ),
    ] {
        let got = client
            .get(&format!("{}{path}", stele.url))
            .await
            .expect("explorer test step");
        assert_eq!(got.status, StatusCode::OK, "GET {path}");
        assert_eq!(got.header("content-type"), content_type, "GET {path}");
        assert_eq!(got.header("cache-control"), "public, max-age=300");
        assert!(
            got.body == std::fs::read(dist.join(file)).expect("explorer test step"),
            "GET {path} is not dist/{file}"
        );
        // Published into the folder, for whoever serves it instead.
        assert!(
            std::fs::read(dir.path().join("explorer").join(file)).expect("explorer test step")
                == got.body,
            "the folder's explorer/{file}"
        );
    }
    let redirect = client
        .get(&format!("{}/explorer", stele.url))
        .await
        .expect("explorer test step");
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.header("location"), "explorer/");
    for path in [
        "/explorer/nope.js",
        "/explorer/../checkpoint",
        "/explorer/.stele/lock",
        "/explorer/dist/index.html",
    ] {
        let got = client
            .get(&format!("{}{path}", stele.url))
            .await
            .expect("explorer test step");
        assert_eq!(got.status, StatusCode::NOT_FOUND, "GET {path}");
    }
    let vkey = client
        .get(&format!("{}/log.vkey", stele.url))
        .await
        .expect("explorer test step");
    assert_eq!(vkey.status, StatusCode::OK);
    assert!(vkey.body == std::fs::read(dir.path().join("log.vkey")).expect("explorer test step"));
}

fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The leaf hash of an entry, SHA-256(0x00 ‖ entry), in hex.
fn leaf_hex(entry: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry);
    to_hex(hasher.finalize())
}

async fn add(client: &Client, stele: &Stele, entry: &[u8]) -> u64 {
    match client
        .submit(&stele.url, Bytes::copy_from_slice(entry))
        .await
        .expect("explorer test step")
    {
        Submission::Accepted { index, .. } => index,
        other => panic!("POST /add: {other:?}"),
    }
}

/// A maintainer's key and the statements it signs (stele/release/v1,
/// signed here with aws-lc-rs, independently of Stele's own code).
enum Maintainer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

impl Maintainer {
    fn spki(&self) -> Vec<u8> {
        match self {
            Maintainer::Ed25519(key) => {
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(key.public_key().as_ref());
                der
            }
            Maintainer::P256(key) => key
                .public_key()
                .as_der()
                .expect("explorer test step")
                .as_ref()
                .to_vec(),
        }
    }

    fn key_id(&self) -> String {
        to_hex(Sha256::digest(self.spki()))
    }

    fn release(&self, namespace: &str, version: &str, file: &str, sha256: &str) -> Vec<u8> {
        let statement = format!(
            "stele/release/v1\nnamespace {namespace}\nversion {version}\nfile {file}\nsha256 \
             {sha256}\nkey {}\n",
            STANDARD.encode(self.spki())
        );
        let signature = match self {
            Maintainer::Ed25519(key) => key.sign(statement.as_bytes()).as_ref().to_vec(),
            Maintainer::P256(key) => key
                .sign(&SystemRandom::new(), statement.as_bytes())
                .expect("explorer test step")
                .as_ref()
                .to_vec(),
        };
        format!("{statement}signature {}\n", STANDARD.encode(signature)).into_bytes()
    }
}

/// A committed Sigstore fixture: the request, and the canonical entry the
/// log stores for it.
fn fixture(name: &str) -> (Bytes, Vec<u8>, String) {
    let path = repo_root().join(format!("sequencer/tests/sigstore/fixtures/{name}.json"));
    let value: Value = serde_json::from_slice(&std::fs::read(&path).expect("explorer test step"))
        .expect("explorer test step");
    let request = serde_json::to_vec(&value["request"]).expect("explorer test step");
    let canonical = value["canonical"]
        .as_str()
        .expect("explorer test step")
        .as_bytes()
        .to_vec();
    let digest = STANDARD
        .decode(
            value["request"]["hashedRekordRequestV002"]["digest"]
                .as_str()
                .expect("explorer test step"),
        )
        .expect("explorer test step");
    (Bytes::from(request), canonical, to_hex(digest))
}

/// Waits until `GET path` lists exactly `want`.
async fn wait_for_index(client: &Client, stele: &Stele, path: &str, want: &[u64]) {
    let deadline = Instant::now() + INDEX_DEADLINE;
    let want_text: String = want.iter().map(|i| format!("{i}\n")).collect();
    loop {
        let got = client
            .get(&format!("{}/{path}", stele.url))
            .await
            .expect("explorer test step");
        if got.status == StatusCode::OK && got.body == want_text.as_bytes() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not list {want:?} within {INDEX_DEADLINE:?}: {} {:?}",
            got.status,
            String::from_utf8_lossy(&got.body)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `stats/v1/hourly.json` (written after the history list)
/// covers `size`.
async fn wait_for_statistics(client: &Client, stele: &Stele, size: u64) {
    let deadline = Instant::now() + INDEX_DEADLINE;
    loop {
        let got = client
            .get(&format!("{}/stats/v1/hourly.json", stele.url))
            .await
            .expect("explorer test step");
        let covered = serde_json::from_slice::<serde_json::Value>(&got.body)
            .ok()
            .and_then(|json| json["tree_size"].as_u64());
        if got.status == StatusCode::OK && covered == Some(size) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the history did not reach size {size} within {INDEX_DEADLINE:?}: {covered:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The size and hex root of the log's checkpoint file.
fn checkpoint_file(data: &Path) -> (u64, String) {
    let text = std::fs::read_to_string(data.join("checkpoint")).expect("explorer test step");
    let lines: Vec<&str> = text.lines().collect();
    let size = lines[1].parse().expect("explorer test step");
    let root = to_hex(STANDARD.decode(lines[2]).expect("explorer test step"));
    (size, root)
}

fn browser_tools() -> bool {
    require("node", runs("node", "--version"))
        && require("chromium", chromium().is_file())
        && require(
            "explorer/node_modules/playwright-core",
            repo_root()
                .join("explorer/node_modules/playwright-core/package.json")
                .is_file(),
        )
}

/// Runs explorer/test/browser.mjs with `spec`; its screenshots go to
/// `target/explorer-screenshots/<name>/`.
fn run_browser(spec: &mut Value, name: &str) {
    let target = common::stele_binary()
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/stele")
        .to_path_buf();
    let shots = target.join("explorer-screenshots").join(name);
    spec["chromium"] = json!(chromium());
    spec["screenshots"] = json!(shots);
    let file = tempfile::NamedTempFile::new().expect("explorer test step");
    std::fs::write(
        file.path(),
        serde_json::to_vec_pretty(spec).expect("explorer test step"),
    )
    .expect("explorer test step");
    let out = tokio::task::block_in_place(|| {
        run(
            Command::new("node")
                .arg("test/browser.mjs")
                .arg(file.path())
                .current_dir(repo_root().join("explorer")),
            "explorer/test/browser.mjs",
        )
    });
    eprintln!("{out}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
    for view in [
        "home",
        "tampered-altered-tile-entry",
        "tampered-altered-checkpoint-home",
    ] {
        assert!(
            shots.join(format!("{view}.png")).is_file(),
            "no screenshot of {view}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_in_chromium_shows_verified_data_and_refuses_tampered_data() {
    if !browser_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("explorer test step");
    let stele = Stele::start(&serve_options(dir.path()), "explorer");
    let client = client();

    // Opaque entries.
    let mut opaque = Vec::new();
    for n in 0..24 {
        let entry = format!("opaque entry {n}");
        opaque.push((add(&client, &stele, entry.as_bytes()).await, entry));
    }
    // Sigstore hashedrekord entries, through the Rekor v2 API.
    let mut rekords = Vec::new();
    for name in ["p256-key", "p256-cert", "rsa2048-key"] {
        let (request, canonical, digest) = fixture(name);
        let url = format!("{}/api/v2/log/entries", stele.url);
        let headers = [(CONTENT_TYPE as HeaderName, "application/json".to_owned())];
        let index = match client
            .post(&url, &headers, request)
            .await
            .expect("explorer test step")
        {
            Submission::Accepted { index, .. } => index,
            other => panic!("POST /api/v2/log/entries {name}: {other:?}"),
        };
        rekords.push((index, canonical, digest));
    }
    // Release statements: key A signs two versions of pypi/example, then a
    // key B the third (new to the namespace); an ECDSA key another project.
    // Version 1.0.0 is the artifact of the first hashedrekord entry.
    let key_a = Maintainer::Ed25519(Ed25519KeyPair::generate().expect("explorer test step"));
    let key_b = Maintainer::Ed25519(Ed25519KeyPair::generate().expect("explorer test step"));
    let key_c = Maintainer::P256(
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("explorer test step"),
    );
    let digest_2 = to_hex(Sha256::digest(b"example-1.1.0.tar.gz"));
    let digest_3 = to_hex(Sha256::digest(b"example-1.2.0.tar.gz"));
    let digest_4 = to_hex(Sha256::digest(b"repo-2.0.0.zip"));
    let mut releases = Vec::new();
    for (key, ns, version, file, digest) in [
        (
            &key_a,
            "pypi/example",
            "1.0.0",
            "example-1.0.0.tar.gz",
            &rekords[0].2,
        ),
        (
            &key_a,
            "pypi/example",
            "1.1.0",
            "example-1.1.0.tar.gz",
            &digest_2,
        ),
        (
            &key_b,
            "pypi/example",
            "1.2.0",
            "example-1.2.0.tar.gz",
            &digest_3,
        ),
        (
            &key_c,
            "github.com/org/repo",
            "v2.0.0",
            "repo-2.0.0.zip",
            &digest_4,
        ),
    ] {
        let entry = key.release(ns, version, file, digest);
        let index = add(&client, &stele, &entry).await;
        releases.push((index, entry, ns, version, key.key_id(), digest.clone()));
    }
    for n in 24..30 {
        let entry = format!("opaque entry {n}");
        opaque.push((add(&client, &stele, entry.as_bytes()).await, entry));
    }

    // The indexes, once the indexer has caught up.
    let namespace: Vec<u64> = releases[..3].iter().map(|r| r.0).collect();
    let by_a: Vec<u64> = releases[..2].iter().map(|r| r.0).collect();
    // The digest index names hashedrekord entries (docs/formats.md), not
    // release statements of the same file.
    let by_digest = vec![rekords[0].0];
    wait_for_index(&client, &stele, "index/namespace/pypi~example", &namespace).await;
    wait_for_index(
        &client,
        &stele,
        &format!("index/key/{}", key_a.key_id()),
        &by_a,
    )
    .await;
    wait_for_index(
        &client,
        &stele,
        &format!("index/sha256/{}", rekords[0].2),
        &by_digest,
    )
    .await;
    let rekord_key = stele_key_id_of_fixture("p256-key");
    let (size, root_hex) = checkpoint_file(dir.path());
    assert_eq!(size, 37, "every entry is in the checkpoint");

    // The history lists the whole tree (its statistics are written right
    // after the list): every chart of the home page has real data.
    wait_for_statistics(&client, &stele, size).await;
    let home_sections = ["growth", "hourly", "daily", "kinds"];

    let (rekord_index, rekord_entry, rekord_digest) = &rekords[0];
    let (release_index, release_entry, _, release_version, release_key, release_digest) =
        &releases[2];
    let mut spec = json!({
        "log": format!("{}/", stele.url),
        "expect": {
            "size": size,
            "root_hex": root_hex,
            "home_sections": home_sections,
            "tamper_entry": opaque[1].0,
            "entries": [
                {"index": opaque[0].0, "kind": "other", "leaf_hex": leaf_hex(opaque[0].1.as_bytes()), "text": opaque[0].1},
                {"index": rekord_index, "kind": "hashedrekord", "leaf_hex": leaf_hex(rekord_entry), "digest": rekord_digest, "key_id": rekord_key},
                {"index": release_index, "kind": "release", "leaf_hex": leaf_hex(release_entry), "digest": release_digest, "version": release_version, "key_id": release_key, "namespace": "pypi/example"},
            ],
            "lookups": [
                {"what": "digest", "value": rekord_digest, "indices": by_digest},
                {"what": "key", "value": key_a.key_id(), "indices": by_a},
                {"what": "namespace", "value": "pypi/example", "indices": namespace, "new_keys": [key_b.key_id()]},
                {"what": "namespace", "value": "github.com/org/repo", "indices": [releases[3].0], "new_keys": []},
            ],
        },
    });
    run_browser(&mut spec, "ed25519-log");
}

/// The key ID of a fixture's public key: SHA-256 of its DER SPKI.
fn stele_key_id_of_fixture(name: &str) -> String {
    let path = repo_root().join(format!("sequencer/tests/sigstore/fixtures/{name}.json"));
    let value: Value = serde_json::from_slice(&std::fs::read(&path).expect("explorer test step"))
        .expect("explorer test step");
    let raw = value["request"]["hashedRekordRequestV002"]["signature"]["verifier"]["publicKey"]
        ["rawBytes"]
        .as_str()
        .expect("explorer test step");
    to_hex(Sha256::digest(
        STANDARD.decode(raw).expect("explorer test step"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_verifies_an_ecdsa_p256_log() {
    if !browser_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("explorer test step");
    let mut options = serve_options(dir.path());
    options.origin = Some("example.com/ecdsa-log".to_owned());
    // The key first, so that `stele serve` signs with it.
    run(
        Command::new(common::stele_binary())
            .args([
                "keygen",
                "--algorithm",
                "ecdsa-p256",
                "--origin",
                "example.com/ecdsa-log",
            ])
            .arg("--out")
            .arg(dir.path()),
        "stele keygen --algorithm ecdsa-p256",
    );
    let stele = Stele::start(&options, "explorer-ecdsa");
    let client = client();
    let mut entries = Vec::new();
    for n in 0..5 {
        let entry = format!("entry {n} of an ECDSA log");
        entries.push((add(&client, &stele, entry.as_bytes()).await, entry));
    }
    let (size, root_hex) = checkpoint_file(dir.path());
    assert_eq!(size, 5);
    let vkey = std::fs::read_to_string(dir.path().join("log.vkey")).expect("explorer test step");
    assert!(vkey.starts_with("-----BEGIN PUBLIC KEY-----"), "{vkey}");
    let mut spec = json!({
        "log": format!("{}/", stele.url),
        // Pinned in the URL, as a reader who has the key does.
        "vkey": vkey,
        "expect": {
            "size": size,
            "root_hex": root_hex,
            "tamper_entry": entries[1].0,
            "entries": [
                {"index": entries[3].0, "kind": "other", "leaf_hex": leaf_hex(entries[3].1.as_bytes()), "text": entries[3].1},
            ],
            "lookups": [],
        },
    });
    run_browser(&mut spec, "ecdsa-log");
}
